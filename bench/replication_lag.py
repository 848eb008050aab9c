"""Replication lag under steady writes, against a loopback S3 server (SeaweedFS).

    python -m bench.replication_lag [--seconds 60] [--rate 50] [--files-every 0]

Writes contacts through the domain services (the same commit path as `homeport serve`:
validation, group commit, fsync) at a steady rate while a `Replicator` ships to a
SeaweedFS started here. The lag of a write is the time from its acknowledgement to the
verified upload of the segment that holds it. Prints the distribution, the write
latencies, and then the throughput of a full restore of what was written. Not a timed
test: the figures go into docs/replica-format.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.replication.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS  # noqa: E402
from tests.replication.support import vcard  # noqa: E402

from homeport.errors import AlreadyExists  # noqa: E402
from homeport.replication.crypto import generate_identity, load_identities  # noqa: E402
from homeport.replication.restore import restore  # noqa: E402
from homeport.replication.settings import ReplicationSettings, TargetSettings  # noqa: E402
from homeport.replication.shipper import Replicator  # noqa: E402
from homeport.replication.targets import open_target  # noqa: E402
from homeport.services import Actor, Services  # noqa: E402
from homeport.store.model import CollectionKind  # noqa: E402
from homeport.wiring import open_store  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=50.0, help="writes per second")
    ap.add_argument("--interval", type=float, default=0.2, help="replication.interval")
    ap.add_argument("--poll", type=float, default=0.05, help="replication.poll")
    ap.add_argument("--files-every", type=int, default=0, help="every Nth write is a 1 MB file")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hp-bench-repl-"))
    weed = SeaweedFS(work / "seaweedfs")
    weed.start()
    try:
        run(args, work, weed)
    finally:
        weed.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class LagResult:
    writes: int
    seconds: float
    segments: int
    lags: list[float]
    write_latency: list[float]
    final_lag_revisions: int
    final_lag_seconds: float

    def p(self, q: float) -> float:
        return percentile(self.lags, q)


def measure_lag(
    svc: Services,
    target: TargetSettings,
    recipient: str,
    seconds: float,
    rate: float,
    *,
    interval: float = 0.2,
    poll: float = 0.05,
    files_every: int = 0,
) -> LagResult:
    """Write at `rate` per second for `seconds` through the services while a replicator
    ships to `target`; the lag of each write: acknowledgement -> verified upload."""
    settings = ReplicationSettings(
        targets=(target,), recipients=(recipient,), interval=interval, poll=poll
    )
    with contextlib.suppress(AlreadyExists):
        svc.accounts.add("bench", "bench password")
    actor = Actor("bench")
    contacts = svc.collections.get(actor, "bench", "contacts")
    files = svc.collections.find(actor, "bench", "files") or svc.collections.create(
        actor, "bench", "files", CollectionKind.PLAIN
    )

    shipped: list[tuple[int, float]] = []  # (last seq, when) in shipping order
    lock = threading.Lock()

    def on_shipped(url: str, seq: int, when: float) -> None:
        with lock:
            shipped.append((seq, when))

    rep = Replicator(svc.store, settings, listener=on_shipped)
    try:
        rep.replicate_once()  # the generation and its first snapshot, before the clock starts
        rep.start()
        acked: list[tuple[int, float]] = []
        write_latency: list[float] = []
        period = 1.0 / rate
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            due = start + n * period
            time.sleep(max(0.0, due - time.monotonic()))
            n += 1
            t0 = time.monotonic()
            if files_every and n % files_every == 0:
                item, _ = svc.items.put(
                    actor, files, f"f{n}.bin", [os.urandom(1_000_000)], "application/octet-stream"
                )
            else:
                item, _ = svc.items.put(
                    actor, contacts, f"c{n}.vcf", [vcard(f"c{n}", f"Bench {n}")], "text/vcard"
                )
            t1 = time.monotonic()
            acked.append((item.seq, t1))
            write_latency.append(t1 - t0)
        elapsed = time.monotonic() - start
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if shipped and shipped[-1][0] >= acked[-1][0]:
                    break
            time.sleep(0.05)
        status = rep.status()[0]
    finally:
        rep.stop()
    lags: list[float] = []
    j = 0
    for seq, t_ack in acked:
        while j < len(shipped) and shipped[j][0] < seq:
            j += 1
        if j == len(shipped):
            break
        lags.append(shipped[j][1] - t_ack)
    return LagResult(
        len(acked),
        elapsed,
        len(shipped),
        lags,
        write_latency,
        status.lag_revisions,
        status.lag_seconds,
    )


def run(args: argparse.Namespace, work: Path, weed: SeaweedFS) -> None:
    secret, recipient = generate_identity()
    key = work / "key.txt"
    key.write_text(secret + "\n")
    bucket = weed.bucket("bench")
    target = TargetSettings(
        name="seaweedfs",
        url=f"s3://{bucket}/homeport?endpoint={weed.endpoint}",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    svc = Services.build(open_store(work / "data"))
    r = measure_lag(
        svc,
        target,
        recipient,
        args.seconds,
        args.rate,
        interval=args.interval,
        poll=args.poll,
        files_every=args.files_every,
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"writes: {r.writes} in {r.seconds:.1f} s ({r.writes / r.seconds:.1f}/s), "
        f"{r.segments} segments shipped, interval {args.interval} s, poll {args.poll} s"
    )
    print(
        "replication lag (ack -> verified on S3), seconds: "
        f"p50 {r.p(50):.3f}  p90 {r.p(90):.3f}  "
        f"p99 {r.p(99):.3f}  max {max(r.lags):.3f}  "
        f"({len(r.lags)} of {r.writes} measured)"
    )
    print(
        "write latency (commit with fsync), seconds: "
        f"p50 {percentile(r.write_latency, 50):.4f}  "
        f"p99 {percentile(r.write_latency, 99):.4f}  max {max(r.write_latency):.4f}"
    )
    print(f"final lag: {r.final_lag_revisions} revisions, {r.final_lag_seconds:.3f} s")
    db = Path(svc.store.meta.path)  # type: ignore[attr-defined]
    db_bytes = db.stat().st_size
    svc.close()

    t0 = time.monotonic()
    _, report = restore(open_target(target), load_identities(key), work / "restored", open_store)
    took = time.monotonic() - t0
    mb = report.bytes_downloaded / 1e6
    print(
        f"restore: {report.items} items, {report.revisions} revisions, {report.blobs} blobs, "
        f"{mb:.1f} MB downloaded in {took:.2f} s: {mb / took:.1f} MB/s, "
        f"{report.revisions / took:.0f} revisions/s (database {db_bytes / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
