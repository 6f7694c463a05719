"""``tactful demo``: the server, the Zendesk simulator's story and fake destinations, live.

``run_demo(options)`` writes a demo config into ``options.directory`` (a fresh SQLite store,
generated secrets), starts the fake vendors and the Tactful app on ``127.0.0.1:port`` with
the engine clock following the simulated clock, then plays the story and stops everything
at Ctrl-C / SIGTERM (or after ``duration`` seconds).

Time is compressed so that the measurement report has something to show within minutes:
the story begins ``history_days`` before now and those days are played as fast as the
machine goes (each simulated hour is sent before the next is played, so what Tactful did
shapes what happens next), then it goes on live, ``speed`` simulated hours per real second.
The report's 30-day window has then passed for the people who entered during the launch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from tactful.bootstrap import Runtime, bootstrap
from tactful.clock import system_now
from tactful.config import load_settings
from tactful.demo.config import DemoSecrets, demo_config_text
from tactful.demo.fakes import Fakes, start_fakes
from tactful.demo.feed import Feed
from tactful.demo.story import Story
from tactful.exceptions import CommandError
from tactful.testing.sim import ZendeskSimulator, run_in_thread

Say = Callable[[str], None]


class DemoError(CommandError):
    """The demo cannot start (e.g. the port is taken)."""


@dataclass(frozen=True)
class DemoOptions:
    port: int = 8000
    directory: Path = Path("demo-data")
    customers: int = 300
    speed: float = 1.0  # simulated hours per real second
    history_days: float = 35.0  # played as fast as possible before the live part
    duration: float | None = None  # real seconds; None: until Ctrl-C
    seed: int = 7
    step_seconds: float = 0.2
    status_seconds: float = 5.0


def _say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT (Ctrl-C) or SIGTERM while the block runs."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _fresh_store(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    db = directory.resolve() / "tactful.db"
    for stale in (db, db.with_name("tactful.db-wal"), db.with_name("tactful.db-shm")):
        stale.unlink(missing_ok=True)
    return f"sqlite:///{db.as_posix()}"


def run_demo(options: DemoOptions, say: Say = _say) -> int:
    keys = DemoSecrets.generate()
    store_url = _fresh_store(options.directory)
    config_path = options.directory / "tactful.toml"
    with stop_on_signals() as stop, contextlib.ExitStack() as cleanup:
        fakes = start_fakes(keys.hook_secret)
        cleanup.callback(fakes.stop)
        config_path.write_text(demo_config_text(store_url, keys, fakes), encoding="utf-8")
        settings = load_settings(config_path)
        now = system_now().replace(minute=0, second=0, microsecond=0)
        start = now - timedelta(days=options.history_days)
        sim = ZendeskSimulator(start=start, seed=options.seed)
        runtime = bootstrap(settings, clock=sim.clock)
        cleanup.callback(runtime.close)
        base_url, stop_server = _serve(runtime, options.port)
        cleanup.callback(stop_server)
        feed = Feed(base_url, sim, settings.zendesk.webhook_secret or "", keys.api_token)
        cleanup.callback(feed.close)
        story = Story(
            sim,
            options.customers,
            seed=options.seed,
            on_rating=feed.rating,
            suppressed=feed.suppressed,
        )
        feed.users([sim.user_api(c.user_id) for c in story.cast])
        _banner(say, options, base_url, keys, config_path, fakes)
        began = time.monotonic()
        _catch_up(story, feed, fakes, options, stop, say, until=now, began=began)
        _play(story, feed, fakes, options, stop, say, began=began)
        say("stopping…")
    say("stopped.")
    return 0


def _serve(runtime: Runtime, port: int) -> tuple[str, Callable[[], None]]:
    """The Tactful app on 127.0.0.1:port; its engine clock follows the simulated clock."""
    web = runtime.web_app(tick_seconds=0.25)
    try:
        return run_in_thread(web, port=port, lifespan="on")
    except (RuntimeError, OSError) as exc:
        raise DemoError(f"cannot serve on 127.0.0.1:{port} (in use? try --port): {exc}") from exc


def _banner(
    say: Say, options: DemoOptions, base_url: str, keys: DemoSecrets, config: Path, fakes: Fakes
) -> None:
    hours = "hour" if options.speed == 1 else "hours"
    say(
        "Tactful demo: a skincare brand's Glow Serum launch, "
        f"{options.speed:g} simulated {hours} per second"
    )
    say(f"  dashboard:  {base_url}/")
    say(f"  api token: {keys.api_token}")
    say("              (log in to the dashboard with it; also: Authorization: Bearer <token>)")
    say(f"  config:     {config} (the store and the generated secrets)")
    say(f"  zendesk:    {options.customers} simulated customers → signed webhooks → "
        f"{base_url}/webhooks/zendesk")  # fmt: skip
    say(f"  fakes:      Meta audience (suppress_promos) {fakes.meta_url}, Customer.io "
        f"{fakes.cio_url}, Standard Webhooks receiver {fakes.hook_url}")  # fmt: skip
    if options.history_days > 0:
        say(
            f"  history:    the first {options.history_days:g} simulated days are played as "
            "fast as this machine goes, then it runs live (the report needs 30 days)"
        )
    say("Press Ctrl-C to stop." if options.duration is None else f"Stops in {options.duration:g}s.")


CATCH_UP_STEP = timedelta(hours=1)


def _catch_up(
    story: Story,
    feed: Feed,
    fakes: Fakes,
    options: DemoOptions,
    stop: threading.Event,
    say: Say,
    *,
    until: datetime,
    began: float,
) -> None:
    """Play the story up to ``until`` as fast as it goes, one simulated hour at a time: each
    hour's webhooks and outcomes reach Tactful before the next hour is played."""
    next_status = began + 1.0
    while story.now() < until and not stop.is_set():
        if options.duration is not None and time.monotonic() - began >= options.duration:
            return
        story.run_until(min(story.now() + CATCH_UP_STEP, until))
        feed.send(story.take_outcomes())
        if time.monotonic() >= next_status:
            _status(say, story, feed, fakes)
            next_status += options.status_seconds
    if not stop.is_set() and story.now() >= until and options.history_days > 0:
        took = time.monotonic() - began
        say(f"history played ({options.history_days:g} simulated days in {took:.0f} s): live now")


