"""`tactful doctor` against the Zendesk simulator and a destination fake on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tactful.cli.main import main
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim import ZendeskSimulator
from tactful.testing.sim.server import run_in_thread

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


# -- issue 21 §6: authenticated, side-effect-free checks of every destination --------------

GOOD = "good-secret"


def vendor_app() -> Any:
    """The documented read-only calls of each vendor, answering as documented for good and
    bad credentials (see tactful.cli.doctor_checks for the pages)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tactful.destinations.sailthru import signature
    from tactful.http.auth import basic_auth_header as basic_auth

    seen: list[str] = []

    async def region(request: Request) -> JSONResponse:  # Customer.io Track API
        seen.append(request.method)
        if request.headers.get("authorization") != basic_auth("site", GOOD):
            return JSONResponse({"meta": {"error": "Unauthorized request"}}, 401)
        return JSONResponse(
            {"url": "https://track.customer.io", "region": "us", "environment_id": 3}
        )

    async def accounts(request: Request) -> JSONResponse:  # Klaviyo
        seen.append(request.method)
        if request.headers.get("authorization") != f"Klaviyo-API-Key {GOOD}":
            return JSONResponse({"errors": [{"status": 401, "code": "not_authenticated"}]}, 401)
        return JSONResponse({"data": [{"type": "account", "id": "AbC123"}]})

    async def audience(request: Request) -> JSONResponse:  # Meta Graph API
        seen.append(request.method)
        if request.query_params.get("access_token") != GOOD:
            error = {
                "message": "Invalid OAuth access token.",
                "type": "OAuthException",
                "code": 190,
            }
            return JSONResponse({"error": error}, 400)
        if request.path_params["audience"] != "123":
            error = {"message": "Unsupported get request.", "type": "GraphMethodException"}
            return JSONResponse({"error": {**error, "code": 100}}, 400)
        return JSONResponse({"id": "123", "name": "Suppress"})

    async def tiktok(request: Request) -> JSONResponse:  # TikTok API for Business
        seen.append(request.method)
        if request.headers.get("access-token") != GOOD:
            return JSONResponse({"code": 40105, "message": "Access token is incorrect or revoked."})
        ids = json.loads(request.query_params["custom_audience_ids"])
        found = [{"audience_id": i} for i in ids if i == "777"]
        return JSONResponse({"code": 0, "message": "OK", "data": {"list": found}})

    async def lists(request: Request) -> JSONResponse:  # Sailthru
        seen.append(request.method)
        params = dict(request.query_params)
        if params.get("sig") != signature(params, GOOD):
            return JSONResponse({"error": 3, "errormsg": "Invalid signature"}, 401)
        return JSONResponse({"lists": []})

    app = Starlette(
        routes=[
            Route("/api/v1/accounts/region", region),
            Route("/api/accounts", accounts),
            Route("/graph/{audience}", audience),
            Route("/open_api/v1.3/dmp/custom_audience/get/", tiktok),
            Route("/list", lists),
        ]
    )
    app.state.seen = seen
    return app


def destinations_toml(url: str, secret: str, audience: str = "123") -> str:
    return (
        f'[[destinations]]\nname = "cio"\ntype = "customerio"\nsite_id = "site"\n'
        f'api_key = "{secret}"\nbase_url = "{url}"\n'
        f'[[destinations]]\nname = "klaviyo"\ntype = "klaviyo"\napi_key = "{secret}"\n'
        f'base_url = "{url}"\n'
        f'[[segments]]\nname = "vip"\nwhen = "has_open_ticket"\n'
        f'[[destinations]]\nname = "meta"\ntype = "meta_audience"\nsegment = "vip"\n'
        f'audience_id = "{audience}"\naccess_token = "{secret}"\nbase_url = "{url}/graph"\n'
        f'[[destinations]]\nname = "tiktok"\ntype = "tiktok_audience"\nsegment = "vip"\n'
        f'advertiser_id = "1"\naudience_id = "777"\naccess_token = "{secret}"\n'
        f'base_url = "{url}/open_api/v1.3"\n'
        f'[[destinations]]\nname = "sailthru"\ntype = "sailthru"\napi_key = "k"\n'
        f'api_secret = "{secret}"\nbase_url = "{url}"\n'
    )


