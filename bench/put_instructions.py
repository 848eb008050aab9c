"""Instructions a contact PUT costs Homeport's server, counted by callgrind.

The create workloads' rate on a shared VM moves by a third between runs of one commit;
instruction counts do not (repeated runs agree within 0.1%). This starts `homeport serve`
on a fresh data folder under `valgrind --tool=callgrind --instr-atstart=no`, makes an
address book, sends `--warmup` PUTs, then switches counting on (`callgrind_control -i
on`) for `--puts` more, one by one over one keep-alive connection, exactly as the
benchmark's "create N contacts, one by one" does (its seeded contacts, `If-None-Match: *`);
with `--clients 8`, over eight connections at once, as "8 clients" does.
The count covers every thread of the server (event loop, committer, workers) in user
space: not the kernel's socket, file and fsync work.

    python bench/put_instructions.py [--puts 500] [--rev COMMIT]

`--rev` measures a commit of this repository (exported with `git archive`) instead of
the installed Homeport, so that two commits compare in one sitting. `--no-valgrind`
runs the same PUTs without callgrind and prints their rate (quick, noisy).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import dav, gen, servers  # noqa: E402


def _control(pid: int, on: bool) -> None:
    flag = "on" if on else "off"
    subprocess.run(["callgrind_control", "-i", flag, str(pid)], check=True, capture_output=True)


def _put_all(url: str, book: str, cards: list[gen.Item], clients: int) -> None:
    """PUT `cards` over `clients` keep-alive connections at once (one by one when 1), as
    the benchmark's create workloads do; any answer but 201 stops the run."""
    headers = {"Content-Type": "text/vcard; charset=utf-8", "If-None-Match": "*"}
    failed: list[str] = []
    conns = [dav.LeanClient(url, (servers.USER, servers.PASSWORD), 120) for _ in range(clients)]

    def worker(conn: dav.LeanClient, mine: list[gen.Item]) -> None:
        for card in mine:
            status = conn.put(f"{book}{card.name}.vcf", card.body, headers).status_code
            if status != 201:
                failed.append(f"PUT {card.name} answered {status}")
                return

    threads = [
        threading.Thread(target=worker, args=(conn, cards[i::clients]))
        for i, conn in enumerate(conns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for conn in conns:
        conn.close()
    if failed:
        raise SystemExit(failed[0])


def run(
    puts: int,
    warmup: int,
    src: Path | None,
    valgrind: bool,
    clients: int = 1,
    keep: Path | None = None,
) -> tuple[int | None, float]:
    """(instructions, or None without valgrind; seconds of the measured PUTs).
    `keep`: copy callgrind's file there, for `callgrind_annotate`."""
    with tempfile.TemporaryDirectory(prefix="hp-put-instr-") as tmp:
        out = Path(tmp) / "callgrind.out"
        wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        wrapper.append(f"--callgrind-out-file={out}")
        # Under valgrind the server takes tens of seconds to start.
        server = servers.start_homeport(
            Path(tmp), src, wrapper if valgrind else (), ready_timeout=600
        )
        try:
            client = dav.LeanClient(server.url, server.auth, 120)
            book = server.addressbook("put-instructions")
            made = client.request(
                "MKCOL",
                book,
                dav.mkaddressbook_body("put-instructions"),
                {"Content-Type": "application/xml"},
            ).status_code
            client.close()
            if made != 201:
                raise SystemExit(f"MKCOL answered {made}")
            cards = [gen.contact(1, i) for i in range(warmup + puts)]
            _put_all(server.url, book, cards[:warmup], clients)
            if valgrind:
                _control(server.pid, True)
            t0 = time.perf_counter()
            _put_all(server.url, book, cards[warmup:], clients)
            seconds = time.perf_counter() - t0
            if valgrind:
                _control(server.pid, False)
        finally:
            server.stop(timeout=120)  # callgrind writes its file on the way out
        if not valgrind:
            return None, seconds
        if keep is not None:
            shutil.copyfile(out, keep)
        text = out.read_text(errors="replace")
        found = re.search(r"^totals:\s*(\d+)", text, re.M)
        if found is None:
            raise SystemExit("callgrind wrote no totals")
        return int(found.group(1)), seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--puts", type=int, default=500, help="measured PUTs")
    p.add_argument("--warmup", type=int, default=50, help="PUTs before counting starts")
    p.add_argument(
        "--clients", type=int, default=1, help="concurrent connections (8: the group commit)"
    )
    p.add_argument("--rev", help="measure this commit (git archive) instead of the installed one")
    p.add_argument("--no-valgrind", action="store_true", help="rate only (noisy)")
    p.add_argument(
        "--keep-profile", type=Path, help="copy callgrind's output file here (callgrind_annotate)"
    )
    args = p.parse_args(argv)
    if args.puts < 1 or args.warmup < 0 or args.clients < 1:
        raise SystemExit("--puts and --clients must be at least 1, --warmup not negative")
    if args.keep_profile is not None and args.no_valgrind:
        raise SystemExit("--keep-profile needs valgrind")
    if args.keep_profile is not None and not args.keep_profile.resolve().parent.is_dir():
        raise SystemExit(f"--keep-profile: no folder {str(args.keep_profile.parent)!r}")
    valgrind = not args.no_valgrind
    if valgrind and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        raise SystemExit(
            "valgrind is not installed (apt-get install valgrind), or use --no-valgrind"
        )
    with tempfile.TemporaryDirectory(prefix="hp-put-src-") as tmp:
        src = servers.export_src(args.rev, Path(tmp)) if args.rev else None
        count, seconds = run(args.puts, args.warmup, src, valgrind, args.clients, args.keep_profile)
    what = (args.rev or "installed") + (f", {args.clients} clients" if args.clients > 1 else "")
    rate = f"{args.puts / seconds:,.0f} PUTs/s" + (" under valgrind" if valgrind else "")
    if count is None:
        print(f"{what}: {args.puts} PUTs, {rate}")
    else:
        each = f"{count / args.puts:,.0f} per PUT"
        print(f"{what}: {args.puts} PUTs, {count:,} instructions, {each} ({rate})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
