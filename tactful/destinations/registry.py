"""``type`` → destination module. Each module exposes
``create(config: DestinationSettings, *, transport: httpx.BaseTransport | None = None)``.

Imports are lazy so that a deployment only loads what it configures; nothing registers
itself as an import side effect.
"""

from __future__ import annotations

import importlib
from typing import Any

from tactful.destinations.base import Destination

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


def create(config: Any, *, transport: Any = None) -> Destination:
    module_name = MODULES.get(config.type)
    if module_name is None:
        raise UnknownDestination(f"unknown destination type {config.type!r}")
    module = importlib.import_module(module_name)
    destination: Destination = module.create(config, transport=transport)
    return destination
