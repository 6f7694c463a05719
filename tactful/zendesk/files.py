"""Reading Zendesk JSON files in chunks: ``.json`` (one document) or ``.jsonl`` (one a line).

``read_file`` yields one ``Chunk`` per document, already translated by ``parse_object``.
A ``.jsonl`` file is streamed line by line, so its size is not bounded by memory; a ``.json``
file is read whole (an export page of 1000 tickets is a few MB). Invalid JSON raises
``ParseError`` naming the file and, for ``.jsonl``, the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from tactful.zendesk.parse import Parsed, ParseError, parse_object

__all__ = ["Chunk", "ParseError", "check_file", "read_file"]

_BOM = b"\xef\xbb\xbf"
_JSON = frozenset({".json"})
_JSONL = frozenset({".jsonl", ".ndjson"})


@dataclass(frozen=True, slots=True)
class Chunk:
    """One document of a file: ``line`` is 1 for ``.json``, the line number for ``.jsonl``."""

    path: str
    line: int
    parsed: Parsed
    raw_size: int  # bytes of the document (the line, for .jsonl)
    raw: bytes = b""  # the document as read (stored in the event log)


def read_file(path: str | Path) -> Iterator[Chunk]:
    """Chunks of a ``.json`` / ``.jsonl`` file; an unknown extension raises ``ParseError`` now."""
    name = str(path)
    suffix = Path(path).suffix.lower()
    if suffix in _JSON:
        return _read_json(Path(path), name)
    if suffix in _JSONL:
        return _read_jsonl(Path(path), name)
    raise ParseError(
        name, 0, f"unknown file type {suffix or '(no extension)'}: use .json or .jsonl"
    )


def check_file(path: str | Path) -> None:
    """Raise ``ParseError`` if the file's type is unknown or any of its documents is not JSON:
    a cheap pass over every file before importing, so that a malformed file anywhere in an
    import changes nothing."""
    suffix = Path(path).suffix.lower()
    if suffix in _JSONL:
        for _ in _read_jsonl(Path(path), str(path), parse=False):
            pass
    elif suffix in _JSON:
        for _ in _read_json(Path(path), str(path), parse=False):
            pass
    else:
        read_file(path)


def _invalid(error: orjson.JSONDecodeError) -> str:
    return f"invalid JSON: {error.msg} (column {error.colno})"


def _read_json(path: Path, name: str, *, parse: bool = True) -> Iterator[Chunk]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ParseError(name, 0, f"cannot read: {e.strerror or e}") from None
    body = data.removeprefix(_BOM)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ParseError(name, e.lineno or 1, _invalid(e)) from None
    if parse:
        yield Chunk(name, 1, parse_object(obj), len(data), body)


def _read_jsonl(path: Path, name: str, *, parse: bool = True) -> Iterator[Chunk]:
    try:
        handle = path.open("rb")
    except OSError as e:
        raise ParseError(name, 0, f"cannot read: {e.strerror or e}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            text = raw.removeprefix(_BOM) if number == 1 else raw
            if not text.strip():
                continue
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError as e:
                raise ParseError(name, number, _invalid(e)) from None
            if parse:
                yield Chunk(name, number, parse_object(obj), len(raw), text.strip())
