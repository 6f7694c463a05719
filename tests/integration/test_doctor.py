"""`tactful doctor` against the Zendesk simulator and a destination fake on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tactful.cli import main
from tactful.destinations.fakes.webhook import FakeWebhookReceiver
from tactful.sim import ZendeskSimulator
from tactful.sim.server import run_in_thread

HOOK = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_doctor_reaches_services_and_says_what_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = ZendeskSimulator()
    zendesk_url, stop_sim = sim.serve()
    hook = FakeWebhookReceiver(HOOK)
    hook_url, stop_hook = run_in_thread(hook.app)
    config = tmp_path / "t.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        f'[zendesk]\nbase_url = "{zendesk_url}"\nemail = "{sim.email}"\n'
        f'api_token = "{sim.api_token}"\n'
        f'[[destinations]]\nname = "hook"\ntype = "webhook"\nurl = "{hook_url}/hooks"\n'
        f'secret = "{HOOK}"\n'
    )
    try:
        code = main(["--config", str(config), "doctor", "--json"])
        report = json.loads(capsys.readouterr().out)
        by_name = {c["name"]: c for c in report["checks"]}
        assert by_name["store"]["ok"] and by_name["zendesk api"]["ok"]
        assert by_name["destination hook"]["ok"]
        assert not by_name["zendesk webhooks"]["ok"] and by_name["zendesk webhooks"]["fix"]
        assert not by_name["api token"]["ok"]
        assert code == 1 and report["ok"] is False
        config.write_text(config.read_text().replace(sim.api_token, "wrong-token"))
        main(["--config", str(config), "doctor", "--json"])
        failed = json.loads(capsys.readouterr().out)
        zendesk = {c["name"]: c for c in failed["checks"]}["zendesk api"]
        assert not zendesk["ok"] and "api_token" in zendesk["fix"]
    finally:
        stop_hook()
        stop_sim()
