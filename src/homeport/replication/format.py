"""The replica layout and records, exactly as docs/replica-format.md describes them.

Object names (relative to a target's root), the manifests of snapshots and segments, and
the JSON-lines encoding of a segment. Nothing here does I/O or cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from homeport.replication.errors import ReplicaCorrupt

FORMAT = 1
"""The version of docs/replica-format.md that this code writes and reads."""

SCHEMA_VERSIONS = (1, 2)
"""Metadata schema versions (docs/storage.md) a restore knows how to replay into (after
the backend brought the snapshot up to the current one)."""

SUFFIX = ".zst.age"
GENERATION_OBJECT = "generation.json" + SUFFIX

_HEX16 = r"[0-9a-f]{16}"
_GENERATION_RE = re.compile(rf"^{_HEX16}$")
_SNAPSHOT_RE = re.compile(rf"^snapshots/({_HEX16})\.(db|json){re.escape(SUFFIX)}$")
_SEGMENT_RE = re.compile(rf"^segments/({_HEX16})-({_HEX16})\.jsonl{re.escape(SUFFIX)}$")
_STATE_RE = re.compile(rf"^state/({_HEX16})-({_HEX16})\.jsonl{re.escape(SUFFIX)}$")
_BLOB_RE = re.compile(rf"^blobs/([0-9a-f]{{2}})/([0-9a-f]{{64}}){re.escape(SUFFIX)}$")

MAX_SEGMENT_ENTRIES = 10_000
MAX_SEGMENT_INLINE_BYTES = 8 * 1024 * 1024

LOG_FIELDS = (
    "seq",
    "at_us",
    "user",
    "client",
    "op",
    "collection_id",
    "name",
    "content_hash",
    "size",
    "content_type",
    "uid",
    "component",
    "start_us",
    "end_us",
    "pruned",
)
LOG_DEFAULTS: dict[str, Any] = {"pruned": 0}
"""Log fields that older segments may lack, and their value then."""
COLLECTION_FIELDS = (
    "id",
    "owner",
    "path",
    "kind",
    "created_seq",
    "sync_seq",
    "displayname",
    "description",
    "color",
    "order",
    "components",
    "deleted_seq",
)
USER_FIELDS = ("name", "password_hash", "is_admin", "created_us")


# -- names ------------------------------------------------------------------------


def new_generation_id() -> str:
    return secrets.token_hex(8)


def is_generation_id(text: str) -> bool:
    return bool(_GENERATION_RE.match(text))


def seq_hex(seq: int) -> str:
    return f"{seq:016x}"


def snapshot_db_name(seq: int) -> str:
    return f"snapshots/{seq_hex(seq)}.db{SUFFIX}"


def snapshot_manifest_name(seq: int) -> str:
    return f"snapshots/{seq_hex(seq)}.json{SUFFIX}"


def segment_name(first: int, last: int) -> str:
    return f"segments/{seq_hex(first)}-{seq_hex(last)}.jsonl{SUFFIX}"


def state_name(position: int, number: int) -> str:
    """A state object: row images shipped at `position` with no new log entry."""
    return f"state/{seq_hex(position)}-{seq_hex(number)}.jsonl{SUFFIX}"


def parse_state_name(rel: str) -> tuple[int, int] | None:
    """(position, number) for a state object name, else None."""
    m = _STATE_RE.match(rel)
    return (int(m.group(1), 16), int(m.group(2), 16)) if m else None


def blob_name(blob_key: bytes, content_hash: str) -> str:
    """The object of a body: keyed by an HMAC of its hash, so names reveal no content."""
    digest = hmac.new(blob_key, bytes.fromhex(content_hash), hashlib.sha256).hexdigest()
    return f"blobs/{digest[:2]}/{digest}{SUFFIX}"


def parse_snapshot_name(rel: str) -> tuple[int, str] | None:
    """(seq, "db" | "json") for a snapshot object name, else None."""
    m = _SNAPSHOT_RE.match(rel)
    return (int(m.group(1), 16), m.group(2)) if m else None


def parse_segment_name(rel: str) -> tuple[int, int] | None:
    """(first, last) for a segment object name, else None."""
    m = _SEGMENT_RE.match(rel)
    if not m:
        return None
    first, last = int(m.group(1), 16), int(m.group(2), 16)
    return (first, last) if first <= last else None


def is_blob_name(rel: str) -> bool:
    m = _BLOB_RE.match(rel)
    return bool(m) and m is not None and m.group(2).startswith(m.group(1))


# -- records ----------------------------------------------------------------------


@dataclass(frozen=True)
class BlobRef:
    """An external body and the object that holds it."""

    hash: str
    size: int
    object: str

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.hash, "size": self.size, "object": self.object}

    @classmethod
    def from_json(cls, doc: Any, where: str) -> BlobRef:
        try:
            ref = cls(str(doc["hash"]), int(doc["size"]), str(doc["object"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplicaCorrupt(f"{where}: a blob reference is malformed") from exc
        if not _is_sha256(ref.hash) or not is_blob_name(ref.object) or ref.size < 0:
            raise ReplicaCorrupt(f"{where}: a blob reference is malformed")
        return ref


@dataclass(frozen=True)
class GenerationInfo:
    generation: str
    created_at_us: int
    homeport_version: str
    source_epoch: str | None = None
    source_restored_from_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "record": "generation",
            "format": FORMAT,
            "generation": self.generation,
            "created_at_us": self.created_at_us,
            "homeport_version": self.homeport_version,
            "source": {
                "epoch": self.source_epoch,
                "restored_from_seq": self.source_restored_from_seq,
            },
        }

    @classmethod
    def from_json(cls, doc: Any, where: str) -> GenerationInfo:
        _check_record(doc, "generation", where)
        try:
            source = doc.get("source") or {}
            return cls(
                str(doc["generation"]),
                int(doc["created_at_us"]),
                str(doc.get("homeport_version", "")),
                source.get("epoch"),
                source.get("restored_from_seq"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReplicaCorrupt(f"{where}: the generation record is malformed") from exc


@dataclass(frozen=True)
class SnapshotManifest:
    generation: str
    seq: int
    at_us: int
    taken_at_us: int
    schema_version: int
    db_object: str
    db_size: int
    db_sha256: str
    blobs: tuple[BlobRef, ...]
    state_seq: int = 0  # state objects numbered up to this are already in the snapshot

    def to_json(self) -> dict[str, Any]:
        return {
            "record": "snapshot",
            "format": FORMAT,
            "generation": self.generation,
            "seq": self.seq,
            "at_us": self.at_us,
            "taken_at_us": self.taken_at_us,
            "schema_version": self.schema_version,
            "database": {"object": self.db_object, "size": self.db_size, "sha256": self.db_sha256},
            "blobs": [b.to_json() for b in self.blobs],
            "state_seq": self.state_seq,
        }

    @classmethod
    def from_json(cls, doc: Any, where: str) -> SnapshotManifest:
        _check_record(doc, "snapshot", where)
        try:
            db = doc["database"]
            manifest = cls(
                str(doc["generation"]),
                int(doc["seq"]),
                int(doc["at_us"]),
                int(doc["taken_at_us"]),
                int(doc["schema_version"]),
                str(db["object"]),
                int(db["size"]),
                str(db["sha256"]),
                tuple(BlobRef.from_json(b, where) for b in doc["blobs"]),
                int(doc.get("state_seq", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplicaCorrupt(f"{where}: the snapshot manifest is malformed") from exc
        if manifest.db_object != snapshot_db_name(manifest.seq):
            raise ReplicaCorrupt(f"{where}: the snapshot manifest names the wrong database")
        return manifest


@dataclass
class Segment:
    """One log segment: its manifest fields and its records, in the order they apply."""

    generation: str
    first_seq: int
    last_seq: int
    first_at_us: int
    last_at_us: int
    read_at_us: int
    state: str  # "diff", "full" or "none"
    schema_version: int
    blobs: list[BlobRef] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    inline: dict[str, bytes] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)
    collections: list[dict[str, Any]] = field(default_factory=list)
    dead_props: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    dead_props_removed: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return segment_name(self.first_seq, self.last_seq)

    @property
    def is_state_only(self) -> bool:
        return self.last_seq < self.first_seq

    def header(self) -> dict[str, Any]:
        return {
            "record": "segment",
            "format": FORMAT,
            "generation": self.generation,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "first_at_us": self.first_at_us,
            "last_at_us": self.last_at_us,
            "read_at_us": self.read_at_us,
            "entries": len(self.log),
            "state": self.state,
            "schema_version": self.schema_version,
            "blobs": [b.to_json() for b in self.blobs],
        }


def _lines(segment: Segment) -> Iterator[dict[str, Any]]:
    yield segment.header()
    for row in segment.log:
        yield {"record": "log", **{k: row[k] for k in LOG_FIELDS}}
    for content_hash, data in segment.inline.items():
        yield {
            "record": "inline",
            "hash": content_hash,
            "size": len(data),
            "data": base64.b64encode(data).decode("ascii"),
        }
    for row in segment.collections:
        yield {"record": "collection", **{k: row[k] for k in COLLECTION_FIELDS}}
    for row in segment.users:
        yield {"record": "user", **{k: row[k] for k in USER_FIELDS}}
    for name in segment.users_removed:
        yield {"record": "user_removed", "name": name}
    for cid, name, prop, value in segment.dead_props:
        yield {
            "record": "dead_prop",
            "collection_id": cid,
            "name": name,
            "prop": prop,
            "value": base64.b64encode(value).decode("ascii"),
        }
    for cid, name, prop in segment.dead_props_removed:
        yield {"record": "dead_prop_removed", "collection_id": cid, "name": name, "prop": prop}


def encode_segment(segment: Segment) -> bytes:
    """The JSON-lines plaintext of a segment, closed by its `end` record."""
    out = [json.dumps(line, separators=(",", ":"), ensure_ascii=False) for line in _lines(segment)]
    out.append(json.dumps({"record": "end", "lines": len(out)}, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode("utf-8")


def decode_segment(data: bytes, where: str) -> Segment:
    """Parse and check a segment's plaintext; ReplicaCorrupt with the reason otherwise."""
    try:
        lines = [json.loads(line) for line in data.decode("utf-8").splitlines() if line]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplicaCorrupt(f"{where}: not valid JSON lines") from exc
    if not lines or not isinstance(lines[-1], dict) or lines[-1].get("record") != "end":
        raise ReplicaCorrupt(f"{where}: the segment is incomplete (no end record)")
    if lines[-1].get("lines") != len(lines) - 1:
        raise ReplicaCorrupt(f"{where}: the segment's line count does not match its end record")
    head = lines[0]
    _check_record(head, "segment", where)
    try:
        seg = Segment(
            generation=str(head["generation"]),
            first_seq=int(head["first_seq"]),
            last_seq=int(head["last_seq"]),
            first_at_us=int(head["first_at_us"]),
            last_at_us=int(head["last_at_us"]),
            read_at_us=int(head["read_at_us"]),
            state=str(head["state"]),
            schema_version=int(head["schema_version"]),
            blobs=[BlobRef.from_json(b, where) for b in head["blobs"]],
        )
        for line in lines[1:-1]:
            _decode_line(seg, line)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplicaCorrupt(f"{where}: a record is malformed ({exc})") from exc
    if seg.state not in ("diff", "full", "none"):
        raise ReplicaCorrupt(f"{where}: unknown state mode {seg.state!r}")
    expected = list(range(seg.first_seq, seg.last_seq + 1))
    if [row["seq"] for row in seg.log] != expected or head.get("entries") != len(expected):
        raise ReplicaCorrupt(f"{where}: the log entries do not run from first_seq to last_seq")
    return seg


