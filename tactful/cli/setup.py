"""``tactful init`` and ``tactful check``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tactful.cli.base import NO_CONFIG, App, CommandError, add_json, out_json
from tactful.config import ConfigError, load_settings, starter_config_text


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="write a commented starter tactful.toml")
    p.add_argument("path", nargs="?", default="tactful.toml", help="where to write it")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("check", help="validate the configuration and its rules (exit 1 on errors)")
    add_json(p)
    p.set_defaults(handler=cmd_check)


def cmd_init(app: App) -> int:
    args: argparse.Namespace = app.args
    path = Path(args.path)
    if path.exists() and not args.force:
        raise CommandError(f"{path} exists; use --force to overwrite it")
    path.write_text(starter_config_text(), encoding="utf-8")
    app.console.print(f"wrote {path}; edit it, then run: tactful --config {path} check")
    return 0


def cmd_check(app: App) -> int:
    try:
        settings = load_settings(app.args.config)
    except ConfigError as exc:
        if app.args.json:
            out_json({"ok": False, "source": exc.source, "errors": exc.errors})
            return 1
        raise
    if settings.source == "<defaults>":
        if app.args.json:
            out_json({"ok": False, "source": settings.source, "errors": [NO_CONFIG]})
            return 1
        raise CommandError(NO_CONFIG)
    summary = {
        "ok": True,
        "source": settings.source,
        "store": settings.masked()["store"]["url"],
        "reasons": [r.name for r in settings.reasons],
        "states": [s.name for s in settings.states],
        "segments": [s.name for s in settings.segments],
        "destinations": [d.name for d in settings.destinations],
    }
    if app.args.json:
        out_json(summary)
    else:
        app.out.print(
            f"[green]ok[/green] {settings.source}: {len(settings.reasons)} reasons, "
            f"{len(settings.states)} states, {len(settings.segments)} segments, "
            f"{len(settings.destinations)} destinations"
        )
    return 0
