"""`replicate`, `restore`, `drill` as scripts use them: real subprocesses, exit codes, output.

They run as `homeport …` until `homeport` registers them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyrage

from homeport.services import Services
from homeport.wiring import open_store
from tests.replication.conftest import Identity, Replica, new_bucket
from tests.replication.seaweed import SeaweedFS
from tests.replication.support import Workload, state_of


def replica_cmd(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    svc = Services.build(open_store(data))
    try:
        w = Workload(svc)
        w.add_user("alice")
        w.contacts("alice", 5)
        w.files("alice", [90_000])
    finally:
        svc.close()
    return data


def test_replicate_restore_drill_on_a_folder(tmp_path: Path, identity: Identity) -> None:
    data = _data(tmp_path)
    root = tmp_path / "nas"
    root.mkdir()
    url = f"file://{root}"
    r = replica_cmd(
        "replicate",
        "--once",
        "--data",
        str(data),
        "--replica",
        url,
        "--recipient",
        identity.recipient,
        "--json",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)["targets"][0]
    assert doc["new_generation"] and doc["lag"]["lag_revisions"] == 0

    dest = tmp_path / "restored"
    r = replica_cmd(
        "restore", "--from", url, "--identity", str(identity.key_file), "--to", str(dest)
    )
    assert r.returncode == 0, r.stderr
    assert "every body re-hashed" in r.stdout and "metadata" in r.stderr
    assert state_of(dest / "homeport.sqlite3", full=False) == state_of(
        data / "homeport.sqlite3", full=False
    )

    again = replica_cmd(
        "restore", "--from", url, "--identity", str(identity.key_file), "--to", str(dest)
    )
    assert again.returncode == 4 and "not empty" in again.stderr
    assert "Traceback" not in again.stderr

    stranger = tmp_path / "stranger.txt"
    stranger.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    wrong = replica_cmd(
        "restore", "--from", url, "--identity", str(stranger), "--to", str(tmp_path / "x")
    )
    assert wrong.returncode != 0 and "other recipients" in wrong.stderr
    assert "Traceback" not in wrong.stderr and not (tmp_path / "x").exists()

    drill = replica_cmd("drill", "--data", str(data), "--identity", str(identity.key_file))
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert "PASSED" in drill.stdout
    record = json.loads((data / "replication" / "drills.json").read_text())
    assert record["last"][url]["ok"] is True and record["last"][url]["items"] >= 6
    assert not any((data / "replication" / "drill-scratch").iterdir())

    # Damage the replica: the drill fails loudly and says so in its record.
    blob = next(root.glob("*/blobs/*/*"))
    blob.chmod(0o644)
    blob.unlink()
    failed = replica_cmd(
        "drill", "--data", str(data), "--identity", str(identity.key_file), "--json"
    )
    assert failed.returncode == 1
    result = json.loads(failed.stdout)["drills"][0]
    assert not result["ok"] and "missing" in result["error"]
    record = json.loads((data / "replication" / "drills.json").read_text())
    assert record["last"][url]["ok"] is False and len(record["history"]) == 2


def test_config_file_targets_and_a_passphrase_identity(
    tmp_path: Path, identity: Identity, seaweed: SeaweedFS
) -> None:
    data = _data(tmp_path)
    root = tmp_path / "nas"
    root.mkdir()
    bucket = new_bucket(seaweed)
    config = tmp_path / "homeport.toml"
    config.write_text(
        f'[server]\ndata = "{data}"\n\n'
        f'[replication]\nrecipients = ["{identity.recipient}"]\n\n'
        f'[replica.nas]\nurl = "file://{root}"\n\n'
        f'[replica.offsite]\nurl = "s3://{bucket}/cli-config"\nlock = "auto"\n'
    )
    env = seaweed.env()
    r = replica_cmd("replicate", "--once", "--config", str(config), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("shipped to entry") == 2

    protected = tmp_path / "key.age"
    protected.write_bytes(pyrage.passphrase.encrypt(identity.key_file.read_bytes(), "s3same"))
    env_pw = {**env, "HOMEPORT_IDENTITY_PASSPHRASE": "s3same"}
    # (a passphrase costs seconds of scrypt: the protected key is used once)
    for name, key in (("nas", protected), ("offsite", identity.key_file)):
        d = replica_cmd(
            "drill",
            "--config",
            str(config),
            "--identity",
            str(key),
            "--target",
            name,
            env=env_pw,
        )
        assert d.returncode == 0 and "PASSED" in d.stdout, d.stdout + d.stderr
    dest = tmp_path / "from-s3"
    r = replica_cmd(
        "restore",
        "--config",
        str(config),
        "--from",
        "offsite",
        "--identity",
        str(identity.key_file),
        "--to",
        str(dest),
        "--json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["revisions"] == state_of(data / "homeport.sqlite3")["log"][-1][0]
    assert "AWS_SECRET" not in r.stderr and "homeport-test-secret" not in r.stdout + r.stderr


def test_one_replicator_per_data_directory(tmp_path: Path, identity: Identity) -> None:
    data = _data(tmp_path)
    root = tmp_path / "nas"
    root.mkdir()
    url = f"file://{root}"
    args = ["--data", str(data), "--replica", url, "--recipient", identity.recipient]
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeport", "replicate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "replicating" in proc.stderr.readline()
        busy = replica_cmd("replicate", "--once", *args)
        assert busy.returncode == 1 and "another replicator" in busy.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert replica_cmd("replicate", "--once", *args).returncode == 0


def test_usage_errors(tmp_path: Path, identity: Identity, file_replica: Replica) -> None:
    r = replica_cmd("replicate", "--once", "--data", str(tmp_path / "none"))
    assert r.returncode == 2 and "holds no Homeport data" in r.stderr
    data = _data(tmp_path)
    r = replica_cmd("replicate", "--once", "--data", str(data), "--recipient", identity.recipient)
    assert r.returncode == 2 and "no replica target" in r.stderr
    r = replica_cmd(
        "replicate",
        "--once",
        "--data",
        str(data),
        "--replica",
        "s3://key:secret@bucket/x",
        "--recipient",
        identity.recipient,
    )
    assert r.returncode == 2 and "credentials do not go into" in r.stderr
    assert "key:secret" not in r.stderr
    r = replica_cmd(
        "replicate", "--once", "--data", str(data), "--replica", file_replica.settings.url
    )
    assert r.returncode == 2 and "recipient" in r.stderr
