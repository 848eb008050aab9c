"""The workloads, run in the same order against every server, each checked for correctness.

A workload returns a `Result`: its figure (ops/s for writes and GETs, milliseconds for
reports), whether it hit the cap, and the problems found (an empty list = correct).
"""

from __future__ import annotations

import http.client
import itertools
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from bench import dav, gen
from bench.servers import (
    PEERS,
    Server,
    cpu_seconds,
    fill_collection,
    machine_busy_seconds,
    peak_rss_bytes,
    wait_quiet,
)

CONCURRENCY = 8
MULTIGET_BATCH = 100

# name, unit, label (the order is the order they run in)
WORKLOADS: list[tuple[str, str, str]] = [
    ("create_contacts_serial", "ops/s", "create N contacts, one by one"),
    ("create_contacts_8", "ops/s", "create N contacts, 8 clients"),
    ("propfind_depth1", "ms", "PROPFIND Depth 1 (full listing)"),
    ("initial_sync", "ms", "initial sync (sync-collection + multiget/100)"),
    ("incremental_sync", "ms", "incremental sync (10 changed + 5 deleted)"),
    ("create_events", "ops/s", "create N events, one by one"),
    ("create_todos", "ops/s", "create N/10 to-dos, one by one"),
    ("timerange_query", "ms", "1-month calendar-query (etags)"),
    ("timerange_expand", "ms", "1-month calendar-query + expand"),
    ("random_get_8", "ops/s", "random GETs, 8 clients"),
    ("peak_rss", "MB", "peak RSS of the server"),
    ("disk_usage", "MB", "on-disk size after the run"),
]
UNITS = {name: unit for name, unit, _ in WORKLOADS}
HIGHER_IS_BETTER = {"ops/s"}


#: What each workload needs to have run before it (the data it reads).
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "propfind_depth1": ("create_contacts_serial",),
    "initial_sync": ("create_contacts_serial",),
    "incremental_sync": ("create_contacts_serial", "initial_sync"),
    "timerange_query": ("create_events",),
    "timerange_expand": ("create_events",),
    "random_get_8": ("create_contacts_serial",),
}


def with_prerequisites(names: set[str]) -> set[str]:
    """`names` and every workload they read the data of (for --workloads)."""
    known = {w for w, _, _ in WORKLOADS}
    unknown = names - known
    if unknown:
        raise ValueError(f"unknown workloads {sorted(unknown)} (choose from {sorted(known)})")
    out = set(names)
    for name in names:
        out.update(PREREQUISITES.get(name, ()))
    return out


def server_cpu_ms(result: Result) -> float | None:
    """Server CPU milliseconds per operation (ops/s rows) or per run (ms rows): a
    figure that other jobs on a shared machine disturb far less than wall-clock time."""
    extra = result.extra
    if "server_cpu_ms" in extra:
        return float(extra["server_cpu_ms"])
    if "server_cpu_s" not in extra:
        return None
    if result.unit == "ops/s":
        ops = extra.get("requests", result.done)
        return 1000 * float(extra["server_cpu_s"]) / ops if ops else None
    if result.unit == "ms" and result.reps:
        return 1000 * float(extra["server_cpu_s"]) / len(result.reps)
    return None


@dataclass
class Result:
    workload: str
    unit: str
    value: float | None = None
    capped: bool = False
    done: int = 0
    target: int = 0
    problems: list[str] = field(default_factory=list)
    reps: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["correct"] = self.correct
        return out


class Capped(Exception):
    """A single request took longer than the cap."""


def _ics_time(value: Any) -> str:
    return str(value.strftime("%Y%m%dT%H%M%SZ"))


def run_per_client(clients: list[dav.LeanClient], worker: Callable[[dav.LeanClient], None]) -> None:
    """Run `worker` once per client, each in its own thread; close every client after."""
    try:
        threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        for c in clients:
            c.close()


