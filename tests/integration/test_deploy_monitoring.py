"""Issue 21 §5: the Prometheus alerting rules and the Grafana dashboard in ``deploy/`` parse,
and every metric they name is one a running Tactful really exports at ``/metrics`` (with a
destination and an alert configured); ``promtool check rules`` and ``promtool test rules``
pass when promtool is installed (Debian ``prometheus``; ``PROMTOOL`` names another path)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tests.integration.monitored import monitored_app

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "tactful-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tactful-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tactful-delivery.json"
METRIC = re.compile(r"\btactful_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The sample names ``/metrics`` exposes (from its ``# TYPE`` lines)."""
    tmp = tmp_path_factory.mktemp("metrics")
    engine, app = monitored_app(tmp, tick_seconds=0, deliver_seconds=0)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    text = response.text
    engine.store.close()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def rule_exprs() -> list[tuple[str, str]]:
    data = yaml.safe_load(RULES.read_text())
    return [(r["alert"], r["expr"]) for g in data["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    data = json.loads(DASHBOARD.read_text())
    out = [(p["title"], t["expr"]) for p in data["panels"] for t in p["targets"]]
    for var in data["templating"]["list"]:
        out.append((f"${var['name']}", var["definition"]))
    return out


def test_the_alerting_rules_parse_and_name_only_exported_metrics(exported: set[str]) -> None:
    rules = rule_exprs()
    assert {name for name, _ in rules} >= {
        "TactfulDeadLetters", "TactfulCircuitOpen", "TactfulDeliveryLag", "TactfulRejectRate",
        "TactfulNoSuccess",
    }  # fmt: skip
    for name, expr in rules:
        used = set(METRIC.findall(expr))
        assert used, name
        assert used <= exported, (name, sorted(used - exported))


def test_the_dashboard_parses_and_names_only_exported_metrics(exported: set[str]) -> None:
    data = json.loads(DASHBOARD.read_text())
    assert data["uid"] and data["panels"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for title, expr in dashboard_exprs():
        used = set(METRIC.findall(expr))
        assert used, title
        assert used <= exported, (title, sorted(used - exported))


def test_every_delivery_metric_is_on_the_dashboard(exported: set[str]) -> None:
    shown = {m for _, e in dashboard_exprs() for m in METRIC.findall(e)}
    delivery = {n for n in exported if n.startswith(("tactful_delivery_", "tactful_destination_"))}
    assert delivery - shown == set()


def promtool() -> str | None:
    return os.environ.get("PROMTOOL") or shutil.which("promtool")


@pytest.mark.slow
@pytest.mark.skipif(promtool() is None, reason="promtool is not installed")
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    tool: Any = promtool()
    check = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
