"""``tactful doctor``: reach every configured service, report what fails and how to fix it.

Zendesk and every destination get an authenticated, side-effect-free call
(``doctor_checks``); a refusal names the setting to fix. Advice never asks for something
that needs what is reported missing. Exit 0: every check passed; 1: at least one failed, or
the configuration is invalid (its errors are printed); 2: bad command-line usage."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from tactful.cli.base import App, add_json, out_json
from tactful.cli.doctor_checks import check_destination
from tactful.config import load_settings
from tactful.core import codec
from tactful.store.base import REPLAY_KEY
from tactful.store.records import from_us


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    seconds: float = 0.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="reach every configured service; say what fails and how "
        "to fix it (exit 1 if anything fails)",
    )
    add_json(p)
    p.set_defaults(handler=cmd_doctor)


def _timed(name: str, probe: Callable[[], tuple[bool, str, str]]) -> Check:
    started = time.perf_counter()
    try:
        ok, detail, fix = probe()
    except Exception as exc:  # a probe must report, never crash the doctor
        ok, detail, fix = False, f"{type(exc).__name__}: {exc}", ""
    return Check(name, ok, detail, fix, time.perf_counter() - started)


def _store(app: App) -> tuple[bool, str, str]:
    engine = app.engine
    with engine.store.transaction() as tx:
        tx.set_meta("doctor_checked", engine.wall_clock().isoformat())
    with engine.store.reader() as reader:
        counts = reader.counts()
    return True, f"writable; {counts['persons']} persons, {counts['events']} events", ""


def _inbox(app: App) -> tuple[bool, str, str]:
    """Webhooks acknowledged during a replay wait in the inbox; one that could not be
    applied is kept there with its error (``tactful.engine.writer``)."""
    inbox = app.engine.store.inbox()
    if inbox is None:
        return True, "none (an in-memory store)", ""
    s = inbox.summary()
    detail = f"{s.waiting} waiting, {s.failed} failed"
    if not s.failed:
        return True, detail, ""
    assert s.oldest_failed_us is not None
    oldest = codec.format_time(from_us(s.oldest_failed_us))
    return (
        False,
        f"{detail}; the oldest failed arrived {oldest}: {s.oldest_error}",
        "fix what the error names (often the configuration), then set the rows' `failed` "
        "column back to NULL in the inbox (SQLite: the file <store>.inbox; PostgreSQL: the "
        "inbox table) and the server applies them; or delete them to drop them",
    )


def _replay(app: App) -> tuple[bool, str, str]:
    """A replay commits a chunk at a time; one stopped half way leaves its marker, and the
    store waits for it to finish (writes queue, ticks and deliveries wait)."""
    with app.engine.store.reader() as reader:
        text = reader.get_meta(REPLAY_KEY)
    if text is None:
        return True, "none in progress", ""
    phase = orjson.loads(text).get("phase", "?")
    return (
        False,
        f"a replay is unfinished (phase {phase}): webhooks queue in the inbox, ticks and "
        "deliveries wait until it ends",
        "if no `tactful replay` is running, run `tactful replay` to finish it",
    )


ZENDESK_FIX = {
    401: "check [zendesk] email and api_token (and that token access is enabled in Admin "
    "Center > Apps and integrations > Zendesk API)",
    403: "check [zendesk] email: the user must be an agent or admin allowed to use the API",
    404: "check [zendesk] subdomain (or base_url): no Zendesk account answers there",
}


def _zendesk(settings: Any) -> tuple[bool, str, str]:
    from tactful.zendesk.client import ZendeskClient, ZendeskError

    client = ZendeskClient.from_settings(settings.zendesk, max_attempts=1)
    try:
        me = client.get_json("/api/v2/users/me.json", endpoint="/api/v2/users/me.json")
    except ZendeskError as exc:
        fix = ZENDESK_FIX.get(exc.status or 0, "check [zendesk] subdomain/base_url")
        return False, str(exc), fix
    finally:
        client.close()
    user = me.get("user") or {}
    role = user.get("role", "?")
    if role == "end-user" or not user.get("id"):
        return (
            False,
            "authenticated as an anonymous or end user",
            ("use the email of an agent or admin with an API token ([zendesk] email)"),
        )
    return True, f"authenticated as a {role}", ""


def checks(app: App) -> list[Check]:
    settings = load_settings(app.args.config)
    out = [Check("configuration", True, f"{settings.source}: valid")]
    out.append(_timed("store", lambda: _store(app)))
    out.append(_timed("inbox", lambda: _inbox(app)))
    out.append(_timed("replay", lambda: _replay(app)))
    z = settings.zendesk
    if z.api_url and z.api_token:
        out.append(_timed("zendesk api", lambda: _zendesk(settings)))
    else:
        out.append(
            Check(
                "zendesk api",
                True,
                "not configured (backfill, install and fetches "
                "need [zendesk] subdomain, email, api_token)",
            )
        )
    if not z.webhook_secret:
        out.append(
            Check(
                "zendesk webhooks",
                False,
                "[zendesk] webhook_secret is not set: webhooks will be refused",
                _webhook_fix(bool(z.api_url and z.api_token)),
            )
        )
    if z.public_url and not z.public_url.startswith("https://"):
        out.append(
            Check(
                "public url",
                False,
                f"{z.public_url} is not https",
                "Zendesk only calls https URLs (except localhost for development)",
            )
        )
    if not settings.api.token:
        out.append(
            Check(
                "api token",
                False,
                "[api] token is not set: serve binds loopback only",
                'set token = "env:TACTFUL_API_TOKEN"',
            )
        )
    for dest in settings.destinations:
        out.append(_timed(f"destination {dest.name}", partial(check_destination, dest)))
    return out


def _webhook_fix(api_configured: bool) -> str:
    if api_configured:
        return (
            "run `tactful zendesk install`, then set the printed secret in the environment "
            "variable webhook_secret names"
        )
    # `zendesk install` needs the API credentials: never send the operator there first
    return (
        "either set [zendesk] subdomain, email and api_token (an admin's API token) and run "
        "`tactful zendesk install`, or create the webhook in Zendesk Admin Center > Apps and "
        "integrations > Webhooks and set webhook_secret to its signing secret"
    )


def cmd_doctor(app: App) -> int:
    results = checks(app)
    failed = [c for c in results if not c.ok]
    if app.args.json:
        out_json({"ok": not failed, "checks": [c.__dict__ for c in results]})
    else:
        for c in results:
            mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
            app.out.print(f"{mark} {c.name}: {c.detail}", highlight=False)
            if c.fix:
                app.out.print(f"       fix: {c.fix}", highlight=False)
    return 1 if failed else 0
