"""Bounded live calls: one total deadline and one size cap per HTTP request.

A per-read timeout does not bound a call: a server that trickles one byte
every second keeps every read alive for ever. Here each read and write of the
socket gets the time that is *left* of the request's total deadline, and the
body is counted as it arrives, decompressed by us with a bounded output, so
an endless body, a 500 MB body or a gzip bomb stops at ``max_bytes``.

Requests to a local address never go through a proxy; others honour the
usual ``*_proxy`` / ``no_proxy`` variables.

Every failure is a ``LiveCallError`` with a one-line message and a ``kind``
(``connection``, ``timeout``, ``too_large``, ``malformed``, ``http``).
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpcore

from loader import strictjson
from loader.errors import RegistryError

READ_CHUNK = 64 * 1024


class LiveCallError(RegistryError):
    """A live call failed; ``kind`` says how (see the module docstring)."""

    def __init__(
        self, message: str, kind: str, status: int | None = None, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.reason = reason  # the lower layer's own words, when there are any


@dataclass(frozen=True)
class Limits:
    """How long a request may take in all, and how much it may answer."""

    total_s: float = 30.0
    max_bytes: int = 16 * 1024 * 1024  # decompressed body
    connect_s: float | None = None  # at most total_s

    def __post_init__(self) -> None:
        if not self.total_s > 0:
            raise ValueError(f"total deadline must be > 0 seconds, not {self.total_s!r}")
        if self.max_bytes < 1:
            raise ValueError(f"size cap must be at least 1 byte, not {self.max_bytes!r}")


@dataclass
class Answer:
    """A whole, bounded response."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise LiveCallError(f"{self.url}: answer is not UTF-8 text", "malformed") from None

    def json(self) -> Any:
        """The body as strict JSON (finite numbers, bounded nesting)."""
        try:
            return strictjson.loads(self.text())
        except (ValueError, strictjson.StrictJsonError) as exc:
            reason = getattr(exc, "problem", None) or "not JSON"
            raise LiveCallError(f"{self.url}: malformed answer ({reason})", "malformed") from None


class _Deadlines(threading.local):
    """The running request's deadline, per thread (a pool may serve threads)."""

    at: float | None = None


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadlines: _Deadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def _left(self, timeout: float | None) -> float | None:
        at = self._deadlines.at
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("total deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> _BoundedStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._left(timeout))
        return _BoundedStream(inner, self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, deadlines: _Deadlines) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadlines = deadlines

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _BoundedStream:
        at = self._deadlines.at
        if at is not None:
            left = at - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("total deadline passed")
            timeout = left if timeout is None else min(timeout, left)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _BoundedStream(stream, self._deadlines)

    def connect_unix_socket(  # pragma: no cover
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> NoReturn:
        raise httpcore.ConnectError("unix sockets are not used for live calls")

    def sleep(self, seconds: float) -> None:
        # A retry's back-off never outlasts the request's deadline.
        at = self._deadlines.at
        if at is not None:
            seconds = max(0.0, min(seconds, at - time.monotonic()))
        self._inner.sleep(seconds)


def is_local(host: str) -> bool:
    """A loopback name or address: never sent through a proxy."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proxy_for(url: str) -> str | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_local(host) or urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class LiveClient:
    """Bounded HTTP requests sharing one connection pool (thread-safe).

    ``overall_s`` bounds every request made through the client together, so an
    operation of many requests still ends in time.
    """

    def __init__(self, limits: Limits, *, retries: int = 0, overall_s: float | None = None) -> None:
        self.limits = limits
        self._deadlines = _Deadlines()
        self._retries = retries
        self._until = None if overall_s is None else time.monotonic() + overall_s
        self._overall_s = overall_s
        self._pools: dict[str | None, httpcore.ConnectionPool] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def _pool(self, proxy: str | None) -> httpcore.ConnectionPool:
        with self._lock:
            pool = self._pools.get(proxy)
            if pool is None:
                backend = _BoundedBackend(self._deadlines)
                if proxy is None:
                    pool = httpcore.ConnectionPool(retries=self._retries, network_backend=backend)
                else:
                    pool = httpcore.HTTPProxy(
                        proxy_url=proxy, retries=self._retries, network_backend=backend
                    )
                self._pools[proxy] = pool
            return pool

    def get(self, url: str, **kwargs: Any) -> Answer:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Answer:
        return self.request("POST", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        limits: Limits | None = None,
    ) -> Answer:
        """The whole answer to one request, within ``limits`` (the client's
        by default) and the client's overall deadline. Any status is returned;
        ``Answer.status`` says which."""
        limits = limits or self.limits
        started = time.monotonic()
        at = started + limits.total_s
        if self._until is not None:
            at = min(at, self._until)
        budget = at - started
        if budget <= 0:
            raise LiveCallError(
                f"{method} {url}: the operation's overall deadline ({self._overall_s:g} s) "
                "has passed",
                "timeout",
            )
        sent: dict[str | bytes, str | bytes] = {
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": "imageworks-loader",
        }
        content = b""
        if json is not None:
            content = jsonlib.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        connect = min(limits.connect_s or budget, budget)
        extensions = {"timeout": {"connect": connect, "read": budget, "write": budget}}
        self._deadlines.at = at
        try:
            try:
                with self._pool(_proxy_for(url)).stream(
                    method, url, headers=sent, content=content, extensions=extensions
                ) as response:
                    found = {
                        k.decode("latin-1").lower(): v.decode("latin-1")
                        for k, v in response.headers
                    }
                    body = _read_body(response.iter_stream(), found, limits.max_bytes, url)
            except httpcore.TimeoutException:
                raise LiveCallError(
                    f"{method} {url}: no complete answer within {budget:g} s (total deadline)",
                    "timeout",
                ) from None
            except (httpcore.ConnectError, OSError) as exc:
                reason = _reason(exc)
                raise LiveCallError(
                    f"{method} {url}: connection failed ({reason})", "connection", reason=reason
                ) from None
            except (
                httpcore.ProtocolError,
                httpcore.NetworkError,
                httpcore.UnsupportedProtocol,
                zlib.error,
            ) as exc:
                raise LiveCallError(
                    f"{method} {url}: broken answer ({_reason(exc)})", "malformed"
                ) from None
        finally:
            self._deadlines.at = None
        return Answer(url=url, status=response.status, headers=found, body=body)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_body(chunks: Iterator[bytes], headers: dict[str, str], cap: int, url: str) -> bytes:
    declared = headers.get("content-length", "")
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if declared.isdigit() and encoding in ("", "identity") and int(declared) > cap:
        raise _too_large(url, cap)
    decoder = _decoder(encoding, url)
    out = bytearray()
    for chunk in chunks:
        pending = chunk
        while pending:
            if decoder is None:
                piece, pending = pending, b""
            else:
                # At most one byte past the cap: a bomb never inflates further.
                piece = decoder.decompress(pending, cap - len(out) + 1)
                pending = decoder.unconsumed_tail
            out += piece
            if len(out) > cap:
                raise _too_large(url, cap)
            if decoder is not None and not piece:
                break
    if decoder is not None:
        out += decoder.flush()
        if len(out) > cap:
            raise _too_large(url, cap)
    return bytes(out)


def _decoder(encoding: str, url: str) -> Any:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header
    raise LiveCallError(f"{url}: unsupported content encoding {encoding!r}", "malformed")


def _too_large(url: str, cap: int) -> LiveCallError:
    return LiveCallError(f"{url}: answer larger than {cap:,} bytes (size cap)", "too_large")
