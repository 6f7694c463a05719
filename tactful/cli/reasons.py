"""``tactful reasons``: the reason learned from what customers write (docs/reasons.md).

- ``train``: fit a model on the tickets whose reason came from a tag or a field, report
  per-reason precision and recall on a held-out part, and activate it unless it falls under
  ``[reason_model] quality_floor``; then replay, so destinations hear only the net
  corrections (``--no-replay``: leave that for later).
- ``explain TICKET``: how the ticket's reason was found, and the words that decided.
"""

from __future__ import annotations

from typing import Any

from tactful.cli.base import App, CommandError, add_json, out_json
from tactful.reasons.service import explain, train_and_activate


def register(sub: Any) -> None:
    p = sub.add_parser("reasons", help="learned reasons: train a model, explain a ticket")
    verbs = p.add_subparsers(dest="reasons_command", required=True)
    t = verbs.add_parser(
        "train",
        help="train on tickets labelled by tags/fields, measure on a held-out part, activate "
        "above [reason_model] quality_floor, then replay (net corrections only)",
    )
    t.add_argument(
        "--no-replay", action="store_true", help="activate without replaying (new tickets only)"
    )
    add_json(t)
    t.set_defaults(handler=cmd_train, reads_store=True)
    e = verbs.add_parser("explain", help="how a ticket's reason was found: the deciding words")
    e.add_argument("ticket", type=int, metavar="TICKET", help="Zendesk ticket id")
    add_json(e)
    e.set_defaults(handler=cmd_explain, reads_store=True)


def cmd_train(app: App) -> int:
    engine = app.engine
    report = train_and_activate(engine.store, app.settings.reason_model)
    result = report.to_json()
    replayed = None
    if report.activated and not app.args.no_replay:
        replay = engine.replay(app.settings.engine.batch_size)
        replayed = {"persons_changed": replay.persons_changed, "messages": replay.messages}
    result["replay"] = replayed
    if app.args.json:
        out_json(result)
        return 0 if report.activated else 1
    app.out.print(f"{report.examples} labelled tickets (reason from a tag or a field)")
    for reason, row in report.reasons.items():
        app.out.print(
            f"  {reason:<24} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
            f"({row['held_out']} held out of {row['labelled']})",
            highlight=False,
        )
    for reason, count in report.skipped_reasons.items():
        app.out.print(f"  {reason:<24} not learned: {count} labelled ticket(s)", highlight=False)
    if report.macro_precision is not None:
        app.out.print(
            f"macro precision {report.macro_precision:.3f}, recall {report.macro_recall:.3f}, "
            f"accuracy {report.accuracy:.3f}",
            highlight=False,
        )
    if not report.activated:
        raise CommandError(f"model not activated: {report.refused}")
    app.out.print(f"model version {report.version} is active")
    if replayed is not None:
        app.out.print(
            f"replayed: {replayed['persons_changed']} person(s) changed, "
            f"{replayed['messages']} correction(s) for destinations"
        )
    return 0


def cmd_explain(app: App) -> int:
    with app.engine.store.reader() as reader:
        result = explain(reader, app.args.ticket, app.settings.reason_model.threshold)
    if result is None:
        raise CommandError(f"no ticket {app.args.ticket} in the store")
    if app.args.json:
        out_json(result)
        return 0
    source = result["reason_source"] or "none (other)"
    confidence = result["reason_confidence"]
    sure = "" if confidence is None else f", confidence {confidence:.3f}"
    app.out.print(f"ticket {result['ticket_id']}: reason {result['reason']} (from {source}{sure})")
    if result["prediction"] is not None:
        p = result["prediction"]
        app.out.print(
            f"model v{result['model_version']}: {p['reason']} at {p['confidence']:.3f}",
            highlight=False,
        )
    for item in result["words"]:
        app.out.print(f"  {item['word']:<20} {item['weight']:+.4f}", highlight=False)
    if "note" in result:
        app.out.print(result["note"], highlight=False, markup=False)
    return 0
