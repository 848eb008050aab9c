"""Small reads (GETs of inline bodies, multigets of a few items) are answered in the event
loop, and PUT/DELETE are driven from it with their commits awaited from the committer
thread; everything that could block or run long still goes to a worker thread
(server/app.py `_answer_in_loop`, `_write_in_loop`). Checked in process, on the real app
and store, by counting what reaches the worker pool."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from homeport import config
from homeport.server.app import IN_LOOP_PUT_MAX, HomeportApp, create_app
from homeport.server.handlers import DavRequest
from homeport.services.accounts import Actor
from homeport.store.model import Op
from homeport.wiring import build_services
from tests.conftest import PASSWORD
from tests.faults.harness import fresh_data

with warnings.catch_warnings():  # "use httpx2": not installed here, and httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:Ada\r\nN:;Ada;;;\r\nEND:VCARD\r\n"
BIG = bytes(range(256)) * 40  # 10 KiB: above the inline limit set below, so in a file
PHOTO = "PHOTO;ENCODING=b;TYPE=JPEG:" + "QUJD" * 2000  # makes a vCard of about 8 KiB
CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{uid}\r\n{extra}END:VCARD\r\n"
EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\nDURATION:PT1H\r\n"
    "RRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:daily\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def multiget(hrefs: list[str], kind: str = "addressbook", data: str = "") -> str:
    ns = (
        "urn:ietf:params:xml:ns:carddav"
        if kind == "addressbook"
        else ("urn:ietf:params:xml:ns:caldav")
    )
    element = "address-data" if kind == "addressbook" else "calendar-data"
    refs = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    return (
        f'<C:{kind}-multiget xmlns:D="DAV:" xmlns:C="{ns}"><D:prop><D:getetag/>'
        f"<C:{element}>{data}</C:{element}></D:prop>{refs}</C:{kind}-multiget>"
    )


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


def _report(tc: TestClient, url: str, body: str) -> str:
    r = tc.request("REPORT", url, content=body.encode(), headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    return r.text


def test_a_small_multiget_is_answered_in_the_loop(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    tc, calls = app_and_calls
    text = _report(tc, "/dav/alice/contacts/", multiget(["/dav/alice/contacts/a.vcf"] * 2))
    assert "FN:Ada" in text and text.count("<d:response>") == 1
    assert calls == []
    # a sync-collection may be long: a worker
    sync = '<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level>'
    sync += "<D:prop><D:getetag/></D:prop></D:sync-collection>"
    _report(tc, "/dav/alice/contacts/", sync)
    assert calls == ["REPORT"]


def test_large_multigets_and_bodies_in_files_go_to_a_worker(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    tc, calls = app_and_calls
    names = [f"c{i}" for i in range(101)]
    for uid in names:
        extra = PHOTO + "\r\n" if uid == "c7" else ""
        r = tc.put(f"/dav/alice/contacts/{uid}.vcf", content=CARD.format(uid=uid, extra=extra))
        assert r.status_code == 201, r.text
    calls.clear()
    hrefs = [f"/dav/alice/contacts/{uid}.vcf" for uid in names]

    # 100 inline cards: in the loop
    inline = [h for h in hrefs if "/c7." not in h][:100]
    text = _report(tc, "/dav/alice/contacts/", multiget(inline))
    assert text.count("HTTP/1.1 200 OK") == 100 and calls == []

    # one card in a file (c7, 8 KiB > inline_max): WouldBlock, then the whole multiget
    # in a worker; every card is answered, none turned into an error by the attempt
    text = _report(tc, "/dav/alice/contacts/", multiget(hrefs[:10]))
    assert calls == ["REPORT"]
    assert text.count("HTTP/1.1 200 OK") == 10 and "QUJDQUJD" in text, text[:2000]

    # 101 hrefs: more than the loop takes
    text = _report(tc, "/dav/alice/contacts/", multiget(hrefs))
    assert calls == ["REPORT", "REPORT"] and text.count("HTTP/1.1 200 OK") == 101


def test_an_expanding_calendar_multiget_goes_to_a_worker(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    tc, calls = app_and_calls
    r = tc.put("/dav/alice/calendar/e1.ics", content=EVENT)
    assert r.status_code == 201, r.text
    calls.clear()
    href = ["/dav/alice/calendar/e1.ics"]
    text = _report(tc, "/dav/alice/calendar/", multiget(href, "calendar"))
    assert "RRULE" in text and calls == []
    expand = '<C:expand start="20260101T000000Z" end="20260201T000000Z"/>'
    text = _report(tc, "/dav/alice/calendar/", multiget(href, "calendar", expand))
    assert calls == ["REPORT"]
    assert "RRULE" not in text and text.count("RECURRENCE-ID") == 3


def test_the_if_header_holds_in_the_loop_as_in_a_worker(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    """`dispatch` checks an If header before any method; the loop's answers must too."""
    tc, calls = app_and_calls
    failing = {"If": '(["not-the-etag"])'}
    r = tc.get("/dav/alice/contacts/a.vcf", headers=failing)
    assert r.status_code == 412
    body = multiget(["/dav/alice/contacts/a.vcf"]).encode()
    r = tc.request("REPORT", "/dav/alice/contacts/", content=body, headers=failing)
    assert r.status_code == 412
    etag = tc.get("/dav/alice/contacts/a.vcf").headers["etag"]
    holding = {"If": f"([{etag}])"}
    r = tc.get("/dav/alice/contacts/a.vcf", headers=holding)
    assert r.status_code == 200
    assert calls == []


