"""``tactful backfill`` and ``tactful zendesk install | trigger-body | tag-user``."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tactful.cli.base import (
    App,
    CommandError,
    SetupSettings,
    add_json,
    out_json,
    setup_settings,
    show_help,
)
from tactful.clock import system_now
from tactful.config import ConfigError, Settings
from tactful.core import codec
from tactful.zendesk.backfill import BackfillError, BackfillSummary, PageDone, backfill
from tactful.zendesk.client import STREAM_NAMES, ZendeskClient, ZendeskError
from tactful.zendesk.install import (
    RECOMMENDED_TRIGGER_BODY,
    TRIGGER_TITLE,
    WEBHOOK_NAME,
    InstallResult,
    install,
    webhook_endpoint,
)

SUGGESTED_SECRET_ENV = "TACTFUL_ZENDESK_WEBHOOK_SECRET"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backfill",
        help="pull users, tickets, ticket events and ratings from the Zendesk API (resumable)",
        description="Pull Zendesk's incremental exports (users, tickets, ticket events) and "
        "satisfaction ratings through the API. Each page is committed with its checkpoint: "
        "an interrupted run continues where it stopped, and a later run picks up what "
        "changed since.",
    )
    p.add_argument(
        "--since",
        metavar="DATE",
        default=None,
        help="start at DATE (2026-01-01 or 2026-01-01T00:00:00Z) instead of the checkpoints",
    )
    p.add_argument(
        "--stream",
        dest="streams",
        action="append",
        choices=STREAM_NAMES,
        metavar="NAME",
        default=None,
        help=f"only this stream (repeatable): {', '.join(STREAM_NAMES)}",
    )
    p.add_argument(
        "--page-size",
        type=int,
        default=None,
        metavar="N",
        help="records per page (users and tickets up to 1000, ratings up to 100; "
        "default: the most Zendesk allows)",
    )
    add_json(p)
    p.set_defaults(handler=cmd_backfill)

    z = sub.add_parser("zendesk", help="Zendesk setup and write-back: install, trigger-body, …")
    zsub = z.add_subparsers(dest="zendesk_command", metavar="COMMAND")
    z.set_defaults(handler=lambda app: show_help(z))

    p = zsub.add_parser(
        "install",
        help="create or update the Zendesk webhook and trigger that send tickets to Tactful",
        description=f"Create (or update) the webhook {WEBHOOK_NAME!r} pointing at "
        "[zendesk] public_url + /webhooks/zendesk and the trigger "
        f"{TRIGGER_TITLE!r} that sends the recommended body; prints the signing secret once.",
    )
    add_json(p)
    p.set_defaults(handler=cmd_install)

    p = zsub.add_parser(
        "trigger-body", help="print the recommended trigger body (to set the trigger up by hand)"
    )
    add_json(p)
    p.set_defaults(handler=cmd_trigger_body)

    p = zsub.add_parser("tag-user", help="add (or with --remove, remove) tags of a Zendesk user")
    p.add_argument("user_id", metavar="USER_ID", type=int, help="the Zendesk user id")
    p.add_argument("tags", metavar="TAG", nargs="+", help="tags to add or remove")
    p.add_argument("--remove", action="store_true", help="remove the tags instead of adding")
    add_json(p)
    p.set_defaults(handler=cmd_tag_user)


def _error(message: str) -> CommandError:
    """A ``CommandError`` (``cli.main`` escapes rich markup such as ``[zendesk]``)."""
    return CommandError(message)


def parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = codec.parse_time(text if "T" in text else text + "T00:00:00Z")
    except ValueError as exc:
        raise CommandError(
            f"--since: not a date or an ISO 8601 UTC time: {text!r} ({exc})"
        ) from exc
    if value > system_now():
        raise _error(f"--since: {text} is in the future")
    return value


def make_client(settings: Settings, *, per_page: int | None = None) -> ZendeskClient:
    """The API client from ``[zendesk]`` (a clear error when something is missing)."""
    try:
        return ZendeskClient.from_settings(settings.zendesk, per_page=per_page)
    except ZendeskError as exc:
        raise _error(str(exc)) from exc


# --------------------------------------------------------------------------- backfill


class _Bars:
    """One progress line per stream: records so far and how far in time the pages got."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.origin: dict[str, datetime] = {}
        self.now = system_now()

    def __call__(self, done: PageDone) -> None:
        task = self.tasks.get(done.stream)
        if task is None:
            task = self.tasks[done.stream] = self.progress.add_task(
                done.stream, total=None, records=0, pages=0
            )
        fields = self.progress.tasks[task].fields
        records = int(fields.get("records", 0)) + done.records
        update: dict[str, Any] = {"records": records, "pages": done.page}
        if done.earliest is not None and done.stream not in self.origin:
            self.origin[done.stream] = done.earliest
        origin = self.origin.get(done.stream)
        if origin is not None:
            total = max(1.0, (self.now - origin).total_seconds())
            at = (
                total
                if done.end_of_stream or done.latest is None
                else ((done.latest - origin).total_seconds())
            )
            completed = max(self.progress.tasks[task].completed, min(total, at))
            update.update(total=total, completed=completed)
        elif done.end_of_stream:
            update.update(total=1, completed=1)
        self.progress.update(task, **update)


