"""``tactful migrate``: the store's schema version, and the migrations an upgrade applies.

Every command applies pending migrations when it opens the store (under a lock, so several
processes starting at once apply them once). ``migrate`` does only that and says what it did;
``migrate --status`` changes nothing: run it after installing a new version, before restarting.
"""

from __future__ import annotations

from typing import Any

from tactful.cli.base import App, CommandError, add_json, out_json
from tactful.store.migrations import LATEST_VERSION, MIGRATIONS, newer_schema
from tactful.store.sqlite import open_store, schema_version


def register(sub: Any) -> None:
    p = sub.add_parser(
        "migrate", help="apply pending schema migrations to the store (--status: only show them)"
    )
    p.add_argument(
        "--status", action="store_true", help="show the schema version and what is pending"
    )
    add_json(p)
    p.set_defaults(handler=cmd_migrate)


def _between(after: int, upto: int = LATEST_VERSION) -> list[dict[str, Any]]:
    """The migrations newer than ``after``, up to ``upto``."""
    return [{"version": v, "description": d} for v, d, _ in MIGRATIONS if after < v <= upto]


def cmd_migrate(app: App) -> int:
    url = app.settings.store.url
    before = schema_version(url)
    if before > LATEST_VERSION:
        raise CommandError(newer_schema(before))
    if app.args.status:
        result: dict[str, Any] = {
            "version": before,
            "latest": LATEST_VERSION,
            "pending": _between(before),
        }
    else:
        open_store(url).close()
        after = schema_version(url)
        result = {"version": after, "latest": LATEST_VERSION, "applied": _between(before, after)}
    if app.args.json:
        out_json(result)
        return 0
    listed = result.get("pending", result.get("applied", []))
    verb = "pending" if app.args.status else "applied"
    app.out.print(
        f"schema version {result['version']} (latest {LATEST_VERSION}); "
        f"{len(listed)} migration(s) {verb}"
    )
    for item in listed:
        app.out.print(f"  {item['version']}: {item['description']}")
    return 0
