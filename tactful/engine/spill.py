"""Events read for a fold by person, kept on disk instead of in memory (a ``components.Read``).

``import --by-person`` must read every event before it folds any (the components are known
only at the end), then fold them component by component, in an order unrelated to the
order they were read in. Held as objects, they took about 0.9 KB each: 1.4 GB at 100k
persons. Here each event is written, as its canonical JSON, to an unnamed temporary file in
read order, with its offset in a second one (``ondisk.Column``: nothing per event stays in
memory); planning keeps only what it needs (``components.Planner``), and a batch reads its
events back when it is folded (``take``).
The file is removed when the spill is closed, or when the process ends.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Sequence
from datetime import datetime

from tactful.core import codec
from tactful.core.events import EVENT_KIND, Event
from tactful.core.graph import IdentityPlan
from tactful.engine.components import Pending, Planner
from tactful.engine.ondisk import Column

# Each record: the document's number, the kind's length, the kind, then the canonical JSON.
_HEAD = struct.Struct("<iB")
_FLUSH = 1 << 20  # bytes buffered before a write


class Spill:
    """Events in a temporary file, in the order added; ``documents`` maps each document's
    number (as given to ``add``) to its source and stored id, filled in by the reader
    before the events are taken back."""

    def __init__(self, plan: IdentityPlan, directory: str | None = None) -> None:
        # closed by ``close`` (a context manager), once the fold has taken every event
        self._file = tempfile.TemporaryFile(prefix="tactful-spill-", dir=directory)  # noqa: SIM115
        self._offsets = Column("q")  # where each event's record starts, then the end
        self._offsets.append(0)
        self._end = 0
        self._buffer = bytearray()
        self.documents: dict[int, tuple[str, int | None]] = {}
        self.planner = Planner(plan)
        self.latest: datetime | None = None

    def add(self, event: Event, document: int, canonical: bytes | None = None) -> None:
        """Spill ``event`` (``canonical``: its ``codec.dumps``, when already made)."""
        kind = EVENT_KIND[type(event)].encode()
        body = codec.dumps(event) if canonical is None else canonical
        record = _HEAD.pack(document, len(kind)) + kind + body
        self._buffer += record
        self._end += len(record)
        self._offsets.append(self._end)
        if len(self._buffer) >= _FLUSH:
            self.flush()
        self.planner.add(event)
        if self.latest is None or event.at > self.latest:
            self.latest = event.at

    def flush(self) -> None:
        """Write what is buffered: before worker processes are forked, which read the file
        (each would otherwise write its own copy of the buffer)."""
        if self._buffer:
            self._file.write(self._buffer)
            self._file.flush()
            self._buffer.clear()
        self._offsets.flush()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def take(self, indexes: Sequence[int]) -> list[Pending]:
        """The events at ``indexes`` (in that order), each with its document."""
        self.flush()
        fd, offsets, documents = self._file.fileno(), self._offsets, self.documents
        taken: list[Pending] = []
        for i in indexes:
            start, end = offsets[i : i + 2]
            record = os.pread(fd, end - start, start)
            document, size = _HEAD.unpack_from(record)
            body = _HEAD.size + size
            canonical = record[body:]
            event = codec.loads(record[_HEAD.size : body].decode(), canonical)
            source, stored = documents[document]
            taken.append(Pending(event, source, stored, canonical))
        return taken

    def close(self) -> None:
        self._file.close()
        self._offsets.close()
        self.planner.close()

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