def cmd_backfill(app: App) -> int:
    since = parse_since(app.args.since)
    streams = tuple(app.args.streams or STREAM_NAMES)
    page_size = app.args.page_size
    if page_size is not None and not 1 <= page_size <= 1000:
        raise _error("--page-size: give a number from 1 to 1000")
    client = make_client(app.settings, per_page=page_size)
    engine = app.engine
    try:
        if app.console.is_terminal and not app.args.json:
            with Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description:<20}"),
                BarColumn(),
                TextColumn("{task.fields[records]:>9,} records, {task.fields[pages]} pages"),
                TimeElapsedColumn(),
                console=app.console,
                transient=False,
            ) as progress:
                summary = backfill(
                    engine, client, since=since, streams=streams, on_progress=_Bars(progress)
                )
        else:
            summary = backfill(engine, client, since=since, streams=streams)
    except BackfillError as exc:
        if app.args.json:
            out_json({"ok": False, "error": str(exc), **exc.summary.as_json()})
            return 1
        raise _error(str(exc)) from exc
    except ZendeskError as exc:
        raise _error(str(exc)) from exc
    finally:
        client.close()
    if app.args.json:
        out_json({"ok": True, **summary.as_json()})
    else:
        print_backfill(app, summary)
    return 0


def print_backfill(app: App, s: BackfillSummary) -> None:
    table = Table()
    table.add_column("stream", no_wrap=True)
    table.add_column("from", no_wrap=True)
    for name in ("pages", "records", "applied", "duplicates", "done"):
        table.add_column(name, justify="right")
    for name, st in s.streams.items():
        table.add_row(
            name,
            st.started_from,
            str(st.pages),
            f"{st.records:,}",
            f"{st.applied:,}",
            f"{st.duplicates:,}",
            "yes" if st.end_of_stream else "no",
        )
    app.out.print(table)
    app.out.print(
        f"{s.records:,} records in {s.pages} pages: {s.applied:,} applied, "
        f"{s.duplicates:,} duplicates; {s.lookups} requesters looked up"
        + (f" ({s.lookups_missing} no longer in Zendesk)" if s.lookups_missing else "")
        + f"; {s.entered} segment entries, {s.exited} exits; {s.requests} requests"
        + (f", {s.throttled} rate limited" if s.throttled else "")
        + (f", waited {s.waited:.0f}s" if s.waited >= 1 else "")
        + f", {s.seconds:.1f}s",
        highlight=False,
    )
    if s.skipped or s.rejected:
        table = Table("not imported", "count")
        for reason, n in sorted((s.skipped + s.rejected).items()):
            table.add_row(reason, str(n))
        app.out.print(table)
        for line in s.examples[:5]:
            app.out.print(f"  e.g. {line}", highlight=False, markup=False)


# --------------------------------------------------------------------------- install


