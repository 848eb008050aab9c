"""Side-by-side benchmark: Homeport against Radicale and Xandikos (issue 6).

    python bench/run.py --sizes 1000,10000 --servers homeport,radicale,xandikos \
        --cap-seconds 300 --json bench-results.json

Installs Radicale and Xandikos from PyPI into their own virtualenv (--cache, default
.bench-venv/) when they are asked for, starts each server on a free loopback port with
fresh storage, runs the same workloads against each, prints one table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import gen, servers
from bench.workloads import (
    HIGHER_IS_BETTER,
    WORKLOADS,
    Bench,
    Result,
    server_cpu_ms,
    with_prerequisites,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / ".bench-venv"
NOISY = 0.15  # share of the machine's CPU used by other processes that flags a figure


def machine_info(workdir: Path) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    df = subprocess.run(
        ["df", "-T", "-h", str(workdir)], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    if len(df) > 1:
        fields = df[1].split()
        info["disk"] = f"{fields[0]} ({fields[1]}, {fields[2]})"
        dev = Path(fields[0]).name
        rot = Path(f"/sys/block/{dev}/queue/rotational")
        if rot.exists():
            info["disk"] += ", rotational" if rot.read_text().strip() == "1" else ", non-rotational"
    return info


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return out.stdout.strip()


def source_state(rev: str | None) -> dict[str, Any]:
    """Which Homeport code was measured: an exported commit, or the working tree (its
    commit and the files changed since). Read-only git commands only."""
    if rev:
        return {"commit": _git("rev-parse", rev), "exported": True}
    return {
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_src": _git("diff", "--name-only", "HEAD", "--", "src").splitlines(),
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(result: Result | None, cap: float) -> str:
    if result is None:
        return "—"
    if result.unit == "ms" and result.value is None and result.capped:
        return f"> cap ({cap:.0f} s)"
    text = _fmt(result.value)
    if result.extra.get("foreign_cpu_share", 0) > NOISY:
        text += " †"
    if result.capped:
        filled = " +filled" if result.extra.get("filled") else ""
        text += f" > cap ({result.done}/{result.target}{filled})"
    return text


def advantage(home: Result | None, peer: Result | None) -> str:
    """How many times better Homeport is (ops/s: H/peer; ms and MB: peer/H)."""
    if home is None or peer is None or home.value is None or home.value == 0:
        if home and home.value and peer and peer.capped and peer.unit == "ms":
            return "> cap/H"
        return "—"
    if peer.value is None:
        return "—"
    if home.unit in HIGHER_IS_BETTER:
        ratio = home.value / peer.value if peer.value else float("inf")
    else:
        ratio = peer.value / home.value
    text = f"{ratio:,.1f}x" if ratio < 100 else f"{ratio:,.0f}x"
    if peer.capped and home.unit in HIGHER_IS_BETTER and peer.workload.startswith("random"):
        text = "≥ " + text
    return text


def table(results: dict[int, dict[str, list[Result]]], names: list[str], cap: float) -> str:
    peers = [s for s in names if s != "homeport"]
    header = ["N", "workload", "unit", *names]
    if "homeport" in names:
        header += [f"H vs {p}" for p in peers]
    header.append("correct")
    rows: list[list[str]] = []
    for n, per_server in results.items():
        by_name = {s: {r.workload: r for r in per_server.get(s, [])} for s in names}
        for workload, unit, label in WORKLOADS:
            row = [f"{n:,}", label, unit]
            row += [cell(by_name[s].get(workload), cap) for s in names]
            if "homeport" in names:
                home = by_name["homeport"].get(workload)
                row += [advantage(home, by_name[p].get(workload)) for p in peers]
            verdicts = []
            for s in names:
                r = by_name[s].get(workload)
                if r is not None and not r.correct:
                    verdicts.append(f"{s}: WRONG ({'; '.join(r.problems)})")
            row.append("; ".join(verdicts) if verdicts else "ok")
            rows.append(row)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    lines.append(
        "'H vs peer' = how many times better Homeport is (ops/s: H/peer; ms, MB: peer/H). "
        f"† = other processes used more than {NOISY:.0%} of the machine's CPU meanwhile."
    )
    if any(r.extra.get("filled") for per in results.values() for rs in per.values() for r in rs):
        lines.append(
            "'+filled' = the peer hit the cap; the rest of the N items were then written "
            "into its storage, untimed, so the reads after it ran on all N."
        )
    return "\n".join(lines)


def cpu_table(results: dict[int, dict[str, list[Result]]], names: list[str]) -> str:
    """Server CPU time per operation / per run, and Homeport's advantage on it."""
    peers = [s for s in names if s != "homeport"]
    header = ["N", "workload", "per", *[f"{s} CPU ms" for s in names]]
    if "homeport" in names:
        header += [f"H vs {p}" for p in peers]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for n, per_server in results.items():
        by_name = {s: {r.workload: r for r in per_server.get(s, [])} for s in names}
        for workload, unit, label in WORKLOADS:
            if unit not in ("ops/s", "ms"):
                continue
            cpu = {}
            for s in names:
                r = by_name[s].get(workload)
                cpu[s] = server_cpu_ms(r) if r is not None else None
            row = [f"{n:,}", label, "op" if unit == "ops/s" else "run"]
            # /proc counts CPU in clock ticks (10 ms): a zero means "under one tick"
            row += ["< 10" if cpu[s] == 0 else _fmt(cpu[s]) for s in names]
            if "homeport" in names:
                for p in peers:
                    h, v = cpu["homeport"], cpu[p]
                    if h == 0 and v:
                        row.append(f"> {v / 10:,.0f}x")
                    else:
                        row.append(f"{v / h:,.1f}x" if h and v else "—")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


