"""A total deadline per HTTP request, for every destination.

httpx's timeouts bound each socket operation, not the request: a server that sends one byte
every 20 s never trips a 30 s read timeout. ``DeadlineTransport`` is an httpx transport over
an httpcore connection pool whose network streams (httpcore's documented custom network
backend, https://www.encode.io/httpcore/network-backends/) cap every connect, read and write
at the time left before the request's deadline, and fail with a timeout once it has passed.

Proxies: like httpx's own transport, requests go through ``HTTP_PROXY`` / ``HTTPS_PROXY``
(falling back to ``ALL_PROXY``; lower-case names too) unless the host matches ``NO_PROXY``,
read once when the transport is made (``urllib.request``'s environment rules). The proxy
pool uses the same network streams, so the deadline covers the proxy too; ``https://``
targets are tunnelled with ``CONNECT``. Only ``http://`` and ``https://`` proxies.

The deadline is per thread: httpx's sync client sends the request and reads the response in
the calling thread, so the transport sets it when a request starts and the response stream
restores it while the body is read.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

_current = threading.local()

# httpcore's exceptions as httpx's (most specific first), as httpx's own transport maps them
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


def _left(timeout: float | None, kind: type[Exception]) -> float | None:
    """``timeout`` capped at the time left before this thread's deadline."""
    deadline: float | None = getattr(_current, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise kind("the request's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wrapped = self.inner.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)
        )
        return _Stream(wrapped)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes], deadline: float) -> None:
        self.inner = inner
        self.deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        iterator = iter(self.inner)
        while True:
            with _within(self.deadline), _mapped():
                chunk = next(iterator, None)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            with _mapped():
                close()


@contextmanager
def _within(deadline: float) -> Iterator[None]:
    previous = getattr(_current, "deadline", None)
    _current.deadline = deadline
    try:
        yield
    finally:
        _current.deadline = previous


_POOL: dict[str, Any] = {
    "max_connections": 10,
    "max_keepalive_connections": 10,
    "keepalive_expiry": 5.0,
}


def bypasses(no_proxy: str, url: httpx.URL) -> bool:
    """Whether ``NO_PROXY`` (comma-separated: ``*``, host names, ``.domain`` or ``domain``
    suffixes, optionally ``:port``) sends ``url`` direct."""
    host = url.host.lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, port = entry.partition(":") if not entry.startswith("[") else (entry, "", "")
        if port and url.port is not None and port != str(url.port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


class DeadlineTransport(httpx.BaseTransport):
    """HTTP/1.1 over TLS (httpx's default certificate store), every request bounded by
    ``seconds`` in total: connecting, sending, and reading the whole response; through the
    environment's proxy where it names one for the request's scheme and host."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ssl = httpx.create_ssl_context()
        self._pool = httpcore.ConnectionPool(
            ssl_context=self._ssl, network_backend=_Backend(), **_POOL
        )
        # {"http": url, "https": url, "all": url, "no": "host,.domain"}
        self._env = urllib.request.getproxies_environment()
        self._proxies: dict[str, httpcore.HTTPProxy] = {}
        for scheme in ("http", "https"):
            url = self._env.get(scheme) or self._env.get("all")
            if url:
                self._proxies[scheme] = self._proxy(url)

    def _proxy(self, url: str) -> httpcore.HTTPProxy:
        parsed = httpx.URL(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"unsupported proxy {url!r}: use an http:// or https:// proxy")
        auth = (parsed.username, parsed.password) if parsed.username else None
        return httpcore.HTTPProxy(
            proxy_url=httpcore.URL(
                scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=b"/"
            ),
            proxy_auth=auth,
            ssl_context=self._ssl,
            network_backend=_Backend(),
            **_POOL,
        )

    def _pool_for(self, url: httpx.URL) -> httpcore.ConnectionPool:
        proxy = self._proxies.get(url.scheme)
        if proxy is None:
            return self._pool
        return self._pool if bypasses(self._env.get("no", ""), url) else proxy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        deadline = time.monotonic() + self.seconds
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _within(deadline), _mapped():
            response = self._pool_for(request.url).handle_request(core)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream, deadline),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
        for proxy in self._proxies.values():
            proxy.close()
