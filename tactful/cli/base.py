"""What every command shares: the ``App`` (settings, and the runtime built from them once),
output helpers and time parsing. ``tactful.cli.main`` builds the parser and runs a command; the
commands import from here, never from ``tactful.cli.main`` (no import cycle)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from tactful.bootstrap import Runtime, bootstrap
from tactful.config import ConfigError, Settings, config_file, load_settings
from tactful.core import codec
from tactful.engine.engine import Engine
from tactful.exceptions import CommandError, UsageError
from tactful.store.sqlite import sqlite_path

__all__ = [
    "NO_CONFIG",
    "App",
    "CommandError",
    "SetupSettings",
    "UsageError",
    "add_json",
    "add_now",
    "human",
    "out_json",
    "out_jsonl",
    "parse_now",
    "setup_settings",
    "show_help",
]

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


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        metavar="T",
        default=None,
        help="preview as of time T (ISO 8601 UTC, e.g. 2026-11-22T10:00:00Z); changes nothing",
    )


def show_help(parser: argparse.ArgumentParser) -> int:
    """What a command group does without its subcommand: its help, exit status 2."""
    parser.print_help()
    return 2


@dataclass(frozen=True)
class SetupSettings:
    """What a setup step (``zendesk install``, ``app package``) runs with: the settings, and
    what the file says of the ``[zendesk]`` secret that the step itself brings into being."""

    settings: Settings
    reference: str | None  # the secret's text in the file, unresolved ("env:NAME")
    waiting: bool  # its "env:NAME" variable is not set yet (the settings hold a placeholder)

    @property
    def env(self) -> str | None:
        """The secret's variable (``NAME`` of its ``"env:NAME"``), else None."""
        ref = self.reference
        return ref[4:] if ref is not None and ref.startswith("env:") else None


_UNSET_ENV = re.compile(
    r"^(?P<loc>.+): environment variable (?P<name>[A-Za-z_][A-Za-z0-9_]*) is (?:not set|empty)$"
)


def setup_settings(
    app: App, key: str, *, may_wait: Callable[[str], bool] = lambda loc: False
) -> SetupSettings:
    """The settings for a setup step that brings ``[zendesk] key`` into being: the variable
    of its ``"env:NAME"``, and those of other keys ``may_wait`` accepts (by place, such as
    ``"zendesk.api_token"``), may be not set yet; they read a placeholder. Any other
    problem is raised as it is."""
    reference = _raw_zendesk_value(app, key)
    try:
        return SetupSettings(app.settings, reference, waiting=False)
    except ConfigError as exc:
        unset: dict[str, str] = {}
        for error in exc.errors:
            match = _UNSET_ENV.match(error)
            if match is None or (match["loc"] != f"zendesk.{key}" and not may_wait(match["loc"])):
                raise
            unset[match["loc"]] = match["name"]
        environ = {**os.environ, **{name: "not-set-yet" for name in unset.values()}}
        try:
            settings = load_settings(app.args.config, environ=environ)
        except ConfigError:
            raise exc from None
        return SetupSettings(settings, reference, waiting=f"zendesk.{key}" in unset)


def _raw_zendesk_value(app: App, key: str) -> str | None:
    """The text ``[zendesk] key`` has in the configuration file, unresolved (for example
    ``"env:NAME"``), or None (no such file, key or text)."""
    path = config_file(app.args.config)
    if path is None:
        return None
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    zendesk = data.get("zendesk")
    value = zendesk.get(key) if isinstance(zendesk, dict) else None
    return value if isinstance(value, str) else None