def _decode_line(seg: Segment, line: dict[str, Any]) -> None:
    kind = line["record"]
    if kind == "log":
        seg.log.append({k: line[k] if k in line else LOG_DEFAULTS[k] for k in LOG_FIELDS})
    elif kind == "inline":
        data = base64.b64decode(line["data"], validate=True)
        if hashlib.sha256(data).hexdigest() != line["hash"] or len(data) != line["size"]:
            raise ValueError(f"inline body {str(line['hash'])[:12]} does not match its hash")
        seg.inline[str(line["hash"])] = data
    elif kind == "collection":
        seg.collections.append({k: line[k] for k in COLLECTION_FIELDS})
    elif kind == "user":
        seg.users.append({k: line[k] for k in USER_FIELDS})
    elif kind == "user_removed":
        seg.users_removed.append(str(line["name"]))
    elif kind == "dead_prop":
        value = base64.b64decode(line["value"], validate=True)
        seg.dead_props.append(
            (int(line["collection_id"]), str(line["name"]), str(line["prop"]), value)
        )
    elif kind == "dead_prop_removed":
        seg.dead_props_removed.append(
            (int(line["collection_id"]), str(line["name"]), str(line["prop"]))
        )
    else:
        raise ValueError(f"unknown record {kind!r}")


def encode_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplicaCorrupt(f"{where}: not valid JSON") from exc


def _check_record(doc: Any, kind: str, where: str) -> None:
    if not isinstance(doc, dict) or doc.get("record") != kind:
        raise ReplicaCorrupt(f"{where}: not a {kind} record")
    version = doc.get("format")
    if not isinstance(version, int):
        raise ReplicaCorrupt(f"{where}: the record has no format version")
    if version > FORMAT:
        raise ReplicaCorrupt(
            f"{where}: written in replica format {version}; this Homeport reads up to {FORMAT} "
            "(upgrade Homeport to restore it)"
        )


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def unique_blobs(refs: Iterable[BlobRef]) -> dict[str, BlobRef]:
    """By content hash, first reference wins (equal hashes name equal objects)."""
    out: dict[str, BlobRef] = {}
    for ref in refs:
        out.setdefault(ref.hash, ref)
    return out
