"""vdirsyncer (the real CLI) between local vdir folders and a real `homeport serve`.

One scenario per collection type, both run in the same vdirsyncer invocations:
300 contacts and 300 events start as files, go up in one sync and must arrive byte for
byte; then both sides change (edits, deletions, creations and one conflict) and a
second sync must leave the two sides identical, compared by UID since vdirsyncer
chooses its own file names and hrefs; a third sync must change nothing at all.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from lxml import etree

from tests.conftest import PASSWORD, Server, require_tool

N = 300
NS = {"d": "DAV:", "cs": "http://calendarserver.org/ns/"}
PRODID = "PRODID:-//Homeport tests//vdirsyncer scenario//EN"
NAMES = ["Ada Lovelace", "Zoë Ångström", "李雷", "Grace O'Hara", "Jürgen Müller-Lüdenscheidt"]
BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


# -- generated data ------------------------------------------------------------------------


def fold(line: str) -> str:
    """RFC 5545 3.1 / RFC 6350 3.2: lines of at most 75 octets, never splitting a
    UTF-8 sequence, continued with CRLF + space."""
    out: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append(current)
            current, size, limit = "", 0, 74  # the leading space takes one octet
        current += char
        size += width
    out.append(current)
    return "\r\n ".join(out) + "\r\n"


def lines(*content: str) -> bytes:
    return "".join(fold(line) for line in content).encode()


def uid_for(kind: str, i: int) -> str:
    # Every seventh UID has characters vdirsyncer will not use in an href ('@'), so
    # it picks a random name for it: items must still be matched by UID.
    return f"{kind}-{i:03d}@homeport.test" if i % 7 == 0 else f"{kind}-{i:03d}-homeport"


def vcard(uid: str, i: int, note: str = "") -> bytes:
    name = NAMES[i % len(NAMES)] + f" {i}"
    given, _, family = name.partition(" ")
    content = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        PRODID,
        f"UID:{uid}",
        f"FN:{name}",
        f"N:{family};{given};;;",
        f"EMAIL;TYPE=INTERNET,HOME:person{i}@example.org",
        f"TEL;TYPE=CELL:+49 170 {i:07d}",
    ]
    if i % 3 == 0:
        content.append(f"ADR;TYPE=HOME:;;Hauptstraße {i}\\, Hinterhaus;Köln;;50667;Germany")
    if i % 5 == 0:
        content.append("NOTE:" + "A long note that will need folding\\, twice or more. " * 4)
    if note:
        content.append(f"NOTE:{note}")
    content.append("END:VCARD")
    return lines(*content)


def vevent(uid: str, i: int, note: str = "") -> bytes:
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    content = ["BEGIN:VCALENDAR", "VERSION:2.0", PRODID]
    if i % 4 == 1:
        content += BERLIN.splitlines()
    content += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z"]
    if i % 4 == 0:
        content += [f"DTSTART;VALUE=DATE:2026{month:02d}{day:02d}", "DURATION:P1D"]
    elif i % 4 == 1:
        content += [
            f"DTSTART;TZID=Europe/Berlin:2026{month:02d}{day:02d}T090000",
            f"DTEND;TZID=Europe/Berlin:2026{month:02d}{day:02d}T100000",
            "RRULE:FREQ=WEEKLY;COUNT=10",
            f"EXDATE;TZID=Europe/Berlin:2026{month:02d}{day:02d}T090000",
        ]
    else:
        content += [
            f"DTSTART:2026{month:02d}{day:02d}T{i % 24:02d}0000Z",
            f"DTEND:2026{month:02d}{day:02d}T{i % 24:02d}3000Z",
        ]
    content.append(f"SUMMARY:Event {i} \N{EN DASH} {NAMES[i % len(NAMES)]}")
    if i % 6 == 0:
        content.append("DESCRIPTION:Agenda:\\n1. coffee\\; 2. " + "discussion\\, " * 10)
    if i % 9 == 0:
        content += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:Soon",
            "TRIGGER:-PT15M",
            "END:VALARM",
        ]
    if note:
        content.append(f"COMMENT:{note}")
    content += ["END:VEVENT", "END:VCALENDAR"]
    return lines(*content)


@dataclass(frozen=True)
class Kind:
    """One collection type: its vdirsyncer storage, file extension and generator."""

    name: str
    storage: str
    ext: str
    collection: str

    def body(self, uid: str, i: int, note: str = "") -> bytes:
        return (vcard if self.ext == ".vcf" else vevent)(uid, i, note)


CONTACTS = Kind("contacts", "carddav", ".vcf", "contacts")
EVENTS = Kind("calendar", "caldav", ".ics", "calendar")
KINDS = (CONTACTS, EVENTS)


def uid_of(body: bytes) -> str:
    unfolded = re.sub(rb"\r\n[ \t]", b"", body)
    uids = set(re.findall(rb"^UID:(.*?)\r?$", unfolded, re.MULTILINE))
    assert len(uids) == 1, body
    return uids.pop().decode()


# -- the two sides -------------------------------------------------------------------------


def local_items(folder: Path, ext: str) -> dict[str, tuple[Path, bytes]]:
    """UID -> (file, bytes) of a vdir; every UID once."""
    out: dict[str, tuple[Path, bytes]] = {}
    for path in sorted(folder.iterdir()):
        assert path.suffix == ext, f"unexpected file {path.name}"
        body = path.read_bytes()
        uid = uid_of(body)
        assert uid not in out, f"UID {uid} twice in {folder}"
        out[uid] = (path, body)
    return out


@dataclass(frozen=True)
class Remote:
    href: str
    etag: str
    body: bytes


def server_items(dav: httpx.Client, collection: str) -> dict[str, Remote]:
    """UID -> (href, etag, bytes) of a collection: PROPFIND Depth 1, then GET each."""
    r = dav.request(
        "PROPFIND",
        collection,
        headers={"Depth": "1"},
        content='<propfind xmlns="DAV:"><prop><getetag/><resourcetype/></prop></propfind>',
    )
    assert r.status_code == 207, r.text
    root = etree.fromstring(r.content)
    out: dict[str, Remote] = {}
    for resp in root.iterfind("d:response", NS):
        href = unquote(resp.findtext("d:href", namespaces=NS) or "")
        if href.endswith("/"):
            continue
        etag = resp.findtext(".//d:getetag", namespaces=NS) or ""
        g = dav.get(href)
        assert g.status_code == 200 and g.headers["etag"] == etag, (href, g.status_code)
        uid = uid_of(g.content)
        assert uid not in out, f"UID {uid} twice on the server"
        out[uid] = Remote(href, etag, g.content)
    return out


def ctag(dav: httpx.Client, collection: str) -> str:
    body = '<propfind xmlns="DAV:"><prop><sync-token/></prop></propfind>'
    r = dav.request("PROPFIND", collection, headers={"Depth": "0"}, content=body)
    assert r.status_code == 207, r.text
    return etree.fromstring(r.content).findtext(".//d:sync-token", namespaces=NS) or ""


def bodies_of(items: dict[str, tuple[Path, bytes]] | dict[str, Remote]) -> dict[str, bytes]:
    return {
        uid: value.body if isinstance(value, Remote) else value[1] for uid, value in items.items()
    }


# -- vdirsyncer ----------------------------------------------------------------------------


def write_config(tmp: Path, server: Server) -> Path:
    sections = [f'[general]\nstatus_path = "{tmp / "status"}/"\n']
    for kind in KINDS:
        (tmp / kind.name).mkdir()
        sections.append(
            f'[pair {kind.name}]\na = "{kind.name}_local"\nb = "{kind.name}_remote"\n'
            'collections = null\nconflict_resolution = "a wins"\n'
            f'[storage {kind.name}_local]\ntype = "filesystem"\npath = "{tmp / kind.name}/"\n'
            f'fileext = "{kind.ext}"\n'
            f'[storage {kind.name}_remote]\ntype = "{kind.storage}"\n'
            f'url = "{server.url}/dav/alice/{kind.collection}/"\n'
            f'username = "alice"\npassword = "{PASSWORD}"\n'
        )
    config = tmp / "config"
    config.write_text("\n".join(sections), encoding="utf-8")
    return config


def run_vdirsyncer(config: Path, *args: str, verbosity: str = "ERROR") -> str:
    exe = require_tool("vdirsyncer")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        VDIRSYNCER_CONFIG=str(config),
        HOME=str(config.parent),
        XDG_CONFIG_HOME=str(config.parent / "xdg"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        LC_ALL="C.UTF-8",
        LANG="C.UTF-8",
    )
    proc = subprocess.run(
        [exe, f"--verbosity={verbosity}", *args],
        input="y\n" * 10,  # never waits on a terminal: any prompt gets an answer
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"vdirsyncer {' '.join(args)} failed:\n{output}"
    return output


# -- the scenario --------------------------------------------------------------------------


@pytest.fixture
def dav(server: Server) -> httpx.Client:
    return server.client("alice")


def test_vdirsyncer_two_way_sync(tmp_path: Path, server: Server, dav: httpx.Client) -> None:
    config = write_config(tmp_path, server)
    expected: dict[str, dict[str, bytes]] = {}
    for kind in KINDS:
        expected[kind.name] = {}
        for i in range(N):
            uid = uid_for(kind.name, i)
            body = kind.body(uid, i)
            (tmp_path / kind.name / f"local-{i:03d}{kind.ext}").write_bytes(body)
            expected[kind.name][uid] = body

    run_vdirsyncer(config, "discover")
    run_vdirsyncer(config, "sync")

    # All 600 arrived byte for byte; nothing was rewritten locally.
    remote: dict[str, dict[str, Remote]] = {}
    for kind in KINDS:
        remote[kind.name] = server_items(dav, f"/dav/alice/{kind.collection}/")
        assert bodies_of(remote[kind.name]) == expected[kind.name]
        assert bodies_of(local_items(tmp_path / kind.name, kind.ext)) == expected[kind.name]

    # Both sides change: 0-9 edited on the server, 10-19 locally, 20-24 deleted on the
    # server, 25-29 locally, 30 edited on both sides (the local side wins), and three
    # new items on each side.
    for kind in KINDS:
        want = expected[kind.name]
        srv = remote[kind.name]
        local = local_items(tmp_path / kind.name, kind.ext)
        coll = f"/dav/alice/{kind.collection}/"
        for i in range(10):
            uid = uid_for(kind.name, i)
            body = kind.body(uid, i, note=f"edited on the server {i}")
            r = dav.put(srv[uid].href, content=body, headers={"If-Match": srv[uid].etag})
            assert r.status_code == 204, r.text
            want[uid] = body
        for i in range(10, 20):
            uid = uid_for(kind.name, i)
            want[uid] = kind.body(uid, i, note=f"edited locally {i}")
            local[uid][0].write_bytes(want[uid])
        for i in range(20, 25):
            uid = uid_for(kind.name, i)
            r = dav.delete(srv[uid].href, headers={"If-Match": srv[uid].etag})
            assert r.status_code == 204, r.text
            del want[uid]
        for i in range(25, 30):
            uid = uid_for(kind.name, i)
            local[uid][0].unlink()
            del want[uid]
        uid = uid_for(kind.name, 30)
        r = dav.put(srv[uid].href, content=kind.body(uid, 30, note="server side of a conflict"))
        assert r.status_code == 204, r.text
        want[uid] = kind.body(uid, 30, note="local side of a conflict")
        local[uid][0].write_bytes(want[uid])
        for i in range(N, N + 3):
            uid = uid_for(kind.name, i)
            want[uid] = kind.body(uid, i, note="new on the server")
            r = dav.put(
                f"{coll}new-{i}{kind.ext}", content=want[uid], headers={"If-None-Match": "*"}
            )
            assert r.status_code == 201, r.text
        for i in range(N + 3, N + 6):
            uid = uid_for(kind.name, i)
            want[uid] = kind.body(uid, i, note="new locally")
            (tmp_path / kind.name / f"new-{i}{kind.ext}").write_bytes(want[uid])

    run_vdirsyncer(config, "sync")

    for kind in KINDS:
        want = expected[kind.name]
        assert len(want) == N - 10 + 6
        srv = server_items(dav, f"/dav/alice/{kind.collection}/")
        local = local_items(tmp_path / kind.name, kind.ext)
        assert set(srv) == set(local) == set(want), kind.name
        for uid, body in want.items():
            assert srv[uid].body == body, f"server copy of {uid} differs"
            assert local[uid][1] == body, f"local copy of {uid} differs"

    # A third sync finds nothing to do: no request changes the server, no file is touched.
    before = {
        kind.name: (
            ctag(dav, f"/dav/alice/{kind.collection}/"),
            {
                p.name: (p.stat().st_mtime_ns, p.read_bytes())
                for p in (tmp_path / kind.name).iterdir()
            },
        )
        for kind in KINDS
    }
    output = run_vdirsyncer(config, "sync", verbosity="INFO")
    for action in ("Copying", "Deleting", "conflict"):
        assert action not in output, output
    after = {
        kind.name: (
            ctag(dav, f"/dav/alice/{kind.collection}/"),
            {
                p.name: (p.stat().st_mtime_ns, p.read_bytes())
                for p in (tmp_path / kind.name).iterdir()
            },
        )
        for kind in KINDS
    }
    assert after == before


def test_vdirsyncer_discovers_collections_from_the_server_root(
    tmp_path: Path, server: Server, dav: httpx.Client
) -> None:
    """The usual configuration: the server's address only, collections found by discovery."""
    sections = [f'[general]\nstatus_path = "{tmp_path / "status"}/"\n']
    for name, storage, ext in (("cal", "caldav", ".ics"), ("card", "carddav", ".vcf")):
        sections.append(
            f'[pair {name}]\na = "{name}_local"\nb = "{name}_remote"\n'
            'collections = ["from b"]\n'
            f'[storage {name}_local]\ntype = "filesystem"\npath = "{tmp_path / name}/"\n'
            f'fileext = "{ext}"\n'
            f'[storage {name}_remote]\ntype = "{storage}"\nurl = "{server.url}/"\n'
            f'username = "alice"\npassword = "{PASSWORD}"\n'
        )
    config = tmp_path / "config"
    config.write_text("\n".join(sections), encoding="utf-8")
    todo = lines(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        PRODID,
        "BEGIN:VTODO",
        "UID:todo-1-homeport",
        "DTSTAMP:20260101T000000Z",
        "DUE:20260430T170000Z",
        "SUMMARY:File taxes",
        "END:VTODO",
        "END:VCALENDAR",
    )
    assert dav.put("/dav/alice/tasks/todo-1.ics", content=todo).status_code == 201
    card = vcard("card-1-homeport", 1)
    assert dav.put("/dav/alice/contacts/card-1.vcf", content=card).status_code == 201

    output = run_vdirsyncer(config, "discover", verbosity="INFO")
    for line in ('"calendar" ("Calendar")', '"tasks" ("Tasks")', '"contacts" ("Contacts")'):
        assert line in output, output
    run_vdirsyncer(config, "sync")
    assert sorted(p.name for p in (tmp_path / "cal").iterdir()) == ["calendar", "tasks"]
    assert bodies_of(local_items(tmp_path / "cal" / "tasks", ".ics")) == {"todo-1-homeport": todo}
    assert not list((tmp_path / "cal" / "calendar").iterdir())
    assert bodies_of(local_items(tmp_path / "card" / "contacts", ".vcf")) == {
        "card-1-homeport": card
    }