class Run:
    """One benchmark run; every server it starts is stopped by PID at the end."""

    def __init__(self, args: argparse.Namespace, log: Callable[[str], None] = print) -> None:
        self.args = args
        self.log = log
        self.running: list[servers.Server] = []
        self.probes: dict[str, float] = {}
        self.homeport_src: Path | None = None

    def stop_all(self) -> None:
        for srv in self.running:
            srv.stop()
        self.running.clear()

    def profiler(
        self, srv: servers.Server, n: int
    ) -> Callable[[str], AbstractContextManager[object]]:
        if not self.args.profile or srv.name != "homeport":
            return lambda _name: nullcontext()
        from bench.profile import pyspy

        out_dir = Path(self.args.profile)
        out_dir.mkdir(parents=True, exist_ok=True)
        only = set(self.args.profile_workloads.split(",")) if self.args.profile_workloads else None

        @contextmanager
        def wrap(name: str) -> Iterator[None]:
            if only is not None and name not in only:
                yield
                return
            with pyspy(srv.pid, out_dir / f"N{n}-{name}.txt", idle=self.args.profile_idle):
                yield

        return wrap

    def execute(self) -> dict[str, Any]:
        args = self.args
        names = [s.strip() for s in args.servers.split(",") if s.strip()]
        for s in names:
            if s not in servers.ALL_SERVERS:
                raise SystemExit(f"unknown server {s!r} (choose from {servers.ALL_SERVERS})")
        sizes = [int(x) for x in args.sizes.split(",")]
        cache = Path(args.cache)
        peers = [s for s in names if s in servers.PEERS]
        if peers:
            servers.ensure_venv(cache, peers, self.log)
        if args.workdir:
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
        workroot = Path(tempfile.mkdtemp(prefix="homeport-bench-", dir=args.workdir))
        meta: dict[str, Any] = {
            "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(workroot),
            "versions": {"homeport": servers.homeport_version()}
            | {p: servers.package_version(cache, p) for p in peers},
            "homeport_source": source_state(args.homeport_rev),
            "seed": args.seed,
            "cap_seconds": args.cap_seconds,
            "fill_peers": args.fill_peers,
            "reps": args.reps,
            "niceness": os.nice(0),
            "servers": names,
            "sizes": sizes,
        }
        self.homeport_src = (
            servers.export_src(args.homeport_rev, workroot / "homeport-src")
            if args.homeport_rev
            else None
        )
        expectations = gen.Expectations(args.seed)
        results: dict[int, dict[str, list[Result]]] = {}
        try:
            for n in sizes:
                results[n] = {}
                for name in names:
                    results[n][name] = self.one(name, n, workroot, cache, expectations)
        finally:
            self.stop_all()
            if not args.keep:
                shutil.rmtree(workroot, ignore_errors=True)
        meta["fsync_probe_ms"] = self.probes
        out = {
            "meta": meta,
            "results": {
                str(n): {s: [r.to_json() for r in rs] for s, rs in per.items()}
                for n, per in results.items()
            },
            "table": table(results, names, args.cap_seconds),
            "cpu_table": cpu_table(results, names),
        }
        if args.profile:
            from bench.profile import summarise

            parts = [summarise(p) for p in sorted(Path(args.profile).glob("N*.txt"))]
            Path(args.profile, "summary.md").write_text("\n".join(parts))
        return out

    def one(
        self, name: str, n: int, workroot: Path, cache: Path, expectations: gen.Expectations
    ) -> list[Result]:
        self.log(f"== {name}, N={n:,}")
        workdir = workroot / f"{name}-{n}"
        probe = servers.fsync_probe(workdir)
        self.probes[f"{name}-{n}"] = probe
        self.log(f"  fsync probe: {probe} ms (median of 30 x 4 KiB write + fsync)")
        srv = servers.start(name, workdir, cache, self.homeport_src)
        self.running.append(srv)
        bench = Bench(
            srv,
            n,
            seed=self.args.seed,
            cap=self.args.cap_seconds,
            reps=self.args.reps,
            expectations=expectations,
            log=self.log,
            wrap=self.profiler(srv, n),
            get_requests=self.args.get_requests,
            quiet_wait=self.args.quiet_wait,
            only=set(self.args.workloads.split(",")) if self.args.workloads else None,
            fill_peers=self.args.fill_peers,
        )
        out: list[Result] = []
        try:
            out = list(bench.run_all())
        except Exception as exc:
            out.append(Result("setup", "", problems=[f"error: {exc!r}"[:300]]))
        finally:
            bench.close()
        rss = Result("peak_rss", "MB", value=servers.peak_rss_bytes(srv.pid) / 1e6)
        srv.stop()
        self.running.remove(srv)
        allocated, apparent = servers.disk_usage(srv.storage)
        disk = Result("disk_usage", "MB", value=allocated / 1e6)
        disk.extra["apparent_mb"] = round(apparent / 1e6, 2)
        self.log(f"  {name} N={n} peak RSS {rss.value:.1f} MB, disk {disk.value:.1f} MB")
        if not self.args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        return [*out, rss, disk]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1000", help="comma-separated N (default 1000)")
    p.add_argument("--servers", default="homeport,radicale,xandikos")
    p.add_argument("--cap-seconds", type=float, default=300, help="time cap per workload")
    p.add_argument("--reps", type=int, default=3, help="repetitions of the read workloads")
    p.add_argument("--seed", type=int, default=20250601)
    p.add_argument("--get-requests", type=int, default=4000, help="random GETs in total")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each workload wait up to this many s for other processes to go idle",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the whole benchmark (client and servers) at this niceness, e.g. -10 "
        "(root) on a machine shared with other jobs",
    )
    p.add_argument(
        "--homeport-rev",
        help="benchmark this commit of Homeport (git archive into the temp dir) instead of "
        "the installed working tree",
    )
    p.add_argument(
        "--workloads",
        default="",
        help="comma-separated workloads to run (default all); the ones they read the data "
        "of run too, e.g. timerange_query runs create_events first",
    )
    p.add_argument(
        "--fill-peers",
        action="store_true",
        help="when a peer hits the cap while creating, write the rest of the N items into its "
        "storage (outside the timing) so that the reads after it run at the same N as "
        "Homeport's; the create figure stays that of its PUTs",
    )
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--render", metavar="JSON[,JSON]", help="only print the tables from JSON")
    p.add_argument("--markdown", help="write the table as Markdown to this file")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="virtualenv for the peers")
    p.add_argument("--workdir", default=None, help="where the servers' storage goes (temp)")
    p.add_argument("--keep", action="store_true", help="keep the servers' storage")
    p.add_argument("--profile", metavar="DIR", help="py-spy record Homeport per workload")
    p.add_argument("--profile-workloads", default="", help="comma-separated; default all")
    p.add_argument("--profile-idle", action="store_true", help="include idle threads")
    return p


