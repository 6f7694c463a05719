"""Read commands: ``person``, ``people``, ``segments``, ``segments members|preview``."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from tactful.cli.base import (
    App,
    CommandError,
    add_json,
    add_now,
    human,
    out_json,
    out_jsonl,
    parse_now,
)
from tactful.config import STATE_FIELDS, format_duration
from tactful.core.rules import RuleError, parse_rule
from tactful.readmodels.views import (
    clock_of,
    fmt,
    iter_person_ids,
    person_json,
    preview,
    resolve_key,
)


def register(sub: Any) -> None:
    p = sub.add_parser("person", help="one person: identifiers, state, segments, history, consent")
    p.add_argument(
        "key", metavar="KEY", help="email, phone, external id, Zendesk user id or person id"
    )
    add_json(p)
    add_now(p)
    p.set_defaults(handler=cmd_person, reads_store=True)

    p = sub.add_parser("people", help="every person (one JSON object per line with --json)")
    add_json(p)
    add_now(p)
    p.add_argument("--limit", type=int, default=None, help="at most this many")
    p.set_defaults(handler=cmd_people, reads_store=True)

    p = sub.add_parser("segments", help="segments with their sizes")
    add_json(p)
    add_now(p)
    p.set_defaults(handler=cmd_segments, reads_store=True)
    ssub = p.add_subparsers(dest="segments_command", metavar="SUBCOMMAND")
    m = ssub.add_parser("members", help="the members of one segment")
    m.add_argument("name", metavar="NAME")
    m.add_argument("--limit", type=int, default=None)
    m.add_argument("--include-holdout", action="store_true", default=True, help=argparse_suppress())
    add_json(m)
    m.set_defaults(handler=cmd_members, reads_store=True)
    v = ssub.add_parser(
        "preview",
        help="count, sample, and who would enter/exit under the configured (or --when) rule",
    )
    v.add_argument("name", metavar="NAME")
    v.add_argument("--when", default=None, help="a rule to try instead of the configured one")
    v.add_argument("--sample", type=int, default=10, help="sample size")
    add_json(v)
    v.set_defaults(handler=cmd_preview, reads_store=True)


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def _consent_defaults(app: App) -> dict[str, bool]:
    return app.settings.consent.defaults()


def cmd_person(app: App) -> int:
    engine = app.engine
    now = parse_now(app.args.now)
    with engine.store.reader() as reader:
        matches = resolve_key(reader, app.args.key, app.settings.identity.default_region)
        if not matches:
            raise CommandError(f"no person matches {app.args.key!r}")
        people = [
            person_json(reader, engine.rules, _consent_defaults(app), pid, now=now)
            for pid in matches
        ]
    found = [p for p in people if p is not None]
    if app.args.json:
        out_json(found[0] if len(found) == 1 else found)
        return 0
    for person in found:
        print_person(app, person)
    return 0


def print_person(app: App, person: dict[str, Any]) -> None:
    idents = ", ".join(f"{k}={v}" for k, vs in person["identifiers"].items() for v in vs)
    app.out.print(f"[bold]{person['person_id']}[/bold]  {idents}", highlight=False)
    state = person["state"]
    table = Table("field", "value", show_header=False, box=None)
    for name, value in state.items():
        table.add_row(name, human(value))
    app.out.print(table)
    for name, seg in person["segments"].items():
        if seg["member"]:
            hold = " (holdout)" if seg["holdout"] else ""
            app.out.print(f"  in [bold]{name}[/bold] since {human(seg['since'])}{hold}")
    for h in person.get("history", [])[-10:]:
        app.out.print(
            f"  {human(h['at'])} {h['change']} {h['segment']}  [dim]{escape(h['rule'])}[/dim]",
            highlight=False,
        )
    app.out.print(f"  consent: {human(person['consent'])}", highlight=False, markup=False)


def cmd_people(app: App) -> int:
    engine = app.engine
    now = parse_now(app.args.now)
    limit = app.args.limit
    table = None if app.args.json else Table("person", "support_state", "open", "segments")
    with engine.store.reader() as reader:
        for n, pid in enumerate(iter_person_ids(reader)):
            if limit is not None and n >= limit:
                break
            person = person_json(reader, engine.rules, _consent_defaults(app), pid, now=now)
            if person is None:
                continue
            if table is None:
                out_jsonl(person)
            else:
                members = [s for s, m in person["segments"].items() if m["member"]]
                table.add_row(
                    pid,
                    person["state"]["support_state"],
                    str(person["state"]["open_ticket_count"]),
                    ", ".join(members),
                )
    if table is not None:
        app.out.print(table)
    return 0


def _sizes_at(app: App, now: datetime | None) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """Segment sizes (members, holdout) and support-state counts as of ``now``.

    Ahead of the engine clock only persons with a timer due by ``now`` can differ, so only
    they are advanced (in memory). Before the clock, everyone is evaluated at ``now``.
    """
    engine = app.engine
    with engine.store.reader() as reader:
        counts = dict(reader.segment_counts())
        states = dict(reader.state_counts())
        clock = clock_of(reader)
        if now is None or clock is None or now == clock:
            return counts, states
        if now > clock:
            rows = list(reader.load_persons([pid for _, pid in reader.due_timers(now)]).values())
        else:
            rows = [
                r for pid in iter_person_ids(reader) for r in reader.load_persons([pid]).values()
            ]
    for row in rows:
        p = preview(engine.rules, row, clock, now)
        old_state = str(row.state.get("support_state", "clear"))
        new_state = str(p.state.get("support_state", "clear"))
        if old_state != new_state:
            states[old_state] = states.get(old_state, 0) - 1
            states[new_state] = states.get(new_state, 0) + 1
        for spec in engine.rules.segments:
            before = row.memberships.get(spec.name)
            after = p.memberships.get(spec.name)
            was = before is not None and before.member
            is_ = after is not None and after.member
            if was == is_:
                continue
            n, h = counts.get(spec.name, (0, 0))
            sign = 1 if is_ else -1
            hold = after.holdout if is_ and after else before.holdout if before else False
            counts[spec.name] = (n + sign, h + (sign if hold else 0))
    return counts, {k: v for k, v in states.items() if v}


def cmd_segments(app: App) -> int:
    now = parse_now(app.args.now)
    counts, states = _sizes_at(app, now)
    with app.engine.store.reader() as reader:
        clock = clock_of(reader)
    rows: list[dict[str, Any]] = []
    for seg in app.settings.segments:
        members, holdout = counts.get(seg.name, (0, 0))
        rows.append(
            {
                "name": seg.name,
                "description": seg.description,
                "when": seg.when,
                "cooldown": None if seg.cooldown is None else format_duration(seg.cooldown),
                "holdout": seg.holdout,
                "members": members,
                "holdout_members": holdout,
                "treated_members": members - holdout,
            }
        )
    as_of = now or clock
    if app.args.json:
        out_json({"as_of": fmt(as_of), "segments": rows, "support_states": states})
        return 0
    table = Table("segment", "members", "holdout", "rule", title=f"as of {human(fmt(as_of))}")
    for r in rows:
        table.add_row(r["name"], str(r["members"]), str(r["holdout_members"]), r["when"])
    app.out.print(table)
    app.out.print("support states: " + ", ".join(f"{k}={v}" for k, v in sorted(states.items())))
    return 0


def _segment(app: App, name: str) -> Any:
    seg = app.settings.segment(name)
    if seg is None:
        known = ", ".join(s.name for s in app.settings.segments) or "none configured"
        raise CommandError(f"no segment named {name!r} (known: {known})")
    return seg


def cmd_members(app: App) -> int:
    seg = _segment(app, app.args.name)
    limit = app.args.limit
    shown = 0
    table = None if app.args.json else Table("person", "since", "holdout", title=seg.name)
    with app.engine.store.reader() as reader:
        after: str | None = None
        while limit is None or shown < limit:
            page = reader.segment_members(seg.name, after, 1000)
            if not page:
                break
            for pid, m in page:
                if limit is not None and shown >= limit:
                    break
                shown += 1
                if table is None:
                    out_jsonl({"person_id": pid, "since": fmt(m.since), "holdout": m.holdout})
                else:
                    table.add_row(pid, human(fmt(m.since)), "yes" if m.holdout else "")
            after = page[-1][0]
    if table is not None:
        app.out.print(table)
    return 0


def cmd_preview(app: App) -> int:
    seg = _segment(app, app.args.name)
    rule = seg.rule
    if app.args.when is not None:
        try:
            rule = parse_rule(app.args.when, name=f"{seg.name} (--when)", fields=STATE_FIELDS)
        except RuleError as exc:
            raise CommandError(str(exc)) from exc
    engine = app.engine
    matching: list[str] = []
    entering: list[str] = []
    exiting: list[str] = []
    with engine.store.reader() as reader:
        clock = clock_of(reader)
        if clock is None:
            raise CommandError("the store is empty: import data first")
        for pid in iter_person_ids(reader):
            row = reader.load_persons([pid]).get(pid)
            if row is None:
                continue
            state = preview(engine.rules, row, clock, clock).state
            holds, _ = rule.evaluate(state, clock)
            member = seg.name in row.memberships
            if holds:
                matching.append(pid)
                if not member:
                    entering.append(pid)
            elif member:
                exiting.append(pid)
    rng = random.Random(0)
    sample = sorted(rng.sample(matching, min(app.args.sample, len(matching))))
    result = {
        "segment": seg.name,
        "when": app.args.when or seg.when,
        "as_of": fmt(clock),
        "count": len(matching),
        "sample": sample,
        "would_enter": len(entering),
        "would_exit": len(exiting),
        "enter_sample": entering[: app.args.sample],
        "exit_sample": exiting[: app.args.sample],
        "note": "exits ignore the cooldown: they are people the rule no longer matches",
    }
    if app.args.json:
        out_json(result)
        return 0
    app.out.print(
        f"{seg.name}: {len(matching)} match `{result['when']}` as of {result['as_of']}; "
        f"{len(entering)} would enter, {len(exiting)} would exit"
    )
    for pid in sample:
        app.out.print(f"  {pid}")
    return 0
