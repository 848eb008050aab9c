"""Instructions an initial sync costs Homeport, counted by callgrind.

Wall-clock figures on a shared VM spread by half from one run to the next; instruction
counts do not move (repeated runs agree within 0.5%), so they show what a change to the
read path is worth. This runs Homeport's own report code in process on a data folder made
by `bench/run.py --keep` (no HTTP), under `valgrind --tool=callgrind --instr-atstart=no`,
and switches counting on (`callgrind_control -i on`) only around the measured part:

- `sync`: one sync-collection of the address book, empty token, getetag (its streamed
  body read to the end);
- `multiget`: the addressbook-multigets of 100 that fetch every card, getetag and
  address-data, as DAVx5 does after the sync.

    python bench/instructions.py --data DIR/homeport-5000/data [--collection bench-concurrent]

`--no-valgrind` runs the same parts without callgrind and prints their wall time (quick,
noisy). Callgrind counts user-space instructions only (not the kernel's file and socket
work) and runs SHA-256 without the CPU's SHA extensions, so hashing weighs more in its
counts than in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PARTS = ("sync", "multiget")
BATCH = 100
_UNDER_CALLGRIND = "HOMEPORT_BENCH_CALLGRIND"


def _sync_body() -> bytes:
    return (
        b'<?xml version="1.0" encoding="utf-8"?>\n<D:sync-collection xmlns:D="DAV:">'
        b"<D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>"
        b"</D:sync-collection>"
    )


def _multiget_body(hrefs: list[str]) -> bytes:
    refs = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
        f"<D:prop><D:getetag/><C:address-data/></D:prop>{refs}</C:addressbook-multiget>"
    ).encode()


def prepare(data: Path, user: str, collection: str) -> tuple[dict[str, Callable[[], int]], int]:
    """The measured parts as callables returning the bytes they answered, and how many
    items the collection holds."""
    from starlette.responses import StreamingResponse

    from homeport.server import reports
    from homeport.server.handlers import DavRequest, Handlers
    from homeport.services import Actor, Services
    from homeport.wiring import open_store

    services = Services.build(open_store(data))
    handlers = Handlers(services)
    actor = Actor(user, "bench-instructions")
    book = f"/dav/{user}/{collection}/"
    coll = services.collections.find(actor, user, collection)
    if coll is None:
        raise SystemExit(f"no collection {collection!r} of {user!r} in {data}")
    names = sorted(item.name for item in services.items.list_items(actor, coll))
    if not names:
        raise SystemExit(f"{book} holds no items")

    def request(body: bytes, depth: str) -> DavRequest:
        return DavRequest(
            method="REPORT",
            path=book,
            headers={"depth": depth, "content-type": "application/xml; charset=utf-8"},
            body=body,
            base_url="http://127.0.0.1",
            actor=actor,
            max_xml_size=10_000_000,
            max_object_size=10_000_000,
        )

    def answered(body: bytes, depth: str) -> int:
        response = reports.report(handlers, request(body, depth))
        if isinstance(response, StreamingResponse):

            async def read() -> int:
                size = 0
                async for chunk in response.body_iterator:
                    size += len(chunk)
                return size

            return asyncio.run(read())
        return len(response.body)

    bodies = [
        _multiget_body([book + name for name in names[i : i + BATCH]])
        for i in range(0, len(names), BATCH)
    ]
    parts = {
        "sync": lambda: answered(_sync_body(), "0"),
        "multiget": lambda: sum(answered(body, "1") for body in bodies),
    }
    return parts, len(names)


def _callgrind(on: bool) -> None:
    if os.environ.get(_UNDER_CALLGRIND):
        flag = "on" if on else "off"
        subprocess.run(
            ["callgrind_control", "-i", flag, str(os.getpid())], check=True, capture_output=True
        )


def child(args: argparse.Namespace) -> None:
    parts, items = prepare(Path(args.data), args.user, args.collection)
    run = parts[args.part]
    run()
    run()  # warm: caches, the statement cache, first-call paths
    _callgrind(True)
    t0 = time.perf_counter()
    size = run()
    elapsed = time.perf_counter() - t0
    _callgrind(False)
    print(f"items={items} bytes={size} seconds={elapsed:.4f}")


def measure(args: argparse.Namespace, part: str) -> tuple[int | None, str]:
    """(instructions or None without valgrind, the child's own line)."""
    cmd = [sys.executable, __file__, "--child", part, "--data", args.data]
    cmd += ["--user", args.user, "--collection", args.collection]
    env = dict(os.environ)
    if args.no_valgrind:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(out.stderr.strip() or f"{part} failed ({out.returncode})")
        return None, out.stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        env[_UNDER_CALLGRIND] = "1"
        vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        vg.append(f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}")
        out = subprocess.run([*vg, *cmd], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            lines = [line for line in out.stderr.splitlines() if not line.startswith("==")]
            raise SystemExit("\n".join(lines[-20:]) or f"valgrind failed ({out.returncode})")
        found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
        if found is None:
            raise SystemExit("callgrind reported no count:\n" + out.stderr[-2000:])
        return int(found.group(1)), out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, help="a Homeport data folder (bench/run.py --keep)")
    p.add_argument("--user", default="bench")
    p.add_argument("--collection", default="bench-concurrent")
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated: sync,multiget")
    p.add_argument("--no-valgrind", action="store_true", help="wall time only (noisy)")
    p.add_argument("--child", choices=PARTS, dest="part", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from homeport.wiring import DB_NAME

    if not (Path(args.data) / DB_NAME).is_file():
        raise SystemExit(f"{args.data} is not a Homeport data folder (no {DB_NAME})")
    if args.part:
        child(args)
        return 0
    if not args.no_valgrind and not (
        shutil.which("valgrind") and shutil.which("callgrind_control")
    ):
        raise SystemExit(
            "valgrind is not installed (apt-get install valgrind), or use --no-valgrind"
        )
    parts = args.parts.split(",")
    for part in parts:
        if part not in PARTS:
            raise SystemExit(f"unknown part {part!r} (choose from {', '.join(PARTS)})")
    print(
        "| part | items | instructions | per item | seconds (under valgrind unless --no-valgrind) |"
    )
    print("|---|---:|---:|---:|---:|")
    for part in parts:
        count, line = measure(args, part)
        fields = dict(kv.split("=", 1) for kv in line.split())
        items = int(fields["items"])
        shown = "-" if count is None else f"{count:,}"
        each = "-" if count is None else f"{count / items:,.0f}"
        print(f"| {part} | {items:,} | {shown} | {each} | {float(fields['seconds']):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
