"""Guards against a real `homeport serve`: a client that deletes too much raises one alert
whose command undoes it, and an edit refused by If-Match is kept, not lost."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import httpx

from homeport.services.accounts import Actor
from homeport.services.guards import Alert, Guards
from homeport.store.model import Op
from homeport.wiring import open_store
from tests.conftest import PASSWORD, Server, start_server

ADMIN = Actor("root", "pytest", is_admin=True)
BOOK = "/dav/alice/contacts/"


def vcf(uid: str, fn: str) -> bytes:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nEND:VCARD\r\n".encode()


def client(server: Server, agent: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, auth=("alice", PASSWORD), timeout=30, headers={"User-Agent": agent}
    )


def alerts(data: Path) -> list[Alert]:
    """Read the alerts the way `homeport status` does: from the data directory, beside
    the running server."""
    store = open_store(data)
    try:
        return Guards(store).alerts(ADMIN, include_acknowledged=True)
    finally:
        store.close()


def test_a_phone_reset_raises_one_alert_and_its_command_undoes_it(server: Server) -> None:
    bodies = {f"c{i:02}.vcf": vcf(f"uid-{i}", f"Person {i}") for i in range(30)}
    with client(server, "DAVx5/4.3 (Android)") as laptop:
        for name, body in bodies.items():
            r = laptop.put(BOOK + name, content=body, headers={"Content-Type": "text/vcard"})
            assert r.status_code == 201
    with client(server, "PhoneReset/1.0") as phone:
        for name in list(bodies)[:20]:
            assert phone.delete(BOOK + name).status_code == 204
    (alert,) = alerts(server.data)
    assert (alert.owner, alert.user, alert.client) == ("alice", "alice", "PhoneReset/1.0")
    assert (alert.deleted, alert.collection_size, alert.collection_path) == (20, 30, "contacts")
    assert " --data DIR " in alert.rollback_command

    words = shlex.split(alert.command(server.data))
    assert words[:2] == ["homeport", "rollback"]
    run = subprocess.run(
        [sys.executable, "-m", "homeport", *words[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    with client(server, "DAVx5/4.3 (Android)") as laptop:
        for name, body in bodies.items():
            r = laptop.get(BOOK + name)
            assert r.status_code == 200 and r.content == body, name
    assert len(alerts(server.data)) == 1, "the rollback restored; it deleted nothing"


def test_an_edit_refused_by_if_match_is_kept_as_a_conflict(server: Server) -> None:
    url = BOOK + "ada.vcf"
    with client(server, "Thunderbird/128") as desk, client(server, "DAVx5/4.3") as phone:
        first = desk.put(url, content=vcf("ada", "Ada"), headers={"If-None-Match": "*"})
        assert first.status_code == 201
        etag = first.headers["etag"]
        assert phone.put(url, content=vcf("ada", "Ada King"), headers={"If-Match": etag}).is_success
        lost = desk.put(url, content=vcf("ada", "Ada Lovelace"), headers={"If-Match": etag})
        assert lost.status_code == 412
        assert desk.get(url).content == vcf("ada", "Ada King"), "the server's version stands"
    store = open_store(server.data)
    try:
        with store.read() as r:
            coll = r.get_collection("alice", "contacts")
            assert coll is not None
            revs = r.item_history(coll.id, "ada.vcf")
            assert [x.op for x in revs] == [Op.PUT, Op.PUT, Op.CONFLICT]
            assert revs[-1].client == "Thunderbird/128" and revs[-1].content_hash
            assert store.read_body(revs[-1].content_hash, r) == vcf("ada", "Ada Lovelace")
    finally:
        store.close()


def test_serve_refuses_a_bad_retention_setting_and_runs_without_the_task(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[retention]\nkeep_all_days = 30\ndaily_days = 10\n")
    run = subprocess.run(
        [sys.executable, "-m", "homeport", "serve", "--data", str(tmp_path / "d"),
         "--config", str(bad), "--listen", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "daily_days" in run.stderr and "Traceback" not in run.stderr
    off = tmp_path / "off.toml"
    off.write_text("[retention]\nprune_interval_hours = 0\n")
    srv = start_server(tmp_path / "data", extra=("--config", str(off)))
    try:
        with srv.client() as c:
            assert c.request("PROPFIND", BOOK, headers={"Depth": "0"}).status_code == 207
    finally:
        srv.stop()
