"""The ``tactful`` command line (also ``python -m tactful``). Every command has ``--help``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape

from tactful import __version__
from tactful.bootstrap import Runtime, bootstrap
from tactful.config import ConfigError, Settings, load_settings, starter_config_text
from tactful.core import codec
from tactful.engine import Engine
from tactful.exceptions import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    TactfulError,
    UsageError,
)
from tactful.store.sqlite import sqlite_path

NO_CONFIG = (
    "no configuration file: ./tactful.toml does not exist and $TACTFUL_CONFIG is not set "
    "(write one with `tactful init`, or pass --config PATH)"
)


def out_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def out_jsonl(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value) + b"\n")


_FRACTION = re.compile(r"(T\d{2}:\d{2}:\d{2})\.\d+Z")


def human(value: object) -> str:
    """One human format for values in terminal output (``--json`` keeps the exact ones):
    yes/no, "—" for unset, lists joined by commas, times to the second."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(human(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return ", ".join(f"{k} {human(v)}" for k, v in value.items()) if value else "—"
    return _FRACTION.sub(r"\1Z", str(value))


def parse_now(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return codec.parse_time(text if "T" in text else text + "T00:00:00Z")
    except ValueError as exc:
        raise UsageError(
            f"--now: not an ISO 8601 UTC time: {text!r} "
            "(e.g. 2026-11-22T10:00:00Z, or a date alone for midnight UTC)"
        ) from exc


class App:
    """What every command needs: settings, and the runtime built from them once
    (``tactful.bootstrap``: store, engine, delivery worker, web app)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.console = Console(stderr=True)
        self.out = Console()
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.args.config)
        return self._settings

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def runtime(self) -> Runtime:
        """Store, engine, delivery worker and web app, built from the settings (bootstrap)."""
        if self._runtime is None:
            if getattr(self.args, "reads_store", False):
                self._require_store()
            elif self.settings.source == "<defaults>":
                self.console.print(
                    f"note: {NO_CONFIG}; using the built-in defaults "
                    f"(store {self.settings.store.url})",
                    highlight=False,
                    markup=False,
                )
            self._runtime = bootstrap(self.settings)
        return self._runtime

    def _require_store(self) -> None:
        """Commands that only read never create a store: an absent SQLite file is an error
        that names the configuration it came from."""
        settings = self.settings
        url = settings.store.url
        if not url.startswith("sqlite:"):
            return
        path = sqlite_path(url)
        if path == ":memory:" or Path(path).is_file():
            return
        where = NO_CONFIG if settings.source == "<defaults>" else f"config: {settings.source}"
        raise CommandError(
            f"no store at {path} ({where}); nothing has been imported into it yet "
            "(tactful import FILE… or tactful serve create it)"
        )


def build_parser() -> argparse.ArgumentParser:
    from tactful.commands import register_all

    parser = argparse.ArgumentParser(
        prog="tactful",
        description="Support-aware marketing: Zendesk support state, segments and channels.",
    )
    parser.add_argument("--version", action="version", version=f"tactful {__version__}")
    parser.add_argument(
        "--config",
        default=None,
        help="path to tactful.toml (default: $TACTFUL_CONFIG, else ./tactful.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_all(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    app = App(args)
    err = Console(stderr=True)
    try:
        result: int = args.handler(app)
        return result
    except ConfigError as exc:  # its message lists every problem, one a line
        err.print(str(exc), highlight=False, markup=False)
        return exc.exit_code
    except TactfulError as exc:  # the exit status follows the kind (tactful.exceptions)
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


__all__ = [
    "App",
    "CommandError",
    "UsageError",
    "human",
    "main",
    "out_json",
    "out_jsonl",
    "parse_now",
    "starter_config_text",
]
