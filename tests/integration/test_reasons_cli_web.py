"""Issue 25 at the edges: ``tactful reasons train`` / ``explain``, the fields in
``tactful person`` and the API, and a comment webhook whose text reaches neither the stored
body nor the metrics."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tactful.cli.main import main
from tactful.config import load_settings, settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.web.app import create_app
from tactful.zendesk.signing import sign
from tests.integration.test_reasons_flow import REASON_RULES, feed, labelled_sample

SECRET = "s3cret"
TOKEN = "tok-123"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "tactful.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "t.db"}"\n\n'
        f'[zendesk]\nwebhook_secret = "{SECRET}"\n\n[api]\ntoken = "{TOKEN}"\n\n{REASON_RULES}'
    )
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else out


def test_train_and_explain_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    settings = load_settings(str(config))
    engine = Engine(rules_from_settings(settings), open_store(settings.store.url))
    sample = labelled_sample(450, seed=11, foreign=0.0)
    feed(engine, sample)
    engine.store.close()
    code, report = _run(capsys, "--config", str(config), "reasons", "train", "--json")
    assert code == 0 and report["activated"] and report["version"] == 1
    assert report["replay"]["persons_changed"] > 0
    assert all({"precision", "recall", "held_out"} <= set(r) for r in report["reasons"].values())
    untagged = [t for t in sample if t.tag is None]
    explained = []
    for t in untagged[:40]:
        code, why = _run(
            capsys, "--config", str(config), "reasons", "explain", str(t.ticket_id), "--json"
        )
        assert code == 0
        explained.append(why)
    learned = [w for w in explained if w["reason_source"] == "model"]
    assert learned and all(w["words"] and w["prediction"] for w in learned)
    # the person view shows the fields
    person = next(t for t in untagged if any(w["ticket_id"] == t.ticket_id for w in learned))
    code, shown = _run(
        capsys, "--config", str(config), "person", str(person.requester_id), "--json"
    )
    assert code == 0 and shown["state"]["reason_source"] == "model"
    assert shown["state"]["last_sentiment"] is not None
    # a human-readable explain, and a ticket that is not there
    assert main(["--config", str(config), "reasons", "explain", str(person.ticket_id)]) == 0
    assert "model v1" in capsys.readouterr().out
    assert main(["--config", str(config), "reasons", "explain", "999999999"]) == 1


def test_an_untrained_store_refuses_to_activate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    settings = load_settings(str(config))
    engine = Engine(rules_from_settings(settings), open_store(settings.store.url))
    feed(engine, labelled_sample(30, seed=2, tagged=0.0))  # nobody tagged anything
    engine.store.close()
    assert main(["--config", str(config), "reasons", "train"]) == 1
    assert "needs at least 2 reasons" in capsys.readouterr().err.replace("\n", " ")


def _signed(body: bytes) -> dict[str, str]:
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": sign(SECRET, ts, body),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }


def test_a_comment_webhook_keeps_its_words_out_of_stored_bodies_and_metrics(
    tmp_path: Path,
) -> None:
    settings = settings_from_toml(_config(tmp_path).read_text(), environ={})
    engine = Engine(rules_from_settings(settings), open_store(settings.store.url))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    detail = {
        "id": "88",
        "requester_id": "8",
        "status": "OPEN",
        "subject": "Order",
        "description": "my glorptastic jar arrived smashed, I am furious",
        "created_at": now,
        "updated_at": now,
        "via": {"channel": "web_form"},
    }
    envelope = {
        "type": "zen:event-type:ticket.comment_added",
        "id": "env-88",
        "time": now,
        "detail": detail,
        "event": {
            "comment": {
                "id": "881",
                "body": "still no reply, this is awful and blorfish",
                "is_public": True,
                "author": {"id": "8", "is_staff": False, "name": "Bo"},
            }
        },
    }
    body = orjson.dumps(envelope)
    with TestClient(create_app(settings, engine, tick_seconds=0)) as client:
        assert (
            client.post("/webhooks/zendesk", content=body, headers=_signed(body)).status_code < 300
        )
        metrics = client.get("/metrics").text
        person = client.get("/api/people/8", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert "glorptastic" not in metrics and "blorfish" not in metrics
    state = person["state"]
    assert state["last_sentiment"] is not None and state["last_sentiment"] < -0.5
    assert state["negative_ticket"] is True
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        stored = b"".join(
            zlib.decompress(bytes(b)) if enc == "zlib" else bytes(b)
            for enc, b in conn.execute("SELECT encoding, body FROM documents")
        )
        words = b"".join(bytes(c) for (c,) in conn.execute("SELECT canonical FROM events"))
    assert b"glorptastic" not in stored and b"blorfish" not in stored and stored
    assert b"glorptastic" in words and b"blorfish" in words  # the words alone, in the log
    assert b"arrived smashed" not in words
