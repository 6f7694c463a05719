"""``tactful sync [--full]`` and ``tactful deliveries [retry | runs]``."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from tactful.cli.base import App, CommandError, add_json, out_json
from tactful.core.platform import PlatformReport
from tactful.delivery.breaker import Circuit, circuits
from tactful.delivery.preview import preview
from tactful.delivery.store import DeliveryStore
from tactful.readmodels.views import fmt
from tactful.store.records import from_us
from tactful.store.runs import MAX_PAGE, Run, RunPage, RunStore


def register(sub: Any) -> None:
    p = sub.add_parser("sync", help="deliver everything owed now and exit")
    p.add_argument(
        "--full", action="store_true", help="also reconcile each ad audience against its segment"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list per destination what would be sent now, with samples; send nothing",
    )
    add_json(p)
    p.set_defaults(handler=cmd_sync, reads_store=True)

    p = sub.add_parser("deliveries", help="pending, failed and dead-lettered deliveries")
    add_json(p)
    p.add_argument(
        "--all", dest="show_all", action="store_true", help="also list delivered and skipped ones"
    )
    p.set_defaults(handler=cmd_deliveries, reads_store=True)
    dsub = p.add_subparsers(dest="deliveries_command", metavar="SUBCOMMAND")
    r = dsub.add_parser("retry", help="send dead-lettered deliveries again")
    r.add_argument("ids", nargs="*", type=int, metavar="ID", help="delivery ids")
    r.add_argument("--all", dest="retry_all", action="store_true", help="every dead letter")
    add_json(r)
    r.set_defaults(handler=cmd_retry, reads_store=True)
    r = dsub.add_parser("runs", help="sync runs: each delivery round of each destination")
    r.add_argument("name", nargs="?", metavar="NAME", help="one destination (default: all)")
    r.add_argument(
        "--limit", type=int, default=20, help=f"runs per page, newest first (max {MAX_PAGE})"
    )
    r.add_argument("--before", type=int, metavar="ID", help="the page of runs older than ID")
    add_json(r)
    r.set_defaults(handler=cmd_runs, reads_store=True)


def cmd_sync(app: App) -> int:
    if app.args.dry_run:
        return cmd_dry_run(app)
    worker = app.runtime.delivery_worker()
    reconciled: dict[str, dict[str, int]] = {}
    try:
        if app.args.full:
            worker.route_outbox()
            for d in app.settings.destinations:
                if d.is_ad_audience:
                    adds, removes = worker.reconcile(d.name)
                    reconciled[d.name] = {"add": adds, "remove": removes}
        report = worker.sync()
        while report.sent or report.skipped:  # deliver what became due in the meantime
            more = worker.deliver_due()
            if not (more.sent or more.skipped):
                break
            report.sent += more.sent
            report.skipped += more.skipped
            report.retried += more.retried
            report.dead += more.dead
    finally:
        worker.close()
    result = {
        "routed": report.routed,
        "sent": report.sent,
        "retried": report.retried,
        "dead": report.dead,
        "skipped": report.skipped,
        "errors": report.errors,
        "reconciled": reconciled,
    }
    if app.args.json:
        out_json(result)
    else:
        app.out.print(
            f"routed {report.routed}, sent {report.sent}, will retry {report.retried}, "
            f"dead-lettered {report.dead}, skipped {report.skipped}"
        )
        for name, counts in reconciled.items():
            app.out.print(f"  reconciled {name}: +{counts['add']} −{counts['remove']}")
        for name, error in report.errors.items():
            app.out.print(f"  [red]{name}[/red]: {error}", highlight=False)
    return 1 if report.errors else 0


def cmd_dry_run(app: App) -> int:
    worker = app.runtime.delivery_worker()
    try:
        plans = preview(worker)
        reconciled = {
            d.name: worker.reconcile_plan(d.name)
            for d in app.settings.destinations
            if app.args.full and d.is_ad_audience and not plans[d.name].error
        }
    finally:
        worker.close()
    result = {
        name: {
            "would_send": p.counts,
            "skipped": p.skipped,
            "waiting": p.waiting,
            "samples": p.samples,
            **({"error": p.error} if p.error else {}),
            **(
                {"reconcile": {"add": len(reconciled[name][0]), "remove": len(reconciled[name][1])}}
                if name in reconciled
                else {}
            ),
        }
        for name, p in plans.items()
    }
    if app.args.json:
        out_json({"dry_run": True, "destinations": result})
        return 0
    app.out.print("dry run: nothing was sent")
    for name, p in plans.items():
        if p.error:
            app.out.print(f"[red]{name}[/red]: {p.error}", highlight=False)
            continue
        counts = ", ".join(f"{LABELS[k]} {n}" for k, n in p.counts.items() if n) or "nothing"
        app.out.print(
            f"[bold]{name}[/bold]: {counts}; skipped {p.skipped}, waiting {p.waiting}",
            highlight=False,
        )
        if name in reconciled:
            adds, removes = reconciled[name]
            app.out.print(f"  reconcile: +{len(adds)} −{len(removes)}", highlight=False)
        for sample in p.samples:
            what = sample["name"] or sample["segment"] or ""
            who = sample["email"] or f"{sample['identifiers']} identifiers"
            app.out.print(
                f"  e.g. {sample['kind']} {what} {sample['person_id']} ({who})", highlight=False
            )
    return 0


LABELS = {
    "audience_add": "adds",
    "audience_remove": "removes",
    "profile": "profile updates",
    "event": "events",
    "erase": "erasures",
}


def cmd_deliveries(app: App) -> int:
    store = DeliveryStore(app.engine.store)
    statuses = ["pending", "dead", "done", "skipped"] if app.args.show_all else ["pending", "dead"]
    rows = store.listing(statuses)
    health = store.health()
    with app.engine.store.reader() as reader:
        found = circuits(reader, [d.name for d in app.settings.destinations])
    states = {name: circuit_view(c) for name, c in found.items()}
    if app.args.json:
        out_json(
            {
                "circuits": states,
                "deliveries": [
                    {
                        "id": r.id,
                        "destination": r.destination,
                        "person_id": r.person_id,
                        "kind": r.kind,
                        "name": r.name,
                        "segment": r.segment,
                        "status": "failed" if r.status == "pending" and r.attempts else r.status,
                        "attempts": r.attempts,
                        "next_attempt_at": fmt(from_us(r.next_us)),
                        "created_at": fmt(from_us(r.created_us)),
                        "last_error": r.last_error,
                    }
                    for r in rows
                ],
                "health": health,
            }
        )
        return 0
    table = Table("id", "destination", "kind", "status", "attempts", "last error")
    for r in rows:
        status = "failed" if r.status == "pending" and r.attempts else r.status
        table.add_row(
            str(r.id), r.destination, r.name or r.kind, status, str(r.attempts), r.last_error[:80]
        )
    app.out.print(table)
    for name, view in states.items():
        if view["state"] != "closed":
            app.out.print(
                f"[red]{name}[/red]: circuit {view['state']} until {view['until']} after "
                f"{view['failures']} failures: {view['last_error'][:120]}",
                highlight=False,
            )
    return 0


def circuit_view(circuit: Circuit) -> dict[str, Any]:
    return {
        "state": circuit.state,
        "failures": circuit.failures,
        "until": fmt(from_us(circuit.until_us)) if circuit.state != "closed" else None,
        "last_error": circuit.last_error,
    }


def cmd_retry(app: App) -> int:
    if not app.args.ids and not app.args.retry_all:
        raise CommandError("give delivery ids, or --all")
    count = DeliveryStore(app.engine.store).retry(None if app.args.retry_all else app.args.ids)
    if app.args.json:
        out_json({"requeued": count})
    else:
        app.out.print(
            f"requeued {count} dead-lettered deliveries; run `tactful sync` or let "
            "`tactful serve` deliver them"
        )
    return 0


def run_view(run: Run, page: RunPage) -> dict[str, Any]:
    """A sync run as ``tactful deliveries runs --json`` shows it (the dashboard, too)."""
    c = run.counts
    return {
        "id": run.id,
        "destination": run.destination,
        "started_at": fmt(from_us(run.started_us)),
        "duration_ms": round(run.duration_us / 1000, 1),
        "added": c.added,
        "removed": c.removed,
        "updated": c.updated,
        "events": c.events,
        "rejected": c.rejected,
        "retried": c.retried,
        "dead": c.dead,
        "skipped": {
            "no_identifier": c.skipped_no_identifier,
            "no_consent": c.skipped_no_consent,
            "holdout": c.skipped_holdout,
            "other": c.skipped_other,
        },
        "error": run.error,
        "platform": None
        if run.platform is None
        else {
            "received": run.platform.received,
            "invalid": run.platform.invalid,
            "status": run.platform.status,
            "diagnostics": list(run.platform.diagnostics),
            "audience_lower": run.platform.audience_lower,
            "audience_upper": run.platform.audience_upper,
            "match_rate": run.platform.match_rate or None,
        },
        "row_errors": [
            {
                "delivery_id": e.delivery_id,
                "person_id": e.person_id,
                "kind": e.kind,
                "at": fmt(from_us(e.at_us)),
                "outcome": e.outcome,
                "status": e.status,
                "error": e.error,
            }
            for e in page.errors.get(run.id, [])
        ],
    }


def platform_text(p: PlatformReport) -> str:
    """The platform's answer in a table cell: status, rows received / invalid, audience
    size and match rate, as far as the platform gave them."""
    parts = [p.status] if p.status else []
    if p.received is not None or p.invalid is not None:
        parts.append(f"{p.received or 0}/{p.invalid or 0} invalid")
    if p.audience_size:
        parts.append(f"audience {p.audience_size}")
    if p.match_rate:
        parts.append(f"match {p.match_rate}")
    return " ".join(parts)


def run_error(run: Run, page: RunPage) -> str:
    """The run's own error, else its row errors' count and first one."""
    rows = page.errors.get(run.id, [])
    if run.error or not rows:
        return run.error
    return f"{len(rows)} row error{'s' if len(rows) > 1 else ''}: {rows[0].error}"


def cmd_runs(app: App) -> int:
    name = app.args.name
    if name is not None and name not in {d.name for d in app.settings.destinations}:
        raise CommandError(f"no destination named {name!r} in the configuration")
    if not 1 <= app.args.limit <= MAX_PAGE:
        raise CommandError(f"--limit must be between 1 and {MAX_PAGE}")
    page = RunStore(app.engine.store).page(name, app.args.limit, app.args.before)
    if app.args.json:
        out_json({"runs": [run_view(r, page) for r in page.runs], "next_before": page.next_before})
        return 0
    table = Table(
        "id", "destination", "started", "ms", "added", "removed", "updated", "events",
        "rejected", "retried", "skipped", "platform", "error",
    )  # fmt: skip
    for run in page.runs:
        c, p = run.counts, run.platform
        answer = "" if p is None else platform_text(p)
        table.add_row(
            str(run.id),
            run.destination,
            fmt(from_us(run.started_us)),
            f"{run.duration_us / 1000:.0f}",
            *(str(n) for n in (c.added, c.removed, c.updated, c.events, c.rejected, c.retried)),
            str(c.skipped),
            answer,
            run_error(run, page)[:80],
        )
    app.out.print(table)
    if page.next_before is not None:
        more = f"{name} " if name else ""
        app.out.print(f"older runs: tactful deliveries runs {more}--before {page.next_before}")
    return 0
