"""Password guessing over real HTTP: 429 with Retry-After, real users unaffected,
and a burst of wrong passwords cannot take the server's memory."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from homeport.server.auth import ADDRESS_LIMIT, ARGON2_SLOTS, PAIR_LIMIT
from tests.conftest import PASSWORD
from tests.faults.harness import SLOW, Proc, fresh_data, launcher


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Proc]:
    data = fresh_data(tmp_path, users=("alice", "bob"))
    with launcher() as starter:
        yield starter.start(data)


def get(
    server: Proc, user: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    with httpx.Client(base_url=server.url, auth=(user, password), timeout=60) as c:
        return c.request(
            "PROPFIND",
            f"/dav/{user}/",
            headers={"Depth": "0", **(headers or {})},
            content=b'<propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>',
        )


def test_guessing_at_bob_gets_429_and_alice_still_signs_in(server: Proc) -> None:
    statuses = [get(server, "bob", f"guess-{i}").status_code for i in range(PAIR_LIMIT.free + 1)]
    assert statuses == [401] * (PAIR_LIMIT.free + 1)
    refused = get(server, "bob", "guess-next")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "too-many-requests" in refused.text
    for name in ("x-content-type-options", "x-frame-options"):
        assert name in refused.headers
    # Even the right password waits: a refusal says nothing about the password.
    assert get(server, "bob", PASSWORD).status_code == 429
    # alice, who was never guessed at, signs in with a fresh password check.
    assert get(server, "alice", PASSWORD).status_code == 207
    time.sleep(int(refused.headers["retry-after"]) + 0.2)
    assert get(server, "bob", PASSWORD).status_code == 207
    assert "must wait" in server.log_text()


def test_a_burst_of_wrong_passwords_cannot_take_the_servers_memory(tmp_path: Path) -> None:
    """argon2 holds 64 MiB per check: unbounded, 16 concurrent guesses would take 1 GiB
    (40 took 2 GB before the bound)."""
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        base = server.rss_kib()
        peak = [base]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], server.rss_kib())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        statuses: list[int] = []

        def guess(n: int) -> None:
            # Unknown names cost a full check too (against a dummy hash, for equal timing).
            statuses.append(get(server, f"u{n % 8}", f"wrong-{n}").status_code)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        sampler.join()
        growth_mib = (peak[0] - base) / 1024
        print(f"\n16 concurrent wrong passwords: server RSS +{growth_mib:.0f} MiB at peak")
        assert set(statuses) <= {401, 429}
        assert growth_mib < ARGON2_SLOTS * 64 + 160, f"RSS grew by {growth_mib:.0f} MiB"
        assert get(server, "alice", PASSWORD).status_code == 207


def test_the_app_gives_the_client_address_to_the_throttle(tmp_path: Path) -> None:
    """The per-address limit needs the address: the app must pass it on (checked in-process
    with a fake client address, quicker than 21 password checks over HTTP)."""
    with warnings.catch_warnings():  # "use httpx2": not installed here, and httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from homeport import config
    from homeport.server.app import create_app
    from homeport.wiring import build_services

    data = fresh_data(tmp_path, users=("alice",))
    cfg = config.load(overrides={("server", "data"): str(data)}, environ={})
    services = build_services(cfg)
    try:
        app = create_app(services, cfg)
        seen: list[object] = []
        real = app.auth.authenticate

        def spy(header: str | None, client: str, address: str | None = None) -> object:
            seen.append(address)
            return real(header, client, address)

        app.auth.authenticate = spy
        with TestClient(app, client=("198.51.100.23", 40000)) as tc:
            r = tc.request(
                "PROPFIND", "/dav/alice/", auth=("alice", PASSWORD), headers={"Depth": "0"}
            )
            assert r.status_code == 207
        assert seen == ["198.51.100.23"]
    finally:
        services.close()


@pytest.mark.skipif(not SLOW, reason="21 password checks: HOMEPORT_SLOW=1")
def test_guessing_many_names_from_one_address_is_refused(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        # uvicorn trusts X-Forwarded-For from 127.0.0.1: it stands for the client address.
        attacker = {"X-Forwarded-For": "198.51.100.23"}
        results = []
        lock = threading.Lock()

        def spray(n: int) -> None:
            status = get(server, f"name{n}", "guess", attacker).status_code
            with lock:
                results.append(status)

        threads = [threading.Thread(target=spray, args=(n,)) for n in range(ADDRESS_LIMIT.free + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert get(server, "someone", "guess", attacker).status_code == 429
        assert get(server, "alice", PASSWORD, {"X-Forwarded-For": "192.0.2.5"}).status_code == 207
