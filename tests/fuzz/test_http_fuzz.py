"""Property-based fuzzing of the HTTP interface: no input gets a 5xx.

Random methods, paths (with traversal pieces), headers, XML bodies built from the
DAV/CalDAV/CardDAV vocabularies, and mutated iCalendar/vCard bodies, sent as alice
(sometimes bob). Two targets: the ASGI app in-process (fast, and any unexpected
exception surfaces with its traceback) and a real `homeport serve` over loopback.
Afterwards the server is healthy and every storage invariant holds.

Quick by default; HOMEPORT_SLOW=1 (or HOMEPORT_FUZZ_EXAMPLES=N) runs many more; the
long run's figures are in docs/security.md.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from homeport import config
from homeport.store.check import check_store
from tests.conftest import PASSWORD
from tests.faults.harness import SLOW, Proc, assert_healthy, check, fresh_data, launcher
from tests.fuzz.strategies import FuzzRequest, requests

IN_PROCESS = int(os.environ.get("HOMEPORT_FUZZ_EXAMPLES", "20000" if SLOW else "300"))
OVER_HTTP = max(IN_PROCESS // 4, 50)
TIMEOUT = max(300, IN_PROCESS // 10)
ALLOWED_5XX = {502}  # COPY/MOVE with a Destination on another server (RFC 4918 9.8.5)

SEED_ITEMS = {
    "/dav/alice/contacts/a.vcf": b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:seed-card\r\nFN:Seed\r\n"
    b"N:Seed;;;;\r\nEND:VCARD\r\n",
    "/dav/alice/calendar/b.ics": b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\n"
    b"UID:seed-ev\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T100000Z\r\n"
    b"RRULE:FREQ=DAILY;COUNT=5\r\nSUMMARY:Seed\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    "/dav/alice/files/x.bin": b"\x00\x01seed",
    "/dav/bob/contacts/bob.vcf": b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob\r\nFN:Bob\r\n"
    b"N:Bob;;;;\r\nEND:VCARD\r\n",
}


class Counter:
    def __init__(self) -> None:
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.by_method: dict[str, int] = {}

    def record(self, method: str, status: int) -> None:
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status < 300:
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def summary(self) -> str:
        statuses = dict(sorted(self.statuses.items()))
        return f"{self.sent} requests; statuses {statuses}; 2xx by method {self.by_method}"


def seed(client: httpx.Client) -> None:
    for url, body in SEED_ITEMS.items():
        user = url.split("/")[2]
        if url.startswith("/dav/alice/files/"):
            client.request("MKCOL", "/dav/alice/files/", auth=(user, PASSWORD))
        r = client.put(url, content=body, auth=(user, PASSWORD))
        assert r.status_code == 201, r.text


def send(client: httpx.Client, req: FuzzRequest) -> httpx.Response:
    return client.request(
        req.method,
        req.path or "/",
        headers={k.encode(): v.encode("utf-8") for k, v in req.headers.items()},
        content=req.body,
        auth=(req.user, PASSWORD),
    )


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with warnings.catch_warnings():  # "use httpx2": not installed here, and httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from homeport.server.app import create_app
    from homeport.wiring import build_services

    data = fresh_data(tmp_path_factory.mktemp("fuzz-app"), users=("alice", "bob"))
    cfg = config.load(overrides={("server", "data"): str(data)}, environ={})
    services = build_services(cfg)
    try:
        with TestClient(create_app(services, cfg), raise_server_exceptions=True) as tc:
            seed(tc)
            yield tc
        report = check_store(services.store)
        assert report.ok, report.problems
    finally:
        services.close()


IN_PROCESS_COUNT = Counter()


@pytest.mark.timeout(TIMEOUT)
@settings(
    max_examples=IN_PROCESS,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(req=requests())
def test_fuzz_the_app_in_process(in_process: httpx.Client, req: FuzzRequest) -> None:
    r = send(in_process, req)
    IN_PROCESS_COUNT.record(req.method, r.status_code)
    assert r.status_code < 500 or r.status_code in ALLOWED_5XX, (req, r.status_code, r.text)


def test_in_process_fuzz_figures(in_process: httpx.Client) -> None:
    print(f"\nHTTP fuzz in-process: {IN_PROCESS_COUNT.summary()}")
    r = in_process.get("/dav/alice/contacts/a.vcf", auth=("alice", PASSWORD))
    assert r.status_code in (200, 404)


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    data = fresh_data(tmp_path_factory.mktemp("fuzz-http"), users=("alice", "bob"))
    with launcher() as starter:
        server = starter.start(data)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            seed(c)
        yield server
        assert server.alive(), "the server died during fuzzing"
        assert_healthy(server)
        log = server.log_text()
        assert "Traceback" not in log, log[-4000:]
        server.stop()
    report = check(data)
    assert report["ok"], report


OVER_HTTP_COUNT = Counter()
_CLIENTS: dict[int, httpx.Client] = {}


@pytest.mark.timeout(TIMEOUT)
@settings(
    max_examples=OVER_HTTP,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(req=requests())
def test_fuzz_a_real_server_over_http(real_server: Proc, req: FuzzRequest) -> None:
    client = _CLIENTS.get(real_server.port)
    if client is None:
        client = _CLIENTS[real_server.port] = httpx.Client(base_url=real_server.url, timeout=60)
    r = send(client, req)
    OVER_HTTP_COUNT.record(req.method, r.status_code)
    assert r.status_code < 500 or r.status_code in ALLOWED_5XX, (req, r.status_code, r.text)


def test_over_http_fuzz_figures(real_server: Proc) -> None:
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()
    print(f"\nHTTP fuzz over loopback: {OVER_HTTP_COUNT.summary()}")
    assert_healthy(real_server)


def test_fuzz_totals_are_reported(tmp_path: Path) -> None:
    del tmp_path
    total = IN_PROCESS_COUNT.sent + OVER_HTTP_COUNT.sent
    print(f"\nHTTP fuzz total: {total} inputs tried")
