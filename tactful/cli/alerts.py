"""``tactful alerts [check | test CHANNEL]``: the ``[[alerts]]`` and their channels."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from tactful.alerts.notify import NotifyError, iso
from tactful.alerts.service import Alerter
from tactful.cli.base import App, CommandError, add_json, out_json


def register(sub: Any) -> None:
    p = sub.add_parser("alerts", help="alert rules over delivery health, and their state")
    add_json(p)
    p.set_defaults(handler=cmd_alerts, reads_store=True)
    asub = p.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    c = asub.add_parser("check", help="evaluate the rules now and send the notices owed")
    c.add_argument(
        "--dry-run", action="store_true", help="only evaluate: tell no one, change nothing"
    )
    add_json(c)
    c.set_defaults(handler=cmd_check, reads_store=True)
    t = asub.add_parser("test", help="send a test notice to one [[alert_channels]] entry")
    t.add_argument("channel", metavar="CHANNEL")
    t.set_defaults(handler=cmd_test, reads_store=True)


def _alerter(app: App) -> Alerter:
    if not app.settings.alerts and not app.settings.alert_channels:
        raise CommandError(f"no [[alerts]] in {app.settings.source} (see docs/alerts.md)")
    return Alerter(app.settings, app.engine.store)


def cmd_alerts(app: App) -> int:
    alerter = _alerter(app)
    try:
        statuses = alerter.statuses()
    finally:
        alerter.close()
        app.engine.store.close()  # the command is done with it (a claim holds a connection)
    rows: list[dict[str, str]] = [
        {
            "alert": s.rule,
            "destination": s.destination,
            "severity": s.severity,
            "state": s.state,
            "since": "" if s.since_us is None else iso(s.since_us),
            "summary": s.summary,
        }
        for s in statuses
    ]
    if app.args.json:
        out_json(rows)
        return 0
    table = Table("alert", "destination", "severity", "state", "since", "summary")
    for r in rows:
        color = {"firing": "red", "pending": "yellow", "resolving": "cyan"}.get(r["state"], "")
        state = f"[{color}]{r['state']}[/{color}]" if color else r["state"]
        cells = (r["alert"], r["destination"], r["severity"], state, r["since"], r["summary"])
        table.add_row(*(c or "—" for c in cells))
    app.out.print(table)
    return 0


def cmd_check(app: App) -> int:
    alerter = _alerter(app)
    try:
        if app.args.dry_run:
            findings = alerter.findings()
            result: dict[str, Any] = {
                "holding": [
                    {"alert": f.rule, "destination": f.destination, "summary": f.summary}
                    for f in findings
                    if f.holds
                ]
            }
        else:
            report = alerter.check()
            if report is None:
                raise CommandError("another process is checking the alerts now; try again")
            result = {
                "holding": [
                    {"alert": f.rule, "destination": f.destination, "summary": f.summary}
                    for f in report.findings
                    if f.holds
                ],
                "sent": [{"channel": n.channel, "kind": n.kind, "key": n.key} for n in report.sent],
                "failed": [{"channel": n.channel, "error": e} for n, e in report.failed],
            }
    finally:
        alerter.close()
        app.engine.store.close()  # the command is done with it (a claim holds a connection)
    if app.args.json:
        out_json(result)
    else:
        for h in result["holding"]:
            app.out.print(f"[red]holds[/red] {h['alert']}: {h['summary']}", highlight=False)
        if not result["holding"]:
            app.out.print("no alert condition holds")
        for n in result.get("sent", []):
            app.out.print(f"told {n['channel']}: {n['kind']}", highlight=False)
        for n in result.get("failed", []):
            app.out.print(f"[red]not told[/red] {n['channel']}: {n['error']}", highlight=False)
    return 1 if result.get("failed") else 0


def cmd_test(app: App) -> int:
    alerter = _alerter(app)
    try:
        if app.args.channel not in alerter.notifiers:
            known = ", ".join(sorted(alerter.notifiers)) or "none"
            raise CommandError(f"no alert channel {app.args.channel!r} (defined: {known})")
        alerter.test(app.args.channel)
    except NotifyError as exc:
        raise CommandError(f"{app.args.channel}: {exc}") from exc
    finally:
        alerter.close()
        app.engine.store.close()  # the command is done with it (a claim holds a connection)
    app.out.print(f"sent a test notice to {app.args.channel}")
    return 0
