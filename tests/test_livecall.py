"""Bounded live calls against hostile servers on 127.0.0.1 (in-process threads)."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from loader.livecall import Limits, LiveCallError, LiveClient, is_local

Handler = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    """Start a raw TCP server whose connections run ``handler``; yields its URL."""
    stop = threading.Event()
    servers: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(handler: Handler) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.1)
        servers.append(listener)

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                with conn:
                    conn.recv(65536)
                    with contextlib.suppress(OSError):
                        handler(conn)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    def trickle_until_stopped(conn: socket.socket, data: bytes) -> None:
        for byte in data:
            if stop.wait(0.05):
                return
            conn.sendall(bytes([byte]))

    start.trickle = trickle_until_stopped  # type: ignore[attr-defined]
    start.stop = stop  # type: ignore[attr-defined]
    yield start
    stop.set()
    for thread in threads:
        thread.join(5)
    for listener in servers:
        listener.close()


def head(length: int | None = None, extra: str = "") -> bytes:
    size = "" if length is None else f"Content-Length: {length}\r\n"
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{size}{extra}\r\n".encode()


def call(url: str, **limits: float) -> LiveCallError:
    with LiveClient(Limits(**limits)) as client, pytest.raises(LiveCallError) as caught:
        client.get(url + "/api/tags")
    return caught.value


def test_a_plain_json_answer(serve) -> None:
    body = b'{"models": []}'
    url = serve(lambda c: c.sendall(head(len(body)) + body))
    with LiveClient(Limits(total_s=5)) as client:
        answer = client.get(url + "/api/tags")
    assert (answer.status, answer.json()) == (200, {"models": []})


def test_a_trickled_body_ends_at_the_total_deadline(serve) -> None:
    url = serve(lambda c: (c.sendall(head(10_000)), serve.trickle(c, b"x" * 10_000)))
    started = time.monotonic()
    error = call(url, total_s=0.6)
    assert error.kind == "timeout" and time.monotonic() - started < 3
    assert "total deadline" in str(error)


def test_trickled_headers_end_at_the_total_deadline(serve) -> None:
    url = serve(lambda c: serve.trickle(c, head(2) * 500))
    started = time.monotonic()
    assert call(url, total_s=0.6).kind == "timeout"
    assert time.monotonic() - started < 3


def test_an_endless_body_stops_at_the_size_cap(serve) -> None:
    def endless(conn: socket.socket) -> None:
        conn.sendall(head(extra="Transfer-Encoding: chunked\r\n"))
        chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
        while not serve.stop.is_set():
            conn.sendall(chunk)

    url = serve(endless)
    error = call(url, total_s=20, max_bytes=1_000_000)
    assert error.kind == "too_large" and "1,000,000 bytes" in str(error)


def test_a_declared_huge_body_is_refused_before_reading(serve) -> None:
    url = serve(lambda c: c.sendall(head(500_000_000)))
    assert call(url, total_s=5, max_bytes=1_000_000).kind == "too_large"


def test_a_gzip_bomb_stops_at_the_decompressed_cap(serve) -> None:
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    url = serve(lambda c: c.sendall(head(len(bomb), "Content-Encoding: gzip\r\n") + bomb))
    assert call(url, total_s=10, max_bytes=1_000_000).kind == "too_large"


def test_a_small_gzip_answer_is_decompressed(serve) -> None:
    body = gzip.compress(b'{"ok": true}')
    url = serve(lambda c: c.sendall(head(len(body), "Content-Encoding: gzip\r\n") + body))
    with LiveClient(Limits(total_s=5)) as client:
        assert client.get(url).json() == {"ok": True}


def test_deeply_nested_json_is_malformed_not_a_traceback(serve) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    url = serve(lambda c: c.sendall(head(len(body)) + body))
    with LiveClient(Limits(total_s=5)) as client:
        answer = client.get(url)
        with pytest.raises(LiveCallError) as caught:
            answer.json()
    assert caught.value.kind == "malformed" and "nested" in str(caught.value)


def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert call(f"http://127.0.0.1:{port}", total_s=5).kind == "connection"


def test_the_overall_deadline_bounds_many_requests(serve) -> None:
    body = b"{}"

    def slow(conn: socket.socket) -> None:
        serve.stop.wait(0.3)
        conn.sendall(head(len(body)) + body)

    url = serve(slow)
    with LiveClient(Limits(total_s=5), overall_s=0.5) as client:
        client.get(url)
        with pytest.raises(LiveCallError) as caught:
            for _ in range(5):
                client.get(url)
    assert caught.value.kind == "timeout"


def test_local_addresses_bypass_a_configured_proxy(serve, monkeypatch) -> None:
    # A proxy nobody listens on: using it would fail the call.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    body = b"{}"
    url = serve(lambda c: c.sendall(head(len(body)) + body))
    with LiveClient(Limits(total_s=5)) as client:
        assert client.get(url).status == 200


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("[::1]", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("ollama.example", False),
    ],
)
def test_is_local(host: str, local: bool) -> None:
    assert is_local(host) is local
