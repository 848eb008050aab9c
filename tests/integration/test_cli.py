"""The `homeport` command as scripts use it: real subprocesses, exit codes, no tracebacks."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import PASSWORD, free_port, homeport, start_server


def test_user_lifecycle(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    r = homeport("user", "add", "carol", "--password-stdin", "--data", data, stdin="pw1\n")
    assert "created user carol" in r.stdout
    dup = homeport(
        "user", "add", "carol", "--password-stdin", "--data", data, stdin="x\n", check=False
    )
    assert dup.returncode == 4 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    users = json.loads(homeport("user", "list", "--json", "--data", data).stdout)
    assert [u["name"] for u in users] == ["carol"]
    homeport("user", "passwd", "carol", "--password-stdin", "--data", data, stdin="pw2\n")
    gen = homeport("user", "add", "dave", "--generate", "--data", data)
    assert "password: " in gen.stdout
    homeport("user", "remove", "dave", "--yes", "--data", data)
    missing = homeport("user", "remove", "dave", "--yes", "--data", data, check=False)
    assert missing.returncode == 3 and "no user" in missing.stderr
    bad = homeport(
        "user", "add", "../evil", "--password-stdin", "--data", data, stdin="x\n", check=False
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    empty = homeport(
        "user", "add", "erin", "--password-stdin", "--data", data, stdin="\n", check=False
    )
    assert empty.returncode == 2


def test_check_passes_then_names_damage(tmp_path: Path) -> None:
    data = tmp_path / "d"
    srv = start_server(data, users=("alice",))
    try:
        import httpx

        with httpx.Client(base_url=srv.url, auth=("alice", PASSWORD)) as c:
            body = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:A\r\nEND:VCARD\r\n"
            assert c.put("/dav/alice/contacts/a.vcf", content=body).status_code == 201
            c.request("MKCOL", "/dav/alice/files/")
            assert c.put("/dav/alice/files/big.bin", content=b"z" * 200_000).status_code == 201
    finally:
        srv.stop()
    ok = homeport("check", "--data", str(data))
    assert "all invariants hold" in ok.stdout
    blob = next((data / "blobs").glob("*/*/*"))
    raw = bytearray(blob.read_bytes())
    raw[100] ^= 0xFF
    blob.write_bytes(bytes(raw))
    with sqlite3.connect(data / "homeport.sqlite3") as db:
        db.execute(
            "UPDATE blobs SET data = X'00' WHERE data IS NOT NULL "
            "AND hash IN (SELECT content_hash FROM log WHERE name = 'a.vcf')"
        )
    bad = homeport("check", "--json", "--data", str(data), check=False)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert not report["ok"] and len(report["problems"]) == 2
    assert all("does not match" in p for p in report["problems"])


def test_check_on_empty_dir_is_usage_error(tmp_path: Path) -> None:
    r = homeport("check", "--data", str(tmp_path / "nothing"), check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_bad_config_is_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nbogus = 1\n")
    r = homeport("user", "list", "--config", str(cfg), check=False)
    assert r.returncode == 2 and "unknown setting server.bogus" in r.stderr


def test_first_start_explains_how_to_add_a_user(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "homeport",
            "serve",
            "--data",
            str(tmp_path / "d"),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        seen = ""
        assert proc.stdout is not None
        while "homeport user add" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "homeport user add" in seen
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_config_reference_command() -> None:
    out = homeport("config", "reference").stdout
    assert "HOMEPORT_SERVER_DATA" in out
