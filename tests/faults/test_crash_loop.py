"""Crash loop: clients write while the server is SIGKILLed at random moments, many times.

After every kill: `homeport check` passes on the data directory as the crash left it;
after every restart: every acknowledged write is there, byte for byte with its ETag,
every acknowledged delete is gone (a write whose answer was lost may be either), and
a sync-collection from a token taken before the first kill reports exactly the
change since then. See `tests/faults/model.py` for the rules.

Quick by default (a few kills); HOMEPORT_SLOW=1 runs the long loop whose figures are
in docs/security.md.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from lxml import etree

from tests.conftest import PASSWORD
from tests.faults.harness import SLOW, Launcher, Proc, check, fresh_data, launcher
from tests.faults.model import KeyModel, etag_for

KILLS = int(os.environ.get("HOMEPORT_CRASH_KILLS", "120" if SLOW else "5"))
THREADS = 4
KEYS_PER_THREAD = 6
STATIC_KEYS = 5  # written before the sync token, never touched: must not appear in deltas
NS = {"d": "DAV:"}
COLLECTIONS = ("contacts", "files")


def vcard(uid: str, size: int) -> bytes:
    note = "x" * size
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Crash {uid[:8]}\r\n"
        f"N:Crash;{uid[:8]};;;\r\nNOTE:{note}\r\nEND:VCARD\r\n"
    ).encode()


def file_body(rng: random.Random) -> bytes:
    # Mostly small (inline in the database), some large (external blobs, staged + renamed).
    size = rng.choice((300, 5_000, 90_000, 200_000))
    return rng.randbytes(size)


@dataclass
class Key:
    collection: str
    name: str

    @property
    def url(self) -> str:
        return f"/dav/alice/{self.collection}/{self.name}"


class Writer(threading.Thread):
    """One client: PUT, overwrite (sometimes If-Match), DELETE and MOVE on its own keys."""

    def __init__(self, index: int, server: Proc, model: KeyModel, seed: int) -> None:
        super().__init__(name=f"writer-{index}", daemon=True)
        self.keys = [
            Key(COLLECTIONS[i % 2], f"w{index}-k{i}" + (".vcf" if i % 2 == 0 else ".bin"))
            for i in range(KEYS_PER_THREAD)
        ]
        self.server = server
        self.model = model
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.unexpected: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, auth=("alice", PASSWORD), timeout=10) as client:
            while not self.stop.is_set():
                try:
                    self.step(client)
                except httpx.ConnectError:
                    time.sleep(0.02)  # the server is down: nothing was sent
                except Exception as exc:  # a bug in the test itself must not pass silently
                    self.unexpected.append(f"client crashed: {exc!r}")
                    return

    def step(self, client: httpx.Client) -> None:
        key = self.rng.choice(self.keys)
        roll = self.rng.random()
        if roll < 0.55:
            self.put(client, key)
        elif roll < 0.8:
            self.delete(client, key)
        else:
            dst = self.rng.choice([k for k in self.keys if k.collection == key.collection])
            if dst != key:
                self.move(client, key, dst)

    def put(self, client: httpx.Client, key: Key) -> None:
        if key.collection == "contacts":
            body = vcard(uuid.uuid4().hex, self.rng.choice((50, 500, 3000)))
        else:
            body = file_body(self.rng)
        h = self.model.remember_body(body)
        headers = {}
        known = self.model.definite(key.url)
        if known and self.rng.random() < 0.5:
            headers["If-Match"] = etag_for(str(known))
        try:
            r = client.put(key.url, content=body, headers=headers)
        except httpx.ConnectError:
            raise
        except httpx.HTTPError:
            self.model.put_unknown(key.url, h)
            return
        if r.status_code in (201, 204):
            self.model.put_acked(key.url, h, r.status_code, r.headers.get("etag"))
        elif r.status_code == 412 and headers:
            self.model.put_refused_if_match(key.url, str(known))
        else:
            self.unexpected.append(f"PUT {key.url}: {r.status_code} {r.text[:200]}")

    def delete(self, client: httpx.Client, key: Key) -> None:
        try:
            r = client.delete(key.url)
        except httpx.ConnectError:
            raise
        except httpx.HTTPError:
            self.model.delete_unknown(key.url)
            return
        if r.status_code == 204:
            self.model.delete_acked(key.url)
        elif r.status_code == 404:
            self.model.absent_seen(key.url, "DELETE")
        else:
            self.unexpected.append(f"DELETE {key.url}: {r.status_code} {r.text[:200]}")

    def move(self, client: httpx.Client, src: Key, dst: Key) -> None:
        try:
            r = client.request("MOVE", src.url, headers={"Destination": dst.url, "Overwrite": "T"})
        except httpx.ConnectError:
            raise
        except httpx.HTTPError:
            self.model.move_unknown(src.url, dst.url)
            return
        if r.status_code in (201, 204):
            self.model.move_acked(src.url, dst.url, r.status_code)
        elif r.status_code == 404:
            self.model.absent_seen(src.url, "MOVE")
        else:
            self.unexpected.append(f"MOVE {src.url}: {r.status_code} {r.text[:200]}")


def sync_token(client: httpx.Client, collection: str) -> str:
    r = client.request(
        "PROPFIND",
        f"/dav/alice/{collection}/",
        headers={"Depth": "0"},
        content=b'<propfind xmlns="DAV:"><prop><sync-token/></prop></propfind>',
    )
    assert r.status_code == 207, r.text
    token = etree.fromstring(r.content).findtext(".//d:sync-token", namespaces=NS)
    assert token
    return token


def sync_delta(
    client: httpx.Client, collection: str, token: str
) -> tuple[dict[str, str | None], str]:
    """{href: etag, or None for a 404 (deleted)} and the new token."""
    body = (
        '<sync-collection xmlns="DAV:"><sync-token>'
        f"{token}</sync-token><sync-level>1</sync-level><prop><getetag/></prop></sync-collection>"
    )
    r = client.request("REPORT", f"/dav/alice/{collection}/", content=body.encode())
    assert r.status_code == 207, r.text[:500]
    root = etree.fromstring(r.content)
    delta: dict[str, str | None] = {}
    for resp in root.findall("d:response", NS):
        href = unquote(resp.findtext("d:href", namespaces=NS) or "")
        status = resp.findtext("d:status", namespaces=NS)
        if status and " 404 " in status + " ":
            delta[href] = None
        else:
            delta[href] = resp.findtext(".//d:getetag", namespaces=NS)
    new = root.findtext("d:sync-token", namespaces=NS)
    assert new
    return delta, new


@dataclass
class CrashLoop:
    data: Path
    launcher: Launcher
    model: KeyModel
    static: dict[str, bytes]
    tokens: dict[str, str]
    baseline: dict[str, str | None]
    kills: int = 0
    checks_passed: int = 0
    sync_checks: int = 0

    def verify(self, server: Proc, keys: list[str]) -> None:
        with server.client(timeout=30) as client:
            for url in keys:
                r = client.get(url)
                self.model.observe(url, r.status_code, r.content, r.headers.get("etag"))
            for url, body in self.static.items():
                r = client.get(url)
                assert r.status_code == 200 and r.content == body, f"static item {url} damaged"
            self.verify_sync(client, keys)

    def verify_sync(self, client: httpx.Client, keys: list[str]) -> None:
        """The delta from the pre-crash token is exactly what changed since then."""
        for collection in COLLECTIONS:
            prefix = f"/dav/alice/{collection}/"
            delta, new_token = sync_delta(client, collection, self.tokens[collection])
            current = {url: self.model.definite(url) for url in keys if url.startswith(prefix)}
            problems: list[str] = []
            for href, etag in delta.items():
                if href not in current:
                    problems.append(f"{href} reported but never touched after the token")
                    continue
                state = current[href]
                if etag is None and state is not None:
                    problems.append(f"{href} reported deleted but it exists")
                if etag is not None and etag != etag_for(str(state)):
                    problems.append(f"{href} reported with ETag {etag}, GET gave {state}")
            for url, state in current.items():
                if state != self.baseline.get(url) and url not in delta:
                    problems.append(f"{url} changed since the token but is not in the delta")
            again, _ = sync_delta(client, collection, new_token)
            if again:
                problems.append(f"a delta from the newest token is not empty: {sorted(again)}")
            assert not problems, "\n".join(problems)
            self.sync_checks += 1


def run_crash_loop(tmp_path: Path, kills: int, seed: int) -> CrashLoop:
    rng = random.Random(seed)
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        with server.client() as client:
            assert client.request("MKCOL", "/dav/alice/files/").status_code == 201
            static: dict[str, bytes] = {}
            for i in range(STATIC_KEYS):
                body = vcard(f"static-{i}", 100)
                url = f"/dav/alice/contacts/static-{i}.vcf"
                assert client.put(url, content=body).status_code == 201
                static[url] = body
            tokens = {c: sync_token(client, c) for c in COLLECTIONS}
        model = KeyModel()
        loop = CrashLoop(data, starter, model, static, tokens, {})
        all_keys: list[str] = []
        for round_no in range(kills):
            writers = [Writer(i, server, model, rng.randrange(1 << 30)) for i in range(THREADS)]
            if not all_keys:
                all_keys = [k.url for w in writers for k in w.keys]
                loop.baseline = {url: None for url in all_keys}
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.15, 1.2))
            server.kill()
            loop.kills += 1
            for w in writers:
                w.stop.set()
            for w in writers:
                w.join(timeout=30)
                assert not w.is_alive(), "a client thread hung"
                assert not w.unexpected, f"round {round_no}: " + "\n".join(w.unexpected)
            report = check(data)
            assert report["ok"] and report["exit"] == 0, f"after kill {loop.kills}: {report}"
            loop.checks_passed += 1
            server = starter.start(data)
            loop.verify(server, all_keys)
            assert not model.violations, "\n".join(model.violations[:20])
        log = "".join(p.log_text() for p in starter.started)
        assert "Traceback" not in log, log[-3000:]
        server.stop()
    return loop


@pytest.mark.timeout(120 + KILLS * 10)
def test_crash_loop_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    seed = int(os.environ.get("HOMEPORT_CRASH_SEED", str(random.randrange(1 << 30))))
    loop = run_crash_loop(tmp_path, KILLS, seed)
    f = loop.model.figures
    print(
        f"\ncrash loop (seed {seed}): {loop.kills} SIGKILLs, "
        f"{f.acknowledged_writes} acknowledged writes "
        f"({f.acknowledged_deletes} acknowledged deletes), "
        f"{f.unknown_outcomes} answers lost to a kill, "
        f"{f.states_checked} acknowledged states re-read exactly after restarts "
        f"({f.keys_read} reads), {loop.checks_passed} `homeport check` runs passed, "
        f"{loop.sync_checks} sync-collection deltas verified"
    )
    assert loop.kills == KILLS
    assert f.acknowledged_writes > 0 and f.states_checked > 0


@pytest.mark.skipif(not SLOW, reason="long run: HOMEPORT_SLOW=1")
@pytest.mark.timeout(120 + KILLS * 5)
def test_crash_loop_with_a_second_seed(tmp_path: Path) -> None:
    loop = run_crash_loop(tmp_path, KILLS // 2, 12345)
    assert loop.kills == KILLS // 2