def _play(
    story: Story,
    feed: Feed,
    fakes: Fakes,
    options: DemoOptions,
    stop: threading.Event,
    say: Say,
    *,
    began: float,
) -> None:
    started = time.monotonic()
    origin = story.now()
    next_status = started + 1.0
    while not stop.is_set():
        elapsed = time.monotonic() - started
        if options.duration is not None and time.monotonic() - began >= options.duration:
            return
        story.run_until(origin + timedelta(hours=elapsed * options.speed))
        feed.send(story.take_outcomes())
        if time.monotonic() >= next_status:
            _status(say, story, feed, fakes)
            next_status += options.status_seconds
        stop.wait(options.step_seconds)


def _status(say: Say, story: Story, feed: Feed, fakes: Fakes) -> None:
    s, f, d = story.figures(), feed.counts, fakes.figures()
    hours = int(story.hours())
    clock = f"day {hours // 24 + 1} {hours % 24:02d}:00"
    say(
        f"[{clock}] zendesk: {s.get('tickets', 0)} tickets ({s['open']} open, "
        f"{s.get('solved', 0)} solved, {s.get('merges', 0)} merged, {s.get('reopened', 0)} "
        f"reopened, {s.get('refunds', 0)} refund requests), CSAT {s.get('csat_good', 0)} good / "
        f"{s.get('csat_bad', 0)} bad; {f['webhooks_delivered']} webhooks delivered"
        f"{_failed(f['webhooks_failed'])}; {f['outcomes_posted']} outcomes posted"
    )
    say(
        f"{' ' * (len(clock) + 2)} destinations: Meta audience {d['meta_members']} members "
        f"({d['meta_requests']} requests), Customer.io {d['cio_people']} people "
        f"({d['cio_events']} events), webhook receiver {d['hook_events']} events"
    )


def _failed(n: int) -> str:
    return f" ({n} failed)" if n else ""
