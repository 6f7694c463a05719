"""A throwaway PostgreSQL cluster for tests and benchmarks (never for production data).

``start()`` runs Debian's ``initdb`` + ``pg_ctl`` into a temporary directory, listening on
loopback only, with durability switched off (``fsync=off``: a test cluster is thrown away).
As root it runs the server as the ``postgres`` user (PostgreSQL refuses to run as root).
``TACTFUL_TEST_PG`` (a server URL, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``)
uses an existing server instead.

``Cluster.new_database()`` returns the URL of a fresh, empty database (C collation).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tactful.clock import now_us

ENV_URL = "TACTFUL_TEST_PG"


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL binaries (install Debian's ``postgresql``) or the server did not start."""


def _bindir() -> Path | None:
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"):
        for candidate in sorted(glob.glob(pattern), reverse=True):
            if (Path(candidate) / "initdb").exists():
                return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    url: str  # the server's maintenance database URL
    datadir: Path | None = None
    bindir: Path | None = None
    run_as: list[str] = field(default_factory=list)
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + name))

    def new_database(self, prefix: str = "t") -> str:
        import psycopg

        with self._lock:
            self._counter += 1
            name = f"{prefix}_{os.getpid()}_{self._counter}_{now_us() % 10**9}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C' LC_CTYPE 'C'"
            )
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.datadir is None or self.bindir is None:
            return
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)
        self.datadir = None


def start(*, durable: bool = False, settings: Mapping[str, str] | None = None) -> Cluster:
    """Start (or reuse, with ``TACTFUL_TEST_PG``) a server; raise ClusterUnavailable.

    A throwaway server does not flush to disk (``fsync=off``, ``synchronous_commit=off``),
    which suits tests; ``durable=True`` keeps PostgreSQL's defaults, as a production server
    would have them (for benchmarks of acknowledged writes). ``settings``: further server
    settings (``{"shared_buffers": "2GB"}``), after the defaults here."""
    existing = os.environ.get(ENV_URL)
    if existing:
        return Cluster(existing)
    bindir = _bindir()
    if bindir is None:
        raise ClusterUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="tactful-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise ClusterUnavailable("running as root and runuser is missing")
        run_as = [runuser, "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    datadir = root / "data"
    init = subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
        "-c shared_buffers=128MB"
    )
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    for name, value in (settings or {}).items():
        options += f" -c {name}={value}"
    started = subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(root / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(f"pg_ctl start failed: {started.stderr.strip()} {log[-500:]}")
    return Cluster(f"postgresql://postgres@127.0.0.1:{port}/postgres", datadir, bindir, run_as)


@contextlib.contextmanager
def running() -> Iterator[Cluster]:
    cluster = start()
    try:
        yield cluster
    finally:
        cluster.stop()
