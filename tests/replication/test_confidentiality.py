"""Nothing readable leaves the machine: no content, no names, no hashes, in any object or
object name; and a person can decrypt any object with the standard `age` tool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import zstandard

from homeport.replication import format as fmt
from homeport.replication.shipper import Replicator
from homeport.services import Services
from tests.conftest import require_tool
from tests.replication.conftest import Identity, Replica
from tests.replication.support import Workload


def _replicated(services: Services, replica: Replica, identity: Identity) -> Workload:
    w = Workload(services)
    w.add_user("alice")
    w.add_user("bartholomew")
    w.contacts("alice", 8)
    w.events("bartholomew", 3)
    w.files("alice", [70_000, 90_000])
    with Replicator(services.store, replica.replication(identity.recipient)) as rep:
        rep.replicate_once()
        w.edits("alice")
        w.contacts("bartholomew", 2)
        rep.replicate_once(force_snapshot=True)
    return w


def test_no_plaintext_in_the_replica(
    services: Services, replica: Replica, identity: Identity
) -> None:
    w = _replicated(services, replica, identity)
    secrets = w.secrets()
    objects = replica.raw_objects()
    assert len(objects) > 5
    needles = [s.encode() for s in secrets.words] + [
        # hashes as hex (as they appear in the metadata) and as raw bytes
        *(h.encode() for h in secrets.hashes),
        *(bytes.fromhex(h) for h in secrets.hashes),
        b"BEGIN:VCARD",
        b"BEGIN:VCALENDAR",
        b"SQLite format 3",
        b"argon2",
    ]
    for key, raw in objects.items():
        assert raw.startswith(b"age-encryption.org/v1\n"), key
        for needle in needles:
            assert needle not in raw, f"{needle[:40]!r} readable in {key}"
        lowered = key.lower()
        for word in secrets.words:
            assert word.lower() not in lowered, f"{word!r} in the object name {key}"
        for h in secrets.hashes:
            assert h[:16] not in key, f"a content hash in the object name {key}"


def test_age_cli_decrypts_by_hand(
    services: Services, replica: Replica, identity: Identity, tmp_path: Path
) -> None:
    """docs/replica-format.md, "Decrypting by hand": age, then zstd, then plain JSON lines
    or a SQLite file; a blob's plaintext hashes to the name its manifest gives."""
    age = require_tool("age")
    w = _replicated(services, replica, identity)
    objects = replica.raw_objects()

    def by_hand(key: str) -> bytes:
        sealed = tmp_path / "object.age"
        sealed.write_bytes(objects[key])
        out = subprocess.run(
            [age, "--decrypt", "--identity", str(identity.key_file), str(sealed)],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        return zstandard.ZstdDecompressor().stream_reader(out).read()

    segment_key = next(k for k in sorted(objects) if "/segments/" in k)
    lines = [json.loads(line) for line in by_hand(segment_key).splitlines()]
    assert lines[0]["record"] == "segment" and lines[-1]["record"] == "end"
    assert any(line["record"] == "log" for line in lines)
    names = {line["name"] for line in lines if line["record"] == "log"}
    assert any(name.startswith("uid-") for name in names)

    db_key = next(k for k in objects if k.endswith(".db" + fmt.SUFFIX))
    assert by_hand(db_key).startswith(b"SQLite format 3\x00")

    manifest_key = next(k for k in objects if k.endswith(".json" + fmt.SUFFIX) and "snapshots" in k)
    manifest = json.loads(by_hand(manifest_key))
    blob = manifest["blobs"][0]
    gen = manifest["generation"]
    import hashlib

    assert hashlib.sha256(by_hand(f"{gen}/{blob['object']}")).hexdigest() == blob["hash"]
    assert blob["hash"] in w.secrets().hashes
