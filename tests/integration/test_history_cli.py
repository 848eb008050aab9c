"""`homeport history|trash|undelete|rollback|status` as scripts use them: real
subprocesses against a data directory that a running server is serving at the same time."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, Server, homeport, start_server

DAVX5 = "DAVx5/4.3-ose (2024/01/01; dav4jvm; okhttp/4.12) Android/14"
PHONE = "PhoneReset/2.0"


def vcf(uid: str, fn: str) -> bytes:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nEND:VCARD\r\n".encode()


def ics(uid: str, summary: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T100000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "data", users=("alice", "bob"))
    try:
        yield srv
    finally:
        srv.stop()


def client(server: Server, agent: str = DAVX5) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, auth=("alice", PASSWORD), headers={"User-Agent": agent}, timeout=30
    )


def hp(server: Server, *args: str, check: bool = True) -> str:
    result = homeport(*args, "--data", str(server.data), check=check)
    assert "Traceback" not in result.stderr
    return result.stdout


def hp_json(server: Server, *args: str) -> object:
    return json.loads(hp(server, *args, "--json"))


def fail(server: Server, *args: str) -> tuple[int, str]:
    result = homeport(*args, "--data", str(server.data), check=False)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr and result.stderr.strip(), result.stderr
    return result.returncode, result.stderr


def test_history_show_and_restore_while_serving(server: Server) -> None:
    with client(server) as c:
        url = "/dav/alice/contacts/ada.vcf"
        assert c.put(url, content=vcf("ada", "Ada")).status_code == 201
        assert c.put(url, content=vcf("ada", "Ada Lovelace")).status_code == 204
        item = ["--user", "alice", "--collection", "contacts", "--item", "ada.vcf"]
        history = hp_json(server, "history", *item)
        assert isinstance(history, dict)
        revs = history["revisions"]
        assert [r["op"] for r in revs] == ["put", "put"]
        assert [r["current"] for r in revs] == [False, True]
        assert revs[0]["client"] == DAVX5 and revs[0]["summary"] == "created: FN 'Ada'"
        assert revs[1]["summary"] == "FN: 'Ada' → 'Ada Lovelace'"
        assert history == hp_json(server, "history", "list", *item)
        table = hp(server, "history", *item)
        assert "Ada Lovelace" in table and "current" in table and "DAVx5" in table

        first = str(revs[0]["seq"])
        shown = subprocess.run(
            [sys.executable, "-m", "homeport", "history", "show", "--data", str(server.data),
             *item, "--seq", first],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        assert shown.stdout == vcf("ada", "Ada"), "the exact bytes, CRLF and all"
        restored = hp(server, "history", "restore", *item, "--seq", first)
        assert "restored alice/contacts/ada.vcf to revision" in restored
        # The server sees the CLI's write at once.
        assert c.get(url).content == vcf("ada", "Ada")
        after = hp_json(server, "history", *item)
        assert isinstance(after, dict)
        assert after["revisions"][-1]["client"] == "homeport-cli"


def test_trash_and_undelete(server: Server) -> None:
    with client(server) as c, client(server, PHONE) as phone:
        c.put("/dav/alice/contacts/a.vcf", content=vcf("a", "Ada"))
        c.put("/dav/alice/calendar/e.ics", content=ics("e", "Standup"))
        c.request("MKCOL", "/dav/alice/files/")
        c.put("/dav/alice/files/notes.txt", content=b"keep me")
        assert phone.delete("/dav/alice/contacts/a.vcf").status_code == 204
        assert phone.delete("/dav/alice/calendar/e.ics").status_code == 204
        assert phone.delete("/dav/alice/files/").status_code == 204

        trash = hp_json(server, "trash", "--user", "alice")
        assert isinstance(trash, dict)
        assert [(e["collection"], e["name"], e["label"]) for e in trash["items"]] == [
            ("calendar", "e.ics", "Standup"),
            ("contacts", "a.vcf", "Ada"),
        ]
        assert {e["client"] for e in trash["items"]} == {PHONE}
        assert [(d["path"], d["items"], d["client"]) for d in trash["collections"]] == [
            ("files", 1, PHONE)
        ]
        only = hp_json(server, "trash", "--user", "alice", "--collection", "contacts")
        assert isinstance(only, dict) and [e["name"] for e in only["items"]] == ["a.vcf"]
        text = hp(server, "trash", "--user", "alice")
        assert "Standup" in text and "PhoneReset/2.0" in text and "files" in text

        out = hp(
            server, "undelete", "--user", "alice", "--collection", "contacts", "--item", "a.vcf"
        )
        assert "undeleted alice/contacts/a.vcf" in out
        assert c.get("/dav/alice/contacts/a.vcf").content == vcf("a", "Ada")
        back = hp_json(server, "undelete", "--user", "alice", "--collection", "files")
        assert isinstance(back, dict) and back["collection"]["path"] == "files"
        assert c.get("/dav/alice/files/notes.txt").content == b"keep me"
        code, err = fail(server, "undelete", "--user", "alice", "--collection", "files")
        assert code == 1 and "is not deleted" in err
        code, err = fail(
            server, "undelete", "--user", "alice", "--collection", "contacts", "--item", "zz.vcf"
        )
        assert code == 3 and "zz.vcf" in err
        assert "is empty" in hp(server, "trash", "--user", "bob")


def test_rollback_dry_run_apply_and_undo(server: Server) -> None:
    with client(server) as c, client(server, PHONE) as phone:
        for i in range(3):
            c.put(f"/dav/alice/contacts/{i}.vcf", content=vcf(f"u{i}", f"Person {i}"))
        status = hp_json(server, "status")
        assert isinstance(status, dict)
        position = status["storage"]["log_length"]
        c.put("/dav/alice/contacts/0.vcf", content=vcf("u0", "Person Zero"))
        phone.delete("/dav/alice/contacts/1.vcf")
        c.put("/dav/alice/contacts/new.vcf", content=vcf("new", "Newcomer"))
        before = {n: c.get(f"/dav/alice/contacts/{n}").content for n in ("0.vcf", "new.vcf")}

        args = ["rollback", "--user", "alice", "--to", f"@{position}"]
        dry = hp(server, *args, "--dry-run")
        assert "Dry run, nothing changed" in dry
        assert "restore 2 item(s), delete 1 item(s)" in dry
        assert "revert      contacts/0.vcf" in dry and "bring back  contacts/1.vcf" in dry
        assert "delete      contacts/new.vcf" in dry
        assert f"--to @{position}" in dry
        assert c.get("/dav/alice/contacts/new.vcf").status_code == 200, "dry run changed nothing"
        plan = hp_json(server, *args, "--dry-run")
        assert isinstance(plan, dict)
        assert plan["dry_run"] and not plan["applied"] and plan["undo_command"] is None
        assert plan["counts"]["restore"] == 2 and plan["counts"]["delete"] == 1

        out = hp(server, *args)
        assert "restored 2 item(s), deleted 1 item(s)" in out
        undo = out.strip().splitlines()[-1].strip()
        data = shlex.quote(str(server.data))
        assert undo.startswith(f"homeport rollback --data {data} --user alice --to @")
        assert c.get("/dav/alice/contacts/0.vcf").content == vcf("u0", "Person 0")
        assert c.get("/dav/alice/contacts/1.vcf").content == vcf("u1", "Person 1")
        assert c.get("/dav/alice/contacts/new.vcf").status_code == 404

        again = hp(server, *args)
        assert "Nothing to roll back" in again

        words = shlex.split(undo)
        undone = json.loads(homeport(*words[1:], "--json").stdout)
        assert undone["applied"] and undone["counts"]["delete"] == 1
        assert undone["undo_command"].startswith(f"homeport rollback --data {data} --user alice")
        for name, body in before.items():
            assert c.get(f"/dav/alice/contacts/{name}").content == body
        assert c.get("/dav/alice/contacts/1.vcf").status_code == 404

        # A collection on its own, by relative time: the calendar has nothing to undo.
        scoped = hp(server, "rollback", "--user", "alice", "--collection", "calendar",
                    "--to", "0.5 seconds ago")  # fmt: skip
        assert "Nothing to roll back: alice/calendar" in scoped


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--user", "alice", "--to", "whenever"], 2, "cannot read the time"),
        (["--user", "alice", "--to", "2001-01-01 10:00"], 2, "before the account"),
        (["--user", "alice", "--to", "2999-01-01T00:00:00Z"], 2, "in the future"),
        (["--user", "alice", "--to", "@99999999"], 2, "in the future"),
        (["--user", "alice", "--to", "@x"], 2, "log position"),
        (["--user", "nobody", "--to", "1 min ago"], 3, "no user"),
        (["--user", "alice", "--to", "1 min ago", "--collection", "nope"], 3, "nope"),
        (["--user", "alice"], 2, "--to"),
    ],
)
def test_rollback_refuses_bad_input(
    shared_server: Server, args: list[str], code: int, message: str
) -> None:
    server = shared_server
    before = hp_json(server, "status")
    got, err = fail(server, "rollback", *args)
    assert got == code and message in err
    assert hp_json(server, "status") == before, "nothing changed"


def test_history_errors_are_sentences(shared_server: Server, tmp_path: Path) -> None:
    server = shared_server
    item = ["--user", "alice", "--collection", "contacts", "--item", "none.vcf"]
    code, err = fail(server, "history", *item)
    assert code == 3 and "never held an item 'none.vcf'" in err
    code, err = fail(server, "history", "show", *item, "--seq", "1")
    assert code == 3
    code, err = fail(server, "history", "--user", "alice")
    assert code == 2 and "--collection" in err
    code, err = fail(server, "history", "--user", "alice", "show", "--seq", "1")
    assert code == 2 and "after the subcommand" in err
    code, err = fail(server, "trash", "--user", "alice", "--collection", "nope")
    assert code == 3
    empty = homeport("trash", "--user", "alice", "--data", str(tmp_path / "nothing"), check=False)
    assert empty.returncode == 2 and "holds no Homeport data" in empty.stderr
    assert not (tmp_path / "nothing").exists(), "a typo in --data creates nothing"


def test_status_counts_and_alerts(server: Server) -> None:
    with client(server) as c, client(server, PHONE) as phone:
        for i in range(12):
            c.put(f"/dav/alice/contacts/{i}.vcf", content=vcf(f"u{i}", f"P {i}"))
        for i in range(12):
            phone.delete(f"/dav/alice/contacts/{i}.vcf")
    status = hp_json(server, "status")
    assert isinstance(status, dict)
    assert status["accounts"]["totals"]["users"] == 2
    assert status["accounts"]["totals"]["items"] == 0
    assert status["storage"]["last_write_client"] == PHONE
    assert status["storage"]["log_length"] == 6 + 24
    assert status["replication"] == {"targets": [], "lag_seconds": None}
    [alert] = status["alerts"]
    data = shlex.quote(str(server.data))
    assert alert["client"] == PHONE and alert["deleted"] == 12
    assert alert["rollback_command"].startswith(f"homeport rollback --data {data} --user alice")
    text = hp(server, "status")
    assert "deleted 12 of 12 item(s)" in text and alert["rollback_command"] in text

    # The alert's command undoes the deletion, while the server runs.
    words = shlex.split(alert["rollback_command"])
    assert homeport(*words[1:]).returncode == 0
    with client(server) as c:
        assert c.get("/dav/alice/contacts/11.vcf").content == vcf("u11", "P 11")
