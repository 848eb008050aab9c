"""The scenario from the history issue, end to end against a real `homeport serve`.

One client (the `caldav` library for the calendar, plain CardDAV requests for the address
book) syncs 1,000 events and 1,000 contacts and keeps its sync tokens. A second client
(another User-Agent: a phone that was reset) deletes everything. The mass-deletion alert
names the command that undoes it. One `homeport rollback` command, run while the server
keeps serving, brings every item back byte for byte under the same href (so with the same
UID); the first client's incremental sync sees them as present, not deleted. The undo
command the rollback printed deletes them again, and the sync says so.
"""

from __future__ import annotations

import shlex
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import httpx
import pytest
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from lxml import etree

from tests.conftest import PASSWORD, Server, homeport, start_server

T = TypeVar("T")
N = 1000
WORKERS = 8
SYNCER = "SyncClient/1.0 (python-caldav; homeport scenario)"
PHONE = "PhoneReset/2.0 (factory settings)"
NS = {"d": "DAV:"}


def now(value: T | Coroutine[Any, Any, T]) -> T:
    """The value of a call on the synchronous caldav client."""
    assert not isinstance(value, Coroutine)
    return value


def vcard(i: int) -> bytes:
    uid = f"{uuid.uuid4()}@scenario.test"
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Person {i:04d}\r\n"
        f"N:{i:04d};Person;;;\r\nEMAIL;TYPE=INTERNET:person{i}@example.org\r\n"
        f"TEL;TYPE=CELL:+1555{i:07d}\r\nEND:VCARD\r\n"
    ).encode()


def vevent(i: int) -> str:
    day = 1 + i % 28
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Homeport scenario//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uuid.uuid4()}@scenario.test\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:202612{day:02d}T{8 + i % 10:02d}0000Z\r\n"
        f"DTEND:202612{day:02d}T{9 + i % 10:02d}0000Z\r\n"
        f"SUMMARY:Event {i:04d}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def parallel(fn: Callable[[T], Any], items: Iterable[T]) -> list[Any]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(fn, items))


