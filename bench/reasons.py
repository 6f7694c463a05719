"""Reasons and sentiment from what customers write (issue 25): quality and cost.

Quality, on a generated labelled sample (``tactful.testing.sim.texts.labelled_sample``: vague
subjects, varied phrasings, typos, 60% of tickets tagged by an agent, a few non-English):

1. the sample is written as Zendesk export pages (tickets with their description, ticket
   events with the customers' follow-up comments) and imported into a fresh SQLite store with
   the starter configuration: reasons come from the ``[[reasons]]`` tags and keywords only;
2. ``tactful reasons train`` (``train_and_activate``) learns from the tagged tickets and
   reports held-out precision and recall; a replay applies the model;
3. on the untagged English tickets: the share whose reason is right with the keyword rules
   alone, and with the rules and the model; on the non-English ones, that the model left
   them to the rules;
4. sentiment agreement with the mood labels: VADER's sign (±0.05) against negative /
   neutral / positive, and ``negative_ticket``'s threshold (-0.5) against "negative".

Cost, on this machine:

- classifying a ticket version with the model (``learned``) and without (the rules), per
  call; reading a text at the edge (``reduce``: words, VADER, language), per text;
- import throughput (events/s) of the same pages into fresh stores with the model on and
  off (median of ``--repeat`` runs each, alternated).

    .venv/bin/python bench/reasons.py                  # 3,000 tickets; imports of 3,000, R = 3
    .venv/bin/python bench/reasons.py --tickets 600 --import-tickets 600 --repeat 1

Figures only; this is not a timed test. ``--json-out FILE`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import config_text

from tactful.config import load_settings
from tactful.engine.engine import Engine, rules_from_settings
from tactful.engine.importer import import_files
from tactful.reasons import saved
from tactful.reasons.model import ReasonModel
from tactful.reasons.service import all_tickets, train_and_activate
from tactful.reasons.text import reduce
from tactful.reasons.words import learned
from tactful.store.sqlite import open_store
from tactful.testing.sim.texts import LabelledTicket, labelled_sample

START = datetime(2026, 9, 1, tzinfo=UTC)
PAGE = 1000


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_pages(sample: Sequence[LabelledTicket], folder: Path) -> list[Path]:
    """Ticket export pages (with descriptions) and ticket events pages (follow-ups)."""
    folder.mkdir(parents=True, exist_ok=True)
    tickets, events = [], []
    for i, t in enumerate(sample):
        created = START + timedelta(minutes=7 * i)
        tickets.append(
            {
                "id": t.ticket_id,
                "subject": t.subject,
                "description": t.description,
                "status": "open",
                "priority": "normal",
                "requester_id": t.requester_id,
                "created_at": iso(created),
                "updated_at": iso(created),
                "tags": [t.tag] if t.tag else [],
                "via": {"channel": "web"},
                "custom_fields": [],
            }
        )
        if t.follow_up:
            at = created + timedelta(hours=5)
            events.append(
                {
                    "id": 9_000_000 + i,
                    "ticket_id": t.ticket_id,
                    "timestamp": int(at.timestamp()),
                    "created_at": iso(at),
                    "updater_id": t.requester_id,
                    "event_type": "Audit",
                    "child_events": [
                        {
                            "id": 8_000_000 + i,
                            "event_type": "Comment",
                            "author_id": t.requester_id,
                            "body": t.follow_up,
                            "public": True,
                        }
                    ],
                }
            )
    paths = []
    for n in range(0, len(tickets), PAGE):
        path = folder / f"tickets-{n // PAGE + 1:04d}.json"
        path.write_text(json.dumps({"tickets": tickets[n : n + PAGE], "end_of_stream": True}))
        paths.append(path)
    for n in range(0, len(events), PAGE):
        path = folder / f"ticket-events-{n // PAGE + 1:04d}.json"
        path.write_text(json.dumps({"ticket_events": events[n : n + PAGE]}))
        paths.append(path)
    return paths


def make_engine(db: Path, *, model: ReasonModel | None = None, learn: bool = True) -> Engine:
    config = db.with_suffix(".toml")
    text = config_text(f"sqlite:///{db}")
    if not learn:
        text += "\n[reason_model]\nenabled = false\n"
    config.write_text(text)
    settings = load_settings(str(config))
    store = open_store(settings.store.url)
    if model is not None:
        with store.transaction() as tx:
            saved.save(tx, model, activate=True)
    return Engine(rules_from_settings(settings), store, clock=lambda: START + timedelta(days=60))


def reasons_of(engine: Engine) -> dict[int, tuple[str, str, Any, Any]]:
    """ticket -> (reason, source, confidence, sentiment)."""
    with engine.store.reader() as reader:
        out = {}
        for r in all_tickets(reader):
            feeling = r.sentiment()
            out[r.ticket_id] = (r.reason, r.source, r.confidence, feeling and feeling[0])
        return out


def quality(n: int, work: Path) -> tuple[dict[str, Any], ReasonModel | None, Path]:
    sample = labelled_sample(n)
    paths = write_pages(sample, work / "pages")
    db = work / "quality.db"
    engine = make_engine(db)
    settings = load_settings(str(db.with_suffix(".toml")))
    import_files(engine, paths)
    rules_only = reasons_of(engine)
    report = train_and_activate(engine.store, settings.reason_model)
    engine.replay()
    after = reasons_of(engine)
    untagged = [t for t in sample if t.tag is None and t.language == "en"]
    foreign = [t for t in sample if t.language != "en"]
    right_rules = sum(rules_only[t.ticket_id][0] == t.reason for t in untagged)
    right_model = sum(after[t.ticket_id][0] == t.reason for t in untagged)
    by_model = sum(after[t.ticket_id][1] == "model" for t in untagged)
    wrong_model = sum(
        after[t.ticket_id][1] == "model" and after[t.ticket_id][0] != t.reason for t in untagged
    )
    english = [t for t in sample if t.language == "en"]
    agree = 0
    confusion: Counter[tuple[str, str]] = Counter()
    neg_tp = neg_fp = neg_fn = 0
    for t in english:
        score = after[t.ticket_id][3]
        said = (
            "neutral"
            if score is None or -0.05 < score < 0.05
            else ("positive" if score >= 0.05 else "negative")
        )
        confusion[(t.mood, said)] += 1
        agree += said == t.mood
        flagged = score is not None and score <= -0.5
        neg_tp += flagged and t.mood == "negative"
        neg_fp += flagged and t.mood != "negative"
        neg_fn += (not flagged) and t.mood == "negative"
    result = {
        "tickets": n,
        "tagged": sum(t.tag is not None for t in sample),
        "untagged_english": len(untagged),
        "foreign": len(foreign),
        "train": report.to_json(),
        "untagged_accuracy_rules_only": round(right_rules / len(untagged), 3),
        "untagged_accuracy_rules_and_model": round(right_model / len(untagged), 3),
        "untagged_reason_by_model": by_model,
        "untagged_model_wrong": wrong_model,
        "foreign_left_to_rules": sum(after[t.ticket_id][1] != "model" for t in foreign),
        "sentiment_agreement_3_class": round(agree / len(english), 3),
        "sentiment_confusion": {f"{a}->{b}": c for (a, b), c in sorted(confusion.items())},
        "negative_ticket_precision": round(neg_tp / max(1, neg_tp + neg_fp), 3),
        "negative_ticket_recall": round(neg_tp / max(1, neg_tp + neg_fn), 3),
    }
    engine.store.close()
    return result, report.model, work / "pages"


def classify_cost(model: ReasonModel, engine_db: Path) -> dict[str, Any]:
    engine = make_engine(engine_db)
    settings = load_settings(str(engine_db.with_suffix(".toml")))
    rules = settings.reason_classifier()
    with engine.store.reader() as reader:
        records = [r for r in all_tickets(reader) if r.version is not None]
    engine.store.close()
    loops = max(1, 20_000 // max(1, len(records)))

    def per_call(fn: Any) -> float:
        started = time.perf_counter()
        for _ in range(loops):
            for r in records:
                fn(r)
        return (time.perf_counter() - started) / (loops * len(records)) * 1e6

    from dataclasses import replace

    fresh = [replace(r, source="", reason="other", confidence=None) for r in records]
    records = fresh
    with_model = per_call(lambda r: learned(r, rules, model, 0.6))
    rules_only = per_call(lambda r: rules.classify_source(r.version.tags, r.version.subject, ()))
    texts = [t.description for t in labelled_sample(500, seed=7)]
    started = time.perf_counter()
    for text in texts:
        reduce(text)
    edge = (time.perf_counter() - started) / len(texts) * 1e6
    return {
        "classify_with_model_us": round(with_model, 1),
        "classify_rules_only_us": round(rules_only, 1),
        "read_text_at_edge_us": round(edge, 1),
        "model_words": len(model.idf),
        "model_reasons": len(model.reasons),
    }


def import_throughput(model: ReasonModel, n: int, repeat: int, work: Path) -> dict[str, Any]:
    sample = labelled_sample(n, seed=99)
    paths = write_pages(sample, work / "import-pages")
    runs: dict[str, list[float]] = {"model_on": [], "model_off": []}
    for r in range(repeat):
        for label in ("model_off", "model_on"):
            db = work / f"import-{label}-{r}.db"
            engine = make_engine(db, model=model if label == "model_on" else None,
                                 learn=label == "model_on")  # fmt: skip
            started = time.perf_counter()
            summary = import_files(engine, paths)
            runs[label].append(summary.records / (time.perf_counter() - started))
            engine.store.close()
    on, off = statistics.median(runs["model_on"]), statistics.median(runs["model_off"])
    return {
        "tickets": n,
        "repeat": repeat,
        "events_per_s_model_off": round(off),
        "events_per_s_model_on": round(on),
        "drop_percent": round((off - on) / off * 100, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--import-tickets", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        figures, model, _ = quality(args.tickets, work)
        print(json.dumps(figures, indent=2))
        if model is None:
            print("no model activated: no cost figures", file=sys.stderr)
            return 1
        cost = classify_cost(model, work / "quality.db")
        print(json.dumps(cost, indent=2))
        throughput = import_throughput(model, args.import_tickets, args.repeat, work)
        print(json.dumps(throughput, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps({"quality": figures, "cost": cost, "import": throughput}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
