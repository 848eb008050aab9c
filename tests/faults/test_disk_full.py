"""Disk full: the data directory on a small tmpfs that the test mounts (as root).

Writes fail with 507 Insufficient Storage (or succeed durably when they fit in space
already allocated), nothing already stored is damaged, reads and `homeport check`
keep working, a restart on the full disk works, and writes succeed again once space
returns.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.faults.harness import assert_healthy, check, fresh_data, launcher

SIZE = "8m"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    why = ""
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root"
    else:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
        )
        why = r.stderr.strip() if r.returncode else ""
    if why:
        if os.environ.get("HOMEPORT_REQUIRE_ALL"):
            pytest.fail(f"the disk-full test cannot mount a tmpfs: {why}")
        pytest.skip(f"cannot mount a tmpfs: {why}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def vcard(uid: str, note: int = 300) -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Full {uid}\r\nN:Full;{uid};;;\r\n"
        f"NOTE:{'z' * note}\r\nEND:VCARD\r\n"
    ).encode()


def fill(path: Path) -> int:
    """Write a ballast file until the filesystem refuses; returns its size."""
    chunk = b"\0" * 65536
    written = 0
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(chunk)
            except OSError:
                break
        # Fill the last partial block too.
        for size in (4096, 512, 1):
            while True:
                try:
                    written += fh.write(b"\0" * size)
                except OSError:
                    break
    return written


def test_disk_full_answers_507_and_damages_nothing(small_fs: Path) -> None:
    data = fresh_data(small_fs, users=("alice",))
    with launcher() as starter:
        server = starter.start(data, log=small_fs.parent / "server.log")
        stored: dict[str, bytes] = {}
        with server.client() as c:
            assert c.request("MKCOL", "/dav/alice/files/").status_code == 201
            for i in range(3):
                body = os.urandom(300_000)
                assert c.put(f"/dav/alice/files/p{i}.jpg", content=body).status_code == 201
                stored[f"/dav/alice/files/p{i}.jpg"] = body
            for i in range(20):
                body = vcard(f"before-{i}")
                assert c.put(f"/dav/alice/contacts/b{i}.vcf", content=body).status_code == 201
                stored[f"/dav/alice/contacts/b{i}.vcf"] = body

        ballast = small_fs / "ballast"
        assert fill(ballast) > 0

        with server.client() as c:
            # A large body needs new blocks: it must be refused, and leave nothing behind.
            r = c.put("/dav/alice/files/big.jpg", content=os.urandom(400_000))
            assert r.status_code == 507, (r.status_code, r.text)
            assert c.get("/dav/alice/files/big.jpg").status_code == 404
            # Small writes may still fit in pages the database already owns; each answer
            # must be 507 or a real, durable success.
            accepted: dict[str, bytes] = {}
            refused = 0
            for i in range(60):
                body = vcard(f"full-{i}", note=2000)
                url = f"/dav/alice/contacts/f{i}.vcf"
                r = c.put(url, content=body)
                assert r.status_code in (201, 507), (r.status_code, r.text)
                if r.status_code == 201:
                    accepted[url] = body
                else:
                    refused += 1
            assert refused > 0, "a full disk never refused a write"
            for method, url, headers, content in (
                ("MKCOL", "/dav/alice/newdir/", {}, b""),
                ("DELETE", "/dav/alice/contacts/b0.vcf", {}, b""),
                (
                    "MOVE",
                    "/dav/alice/contacts/b1.vcf",
                    {"Destination": "/dav/alice/contacts/moved.vcf"},
                    b"",
                ),
                (
                    "PROPPATCH",
                    "/dav/alice/contacts/",
                    {},
                    b'<propertyupdate xmlns="DAV:"><set><prop><displayname>'
                    + b"d" * 50_000
                    + b"</displayname></prop></set></propertyupdate>",
                ),
            ):
                r = c.request(method, url, headers=headers, content=content)
                assert r.status_code in (201, 204, 207, 507), (method, r.status_code, r.text)
                if method in ("DELETE", "MOVE") and r.status_code in (201, 204):
                    stored.pop(url)
            # Many writers at once on a full disk: each gets its own clean answer.
            statuses: list[int] = []

            def writer(n: int) -> None:
                with server.client() as wc:
                    for k in range(5):
                        body = vcard(f"conc-{n}-{k}", note=3000)
                        rr = wc.put(f"/dav/alice/contacts/conc-{n}-{k}.vcf", content=body)
                        statuses.append(rr.status_code)
                        if rr.status_code == 201:
                            accepted[f"/dav/alice/contacts/conc-{n}-{k}.vcf"] = body

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert set(statuses) <= {201, 507}, statuses
            # Everything stored before (and everything acknowledged since) reads back exactly.
            for url, body in {**stored, **accepted}.items():
                r = c.get(url)
                assert r.status_code == 200 and r.content == body, url
            assert_healthy(server)
        assert not list((data / "staging").iterdir()), "a refused body left a staging file"
        report = check(data)
        assert report["ok"], report

        # A restart on the full disk works and serves what is stored.
        server.kill()
        server = starter.start(data, log=small_fs.parent / "server.log")
        with server.client() as c:
            for url, body in {**stored, **accepted}.items():
                r = c.get(url)
                assert r.status_code == 200 and r.content == body, url

            ballast.unlink()  # space returns
            body = os.urandom(400_000)
            assert c.put("/dav/alice/files/big.jpg", content=body).status_code == 201
            assert c.get("/dav/alice/files/big.jpg").content == body
            assert c.put("/dav/alice/contacts/after.vcf", content=vcard("after")).status_code in (
                201,
                204,
            )
            assert c.request("MKCOL", "/dav/alice/newdir2/").status_code == 201
            for url, body in {**stored, **accepted}.items():
                assert c.get(url).content == body, url
        server.stop()
        log = (small_fs.parent / "server.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    report = check(data)
    assert report["ok"], report


def test_sqlite_full_mid_batch_stores_nothing_it_refused(small_fs: Path) -> None:
    """Group commit under a full disk: concurrent writers share a failing commit; each is
    answered 507 or 201, and a 201 is on disk after a SIGKILL."""
    data = fresh_data(small_fs, users=("alice",))
    with launcher() as starter:
        server = starter.start(data, log=small_fs.parent / "server.log")
        fill(small_fs / "ballast")
        accepted: dict[str, bytes] = {}
        lock = threading.Lock()

        def writer(n: int) -> None:
            with httpx.Client(base_url=server.url, auth=("alice", PASSWORD), timeout=30) as wc:
                for k in range(8):
                    body = vcard(f"mb-{n}-{k}", note=1500)
                    url = f"/dav/alice/contacts/mb-{n}-{k}.vcf"
                    r = wc.put(url, content=body)
                    assert r.status_code in (201, 507), r.text
                    if r.status_code == 201:
                        with lock:
                            accepted[url] = body

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        server.kill()
        server = starter.start(data, log=small_fs.parent / "server.log")
        with server.client() as c:
            for url, body in accepted.items():
                r = c.get(url)
                assert r.status_code == 200 and r.content == body, url
            r = c.request(
                "PROPFIND",
                "/dav/alice/contacts/",
                headers={"Depth": "1"},
                content=b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
            )
            assert r.status_code == 207
            assert r.text.count("<d:response>") == len(accepted) + 1
    assert check(data)["ok"]