class Bench:
    """Runs every workload against one server at one size, keeping what it holds."""

    def __init__(
        self,
        server: Server,
        n: int,
        *,
        seed: int,
        cap: float,
        reps: int,
        expectations: gen.Expectations,
        log: Callable[[str], None] = print,
        wrap: Callable[[str], AbstractContextManager[object]] | None = None,
        get_requests: int = 4000,
        quiet_wait: float = 0,
        only: set[str] | None = None,
        fill_peers: bool = False,
    ) -> None:
        self.server = server
        self.n = n
        self.seed = seed
        self.cap = cap
        self.reps = reps
        self.expect = expectations
        self.log = log
        self.wrap = wrap or (lambda _name: nullcontext())
        self.get_requests = get_requests
        self.quiet_wait = quiet_wait
        self.only = None if only is None else with_prerequisites(only)
        self.fill_peers = fill_peers and server.name in PEERS
        # a capped create's items the peer did not get: (collection, [(file name, body)])
        self.unfilled: tuple[str, list[tuple[str, bytes]]] | None = None
        self.timeout = cap + 30
        self.http = dav.client(server.url, server.auth, self.timeout)
        self.lean = dav.LeanClient(server.url, server.auth, self.timeout)
        self.book = server.addressbook("bench-serial")
        self.book8 = server.addressbook("bench-concurrent")
        self.events = server.calendar("bench-events")
        self.todos = server.calendar("bench-todos")
        # what the server holds: contact index -> (name, uid, revision) for live items
        self.contacts: dict[int, tuple[str, str, int]] = {}
        self.event_indexes: list[int] = []
        self.sync_token = ""
        # seconds spent in HTTP exchanges since a read workload's repetition began
        self.exchange_s = 0.0

    # -- plumbing -------------------------------------------------------------------

    def close(self) -> None:
        self.http.close()
        self.lean.close()

    def _clients(self) -> list[dav.LeanClient]:
        return [
            dav.LeanClient(self.server.url, self.server.auth, self.timeout)
            for _ in range(CONCURRENCY)
        ]

    def setup(self) -> None:
        """Create the four collections (extended MKCOL / MKCALENDAR, as clients do)."""
        for url in (self.book, self.book8):
            r = self.http.request(
                "MKCOL",
                url,
                content=dav.mkaddressbook_body("bench"),
                headers={"Content-Type": dav.XML_TYPE},
            )
            if r.status_code not in (201, 405):
                raise RuntimeError(f"{self.server.name}: MKCOL {url} -> {r.status_code} {r.text}")
        for url, comp in ((self.events, "VEVENT"), (self.todos, "VTODO")):
            r = self.http.request(
                "MKCALENDAR",
                url,
                content=dav.mkcalendar_body("bench", comp),
                headers={"Content-Type": dav.XML_TYPE},
            )
            if r.status_code not in (201, 405):
                raise RuntimeError(
                    f"{self.server.name}: MKCALENDAR {url} -> {r.status_code} {r.text}"
                )

    def run_all(self) -> Iterator[Result]:
        self.setup()
        steps: list[tuple[str, Callable[[], Result]]] = [
            ("create_contacts_serial", self.create_contacts_serial),
            ("create_contacts_8", self.create_contacts_concurrent),
            ("propfind_depth1", self.propfind_depth1),
            ("initial_sync", self.initial_sync),
            ("incremental_sync", self.incremental_sync),
            ("create_events", self.create_events),
            ("create_todos", self.create_todos),
            ("timerange_query", lambda: self.timerange(expand=False)),
            ("timerange_expand", lambda: self.timerange(expand=True)),
            ("random_get_8", self.random_gets),
        ]
        cores = os.cpu_count() or 1
        for name, step in steps:
            if self.only is not None and name not in self.only:
                continue
            if self.quiet_wait:
                wait_quiet(self.quiet_wait, log=self.log)
            cpu0, wall0 = cpu_seconds(self.server.pid), time.perf_counter()
            client0, busy0 = time.process_time(), machine_busy_seconds()
            try:
                with self.wrap(name):
                    result = step()
            except Exception as exc:  # a failed workload is a row, not a crash
                result = Result(name, UNITS[name], problems=[f"error: {exc!r}"[:300]])
            server_cpu = cpu_seconds(self.server.pid) - cpu0
            client_cpu = time.process_time() - client0
            wall = time.perf_counter() - wall0
            # CPU used by processes that are not part of this run (other jobs on the
            # machine): a figure measured while they ran is flagged in the table
            foreign = machine_busy_seconds() - busy0 - server_cpu - client_cpu
            result.extra["server_cpu_s"] = round(server_cpu, 2)
            result.extra["client_cpu_s"] = round(client_cpu, 2)
            result.extra["wall_s"] = round(wall, 2)
            result.extra["foreign_cpu_share"] = round(max(0.0, foreign) / (wall * cores), 3)
            result.extra["server_peak_rss_mb"] = round(peak_rss_bytes(self.server.pid) / 1e6, 1)
            if not self.server.alive():
                result.problems.append("server process died")
            self.log(f"  {self.server.name} N={self.n} {name}: {describe(result)}")
            if self.unfilled is not None:
                self._fill(result)
            yield result
            if not self.server.alive():
                return

    def _fill(self, result: Result) -> None:
        """Put a capped create's remaining items into the peer's storage (outside the
        create's measurement), then list the collection once so that the peer's caches
        hold them as they would after PUTs."""
        assert self.unfilled is not None
        coll, files = self.unfilled
        self.unfilled = None
        t0 = time.perf_counter()
        try:
            fill_collection(self.server, coll, files)
            members = dav.members(self._propfind(coll), coll)
        except (OSError, RuntimeError, http.client.HTTPException) as exc:
            result.problems.append(f"fill failed: {exc!r}"[:300])
            return
        result.extra["filled"] = len(files)
        result.extra["fill_s"] = round(time.perf_counter() - t0, 2)
        want = result.done + len(files)
        if len(members) != want:
            result.problems.append(f"after the fill the listing has {len(members)}, not {want}")
        self.log(f"  {self.server.name}: filled {len(files)} items into {coll} through its storage")

    def _timed(self, once: Callable[[], list[str]], name: str) -> Result:
        """Median over `reps` repetitions (fewer if the budget of one cap runs out)."""
        result = Result(name, "ms")
        spent = 0.0
        cpu: list[float] = []
        end_to_end: list[float] = []
        for _ in range(self.reps):
            self.exchange_s = 0.0
            t0, c0 = time.perf_counter(), cpu_seconds(self.server.pid)
            try:
                problems = once()
            except (httpx.TimeoutException, TimeoutError):
                result.capped = True
                break
            except Capped:
                result.capped = True
                break
            elapsed = time.perf_counter() - t0
            cpu.append(cpu_seconds(self.server.pid) - c0)
            result.reps.append(round(self.exchange_s * 1000, 2))
            end_to_end.append(round(elapsed * 1000, 2))
            for p in problems:
                if p not in result.problems:
                    result.problems.append(p)
            spent += elapsed
            if spent > self.cap:
                break
        if result.reps:
            result.value = statistics.median(result.reps)
            result.extra["server_cpu_ms"] = round(statistics.median(cpu) * 1000, 2)
            result.extra["end_to_end_ms"] = statistics.median(end_to_end)
        return result

    def _send(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dav.LeanResponse:
        """One request, its whole answer read; the time it took counts as response time.

        Read workloads report the sum of these (request sent to last byte received): the
        client's own XML parsing and checking, which costs the same per item whichever
        server answered, happens after the clock stops (it is kept in `end_to_end_ms`).
        The exchange goes through `dav.LeanClient`, whose own cost inside the window is
        a fifth of httpx's.
        """
        t0 = time.perf_counter()
        r = self.lean.request(method, url, content=body, headers=headers)
        self.exchange_s += time.perf_counter() - t0
        return r

    def _report(self, url: str, body: bytes, depth: str) -> tuple[list[dav.Response], str]:
        r = self._send("REPORT", url, body, {"Depth": depth, "Content-Type": dav.XML_TYPE})
        if r.status_code != 207:
            raise RuntimeError(f"REPORT {url} -> {r.status_code}: {r.text[:200]}")
        return dav.parse_multistatus(r.content)

    # -- writes ---------------------------------------------------------------------

    def _put(self, http: dav.LeanClient, url: str, body: bytes, ctype: str, new: bool) -> int:
        headers = {"Content-Type": ctype}
        if new:
            headers["If-None-Match"] = "*"
        return http.put(url, body, headers).status_code

    def _create_serial(
        self, name: str, coll: str, count: int, make: Callable[[int], gen.Item], ext: str
    ) -> tuple[Result, list[int]]:
        ctype = "text/vcard; charset=utf-8" if ext == "vcf" else "text/calendar; charset=utf-8"
        result = Result(name, "ops/s", target=count)
        created: list[int] = []
        latencies: list[float] = []
        bad: dict[int, int] = {}
        # Made before the clock starts: generating a contact costs the client about
        # 60 us, which is no server's work (5% of a Homeport PUT's round trip).
        items = [make(i) for i in range(count)]
        t0 = time.perf_counter()
        deadline = t0 + self.cap
        for i, item in enumerate(items):
            if time.perf_counter() > deadline:
                result.capped = True
                break
            t = time.perf_counter()
            status = self._put(self.lean, f"{coll}{item.name}.{ext}", item.body, ctype, True)
            latencies.append(time.perf_counter() - t)
            if status in (201, 204):
                created.append(i)
            else:
                bad[status] = bad.get(status, 0) + 1
        elapsed = time.perf_counter() - t0
        result.done = len(created)
        result.value = len(latencies) / elapsed if elapsed else None
        if bad:
            result.problems.append(f"PUT answered {bad}")
        _latency_stats(result, latencies)
        tail = latencies[-max(1, len(latencies) // 10) :]
        result.extra["last10pct_ops_s"] = round(len(tail) / sum(tail), 1) if sum(tail) else None
        if result.capped and self.fill_peers:
            # run_all fills the rest once this workload's figures are taken; the reads
            # after it then expect all `count` items
            stop = len(latencies)
            self.unfilled = (coll, [(f"{it.name}.{ext}", it.body) for it in items[stop:]])
            created.extend(range(stop, count))
        return result, created

    def create_contacts_serial(self) -> Result:
        result, created = self._create_serial(
            "create_contacts_serial",
            self.book,
            self.n,
            lambda i: gen.contact(self.seed, i),
            "vcf",
        )
        for i in created:
            item = gen.contact(self.seed, i)
            self.contacts[i] = (item.name + ".vcf", item.uid, 0)
        return result

    def create_contacts_concurrent(self) -> Result:
        result = Result("create_contacts_8", "ops/s", target=self.n)
        counter = itertools.count()
        lock = threading.Lock()
        latencies: list[float] = []
        bad: dict[int, int] = {}
        created = 0
        capped = False
        clients = self._clients()
        # a different seed offset: other contacts than the serial collection's
        base = 10_000_000
        items = [gen.contact(self.seed, base + i) for i in range(self.n)]  # see _create_serial
        t0 = time.perf_counter()
        deadline = t0 + self.cap

        def worker(http: dav.LeanClient) -> None:
            nonlocal created, capped
            mine: list[float] = []
            ok = 0
            while True:
                i = next(counter)
                if i >= self.n:
                    break
                if time.perf_counter() > deadline:
                    capped = True
                    break
                item = items[i]
                t = time.perf_counter()
                status = self._put(
                    http, f"{self.book8}{item.name}.vcf", item.body, "text/vcard", True
                )
                mine.append(time.perf_counter() - t)
                if status in (201, 204):
                    ok += 1
                else:
                    with lock:
                        bad[status] = bad.get(status, 0) + 1
            with lock:
                latencies.extend(mine)
                created += ok

        run_per_client(clients, worker)
        elapsed = time.perf_counter() - t0
        result.done = created
        result.capped = capped
        result.value = len(latencies) / elapsed if elapsed else None
        if bad:
            result.problems.append(f"PUT answered {bad}")
        _latency_stats(result, latencies)
        # check: the collection lists exactly what was acknowledged
        try:
            responses = self._propfind(self.book8)
            members = sum(1 for r in responses if r.name.endswith(".vcf"))
            if members != created:
                result.problems.append(f"listing has {members} items, {created} acknowledged")
        except (OSError, http.client.HTTPException, RuntimeError) as exc:
            result.problems.append(f"listing failed: {exc!r}"[:200])
        return result

    def create_events(self) -> Result:
        result, created = self._create_serial(
            "create_events", self.events, self.n, lambda i: gen.event(self.seed, i), "ics"
        )
        self.event_indexes = created
        return result

    def create_todos(self) -> Result:
        result, _ = self._create_serial(
            "create_todos",
            self.todos,
            max(1, self.n // 10),
            lambda i: gen.todo(self.seed, i),
            "ics",
        )
        return result

    # -- reads ----------------------------------------------------------------------

    def _propfind(self, url: str) -> list[dav.Response]:
        r = self._send(
            "PROPFIND", url, dav.PROPFIND_BODY, {"Depth": "1", "Content-Type": dav.XML_TYPE}
        )
        if r.status_code != 207:
            raise RuntimeError(f"PROPFIND {url} -> {r.status_code}")
        return dav.parse_multistatus(r.content)[0]

    def propfind_depth1(self) -> Result:
        expected = {name for name, _, _ in self.contacts.values()}

        def once() -> list[str]:
            members = dav.members(self._propfind(self.book), self.book)
            names = {r.name for r in members}
            problems = _set_problems("listing", names, expected)
            no_etag = sum(1 for r in members if not r.text(f"{{{dav.DAV}}}getetag"))
            if no_etag:
                problems.append(f"{no_etag} members without getetag")
            return problems

        result = self._timed(once, "propfind_depth1")
        result.done = result.target = len(expected)
        return result

    def _sync(self, token: str) -> tuple[list[dav.Response], str, int]:
        """sync-collection from `token`, following truncation (507) as a client does."""
        out: list[dav.Response] = []
        rounds = 0
        while True:
            rounds += 1
            responses, token = self._report(self.book, dav.sync_body(token), "0")
            truncated = False
            for r in responses:
                if r.href.rstrip("/") == self.book.rstrip("/"):
                    truncated = truncated or r.status == 507
                else:
                    out.append(r)
            if not truncated or rounds > 10_000:
                return out, token, rounds

    def initial_sync(self) -> Result:
        expected = {name: uid for name, uid, _ in self.contacts.values()}
        last_token = ""

        def once() -> list[str]:
            nonlocal last_token
            responses, token, _ = self._sync("")
            problems: list[str] = []
            if not token:
                problems.append("no sync-token")
            live = [r for r in responses if r.status == 200]
            names = {r.name for r in live}
            problems += _set_problems("sync-collection", names, set(expected))
            hrefs = sorted(r.href for r in live)
            got = 0
            wrong = 0
            for k in range(0, len(hrefs), MULTIGET_BATCH):
                batch = hrefs[k : k + MULTIGET_BATCH]
                body = dav.multiget_body([_quote(h) for h in batch])
                for r in self._report(self.book, body, "1")[0]:
                    data = r.text(f"{{{dav.CARD}}}address-data")
                    if r.status == 200 and data:
                        got += 1
                        uid = expected.get(r.name)
                        if uid is None or f"UID:{uid}" not in data:
                            wrong += 1
            if got != len(expected):
                problems.append(f"multiget returned {got} bodies, expected {len(expected)}")
            if wrong:
                problems.append(f"{wrong} bodies with the wrong UID")
            last_token = token
            return problems

        result = self._timed(once, "initial_sync")
        result.done = result.target = len(expected)
        self.sync_token = last_token
        return result

    def incremental_sync(self) -> Result:
        result = Result("incremental_sync", "ms")
        if not self.sync_token:
            result.problems.append("no token from the initial sync")
            return result
        cpu: list[float] = []
        for rep in range(self.reps):
            rng = random.Random(f"{self.seed}:incremental:{self.n}:{rep}")
            live = sorted(self.contacts)
            if len(live) < 15:
                result.problems.append("fewer than 15 items held")
                break
            picked = rng.sample(live, 15)
            changed, deleted = picked[:10], picked[10:]
            for i in changed:
                name, uid, revision = self.contacts[i]
                item = gen.contact(self.seed, i, revision + 1)
                status = self._put(self.lean, f"{self.book}{name}", item.body, "text/vcard", False)
                if status not in (200, 201, 204):
                    result.problems.append(f"PUT (change) -> {status}")
                self.contacts[i] = (name, uid, revision + 1)
            for i in deleted:
                name = self.contacts.pop(i)[0]
                status = self.lean.delete(f"{self.book}{name}").status_code
                if status not in (200, 204):
                    result.problems.append(f"DELETE -> {status}")
            want_changed = {self.contacts[i][0] for i in changed}
            want_deleted = {gen.contact(self.seed, i).name + ".vcf" for i in deleted}
            self.exchange_s = 0.0
            t0, c0 = time.perf_counter(), cpu_seconds(self.server.pid)
            try:
                responses, token, rounds = self._sync(self.sync_token)
            except (httpx.TimeoutException, TimeoutError):
                result.capped = True
                break
            result.reps.append(round(self.exchange_s * 1000, 2))
            result.extra.setdefault("end_to_end_ms", []).append(
                round((time.perf_counter() - t0) * 1000, 2)
            )
            cpu.append(cpu_seconds(self.server.pid) - c0)
            got_changed = {r.name for r in responses if r.status == 200}
            got_deleted = {r.name for r in responses if r.status == 404}
            others = [r for r in responses if r.status not in (200, 404)]
            for p in _set_problems("changed", got_changed, want_changed) + _set_problems(
                "deleted", got_deleted, want_deleted
            ):
                result.problems.append(f"rep {rep}: {p}")
            if others:
                result.problems.append(f"rep {rep}: {len(others)} responses with other statuses")
            if not token or token == self.sync_token:
                result.problems.append(f"rep {rep}: sync-token did not advance")
            result.extra.setdefault("responses", []).append(len(responses))
            result.extra.setdefault("rounds", []).append(rounds)
            self.sync_token = token or self.sync_token
        if result.reps:
            result.value = statistics.median(result.reps)
            result.extra["server_cpu_ms"] = round(statistics.median(cpu) * 1000, 2)
        result.done = result.target = 15
        return result

    def timerange(self, expand: bool) -> Result:
        name = "timerange_expand" if expand else "timerange_query"
        want_events, want_instances = self.expect.query(self.event_indexes)
        start, end = _ics_time(gen.QUERY_START), _ics_time(gen.QUERY_END)
        body = dav.calendar_query_body(start, end, expand)

        def once() -> list[str]:
            members = dav.members(self._report(self.events, body, "1")[0], self.events)
            found = [r for r in members if r.status == 200]
            problems: list[str] = []
            if len(found) != want_events:
                problems.append(f"{len(found)} events, expected {want_events}")
            if expand:
                cal = f"{{{dav.CAL}}}calendar-data"
                instances = sum(r.text(cal).count("BEGIN:VEVENT") for r in found)
                rrules = sum(_vevent_rrules(r.text(cal)) for r in found)
                if instances != want_instances:
                    problems.append(f"{instances} instances, expected {want_instances}")
                if rrules:
                    problems.append(f"{rrules} RRULEs left in expanded data")
            return problems

        result = self._timed(once, name)
        result.done = result.target = want_events
        result.extra["expected_events"] = want_events
        result.extra["expected_instances"] = want_instances
        result.extra["events_held"] = len(self.event_indexes)
        return result

    def random_gets(self) -> Result:
        result = Result("random_get_8", "ops/s", target=self.get_requests)
        items = sorted(self.contacts.values())
        if not items:
            result.problems.append("no contacts held")
            return result
        rng = random.Random(f"{self.seed}:gets:{self.n}")
        plan = [rng.choice(items) for _ in range(self.get_requests)]
        counter = itertools.count()
        lock = threading.Lock()
        bad: dict[str, int] = {}
        latencies: list[float] = []
        capped = False
        clients = self._clients()
        t0 = time.perf_counter()
        deadline = t0 + self.cap

        def worker(http: dav.LeanClient) -> None:
            nonlocal capped
            mine: list[float] = []
            while True:
                k = next(counter)
                if k >= len(plan):
                    break
                if time.perf_counter() > deadline:
                    capped = True
                    break
                name, uid, _ = plan[k]
                t = time.perf_counter()
                r = http.get(f"{self.book}{name}")
                mine.append(time.perf_counter() - t)
                problem = ""
                if r.status_code != 200:
                    problem = f"status {r.status_code}"
                elif f"UID:{uid}".encode() not in r.content:
                    problem = "wrong body"
                if problem:
                    with lock:
                        bad[problem] = bad.get(problem, 0) + 1
            with lock:
                latencies.extend(mine)

        run_per_client(clients, worker)
        elapsed = time.perf_counter() - t0
        result.done = len(latencies)
        result.capped = capped
        result.value = len(latencies) / elapsed if elapsed else None
        if bad:
            result.problems.append(f"GET problems {bad}")
        _latency_stats(result, latencies)
        return result


def _vevent_rrules(data: str) -> int:
    """RRULEs inside VEVENTs (a VTIMEZONE's own RRULEs are fine in expanded data)."""
    count = 0
    for part in data.split("BEGIN:VEVENT")[1:]:
        count += part.split("END:VEVENT", 1)[0].count("\nRRULE")
    return count


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path)


def _set_problems(what: str, got: set[str], want: set[str]) -> list[str]:
    problems = []
    missing, extra = want - got, got - want
    if missing:
        problems.append(f"{what}: {len(missing)} missing (e.g. {sorted(missing)[0]})")
    if extra:
        problems.append(f"{what}: {len(extra)} unexpected (e.g. {sorted(extra)[0]})")
    return problems


def _latency_stats(result: Result, latencies: list[float]) -> None:
    result.extra["requests"] = len(latencies)
    if not latencies:
        return
    ordered = sorted(latencies)
    result.extra["p50_ms"] = round(ordered[len(ordered) // 2] * 1000, 2)
    p99 = ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)]
    result.extra["p99_ms"] = round(p99 * 1000, 2)


def describe(result: Result) -> str:
    if result.value is None:
        figure = "> cap" if result.capped else "n/a"
    else:
        figure = f"{result.value:.1f} {result.unit}" + (" (> cap)" if result.capped else "")
    check = "ok" if result.correct else "WRONG: " + "; ".join(result.problems)
    return f"{figure}, {result.done}/{result.target}, {check}"
