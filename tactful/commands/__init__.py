"""CLI commands, one module per group; each registers its subparsers."""

from __future__ import annotations

import argparse
from typing import Any


def register_all(sub: Any) -> None:
    from tactful.commands import (
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


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        metavar="T",
        default=None,
        help="preview as of time T (ISO 8601 UTC, e.g. 2026-11-22T10:00:00Z); changes nothing",
    )