def _next_step(setup: SetupSettings) -> str:
    name, source = setup.env, setup.settings.source
    if name is not None:
        return (
            f"put it into the environment variable {name} (read by [zendesk] webhook_secret "
            f"= \"env:{name}\"), e.g. export {name}='<secret>', and restart tactful serve"
        )
    if setup.reference is not None:
        return (
            f"[zendesk] webhook_secret in {source} is written in the file: replace it by "
            f'webhook_secret = "env:{SUGGESTED_SECRET_ENV}" and put the secret into the '
            f"environment variable {SUGGESTED_SECRET_ENV}"
        )
    return (
        f'add webhook_secret = "env:{SUGGESTED_SECRET_ENV}" to [zendesk] in {source} and put '
        f"the secret into the environment variable {SUGGESTED_SECRET_ENV} (secrets are never "
        "written into the config file)"
    )


def cmd_install(app: App) -> int:
    # Before the first install the variable named by ``webhook_secret = "env:NAME"``
    # usually does not exist yet; that one problem does not stop install.
    setup = setup_settings(app, "webhook_secret")
    settings = setup.settings
    current = None if setup.waiting else settings.zendesk.webhook_secret
    public_url = settings.zendesk.public_url
    if not public_url:
        raise _error(
            "[zendesk] public_url is not set: the https:// address where Zendesk reaches "
            'Tactful, e.g. public_url = "https://tactful.example.com"'
        )
    client = make_client(settings)
    try:
        result = install(client, public_url)
    except ZendeskError as exc:
        raise _error(str(exc)) from exc
    finally:
        client.close()
    matches = current is not None and current == result.secret
    step = None if matches else _next_step(setup)
    if app.args.json:
        out_json(
            {
                "webhook": {
                    "name": WEBHOOK_NAME,
                    "id": result.webhook_id,
                    "action": result.webhook,
                    "endpoint": result.endpoint,
                },
                "trigger": {
                    "title": TRIGGER_TITLE,
                    "id": result.trigger_id,
                    "action": result.trigger,
                },
                "secret_configured": matches,
                "signing_secret": None if matches else result.secret,
                "secret_env": setup.env or SUGGESTED_SECRET_ENV,
                "next_step": step,
            }
        )
        return 0
    _print_install(app, result, matches, step)
    return 0


def _print_install(app: App, result: InstallResult, matches: bool, step: str | None) -> None:
    say = app.out.print
    say(
        f"webhook {WEBHOOK_NAME!r} {result.webhook} → {result.endpoint}",
        highlight=False,
        markup=False,
    )
    say(f"trigger {TRIGGER_TITLE!r} {result.trigger}", highlight=False, markup=False)
    if matches:
        say("the signing secret already matches [zendesk] webhook_secret", markup=False)
        return
    say("signing secret (shown once, keep it out of the config file):", markup=False)
    say(f"  {result.secret}", highlight=False, markup=False, soft_wrap=True)
    if step:
        say(step[0].upper() + step[1:], highlight=False, markup=False)


# --------------------------------------------------------------------------- others


def cmd_trigger_body(app: App) -> int:
    if app.args.json:
        try:
            public_url = app.settings.zendesk.public_url
        except ConfigError:
            public_url = None
        out_json(
            {
                "body": RECOMMENDED_TRIGGER_BODY,
                "webhook_endpoint": webhook_endpoint(public_url) if public_url else None,
            }
        )
        return 0
    sys.stdout.write(RECOMMENDED_TRIGGER_BODY + "\n")
    sys.stdout.flush()
    return 0


def cmd_tag_user(app: App) -> int:
    args = app.args
    tags = list(dict.fromkeys(t.strip() for t in args.tags if t.strip()))
    if not tags:
        raise CommandError("give at least one non-empty TAG")
    client = make_client(app.settings)
    try:
        if args.remove:
            now = client.remove_user_tags(args.user_id, tags)
        else:
            now = client.add_user_tags(args.user_id, tags)
    except ZendeskError as exc:
        raise _error(str(exc)) from exc
    finally:
        client.close()
    if args.json:
        out_json(
            {"user_id": args.user_id, "removed" if args.remove else "added": tags, "tags": now}
        )
    else:
        verb = "removed" if args.remove else "added"
        app.out.print(
            f"{verb} {', '.join(tags)}; the user's tags are now: {', '.join(now) or '(none)'}",
            highlight=False,
            markup=False,
        )
    return 0
