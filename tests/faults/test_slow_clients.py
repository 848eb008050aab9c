"""Slow and dead clients: slowloris, uploads that stall, bodies that stop halfway.

A client that sends slowly or disappears must not hold the server for others, and
an upload cut off halfway must leave no item, no staging file, and a passing check.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.faults.harness import SLOW, Proc, check, fresh_data, launcher

SLOWLORIS_SOCKETS = 1000 if SLOW else 200


def basic(user: str) -> str:
    return base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


@contextmanager
def sockets(server: Proc, count: int) -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        yield opened
    finally:
        for s in opened:
            s.close()


def timed_requests(server: Proc, count: int, timeout: float = 10) -> list[float]:
    """Latencies (s) of ordinary authenticated requests from a well-behaved client."""
    times: list[float] = []
    with server.client(timeout=timeout) as c:
        for _ in range(count):
            start = time.monotonic()
            r = c.request(
                "PROPFIND",
                "/dav/alice/contacts/",
                headers={"Depth": "1"},
                content=b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
            )
            assert r.status_code == 207
            times.append(time.monotonic() - start)
    return times


def test_slowloris_headers_do_not_stop_normal_clients(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        timed_requests(server, 1)  # warm: the password check is cached
        stop = threading.Event()
        with sockets(server, SLOWLORIS_SOCKETS) as socks:
            for i, s in enumerate(socks):
                s.sendall(f"GET /dav/alice/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: ".encode())

            def trickle() -> None:
                while not stop.is_set():
                    for s in socks:
                        try:
                            s.sendall(b"a")
                        except OSError:
                            pass
                    time.sleep(0.2)

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            try:
                time.sleep(1.0)
                latencies = timed_requests(server, 20)
            finally:
                stop.set()
                t.join()
        assert max(latencies) < 2.0, latencies
        assert server.alive()
        print(
            f"\nslowloris: {SLOWLORIS_SOCKETS} sockets trickling headers; normal PROPFIND "
            f"max {max(latencies) * 1000:.0f} ms"
        )


def test_stalled_uploads_do_not_stop_normal_clients(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice", "bob"))
    with launcher() as starter:
        server = starter.start(data)
        timed_requests(server, 1)
        with server.client("bob") as b:
            assert b.request("MKCOL", "/dav/bob/files/").status_code == 201
        with sockets(server, 40) as socks:
            for i, s in enumerate(socks):
                s.sendall(
                    f"PUT /dav/bob/files/stalled-{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Basic {basic('bob')}\r\nContent-Length: 1000000\r\n\r\n"
                    "first bytes, then nothing".encode()
                )
            time.sleep(1.0)
            try:
                latencies = timed_requests(server, 3, timeout=3)
            except Exception as exc:  # httpx.ReadTimeout: the server never answered
                raise AssertionError(f"a normal client was not served: {exc!r}") from exc
        assert max(latencies) < 3.0, latencies


def _half_put(server: Proc, path: str, declared: int, sent: bytes, chunked: bool) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared}"
        s.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic('alice')}"
            f"\r\n{length}\r\n\r\n".encode()
        )
        if chunked:
            s.sendall(f"{declared:x}\r\n".encode() + sent)
        else:
            s.sendall(sent)
        time.sleep(0.3)  # let the server start consuming the body
    # The socket is closed here: the rest of the body never comes.


@pytest.mark.parametrize(
    ("path", "declared", "sent", "chunked"),
    [
        ("/dav/alice/files/photo.jpg", 400_000, b"\xff\xd8" + b"p" * 199_998, False),
        ("/dav/alice/files/chunked.bin", 400_000, b"c" * 150_000, True),
        ("/dav/alice/files/small.txt", 5_000, b"s" * 2_000, False),
        (
            "/dav/alice/contacts/half.vcf",
            2_000,
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:half\r\nFN:Half",
            False,
        ),
    ],
    ids=["external", "chunked", "small-file", "vcard"],
)
def test_body_that_stops_halfway_leaves_nothing(
    tmp_path: Path, path: str, declared: int, sent: bytes, chunked: bool
) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        with server.client() as c:
            assert c.request("MKCOL", "/dav/alice/files/").status_code == 201
            before = c.request("PROPFIND", "/dav/alice/", headers={"Depth": "1"}).text
            # An existing item overwritten by a cut-off PUT keeps its old body.
            keep = b"old body that must survive"
            assert c.put("/dav/alice/files/keep.txt", content=keep).status_code == 201
        _half_put(server, path, declared, sent, chunked)
        _half_put(server, "/dav/alice/files/keep.txt", 300_000, b"n" * 100_000, False)
        deadline = time.monotonic() + 10
        while any((data / "staging").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any((data / "staging").iterdir()), "a cut-off body left a staging file"
        with server.client() as c:
            assert c.get(path).status_code == 404
            assert c.get("/dav/alice/files/keep.txt").content == keep
            after = c.request("PROPFIND", "/dav/alice/", headers={"Depth": "1"}).text
            assert after.count("<d:response>") == before.count("<d:response>")
        assert server.alive()
        assert "Traceback" not in server.log_text(), server.log_text()[-3000:]
    report = check(data)
    assert report["ok"], report


@pytest.mark.skipif(not SLOW, reason="waits for the server's idle timeout: HOMEPORT_SLOW=1")
def test_connection_that_never_finishes_its_headers_is_closed(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            s.settimeout(90)
            try:
                s.recv(1)  # a 408, or the end of the connection: either is an answer
                answered = True
            except ConnectionResetError:
                answered = True
            except TimeoutError:
                answered = False
            assert answered, "the half-sent request was still held open after 90 s"


def _read_until_closed(s: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or `limit` s pass)."""
    start = time.monotonic()
    s.settimeout(limit)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    except TimeoutError as exc:
        raise AssertionError(f"the connection was still open after {limit} s: {got!r}") from exc
    return got, time.monotonic() - start


