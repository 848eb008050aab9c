"""Shared fixtures: a real `homeport serve` on a free loopback port, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def homeport(
    *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user or script would."""
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def require_tool(name: str) -> str:
    """The path of an external tool; fail (not skip) in CI when it is missing."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("HOMEPORT_REQUIRE_ALL"):
            pytest.fail(f"{name} is required in CI but not installed")
        pytest.skip(f"{name} is not installed")
    return path


@dataclass
class Server:
    url: str
    data: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, user: str = "alice", password: str = PASSWORD) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, password), timeout=30)

    def add_user(self, name: str, password: str = PASSWORD) -> None:
        homeport(
            "user", "add", name, "--password-stdin", "--data", str(self.data), stdin=password + "\n"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def start_server(
    data: Path, users: tuple[str, ...] = ("alice",), extra: tuple[str, ...] = ()
) -> Server:
    for name in users:
        homeport(
            "user", "add", name, "--password-stdin", "--data", str(data), stdin=PASSWORD + "\n"
        )
    port = free_port()
    log = data.parent / f"server-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "homeport",
                "serve",
                "--data",
                str(data),
                "--listen",
                f"127.0.0.1:{port}",
                *extra,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", data, port, proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server with user alice (and bob, for isolation tests)."""
    srv = start_server(tmp_path / "data", users=("alice", "bob"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a whole module, for suites that only add data."""
    srv = start_server(tmp_path_factory.mktemp("srv") / "data", users=("alice", "bob"))
    try:
        yield srv
    finally:
        srv.stop()