def sync_report(client: httpx.Client, url: str, token: str) -> tuple[str, set[str], set[str]]:
    """RFC 6578 sync-collection: (new token, hrefs reported present, hrefs reported gone)."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    r = client.request("REPORT", url, content=body, headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    root = etree.fromstring(r.content)
    present: set[str] = set()
    gone: set[str] = set()
    for resp in root.findall("d:response", NS):
        href = unquote(resp.findtext("d:href", namespaces=NS) or "")
        status = resp.findtext("d:status", namespaces=NS) or ""
        (gone if " 404 " in status else present).add(href)
    return root.findtext("d:sync-token", namespaces=NS) or "", present, gone


def run_rollback(*args: str) -> str:
    """Run a printed `homeport rollback ...` command line and return its output."""
    words = shlex.split(args[0]) if len(args) == 1 else list(args)
    assert words[:2] == ["homeport", "rollback"], words
    result = homeport(*words[1:])
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "data", users=("alice",))
    try:
        yield srv
    finally:
        srv.stop()


def test_one_command_undoes_a_reset_phone(server: Server) -> None:
    started = time.monotonic()
    base = f"{server.url}/dav/alice"
    contacts_url, calendar_url = f"{base}/contacts/", f"{base}/calendar/"
    syncer = httpx.Client(
        auth=("alice", PASSWORD), headers={"User-Agent": SYNCER}, timeout=60,
        limits=httpx.Limits(max_connections=WORKERS),
    )  # fmt: skip
    phone = httpx.Client(
        auth=("alice", PASSWORD), headers={"User-Agent": PHONE}, timeout=60,
        limits=httpx.Limits(max_connections=WORKERS),
    )  # fmt: skip

    # -- the first client fills the account and syncs ----------------------------------
    def put_contact(i: int) -> str:
        href = f"/dav/alice/contacts/{uuid.uuid4()}.vcf"
        r = syncer.put(server.url + href, content=vcard(i), headers={"If-None-Match": "*"})
        assert r.status_code == 201, r.text
        return href

    contact_hrefs = parallel(put_contact, range(N))

    local = threading.local()

    def calendar() -> Calendar:
        if not hasattr(local, "cal"):
            local.dav = DAVClient(
                url=server.url + "/",
                username="alice",
                password=PASSWORD,
                headers={"User-Agent": SYNCER},
                timeout=60,
            )
            local.cal = now(local.dav.calendar(url=calendar_url))
        cal: Calendar = local.cal
        return cal

    def save_event(i: int) -> str:
        event = now(calendar().save_event(vevent(i)))
        return unquote(urlparse(str(event.url)).path)

    event_hrefs = parallel(save_event, range(N))
    assert len(set(contact_hrefs)) == len(set(event_hrefs)) == N

    with DAVClient(
        url=server.url + "/", username="alice", password=PASSWORD, headers={"User-Agent": SYNCER}
    ) as dav:
        cal = now(dav.calendar(url=calendar_url))
        synced = now(cal.objects_by_sync_token(load_objects=False, disable_fallback=True))
        assert len(list(synced)) == N
        event_token = synced.sync_token
        contact_token, present, _ = sync_report(syncer, contacts_url, "")
        assert present == set(contact_hrefs)

        all_hrefs = contact_hrefs + event_hrefs

        def get(href: str) -> bytes | None:
            r = syncer.get(server.url + href)
            if r.status_code == 404:
                return None
            assert r.status_code == 200, r.text
            return r.content

        original = dict(zip(all_hrefs, parallel(get, all_hrefs), strict=True))
        assert all(original.values())
        filled = time.monotonic()

        # -- a reset phone deletes everything ---------------------------------------------
        time.sleep(0.02)
        moment = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        time.sleep(0.02)

        def delete(href: str) -> None:
            assert phone.delete(server.url + href).status_code == 204

        parallel(delete, all_hrefs)
        assert parallel(get, all_hrefs) == [None] * (2 * N)

        # -- the alert names the command that undoes it ----------------------------------
        trash = server.client().get("/api/v1/users/alice/trash").json()
        first_deleted = {
            path: min(e["deleted_seq"] for e in trash["items"] if e["collection"] == path)
            for path in ("contacts", "calendar")
        }
        assert {e["client"] for e in trash["items"]} == {PHONE}
        alerts = server.client().get("/api/v1/alerts").json()["alerts"]
        by_collection = {a["collection"]: a for a in alerts}
        assert set(by_collection) == {"contacts", "calendar"}, alerts
        for path, alert in by_collection.items():
            assert alert["client"] == PHONE and alert["deleted_by"] == "alice"
            assert alert["deleted"] == N and alert["collection_size"] == N
            assert alert["rollback_command"] == (
                f"homeport rollback --data DIR --user alice --collection {path} "
                f"--to @{first_deleted[path] - 1}"
            )
        status = homeport("status", "--data", str(server.data), "--json").stdout
        assert (
            f"homeport rollback --data {shlex.quote(str(server.data))} --user alice "
            f"--collection contacts --to @{first_deleted['contacts'] - 1}"
        ) in status

        # -- one command, while the server runs, brings everything back ------------------
        out = run_rollback("homeport", "rollback", "--data", str(server.data),
                           "--user", "alice", "--to", moment)  # fmt: skip
        assert f"restored {2 * N} item(s), deleted 0 item(s)" in out, out
        undo = out.strip().splitlines()[-1].strip()
        assert undo.startswith(f"homeport rollback --data {shlex.quote(str(server.data))} ")
        assert undo.split()[-2:][0] == "--to" and undo.split()[-1].startswith("@"), undo

        assert dict(zip(all_hrefs, parallel(get, all_hrefs), strict=True)) == original
        for url, hrefs in ((contacts_url, contact_hrefs), (calendar_url, event_hrefs)):
            listing = syncer.request("PROPFIND", url, headers={"Depth": "1"})
            members = set(etree.fromstring(listing.content).xpath("//d:href/text()", namespaces=NS))
            assert {unquote(h) for h in members} - {urlparse(url).path} == set(hrefs)

        delta = now(
            cal.objects_by_sync_token(
                sync_token=event_token, load_objects=False, disable_fallback=True
            )
        )
        assert not delta.deleted_urls
        assert {unquote(urlparse(str(o.url)).path) for o in delta} == set(event_hrefs)
        contact_token2, present, gone = sync_report(syncer, contacts_url, contact_token)
        assert present == set(contact_hrefs) and not gone
        # The client never saw the deletion: its copy is current again, nothing to do.
        assert now(synced.sync()) == ([], [])
        restored = time.monotonic()

        # -- the printed undo command deletes them again, and sync says so ---------------
        out = run_rollback(undo)
        assert f"restored 0 item(s), deleted {2 * N} item(s)" in out, out
        assert parallel(get, all_hrefs) == [None] * (2 * N)
        updated, deleted = now(synced.sync())
        assert updated == []
        assert {unquote(urlparse(str(o.url)).path) for o in deleted} == set(event_hrefs)
        _, present, gone = sync_report(syncer, contacts_url, contact_token2)
        assert gone == set(contact_hrefs) and not present

    syncer.close()
    phone.close()
    fill, restore, undo_s = filled - started, restored - filled, time.monotonic() - restored
    print(f"scenario: fill {fill:.1f}s, delete + restore {restore:.1f}s, undo {undo_s:.1f}s")
