"""Small GETs are answered in the event loop; everything that could block still goes to
a worker thread (server/app.py `_answer_in_loop`). Checked in process, on the real app
and store, by counting what reaches the worker pool."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from homeport import config
from homeport.server.app import HomeportApp, create_app
from homeport.wiring import build_services
from tests.conftest import PASSWORD
from tests.faults.harness import fresh_data

with warnings.catch_warnings():  # "use httpx2": not installed here, and httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:Ada\r\nN:;Ada;;;\r\nEND:VCARD\r\n"
BIG = bytes(range(256)) * 40  # 10 KiB: above the inline limit set below, so in a file


@pytest.fixture
def app_and_calls(tmp_path: Path) -> Iterator[tuple[TestClient, list[str]]]:
    data = fresh_data(tmp_path, users=("alice",))
    cfg = config.load(
        overrides={("server", "data"): str(data), ("storage", "inline_max"): 4096}, environ={}
    )
    services = build_services(cfg)
    app: HomeportApp = create_app(services, cfg)
    calls: list[str] = []
    real = app.workers.run

    async def counting(fn: Callable[..., Any], *args: Any) -> Any:
        req = args[0] if args else None
        calls.append(getattr(req, "method", getattr(fn, "__name__", "?")))
        return await real(fn, *args)

    app.workers.run = counting  # type: ignore[method-assign]
    try:
        with TestClient(app) as tc:
            tc.auth = ("alice", PASSWORD)
            r = tc.put("/dav/alice/contacts/a.vcf", content=VCARD)
            assert r.status_code == 201, r.text
            assert tc.request("MKCOL", "/dav/alice/files/").status_code == 201
            r = tc.put("/dav/alice/files/big.bin", content=BIG)
            assert r.status_code == 201, r.text
            calls.clear()
            yield tc, calls
    finally:
        services.close()


def test_an_inline_item_is_answered_without_a_worker(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    tc, calls = app_and_calls
    r = tc.get("/dav/alice/contacts/a.vcf")
    assert r.status_code == 200 and r.content == VCARD
    etag = r.headers["etag"]
    assert r.headers["x-content-type-options"] == "nosniff"
    r = tc.head("/dav/alice/contacts/a.vcf")
    assert r.status_code == 200 and r.headers["etag"] == etag
    r = tc.get("/dav/alice/contacts/a.vcf", headers={"If-None-Match": etag})
    assert r.status_code == 304
    r = tc.get("/dav/alice/contacts/nothing.vcf")
    assert r.status_code == 404
    assert calls == [], "these needed no worker thread"


def test_what_could_block_still_goes_to_a_worker(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    tc, calls = app_and_calls
    r = tc.get("/dav/alice/files/big.bin")  # the body is in a file: WouldBlock, then a worker
    assert r.status_code == 200 and r.content == BIG
    assert calls == ["GET"]
    r = tc.head("/dav/alice/files/big.bin")  # no body to read: answered in the loop
    assert r.status_code == 200 and r.headers["content-length"] == str(len(BIG))
    assert calls == ["GET"]
    r = tc.get("/dav/alice/contacts/")  # a listing can be long
    assert r.status_code == 200
    assert calls == ["GET", "GET"]
    r = tc.request("PROPFIND", "/dav/alice/contacts/a.vcf", headers={"Depth": "0"})
    assert r.status_code == 207
    assert calls == ["GET", "GET", "PROPFIND"]
