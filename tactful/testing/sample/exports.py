"""``generate_exports``: the pages of a generated account, per chunk of persons (see the
package doc)."""

from __future__ import annotations

import random
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tactful.testing.sample.constants import (
    _DAY,
    _STEMS,
    DEFAULT_START,
    PAGE_SIZE,
    RATING_STEM,
    RATINGS_PAGE_SIZE,
    TICKET_EVENT_STEM,
    TICKET_STEM,
    TICKET_UPDATE_STEM,
    USER_STEM,
)
from tactful.testing.sample.generator import _Generator
from tactful.testing.sample.model import SampleFiles
from tactful.testing.sample.pages import (
    _cursor_envelope,
    _Envelope,
    _PageWriter,
    _ratings_envelope,
    _SortedRuns,
    _ticket_events_envelope,
)

CHUNK_PERSONS = 10_000  # persons generated (and held in memory) at a time
MAX_OPEN_RUNS = 128  # runs merged at once; more are merged in passes


def generate_exports(
    out_dir: Path,
    *,
    persons: int,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    days: int = 90,
) -> SampleFiles:
    """Write generated Zendesk export pages for ``persons`` customers into ``out_dir``.

    Ticket activity falls in ``[start, start + days]``; users are created before ``start``.
    Previously generated pages in ``out_dir`` are removed first. The same arguments always
    give byte-identical files.
    """
    if persons < 0:
        raise ValueError(f"persons must be >= 0, got {persons}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start must be timezone-aware, got {start.isoformat()}")
    start_ts = int(start.timestamp())
    if start_ts < 2 * 365 * _DAY:
        raise ValueError(f"start must be after 1972, got {start.isoformat()}")
    end_ts = start_ts + days * _DAY
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stem in _STEMS:
        for old in out_dir.glob(f"{stem}-[0-9]*.json"):
            old.unlink()

    tmp_dir = Path(tempfile.mkdtemp(prefix=".sample-", dir=out_dir))
    try:
        users = _PageWriter(
            out_dir,
            USER_STEM,
            PAGE_SIZE,
            _cursor_envelope("users", "/api/v2/incremental/users/cursor.json"),
            start_ts,
        )
        runs = {
            stem: _SortedRuns(tmp_dir, stem, MAX_OPEN_RUNS)
            for stem in (TICKET_STEM, TICKET_UPDATE_STEM, TICKET_EVENT_STEM, RATING_STEM)
        }
        gen = _Generator(
            start_ts=start_ts,
            end_ts=end_ts,
            persons=persons,
            users=users,
            tickets=runs[TICKET_STEM],
            updates=runs[TICKET_UPDATE_STEM],
            events=runs[TICKET_EVENT_STEM],
            ratings=runs[RATING_STEM],
        )
        for chunk_start in range(0, persons, CHUNK_PERSONS):
            gen.rng = random.Random(f"tactful.sample:{seed}:{chunk_start // CHUNK_PERSONS}")
            for index in range(chunk_start, min(persons, chunk_start + CHUNK_PERSONS)):
                gen.person(index)
            for sorted_runs in runs.values():
                sorted_runs.flush()
        user_pages = users.close()

        ticket_envelope = _cursor_envelope("tickets", "/api/v2/incremental/tickets/cursor.json")
        envelopes: dict[str, tuple[int, _Envelope]] = {
            TICKET_STEM: (PAGE_SIZE, ticket_envelope),
            TICKET_UPDATE_STEM: (PAGE_SIZE, ticket_envelope),
            TICKET_EVENT_STEM: (PAGE_SIZE, _ticket_events_envelope),
            RATING_STEM: (RATINGS_PAGE_SIZE, _ratings_envelope),
        }
        writers: dict[str, _PageWriter] = {}
        for stem, sorted_runs in runs.items():
            page_size, envelope = envelopes[stem]
            writer = _PageWriter(out_dir, stem, page_size, envelope, end_ts)
            for ts, ident, item in sorted_runs.merged():
                writer.add(ts, ident, item)
            writer.close()
            writers[stem] = writer
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    return SampleFiles(
        out_dir=out_dir,
        start=datetime.fromtimestamp(start_ts, UTC),
        end=datetime.fromtimestamp(end_ts, UTC),
        persons=persons,
        user_pages=user_pages,
        ticket_pages=tuple(writers[TICKET_STEM].paths),
        ticket_update_pages=tuple(writers[TICKET_UPDATE_STEM].paths),
        ticket_event_pages=tuple(writers[TICKET_EVENT_STEM].paths),
        rating_pages=tuple(writers[RATING_STEM].paths),
        users=users.count,
        tickets=writers[TICKET_STEM].count,
        ticket_updates=writers[TICKET_UPDATE_STEM].count,
        ticket_events=writers[TICKET_EVENT_STEM].count,
        ratings=writers[RATING_STEM].count,
    )
