"""The replica layout and records (docs/replica-format.md): names, segments, manifests."""

from __future__ import annotations

import hashlib
import json

import pytest

from homeport.replication import format as fmt
from homeport.replication.errors import ReplicaCorrupt


def _segment(first: int = 5, n: int = 3) -> fmt.Segment:
    body = b"BEGIN:VCARD\r\nEND:VCARD\r\n"
    h = hashlib.sha256(body).hexdigest()
    log = [
        {
            "seq": first + i,
            "at_us": 1000 + i,
            "user": "alice",
            "client": "test",
            "op": "put",
            "collection_id": 1,
            "name": f"{i}.vcf",
            "content_hash": h,
            "size": len(body),
            "content_type": "text/vcard",
            "uid": None,
            "component": "VCARD",
            "start_us": None,
            "end_us": None,
            "pruned": 0,
        }
        for i in range(n)
    ]
    seg = fmt.Segment("0123456789abcdef", first, first + n - 1, 1000, 1000 + n - 1, 2000, "diff", 2)
    seg.log = log
    seg.inline = {h: body}
    seg.users = [{"name": "alice", "password_hash": "x", "is_admin": False, "created_us": 1}]
    seg.users_removed = ["bob"]
    seg.dead_props = [(1, "", "{urn:x}p", b"<p/>")]
    seg.dead_props_removed = [(1, "", "{urn:x}q")]
    return seg


def test_names_sort_by_sequence_and_parse_back() -> None:
    names = [fmt.segment_name(a, b) for a, b in ((1, 9), (10, 255), (256, 4096))]
    assert names == sorted(names)
    assert fmt.parse_segment_name(names[1]) == (10, 255)
    assert (
        fmt.parse_segment_name("segments/0000000000000009-0000000000000001.jsonl.zst.age") is None
    )
    assert fmt.parse_snapshot_name(fmt.snapshot_db_name(1024)) == (1024, "db")
    assert fmt.snapshot_manifest_name(1024) == "snapshots/0000000000000400.json.zst.age"


def test_blob_names_hide_the_content_hash() -> None:
    h = hashlib.sha256(b"a photo").hexdigest()
    a = fmt.blob_name(b"k" * 32, h)
    b = fmt.blob_name(b"j" * 32, h)
    assert a != b and h not in a and h[:8] not in a
    assert fmt.is_blob_name(a)
    assert not fmt.is_blob_name(a.replace("blobs/", "blobs/zz", 1))


def test_segment_round_trip() -> None:
    seg = _segment()
    back = fmt.decode_segment(fmt.encode_segment(seg), "x")
    assert back.log == seg.log and back.inline == seg.inline
    assert back.users == seg.users and back.users_removed == seg.users_removed
    assert back.dead_props == seg.dead_props
    assert back.dead_props_removed == seg.dead_props_removed
    assert (back.first_seq, back.last_seq, back.state) == (5, 7, "diff")


def test_older_segments_without_pruned_read_as_kept() -> None:
    lines = fmt.encode_segment(_segment()).decode().splitlines()
    docs = [json.loads(line) for line in lines]
    for doc in docs:
        doc.pop("pruned", None)
    data = "\n".join(json.dumps(d) for d in docs).encode()
    assert all(row["pruned"] == 0 for row in fmt.decode_segment(data, "x").log)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda ls: ls[:-1], "incomplete"),
        (lambda ls: ls[:2] + ls[3:], "line count"),
        (
            lambda ls: [ls[0], *ls[2:-1], json.dumps({"record": "end", "lines": len(ls) - 2})],
            "first_seq",
        ),
        (lambda ls: [ls[0].replace('"format":1', '"format":9'), *ls[1:]], "upgrade Homeport"),
        (lambda ls: [ls[0], ls[1].replace('"put"', '"put', 1), *ls[2:]], "JSON"),
    ],
)
def test_damaged_segments_are_refused(damage: object, message: str) -> None:
    lines = fmt.encode_segment(_segment()).decode().splitlines()
    data = "\n".join(damage(lines)).encode()  # type: ignore[operator]
    with pytest.raises(ReplicaCorrupt, match=message):
        fmt.decode_segment(data, "segments/x")


def test_inline_bodies_must_match_their_hash() -> None:
    text = fmt.encode_segment(_segment()).decode()
    bad = text.replace('"data":"', '"data":"QUJD', 1)
    with pytest.raises(ReplicaCorrupt, match="does not match"):
        fmt.decode_segment(bad.encode(), "x")


def test_manifest_round_trip() -> None:
    h = hashlib.sha256(b"x").hexdigest()
    ref = fmt.BlobRef(h, 1, fmt.blob_name(b"k" * 32, h))
    m = fmt.SnapshotManifest("0123456789abcdef", 7, 1, 2, 2, fmt.snapshot_db_name(7), 10, h, (ref,))
    assert fmt.SnapshotManifest.from_json(m.to_json(), "x") == m
    doc = m.to_json()
    doc["database"]["object"] = fmt.snapshot_db_name(8)
    with pytest.raises(ReplicaCorrupt, match="wrong database"):
        fmt.SnapshotManifest.from_json(doc, "x")
