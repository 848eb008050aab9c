"""The invariant checker behind `homeport check` (docs/storage.md, "Invariants")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from homeport.errors import NotFound
from homeport.store.core import Store
from homeport.store.interfaces import MetadataReader
from homeport.store.model import Op


@dataclass
class CheckReport:
    """What `check` found. `problems` are plain sentences; empty means all is well."""

    log_entries: int = 0
    items: int = 0
    blobs_checked: int = 0
    bytes_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(store: Store, verify_contents: bool = True) -> CheckReport:
    """Verify every invariant; never modifies anything."""
    report = CheckReport()
    integrity = getattr(store.meta, "integrity_check", None)
    if integrity is not None:
        for line in integrity():
            report.problems.append(f"metadata database damaged: {line}")
        if report.problems:
            return report

    with store.read() as r:
        newest: dict[tuple[int, str], tuple[int, bool, str | None]] = {}
        pruned_puts: set[int] = set()
        referenced: set[str] = set()
        collections: set[int] = set()
        expected = 1
        after = 0
        while True:
            batch = r.log(after, limit=10_000)
            if not batch:
                break
            for rev in batch:
                report.log_entries += 1
                if rev.seq != expected:
                    report.problems.append(
                        f"change log has a gap: expected sequence {expected}, found {rev.seq}"
                    )
                expected = rev.seq + 1
                collections.add(rev.collection_id)
                if rev.op in (Op.PUT, Op.DELETE):
                    deleted = rev.op is Op.DELETE
                    newest[(rev.collection_id, rev.name)] = (
                        rev.seq,
                        deleted,
                        None if deleted else rev.content_hash,
                    )
                if rev.op in (Op.PUT, Op.CONFLICT):
                    if not rev.content_hash:
                        report.problems.append(f"log entry {rev.seq} has no content hash")
                    elif rev.pruned:
                        # The retention policy dropped this body: nothing to verify,
                        # unless it is an item's current state (checked below).
                        pruned_puts.add(rev.seq)
                    else:
                        referenced.add(rev.content_hash)
                elif rev.pruned:
                    report.problems.append(
                        f"log entry {rev.seq} ({rev.op.value}) is marked pruned, "
                        "but only bodies can be pruned"
                    )
            after = batch[-1].seq

        for cid in sorted(collections):
            if r.get_collection_by_id(cid) is None:
                report.problems.append(f"log names collection {cid}, which does not exist")

        index: dict[tuple[int, str], tuple[int, bool, str | None]] = {}
        for cid, name, seq, deleted, content_hash in r.item_rows():
            index[(cid, name)] = (seq, deleted, None if deleted else content_hash)
            if not deleted:
                report.items += 1
        for key, state in newest.items():
            got = index.get(key)
            if got != state:
                report.problems.append(
                    f"current-state index disagrees with the log for item {key[1]!r} in "
                    f"collection {key[0]}: log says {_describe(state)}, index says "
                    f"{_describe(got)}"
                )
        for key, (seq, deleted, _) in newest.items():
            if not deleted and seq in pruned_puts:
                report.problems.append(
                    f"item {key[1]!r} in collection {key[0]} is current at sequence {seq}, "
                    "but that revision is marked pruned: its body may be gone"
                )
        for key in index.keys() - newest.keys():
            report.problems.append(
                f"current-state index has item {key[1]!r} in collection {key[0]} "
                "that the log never wrote"
            )

        known = {h: (size, inline) for h, size, inline in r.blob_refs()}
        for content_hash in sorted(referenced):
            if content_hash not in known:
                report.problems.append(f"blob {content_hash[:16]} is referenced but unrecorded")
                continue
            size, inline = known[content_hash]
            if inline:
                data = r.get_inline_blob(content_hash) or b""
                ok = hashlib.sha256(data).hexdigest() == content_hash
                report.bytes_checked += len(data)
            else:
                ok = _check_external(store, content_hash, report, verify_contents)
            report.blobs_checked += 1
            if not ok:
                where = "inline" if inline else "in the blob store"
                report.problems.append(
                    f"blob {content_hash[:16]} ({where}, {size} bytes) is missing or "
                    f"does not match its hash; {_referrers(r, content_hash, newest)}"
                )
    return report


MAX_NAMED = 10
"""A damaged blob's problem line names at most this many of the revisions holding it."""


def _referrers(
    r: MetadataReader,
    content_hash: str,
    newest: dict[tuple[int, str], tuple[int, bool, str | None]],
) -> str:
    """Which items hold a blob, in words: account/collection/name and revision, and
    whether that revision is the item's current body or only in its history."""
    seqs = r.blob_referrers(content_hash)
    if not seqs:
        return "no kept revision names it"
    paths: dict[int, str] = {}
    named = []
    for seq in seqs[:MAX_NAMED]:
        rev = r.get_revision(seq)
        if rev is None:
            continue
        if rev.collection_id not in paths:
            coll = r.get_collection_by_id(rev.collection_id)
            paths[rev.collection_id] = (
                f"{coll.owner}/{coll.path}" if coll else f"collection {rev.collection_id}"
            )
        state = newest.get((rev.collection_id, rev.name))
        if rev.op is Op.CONFLICT:
            role = "a refused conflicting body"
        elif state is not None and state[0] == seq and not state[1]:
            role = "current"
        else:
            role = "history"
        named.append(f"{paths[rev.collection_id]}/{rev.name} (revision {seq}, {role})")
    more = f" and {len(seqs) - MAX_NAMED} more revisions" if len(seqs) > MAX_NAMED else ""
    return "it is the body of " + ", ".join(named) + more


def _check_external(store: Store, content_hash: str, report: CheckReport, full: bool) -> bool:
    if not full:
        return store.blobs.exists(content_hash)
    digest = hashlib.sha256()
    try:
        for chunk in store.blobs.open(content_hash):
            digest.update(chunk)
            report.bytes_checked += len(chunk)
    except NotFound:
        return False
    return digest.hexdigest() == content_hash


def _describe(state: tuple[int, bool, str | None] | None) -> str:
    if state is None:
        return "nothing"
    if state[1]:
        return f"deleted at sequence {state[0]}"
    return f"present at sequence {state[0]} (body {str(state[2])[:12]})"
