"""Misbehaving HTTP servers on loopback, for delivery fault isolation tests.

Each answers every request the same way:
- ``ok``: ``200`` at once;
- ``hang``: reads the request and never answers (a dead peer that keeps the socket open);
- ``trickle``: sends the response one byte every ``every`` seconds, forever (each read
  completes within any read timeout, so only a total deadline ends the request);
- ``reset``: reads the request and resets the connection (TCP RST);
- ``overflow``: ``429`` with ``Retry-After: 99999999999999`` (overflows ``timedelta``);
- ``throttle``: ``429`` with ``Retry-After: 1`` (a rate-limit storm).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class FaultServer:
    def __init__(self, mode: str, every: float = 0.5) -> None:
        self.mode = mode
        self.every = every
        self.requests = 0
        self.received = threading.Event()  # set once a request has been read
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bool:
        data = b""
        conn.settimeout(5)
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            body += chunk
        self.requests += 1
        self.received.set()
        return True

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self._stop.is_set() and self._read_request(conn):
                if self.mode == "ok":
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                elif self.mode == "overflow":
                    conn.sendall(
                        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 99999999999999\r\n"
                        b"content-length: 0\r\n\r\n"
                    )
                elif self.mode == "throttle":
                    conn.sendall(
                        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\n"
                        b"content-length: 0\r\n\r\n"
                    )
                elif self.mode == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                elif self.mode == "hang":
                    self._stop.wait()
                    return
                elif self.mode == "trickle":
                    for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 10_000:
                        if self._stop.wait(self.every):
                            return
                        conn.sendall(bytes([byte]))
                    return
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        time.sleep(0.05)


@contextmanager
def fault_servers(*modes: str, every: float = 0.5) -> Iterator[dict[str, FaultServer]]:
    servers = {mode: FaultServer(mode, every) for mode in modes}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.close()