# -- writes ------------------------------------------------------------------------


def _history(tc: TestClient, coll_path: str, name: str) -> list[Op]:
    store = tc.app.services.store  # type: ignore[attr-defined]
    with store.read() as r:
        coll = r.get_collection("alice", coll_path)
        assert coll is not None
        return [rev.op for rev in r.item_history(coll.id, name)]


def test_puts_and_deletes_take_no_worker(app_and_calls: tuple[TestClient, list[str]]) -> None:
    tc, calls = app_and_calls
    card = CARD.format(uid="w1", extra="")
    r = tc.put("/dav/alice/contacts/w1.vcf", content=card)
    assert r.status_code == 201, r.text
    etag = r.headers["etag"]
    changed = card.replace("FN:w1", "FN:w1 changed")
    r = tc.put("/dav/alice/contacts/w1.vcf", content=changed, headers={"If-Match": etag})
    assert r.status_code == 204 and r.headers["etag"] != etag
    assert tc.get("/dav/alice/contacts/w1.vcf").text == changed
    r = tc.put("/dav/alice/files/note.txt", content=b"small file")  # a plain collection
    assert r.status_code == 201
    assert tc.delete("/dav/alice/contacts/w1.vcf").status_code == 204
    assert tc.get("/dav/alice/contacts/w1.vcf").status_code == 404
    assert _history(tc, "contacts", "w1.vcf") == [Op.PUT, Op.PUT, Op.DELETE]
    # refusals before any commit are answered in the loop too
    assert tc.delete("/dav/alice/contacts/w1.vcf").status_code == 404
    assert tc.put("/dav/alice/contacts/", content=card).status_code == 405
    r = tc.put("/dav/alice/contacts/bad.vcf", content=b"BEGIN:VCARD\r\nnot a card")
    assert r.status_code in (400, 403, 415), r.text
    assert calls == [], "none of these needed a worker thread"


