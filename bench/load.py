"""Load test: many devices syncing like DAVx5 against one server, for a fixed time.

Each simulated device belongs to one user (several devices per user, so each sees
the others' changes) and loops: check the collection's ctag/sync-token, and when it
changed, sync-collection from its last token and multiget what changed; now and then
create, update (If-Match) or delete an item, GET one, or rediscover the principal.
Every answer is checked (status, and that a multiget returns what sync announced);
the server's memory is sampled throughout.

    python -m bench.load --clients 32 --duration 120            # starts its own server
    python -m bench.load --url http://127.0.0.1:5232 --user alice:pw --user bob:pw ...

Figures go to stdout (and to --json FILE); docs/load.md records the reference runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import httpx
from lxml import etree

NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav", "a": "urn:ietf:params:xml:ns:carddav"}
CTAG_BODY = (
    b'<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:prop>'
    b"<cs:getctag/><d:sync-token/></d:prop></d:propfind>"
)
PRINCIPAL_BODY = (
    b'<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" '
    b'xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><d:current-user-principal/>'
    b"<c:calendar-home-set/><a:addressbook-home-set/></d:prop></d:propfind>"
)
COLLECTIONS = (("contacts", "vcf"), ("calendar", "ics"))
HOMEPORT = (sys.executable, "-m", "homeport")


def vcard(uid: str, note: str) -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Load {uid[:8]}\r\n"
        f"N:Load;{uid[:8]};;;\r\nEMAIL;TYPE=INTERNET:{uid[:8]}@example.org\r\n"
        f"TEL;TYPE=CELL:+33600000000\r\nNOTE:{note}\r\nEND:VCARD\r\n"
    ).encode()


def event(uid: str, note: str) -> bytes:
    day = 1 + int(uid[:2], 16) % 28
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//homeport-load//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:202603{day:02d}T100000Z\r\n"
        f"DTEND:202603{day:02d}T110000Z\r\nSUMMARY:Load {note}\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    ).encode()


def body_for(collection: str, uid: str, note: str) -> bytes:
    return vcard(uid, note) if collection == "contacts" else event(uid, note)


@dataclass
class Stats:
    """Latencies per operation, errors, and the server's memory over time."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    rss_kib: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 1000:
                self.errors.append(text)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class Device(threading.Thread):
    """One phone or desktop of one user, syncing two collections until `stop`."""

    def __init__(
        self, url: str, user: str, password: str, stats: Stats, stop: threading.Event, seed: int
    ) -> None:
        super().__init__(daemon=True, name=f"device-{user}-{seed}")
        self.client = httpx.Client(
            base_url=url,
            auth=(user, password),
            timeout=60,
            headers={"User-Agent": "DAVx5/4.4 (homeport-load)"},
        )
        self.user = user
        self.stats = stats
        self.stop = stop
        self.rng = random.Random(seed)
        self.tokens: dict[str, str | None] = {c: None for c, _ in COLLECTIONS}
        self.ctags: dict[str, str | None] = {c: None for c, _ in COLLECTIONS}
        self.known: dict[str, dict[str, str]] = {c: {} for c, _ in COLLECTIONS}  # href -> etag

    def call(
        self, op: str, method: str, url: str, expect: tuple[int, ...], **kw: object
    ) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            r = self.client.request(method, url, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            self.stats.error(f"{op} {url}: {exc!r}")
            return None
        self.stats.add(op, time.perf_counter() - start)
        if r.status_code not in expect:
            self.stats.error(f"{op} {url}: {r.status_code} {r.text[:200]}")
            return None
        return r

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        except Exception as exc:  # a bug in the load generator must show, not hide
            self.stats.error(f"device crashed: {exc!r}")
        finally:
            self.client.close()

    def step(self) -> None:
        roll = self.rng.random()
        coll, ext = self.rng.choice(COLLECTIONS)
        base = f"/dav/{self.user}/{coll}/"
        if roll < 0.02:
            self.call(
                "discover",
                "PROPFIND",
                "/dav/",
                (207,),
                headers={"Depth": "0"},
                content=PRINCIPAL_BODY,
            )
        elif roll < 0.60:
            self.sync(coll)
        elif roll < 0.75:
            uid = uuid.uuid4().hex
            r = self.call(
                "create",
                "PUT",
                f"{base}{uid}.{ext}",
                (201,),
                content=body_for(coll, uid, "new"),
                headers={"If-None-Match": "*"},
            )
            if r is not None:
                self.known[coll][f"{base}{uid}.{ext}"] = r.headers["etag"]
        elif roll < 0.87 and self.known[coll]:
            href = self.rng.choice(sorted(self.known[coll]))
            uid = href.rsplit("/", 1)[1].rsplit(".", 1)[0]
            r = self.call(
                "update",
                "PUT",
                href,
                (204, 412, 404),  # another device may have changed or deleted it first
                content=body_for(coll, uid, f"edit {self.rng.random():.6f}"),
                headers={"If-Match": self.known[coll][href]},
            )
            if r is not None and r.status_code == 204:
                self.known[coll][href] = r.headers["etag"]
        elif roll < 0.92 and self.known[coll]:
            href = self.rng.choice(sorted(self.known[coll]))
            r = self.call(
                "delete",
                "DELETE",
                href,
                (204, 412, 404),
                headers={"If-Match": self.known[coll][href]},
            )
            if r is not None:
                self.known[coll].pop(href, None)
        elif self.known[coll]:
            href = self.rng.choice(sorted(self.known[coll]))
            self.call("get", "GET", href, (200, 404))
        else:
            self.sync(coll)

    def sync(self, coll: str) -> None:
        """What DAVx5 does: ctag first; on change, sync-collection then multiget."""
        base = f"/dav/{self.user}/{coll}/"
        r = self.call("ctag", "PROPFIND", base, (207,), headers={"Depth": "0"}, content=CTAG_BODY)
        if r is None:
            return
        ctag = etree.fromstring(r.content).findtext(".//{http://calendarserver.org/ns/}getctag")
        if ctag == self.ctags[coll]:
            return
        token = self.tokens[coll] or ""
        body = (
            '<d:sync-collection xmlns:d="DAV:"><d:sync-token>'
            f"{token}</d:sync-token><d:sync-level>1</d:sync-level>"
            "<d:prop><d:getetag/></d:prop></d:sync-collection>"
        ).encode()
        r = self.call("sync-collection", "REPORT", base, (207,), content=body)
        if r is None:
            return
        root = etree.fromstring(r.content)
        changed: dict[str, str] = {}
        for resp in root.findall("d:response", NS):
            href = unquote(resp.findtext("d:href", namespaces=NS) or "")
            etag = resp.findtext(".//d:getetag", namespaces=NS)
            if etag:
                changed[href] = etag
            else:
                self.known[coll].pop(href, None)
        for i in range(0, len(changed), 10):
            self.multiget(coll, dict(list(changed.items())[i : i + 10]))
        self.tokens[coll] = root.findtext("d:sync-token", namespaces=NS)
        self.ctags[coll] = ctag

    def multiget(self, coll: str, wanted: dict[str, str]) -> None:
        kind, data = (
            ("a:addressbook-multiget", "a:address-data")
            if coll == "contacts"
            else ("c:calendar-multiget", "c:calendar-data")
        )
        hrefs = "".join(f"<d:href>{h}</d:href>" for h in wanted)
        body = (
            f'<{kind} xmlns:d="DAV:" xmlns:a="{NS["a"]}" xmlns:c="{NS["c"]}"><d:prop>'
            f"<d:getetag/><{data}/></d:prop>{hrefs}</{kind}>"
        ).encode()
        r = self.call("multiget", "REPORT", f"/dav/{self.user}/{coll}/", (207,), content=body)
        if r is None:
            return
        for resp in etree.fromstring(r.content).findall("d:response", NS):
            href = unquote(resp.findtext("d:href", namespaces=NS) or "")
            etag = resp.findtext(".//d:getetag", namespaces=NS)
            if etag:
                self.known[coll][href] = etag
            else:
                self.known[coll].pop(href, None)  # deleted since the sync: fine


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def populate(url: str, users: list[tuple[str, str]], per_collection: int) -> None:
    """Give every user `per_collection` contacts and events, a few writers at a time."""

    def fill(user: str, password: str, coll: str, ext: str) -> None:
        with httpx.Client(base_url=url, auth=(user, password), timeout=60) as c:
            for _ in range(per_collection):
                uid = uuid.uuid4().hex
                r = c.put(f"/dav/{user}/{coll}/{uid}.{ext}", content=body_for(coll, uid, "seed"))
                r.raise_for_status()

    threads = [
        threading.Thread(target=fill, args=(u, p, c, e)) for u, p in users for c, e in COLLECTIONS
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@dataclass
class LoadResult:
    clients: int
    users: int
    seconds: float
    requests: int
    errors: list[str]
    throughput: float
    latency_ms: dict[str, dict[str, float]]
    rss_mib: dict[str, float]

    def table(self) -> str:
        lines = [
            f"{self.clients} devices ({self.users} users), {self.seconds:.0f} s: "
            f"{self.requests} requests, {self.throughput:.0f} req/s, {len(self.errors)} errors",
            f"server RSS MiB: {self.rss_mib}",
            f"{'operation':<16}{'count':>8}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}  (ms)",
        ]
        for op, row in self.latency_ms.items():
            lines.append(
                f"{op:<16}{int(row['count']):>8}{row['p50']:>9.1f}{row['p90']:>9.1f}"
                f"{row['p99']:>9.1f}{row['max']:>9.1f}"
            )
        return "\n".join(lines)


def run_load(
    url: str,
    users: list[tuple[str, str]],
    clients: int,
    seconds: float,
    pid: int | None = None,
    seed: int = 1,
) -> LoadResult:
    """Run `clients` devices spread over `users` for `seconds`; measure everything."""
    stats = Stats()
    stop = threading.Event()
    devices = [
        Device(url, *users[i % len(users)], stats, stop, seed * 1000 + i) for i in range(clients)
    ]
    sampler_stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not sampler_stop.is_set() and pid is not None:
            try:
                stats.rss_kib.append((time.monotonic() - start, rss_kib(pid)))
            except OSError:
                return
            sampler_stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    for d in devices:
        d.start()
    time.sleep(seconds)
    stop.set()
    for d in devices:
        d.join(timeout=120)
    elapsed = time.monotonic() - start
    sampler_stop.set()
    sampler.join()
    everything = [v for values in stats.latencies.values() for v in values]
    latency: dict[str, dict[str, float]] = {}
    for op, values in [*sorted(stats.latencies.items()), ("all", everything)]:
        latency[op] = {
            "count": len(values),
            "p50": percentile(values, 50) * 1000,
            "p90": percentile(values, 90) * 1000,
            "p99": percentile(values, 99) * 1000,
            "max": max(values, default=0.0) * 1000,
        }
    rss = [kib for _, kib in stats.rss_kib]
    quarter = max(1, len(rss) // 4)
    rss_mib = {
        "first_quarter_max": max(rss[:quarter], default=0) / 1024,
        "last_quarter_max": max(rss[-quarter:], default=0) / 1024,
        "peak": max(rss, default=0) / 1024,
        "mean": statistics.fmean(rss) / 1024 if rss else 0.0,
    }
    return LoadResult(
        clients=clients,
        users=len(users),
        seconds=elapsed,
        requests=stats.requests,
        errors=stats.errors,
        throughput=stats.requests / elapsed,
        latency_ms=latency,
        rss_mib={k: round(v, 1) for k, v in rss_mib.items()},
    )


# -- a server of our own ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def own_server(users: list[tuple[str, str]]) -> Iterator[tuple[str, int, Path]]:
    """A fresh `homeport serve` on loopback with `users`; stopped by PID afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="homeport-load-"))
    data = tmp / "data"
    for user, password in users:
        subprocess.run(
            [*HOMEPORT, "user", "add", user, "--password-stdin", "--data", str(data)],
            input=password + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
    port = _free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*HOMEPORT, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc.pid, data
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="simulated devices")
    parser.add_argument("--users", type=int, default=8, help="users (own server only)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--items", type=int, default=200, help="items per collection at start")
    parser.add_argument("--url", help="an existing server (else one is started)")
    parser.add_argument("--user", action="append", default=[], help="USER:PASSWORD (with --url)")
    parser.add_argument("--pid", type=int, help="the server's PID, to sample its memory")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.url:
        users: list[tuple[str, str]] = []
        for spec in args.user:
            name, _, password = spec.partition(":")
            users.append((name, password))
        if not users:
            parser.error("--url needs at least one --user USER:PASSWORD")
        result = run_load(args.url, users, args.clients, args.duration, args.pid)
    else:
        users = [(f"load{i}", f"load-password-{i}") for i in range(args.users)]
        with own_server(users) as (url, pid, _):
            populate(url, users, args.items)
            result = run_load(url, users, args.clients, args.duration, pid)
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(result.table())
    for error in result.errors[:20]:
        print("ERROR", error)
    if args.json:
        args.json.write_text(json.dumps(result.__dict__, indent=2))
    return 1 if result.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
