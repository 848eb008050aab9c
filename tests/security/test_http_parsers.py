"""Both HTTP parsers (httptools, the default, and h11) keep the same limits and answers.

uvicorn's two protocols differ where it matters to a hostile or broken client: unknown
methods, endless headers, headers that never finish, absolute-form targets, and what
follows a request on a kept-alive connection. Homeport's subclasses (server/transport.py)
must make them behave alike; each test runs a real server with each parser.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.faults.harness import Proc, fresh_data, launcher
from tests.security.rawhttp import basic, raw_request, request_bytes

SECURITY = (b"x-content-type-options: nosniff", b"x-frame-options: deny")


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proc]:
    data = fresh_data(tmp_path_factory.mktemp(f"parser-{request.param}"), users=("alice",))
    with launcher() as starter:
        proc = starter.start(
            data,
            env={"HOMEPORT_SERVER_HTTP_PARSER": request.param, "HOMEPORT_SERVER_IDLE_TIMEOUT": "2"},
        )
        assert f"(HTTP parser: {request.param})" in proc.log_text()
        yield proc
        assert proc.alive()
        assert "Traceback" not in proc.log_text(), proc.log_text()[-3000:]


def statuses_of(stream: bytes) -> list[int]:
    """The statuses of the answers in `stream`, one after another (Content-Length bodies)."""
    statuses = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        statuses.append(int(lines[0].split()[1]))
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        )
        stream = rest[length:]
    return statuses


def head_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[0].lower()


def test_an_unknown_method_is_405_with_the_security_headers(server: Proc) -> None:
    for method in (b"BREW", b"FROB-NICATE"):
        status, answer = raw_request(server.port, request_bytes(method, b"/dav/alice/"))
        assert status == 405, answer[:300]
        head = head_of(answer)
        assert all(h in head for h in SECURITY), head
        assert b"\r\nallow: " in head and b"propfind" in head, head


@pytest.mark.parametrize("size", [70_000, 2_000_000])
def test_headers_past_the_limit_are_refused_and_the_server_goes_on(server: Proc, size: int) -> None:
    status, answer = raw_request(
        server.port, request_bytes(b"GET", b"/dav/alice/", headers=[(b"X-Big", b"a" * size)])
    )
    # 431; or, when the server refused and closed while the client was still sending,
    # no answer at all (None)
    assert status in (431, None), answer[:300]
    assert not answer or status is not None, answer[:300]
    propfind = request_bytes(b"PROPFIND", b"/dav/alice/", headers=[(b"Depth", b"0")])
    status, _ = raw_request(server.port, propfind)
    assert status == 207


def test_a_long_but_allowed_header_is_served(server: Proc) -> None:
    status, answer = raw_request(
        server.port,
        request_bytes(
            b"PROPFIND", b"/dav/alice/", headers=[(b"X-Long", b"a" * 30_000), (b"Depth", b"0")]
        ),
    )
    assert status == 207, answer[:300]


def test_absolute_form_and_asterisk_targets_are_refused(server: Proc) -> None:
    for target in (b"http://evil.example/dav/alice/", b"*"):
        status, answer = raw_request(server.port, request_bytes(b"GET", target))
        assert status == 400, (target, answer[:300])


def test_headers_that_never_finish_are_cut_off(server: Proc) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        with pytest.raises(OSError):
            while time.monotonic() - start < 12:  # one byte every 0.3 s resets nothing
                s.sendall(b"X")
                time.sleep(0.3)
        took = time.monotonic() - start
    assert 1.5 < took < 8, took


def test_kept_alive_and_pipelined_requests_are_answered_in_order(server: Proc) -> None:
    auth = b"Authorization: " + basic("alice") + b"\r\n"
    one = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    two = b"PROPFIND /dav/alice/ HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 0\r\n" + auth + b"\r\n"
    three = (
        b"GET /dav/alice/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + auth
        + b"\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(one + two + three)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert statuses_of(got) == [200, 207, 404], got[:1500]
    # An idle kept-alive connection is closed after the same limit, not held forever.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(one)
        start = time.monotonic()
        s.settimeout(12)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
        assert time.monotonic() - start < 8


def test_a_body_in_chunked_encoding_is_stored(server: Proc) -> None:
    body = b"hello, chunked world\n"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    request = (
        b"PUT /dav/alice/files/chunked.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Authorization: " + basic("alice") + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    )
    raw_request(server.port, request_bytes(b"MKCOL", b"/dav/alice/files/"))
    status, answer = raw_request(server.port, request)
    assert status in (201, 204), answer[:300]
    fetch = request_bytes(b"GET", b"/dav/alice/files/chunked.txt")
    status, answer = raw_request(server.port, fetch)
    assert status == 200 and answer.endswith(body), answer[-200:]