def load(path: Path) -> tuple[dict[int, dict[str, list[Result]]], dict[str, Any]]:
    """Results and meta from a JSON file this command wrote."""
    data = json.loads(path.read_text())
    fields = set(Result.__dataclass_fields__)
    results = {
        int(n): {
            s: [Result(**{k: v for k, v in r.items() if k in fields}) for r in rs]
            for s, rs in per.items()
        }
        for n, per in data["results"].items()
    }
    return results, data["meta"]


def render(paths: list[str]) -> str:
    """The two tables, again, from one or more JSON files (sizes merged)."""
    merged: dict[int, dict[str, list[Result]]] = {}
    names: list[str] = []
    cap = 0.0
    for path in paths:
        results, meta = load(Path(path))
        for n, per in results.items():  # later files win, per size and server
            merged.setdefault(n, {}).update(per)
        names += [s for s in meta["servers"] if s not in names]
        cap = max(cap, float(meta["cap_seconds"]))
    return table(merged, names, cap) + "\n\n" + cpu_table(merged, names) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workloads:
        try:
            with_prerequisites(set(args.workloads.split(",")))
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    if args.render:
        print(render(args.render.split(",")))
        return 0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    if args.nice:
        os.nice(args.nice)  # inherited by every server started
    started = time.monotonic()
    out = Run(args, log=lambda s: print(s, flush=True)).execute()
    print()
    print(out["table"])
    print()
    print(out["cpu_table"])
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(out["table"] + "\n\n" + out["cpu_table"] + "\n")
    wrong = [
        r for per in out["results"].values() for rs in per.values() for r in rs if not r["correct"]
    ]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
