"""The server's background work runs under the runtime's supervisor: a delivery loop that
crashes is started again and the restart is on ``/metrics``; at shutdown every worker is
stopped and no task is left."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful import runtime
from tactful.delivery.worker import DeliveryWorker
from tactful.store.base import Store
from tactful.store.sqlite import open_store, sqlite_path
from tactful.testing import new_store_url
from tests.integration.monitored import CONFIG, monitored_app


def test_a_crashed_delivery_loop_is_restarted_and_counted_on_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = runtime.run_deliverer

    async def crashes_once(worker: DeliveryWorker, store: Store, every: float) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in the delivery loop")
        await real(worker, store, every)

    monkeypatch.setattr(runtime, "run_deliverer", crashes_once)
    engine, app = monitored_app(tmp_path, tick_seconds=0.05, deliver_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        deadline = time.monotonic() + 10
        while len(calls) < 2:
            assert time.monotonic() < deadline, "the delivery loop was not restarted"
            time.sleep(0.05)
        text = client.get("/metrics").text
        supervisor = app.state.background
        assert set(supervisor.running()) == {"ticker", "deliverer", "alerter"}
        tasks = supervisor.tasks()
        assert len(tasks) == 3 and not any(t.done() for t in tasks)
    assert 'tactful_worker_restarts_total{worker="deliverer"} 1.0' in text
    assert 'tactful_worker_restarts_total{worker="ticker"} 0.0' in text
    assert 'tactful_worker_up{worker="deliverer"} 1.0' in text
    assert supervisor.running() == []
    assert all(t.done() for t in tasks)
    engine.store.close()


WORKER_ARGS = ("--tick-seconds", "0.1", "--deliver-seconds", "0.1")


@pytest.mark.slow
def test_the_worker_command_ticks_under_the_supervisor_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    url = new_store_url(tmp_path)
    config = tmp_path / "tactful.toml"
    config.write_text(f'[store]\nurl = "{url}"\n' + CONFIG)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*(sys.executable, "-m", "tactful", "--config", str(config), "worker"), *WORKER_ARGS],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker never ticked"
            if Path(sqlite_path(url)).exists():
                store = open_store(url)
                try:
                    with store.reader() as reader:
                        if reader.get_meta("clock") is not None:
                            break
                finally:
                    store.close()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()
