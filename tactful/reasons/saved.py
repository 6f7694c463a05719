"""Trained reason models in the store, versioned (meta entries, so every store has them).

``reason_model:v<N>`` holds version N (``ReasonModel.to_json``); ``reason_model:latest`` the
highest version saved; ``reason_model:active`` the version the engine applies (absent or
``0``: none). Activating a version is one meta write in the engine's own transaction, so a
batch sees one model from start to end, and a replay the one that was active when it began.
"""

from __future__ import annotations

from typing import Protocol

import orjson

from tactful.reasons.model import ReasonModel

ACTIVE = "reason_model:active"
LATEST = "reason_model:latest"
PREFIX = "reason_model:v"


class Meta(Protocol):
    def get_meta(self, key: str) -> str | None: ...


class WritableMeta(Meta, Protocol):
    def set_meta(self, key: str, value: str) -> None: ...


# Decoded models by their stored text: one process may open several stores, each with its
# own version 1 (tests, a demo beside a real store).
_cache: dict[str, ReasonModel] = {}
_CACHE_MAX = 8


def active_version(meta: Meta) -> int:
    text = meta.get_meta(ACTIVE)
    return int(text) if text else 0


def load(meta: Meta, version: int) -> ReasonModel | None:
    """Version ``version`` of this store's models (each stored text decoded once)."""
    if version <= 0:
        return None
    text = meta.get_meta(f"{PREFIX}{version}")
    if text is None:
        return None
    model = _cache.get(text)
    if model is None:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        model = _cache[text] = ReasonModel.from_json(orjson.loads(text))
    return model


def active(meta: Meta) -> ReasonModel | None:
    return load(meta, active_version(meta))


def next_version(meta: Meta) -> int:
    text = meta.get_meta(LATEST)
    return (int(text) if text else 0) + 1


def save(meta: WritableMeta, model: ReasonModel, *, activate: bool) -> None:
    meta.set_meta(f"{PREFIX}{model.version}", orjson.dumps(model.to_json()).decode())
    meta.set_meta(LATEST, str(model.version))
    if activate:
        meta.set_meta(ACTIVE, str(model.version))
