"""The first calendar-query after a server starts, side by side.

`bench/run.py` reports medians of repeated queries, which hide what a phone sees right
after a server (re)starts: whatever a server derives from the stored events and keeps
in memory is built by the first query that needs it. Homeport's instance index of a
series is such a thing. This starts each server on the storage that a
`bench/run.py --keep` run left behind, and times the one-month calendar-query of
`bench/run.py` once right after the start ("first") and once more ("second"); the
server is restarted before each of `--restarts` rounds, for the etag-only query and
for the query with expansion. Answers are checked against the generator, as there.

    python bench/run.py --sizes 10000 --workloads timerange_query,timerange_expand \\
        --keep --workdir DIR ...
    python bench/first_query.py --kept DIR/homeport-bench-XXXX --size 10000 \\
        [--servers homeport,radicale,xandikos] [--homeport-rev REV,...]

`--homeport-rev` runs Homeport from one or more commits (exported with `git archive`)
on the same data, each as its own column, e.g. the commits before and after a change.
The server's data is only read; every server started is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import dav, gen, servers  # noqa: E402
from bench.workloads import _ics_time, _vevent_rrules  # noqa: E402

EVENTS = "bench-events"


def start(name: str, kept: Path, size: int, cache: Path, src: Path | None) -> servers.Server:
    workdir = kept / f"{name}-{size}"
    if not workdir.is_dir():
        raise SystemExit(f"no kept storage for {name} at {workdir} (bench/run.py --keep)")
    if name == "homeport":
        return servers.start_homeport(workdir, src, add_user=False)
    return servers.start(name, workdir, cache)


def held_events(lean: dav.LeanClient, url: str) -> list[int]:
    """Indexes of the generated events the calendar holds (from their names)."""
    r = lean.request(
        "PROPFIND",
        url,
        content=dav.PROPFIND_BODY,
        headers={"Depth": "1", "Content-Type": dav.XML_TYPE},
    )
    if r.status_code != 207:
        raise RuntimeError(f"PROPFIND {url} -> {r.status_code}")
    members = dav.members(dav.parse_multistatus(r.content)[0], url)
    return sorted(int(m.name[1:7]) for m in members if m.name.startswith("e"))


def query(lean: dav.LeanClient, url: str, expand: bool) -> tuple[float, int, int, int]:
    """(ms from request to last byte, events found, instances, RRULEs left)."""
    body = dav.calendar_query_body(_ics_time(gen.QUERY_START), _ics_time(gen.QUERY_END), expand)
    t0 = time.perf_counter()
    r = lean.request(
        "REPORT", url, content=body, headers={"Depth": "1", "Content-Type": dav.XML_TYPE}
    )
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 207:
        raise RuntimeError(f"REPORT {url} -> {r.status_code}: {r.text[:200]}")
    members = dav.members(dav.parse_multistatus(r.content)[0], url)
    found = [m for m in members if m.status == 200]
    cal = f"{{{dav.CAL}}}calendar-data"
    instances = sum(m.text(cal).count("BEGIN:VEVENT") for m in found) if expand else 0
    rrules = sum(_vevent_rrules(m.text(cal)) for m in found) if expand else 0
    return ms, len(found), instances, rrules


def measure(
    label: str,
    name: str,
    kept: Path,
    size: int,
    cache: Path,
    src: Path | None,
    restarts: int,
    expect: gen.Expectations,
) -> dict[str, object]:
    out: dict[str, object] = {"server": label}
    problems: list[str] = []
    for expand in (False, True):
        key = "expand" if expand else "etags"
        firsts: list[float] = []
        seconds: list[float] = []
        for _ in range(restarts):
            srv = start(name, kept, size, cache, src)
            try:
                lean = dav.LeanClient(srv.url, srv.auth, 600)
                url = srv.calendar(EVENTS)
                first = query(lean, url, expand)
                second = query(lean, url, expand)
                held = held_events(lean, url)
                lean.close()
            finally:
                srv.stop()
            want_events, want_instances = expect.query(held)
            for got in (first, second):
                if got[1] != want_events:
                    problems.append(f"{key}: {got[1]} events, expected {want_events}")
                if expand and got[2] != want_instances:
                    problems.append(f"{key}: {got[2]} instances, expected {want_instances}")
                if got[3]:
                    problems.append(f"{key}: {got[3]} RRULEs left in expanded data")
            firsts.append(first[0])
            seconds.append(second[0])
            out["events_held"] = len(held)
        out[f"{key}_first_ms"] = round(statistics.median(firsts), 1)
        out[f"{key}_second_ms"] = round(statistics.median(seconds), 1)
        out[f"{key}_first_all_ms"] = [round(x, 1) for x in firsts]
    out["problems"] = sorted(set(problems))
    return out


def table(rows: list[dict[str, object]], size: int) -> str:
    head = (
        "| server | events held | etags: first | etags: second | expand: first "
        "| expand: second | correct |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [
            str(row["server"]),
            f"{row['events_held']:,}",
            *(
                f"{row[k]:,} ms"
                for k in (
                    "etags_first_ms",
                    "etags_second_ms",
                    "expand_first_ms",
                    "expand_second_ms",
                )
            ),
            "ok" if not row["problems"] else "; ".join(row["problems"]),  # type: ignore[arg-type]
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return (
        f"N = {size:,}: one-month calendar-query, the first and the second after a "
        "start (medians over restarts)\n\n" + "\n".join(lines)
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kept", required=True, help="the folder bench/run.py --keep left")
    p.add_argument("--size", type=int, required=True, help="the N of that run")
    p.add_argument("--servers", default="homeport,radicale,xandikos")
    p.add_argument("--homeport-rev", default="", help="comma-separated commits of Homeport to run")
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--seed", type=int, default=20250601)
    p.add_argument("--cache", default=str(ROOT / ".bench-venv"), help="the peers' virtualenv")
    p.add_argument("--json", help="write the rows as JSON to this file")
    args = p.parse_args(argv)
    kept = Path(args.kept)
    expect = gen.Expectations(args.seed)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="homeport-first-") as tmp:
        for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
            if name == "homeport" and args.homeport_rev:
                for rev in args.homeport_rev.split(","):
                    src = servers.export_src(rev, Path(tmp, f"rev-{len(rows)}"))
                    label = f"homeport {rev}"
                    rows.append(
                        measure(
                            label,
                            name,
                            kept,
                            args.size,
                            Path(args.cache),
                            src,
                            args.restarts,
                            expect,
                        )
                    )
                    print(rows[-1], flush=True)
            else:
                rows.append(
                    measure(
                        name, name, kept, args.size, Path(args.cache), None, args.restarts, expect
                    )
                )
                print(rows[-1], flush=True)
    text = table(rows, args.size)
    print(text)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "command": " ".join(
                        ["python", "bench/first_query.py", *(argv or sys.argv[1:])]
                    ),
                    "rows": rows,
                    "table": text,
                },
                indent=1,
            )
        )
    return 1 if any(row["problems"] for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
