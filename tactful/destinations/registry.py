"""``type`` → destination module: the one place a destination type is named.

Each module declares ``SPEC`` (:class:`~tactful.destinations.spec.DestinationSpec`: its
type, purpose, summary and typed config model) and exposes
``create(config: DestinationSettings, *, transport: httpx.BaseTransport | None = None)``,
which builds from the validated model (``SPEC.config.of(config)``).
Config validation, secret masking and the destination tables of docs/config.md are derived
from the specs here.

Imports are lazy so that a deployment only loads what it configures; nothing registers
itself as an import side effect.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from tactful.destinations.base import Destination
from tactful.destinations.spec import DestinationSpec

MODULES: dict[str, str] = {
    "meta_audience": "tactful.destinations.meta",
    "google_customer_match": "tactful.destinations.google",
    "google_data_manager": "tactful.destinations.google_datamanager",
    "tiktok_audience": "tactful.destinations.tiktok",
    "customerio": "tactful.destinations.customerio",
    "sailthru": "tactful.destinations.sailthru",
    "klaviyo": "tactful.destinations.klaviyo",
    "webhook": "tactful.destinations.webhook",
    "warehouse": "tactful.destinations.warehouse",
    "segment": "tactful.destinations.segment",
    "amplitude": "tactful.destinations.amplitude",
    "mixpanel": "tactful.destinations.mixpanel",
}


class UnknownDestination(ValueError):
    pass


def spec(type_name: str) -> DestinationSpec:
    module_name = MODULES.get(type_name)
    if module_name is None:
        raise UnknownDestination(f"unknown destination type {type_name!r}")
    found: DestinationSpec = importlib.import_module(module_name).SPEC
    return found


def specs() -> list[DestinationSpec]:
    return [spec(type_name) for type_name in MODULES]


def check_type(value: str) -> str:
    """``value`` if it names a destination type, else a ValueError with a did-you-mean."""
    if value in MODULES:
        return value
    close = difflib.get_close_matches(value, list(MODULES), 1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    names = ", ".join(MODULES)
    raise ValueError(f"unknown destination type {value!r}{hint}; the types are {names}")


def key_problems(
    type_name: str, keys: Mapping[str, Any], shared: frozenset[str]
) -> list[tuple[str, str]]:
    """``keys`` (an entry's type-specific keys) checked against the type's config model, as
    ``(key, message)``; ``shared`` are the keys every destination has (did-you-mean)."""
    return spec(type_name).config.problems(type_name, keys, shared)


def defaults(type_name: str) -> dict[str, Any]:
    """The type's optional keys that have a default value."""
    fields = spec(type_name).config.model_fields
    return {k: f.default for k, f in fields.items() if not f.is_required() and f.default}


def docs_tables() -> str:
    """The destination tables of docs/config.md, as the specs describe them."""
    lines = ["| type | purpose | what it is |", "|---|---|---|"]
    lines += [f"| `{s.type}` | {s.purpose} | {s.summary} |" for s in specs()]
    lines += ["", DestinationSpec.KEY_COLUMNS, "|---|---|---|"]
    for s in specs():
        lines += s.key_rows()
    return "\n".join(lines) + "\n"


def create(config: Any, *, transport: Any = None) -> Destination:
    module_name = MODULES.get(config.type)
    if module_name is None:
        raise UnknownDestination(f"unknown destination type {config.type!r}")
    module = importlib.import_module(module_name)
    destination: Destination = module.create(config, transport=transport)
    return destination
