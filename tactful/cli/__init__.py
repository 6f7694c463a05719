"""CLI commands, one module per group; each registers its subparsers."""

from __future__ import annotations

from typing import Any

# Commands added elsewhere may still take these from here.
from tactful.cli.base import add_json as add_json
from tactful.cli.base import add_now as add_now


def register_all(sub: Any) -> None:
    from tactful.cli import (
        alerts,
        app,
        clock,
        data,
        deliver,
        demo,
        doctor,
        migrate,
        read,
        reasons,
        report,
        serve,
        setup,
        zendesk,
    )

    modules = (
        setup,
        doctor,
        migrate,
        data,
        read,
        serve,
        zendesk,
        app,
        deliver,
        alerts,
        demo,
        report,
    )
    for module in (*modules, clock, reasons):
        module.register(sub)