def doctor(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, dict[str, Any]]:
    code = main(["--config", str(config), "doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    return code, {c["name"]: c for c in report["checks"]}


def test_doctor_checks_each_destination_with_an_authenticated_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = vendor_app()
    url, stop = run_in_thread(app)
    config = tmp_path / "t.toml"
    store = f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n'
    try:
        config.write_text(store + destinations_toml(url, GOOD))
        _, good = doctor(capsys, config)
        for name in ("cio", "klaviyo", "meta", "tiktok", "sailthru"):
            assert good[f"destination {name}"]["ok"], good[f"destination {name}"]
        assert "region us" in good["destination cio"]["detail"]

        # refused credentials: a failure naming the setting (Customer.io said "ok" on a 401)
        config.write_text(store + destinations_toml(url, "wrong"))
        code, bad = doctor(capsys, config)
        assert code == 1
        expect = {
            "cio": "`site_id` and `api_key`",
            "klaviyo": "`api_key`",
            "meta": "`access_token`",
            "tiktok": "`access_token`",
            "sailthru": "`api_key` and `api_secret`",
        }
        for name, setting in expect.items():
            check = bad[f"destination {name}"]
            assert not check["ok"] and setting in check["fix"] and name in check["fix"], check

        # an unknown object (404-like): the id setting is named
        config.write_text(store + destinations_toml(url, GOOD, audience="999"))
        _, missing = doctor(capsys, config)
        assert not missing["destination meta"]["ok"]
        assert "`audience_id`" in missing["destination meta"]["fix"]
        assert set(app.state.seen) == {"GET"}  # side-effect free: reads only
    finally:
        stop()


def test_doctor_on_a_fresh_init_config_gives_no_circular_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "tactful.toml"
    assert main(["init", str(config)]) == 0
    capsys.readouterr()
    code, checks = doctor(capsys, config)
    hooks = checks["zendesk webhooks"]
    assert not hooks["ok"]
    # `zendesk install` needs the API credentials the config lacks: the advice must not
    # send the operator there without them, and gives the way that needs no API
    assert "api_token" in hooks["fix"] and "Admin Center" in hooks["fix"]
    assert code == 1


def test_zendesk_refusals_name_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = ZendeskSimulator()
    zendesk_url, stop_sim = sim.serve()
    config = tmp_path / "t.toml"
    try:
        for path, token, setting, other in [
            ("", "wrong-token", "api_token", "subdomain"),
            ("/nowhere", sim.api_token, "subdomain", "api_token"),
        ]:
            config.write_text(
                f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n'
                f'[zendesk]\nbase_url = "{zendesk_url}{path}"\nemail = "{sim.email}"\n'
                f'api_token = "{token}"\n'
            )
            _, checks = doctor(capsys, config)
            fix = checks["zendesk api"]["fix"]
            # the setting at fault, not every setting there is
            assert not checks["zendesk api"]["ok"] and setting in fix and other not in fix, fix
    finally:
        stop_sim()


# -- issue 17: the inbox's failed requests and an unfinished replay --------------------------


def test_doctor_shows_failed_inbox_rows_and_an_unfinished_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tactful.store.base import REPLAY_KEY
    from tactful.store.sqlite import SQLiteStore

    config = tmp_path / "t.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n')
    main(["--config", str(config), "doctor", "--json"])
    healthy = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert healthy["inbox"]["ok"] and healthy["replay"]["ok"]

    store = SQLiteStore(f"sqlite:///{tmp_path}/t.db")
    try:
        inbox = store.inbox()
        assert inbox is not None
        inbox.put([b"not a request", b"nor this", b"waiting"])
        first, second, _ = inbox.take(3)
        inbox.fail(first.seq, "ValueError: bad payload one")
        inbox.fail(second.seq, "ValueError: bad payload two")
        with store.transaction() as tx:
            tx.set_meta(REPLAY_KEY, '{"phase": "compare"}')
    finally:
        store.close()
    code = main(["--config", str(config), "doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert code == 1
    inbox_check = checks["inbox"]
    assert not inbox_check["ok"]
    assert "2 failed" in inbox_check["detail"] and "1 waiting" in inbox_check["detail"]
    assert "bad payload one" in inbox_check["detail"]  # the oldest failure's error
    assert "oldest" in inbox_check["detail"] and inbox_check["fix"]
    assert not checks["replay"]["ok"] and "tactful replay" in checks["replay"]["fix"]