@pytest.mark.parametrize(
    ("path", "declared", "sent"),
    [
        ("/dav/alice/contacts/stalled.vcf", 2_000, b"BEGIN:VCARD\r\nVERSION:3.0\r\n"),
        ("/dav/alice/files/stalled.bin", 1_000_000, b"x" * 200_000),  # spooled to a file
    ],
    ids=["in-memory", "spooled"],
)
def test_a_body_that_stalls_is_answered_408_and_leaves_nothing(
    tmp_path: Path, path: str, declared: int, sent: bytes
) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data, env={"HOMEPORT_SERVER_IDLE_TIMEOUT": "2"})
        with server.client() as c:
            assert c.request("MKCOL", "/dav/alice/files/").status_code == 201
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(
                f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic "
                f"{basic('alice')}\r\nContent-Length: {declared}\r\n\r\n".encode()
                + sent
            )
            answer, took = _read_until_closed(s, 15)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert 1.5 < took < 10, took
        with server.client() as c:
            assert c.get(path).status_code == 404
        assert server.alive()
        assert "Traceback" not in server.log_text(), server.log_text()[-3000:]
    report = check(data)
    assert report["ok"], report


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_headers_that_never_finish_are_cut_off_at_the_idle_timeout(
    tmp_path: Path, trickle: bool
) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data, env={"HOMEPORT_SERVER_IDLE_TIMEOUT": "2"})
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            start = time.monotonic()
            if trickle:  # one header byte every 0.3 s: each byte used to reset nothing
                with pytest.raises(OSError):
                    while time.monotonic() - start < 15:
                        s.sendall(b"X")
                        time.sleep(0.3)
                took = time.monotonic() - start
            else:
                _, took = _read_until_closed(s, 15)
        assert 1.5 < took < 8, took
        # A connection that is kept alive between requests gets the same limit, and an
        # ordinary client is unaffected.
        with server.client() as c:
            assert c.get("/").status_code == 200
        assert server.alive()