def test_a_refused_put_is_kept_as_a_conflict_from_the_loop(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    """The steps after a refused commit (keeping the refused body) run in the loop too."""
    tc, calls = app_and_calls
    card = CARD.format(uid="u1", extra="NOTE:offline edit\r\n")
    r = tc.put("/dav/alice/contacts/a.vcf", content=card, headers={"If-Match": '"stale"'})
    assert r.status_code == 412
    assert _history(tc, "contacts", "a.vcf") == [Op.PUT, Op.CONFLICT]
    r = tc.delete("/dav/alice/contacts/a.vcf", headers={"If-Match": '"stale"'})
    assert r.status_code == 412
    assert tc.get("/dav/alice/contacts/a.vcf").content == VCARD
    failing = {"If": '(["not-the-etag"])'}  # the If header is checked before the steps
    assert tc.delete("/dav/alice/contacts/a.vcf", headers=failing).status_code == 412
    assert calls == []


def test_a_uid_conflict_from_the_loop_names_the_other_item(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    tc, calls = app_and_calls
    r = tc.put("/dav/alice/contacts/other.vcf", content=VCARD)  # UID u1 is a.vcf's
    assert r.status_code == 409
    assert "<D:href>/dav/alice/contacts/a.vcf</D:href>" in r.text.replace("d:", "D:"), r.text
    assert calls == ["PUT"], "only the conflict's collection URL was read in a worker"
    assert tc.get("/dav/alice/contacts/other.vcf").status_code == 404


def test_writes_that_would_wait_go_to_a_worker(
    app_and_calls: tuple[TestClient, list[str]],
) -> None:
    tc, calls = app_and_calls
    r = tc.put("/dav/alice/files/big2.bin", content=BIG)  # spooled: above inline_max
    assert r.status_code == 201 and calls == ["PUT"]
    assert tc.get("/dav/alice/files/big2.bin").content == BIG
    assert tc.request("MKCOL", "/dav/alice/files/sub/").status_code == 201
    calls.clear()
    # deleting a collection commits from the service: WouldBlock, then a worker
    assert tc.delete("/dav/alice/files/sub/").status_code == 204
    assert calls == ["DELETE"]
    r = tc.request("PROPFIND", "/dav/alice/files/sub/", headers={"Depth": "0"})
    assert r.status_code == 404


def test_a_put_too_long_to_parse_in_the_loop_goes_to_a_worker(tmp_path: Path) -> None:
    """Above IN_LOOP_PUT_MAX (but inline): parsed in a worker, where the loop still gets
    its turns."""
    data = fresh_data(tmp_path, users=("alice",))
    cfg = config.load(overrides={("server", "data"): str(data)}, environ={})
    services = build_services(cfg)
    app: HomeportApp = create_app(services, cfg)
    calls: list[str] = []
    real = app.workers.run

    async def counting(fn: Callable[..., Any], *args: Any) -> Any:
        calls.append(getattr(args[0], "method", "?") if args else "?")
        return await real(fn, *args)

    app.workers.run = counting  # type: ignore[method-assign]
    long_card = CARD.format(uid="long", extra="NOTE:" + "x" * IN_LOOP_PUT_MAX + "\r\n")
    short_card = CARD.format(uid="short", extra="NOTE:" + "x" * 1000 + "\r\n")
    try:
        with TestClient(app) as tc:
            tc.auth = ("alice", PASSWORD)
            tc.request("PROPFIND", "/dav/alice/", headers={"Depth": "0"})  # signs in
            calls.clear()
            assert tc.put("/dav/alice/contacts/s.vcf", content=short_card).status_code == 201
            assert calls == []
            assert tc.put("/dav/alice/contacts/l.vcf", content=long_card).status_code == 201
            assert calls == ["PUT"]
            assert tc.get("/dav/alice/contacts/l.vcf").text == long_card
    finally:
        services.close()


def test_a_cancelled_write_still_runs_all_its_steps(tmp_path: Path) -> None:
    """A request cancelled while its commit is queued (a server stopping) must not leave
    half a write: the commit and the steps after it (here: keeping the refused body as
    a conflict) complete, then the cancellation is raised."""
    data = fresh_data(tmp_path, users=("alice",))
    cfg = config.load(overrides={("server", "data"): str(data)}, environ={})
    services = build_services(cfg)
    app: HomeportApp = create_app(services, cfg)
    store = services.store
    try:
        with TestClient(app) as tc:
            tc.auth = ("alice", PASSWORD)
            assert tc.put("/dav/alice/contacts/a.vcf", content=VCARD).status_code == 201
        req = DavRequest(
            method="PUT",
            path="/dav/alice/contacts/a.vcf",
            headers={"if-match": '"stale"'},
            body=CARD.format(uid="u1", extra="NOTE:edited\r\n").encode(),
            base_url="http://127.0.0.1",
            actor=Actor("alice"),
            max_xml_size=app.max_xml,
            max_object_size=app.max_object,
        )
        held, release = threading.Event(), threading.Event()

        def hold(w: Any) -> None:
            held.set()
            assert release.wait(10)

        async def main() -> None:
            store.submit(hold, lambda result, error: None)
            assert held.wait(10)
            task = asyncio.ensure_future(app._write_in_loop(req))
            await asyncio.sleep(0.05)  # the PUT's commit is queued behind `hold`
            task.cancel()
            await asyncio.sleep(0.05)
            assert not task.done(), "still waiting for its commit"
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        with store.read() as r:
            coll = r.get_collection("alice", "contacts")
            assert coll is not None
            ops = [rev.op for rev in r.item_history(coll.id, "a.vcf")]
        assert ops == [Op.PUT, Op.CONFLICT]
    finally:
        services.close()
