"""Real `homeport serve` processes that a test may kill, damage and restart.

The fault, security, fuzz and load suites share this: a server on a free loopback
port, started on a data directory that already holds its users (so it can be
restarted on the same directory), stopped or killed by its PID, with its memory read
from /proc. `Launcher` remembers every process it started and ends the ones still
running when the test finishes, whatever happened.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import homeport as homeport_package
from tests.conftest import PASSWORD, free_port

SLOW = bool(os.environ.get("HOMEPORT_SLOW"))
"""The project's switch for long runs (fault loops, fuzzing, load)."""

_SOURCE = os.pathsep.join(
    [str(Path(homeport_package.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
).rstrip(os.pathsep)
"""The server runs the same code as the test that starts it (not some other install)."""


def homeport(
    *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, from the same source as the test (see `_SOURCE`)."""
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
        env={**os.environ, "PYTHONPATH": _SOURCE},
    )


def add_user(data: Path, name: str, password: str = PASSWORD) -> None:
    homeport("user", "add", name, "--password-stdin", "--data", str(data), stdin=password + "\n")


def check(data: Path) -> dict[str, Any]:
    """`homeport check --json` on a data directory; the parsed report plus its exit code."""
    r = homeport("check", "--json", "--data", str(data), check=False)
    try:
        report: dict[str, Any] = json.loads(r.stdout)
    except json.JSONDecodeError:
        report = {"ok": False, "problems": [f"check did not answer: {r.stdout}{r.stderr}"]}
    report["exit"] = r.returncode
    report["stderr"] = r.stderr
    return report


def proc_status(pid: int, key: str) -> int:
    """A kB figure (VmRSS, VmHWM, ...) of a live process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Proc:
    """One `homeport serve` process."""

    data: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(
        self, user: str = "alice", password: str = PASSWORD, timeout: float = 30.0
    ) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, password), timeout=timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of the process."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait (a clean shutdown); SIGKILL if it does not end."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kib(self) -> int:
        return proc_status(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return proc_status(self.pid, "VmHWM")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not start:\n{log.read_text(errors='replace')}")


@dataclass
class Launcher:
    """Starts servers and guarantees that each one it started is ended, by PID."""

    started: list[Proc] = field(default_factory=list)

    def start(
        self,
        data: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log: Path | None = None,
    ) -> Proc:
        """Start `homeport serve` on `data` (users must exist) and wait until it listens."""
        port = port or free_port()
        log = log or data.parent / f"server-{port}-{len(self.started)}.log"
        full_env = {**os.environ, "PYTHONPATH": _SOURCE, **(env or {})}
        with open(log, "ab") as fh:
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
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        server = Proc(data, port, proc, log)
        self.started.append(server)
        try:
            _wait_listening(proc, port, log)
        except BaseException:
            server.kill()
            raise
        return server

    def close(self) -> None:
        for server in self.started:
            server.stop()


@contextmanager
def launcher() -> Iterator[Launcher]:
    starter = Launcher()
    try:
        yield starter
    finally:
        starter.close()


_TEMPLATES: dict[tuple[str, ...], Path] = {}


def fresh_data(tmp: Path, users: tuple[str, ...] = ("alice", "bob")) -> Path:
    """A new data directory with `users` (password `PASSWORD`) and their default collections.

    The users are created once per test session (argon2 and a CLI start cost a second
    each) and the directory is copied for every test.
    """
    template = _TEMPLATES.get(users)
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="homeport-template-")) / "data"
        for name in users:
            add_user(template, name)
        atexit.register(shutil.rmtree, template.parent, True)
        _TEMPLATES[users] = template
    data = tmp / "data"
    shutil.copytree(template, data)
    return data


def assert_healthy(server: Proc, user: str = "alice") -> None:
    """The server answers an ordinary authenticated request correctly."""
    with server.client(user, timeout=10) as c:
        r = c.request(
            "PROPFIND",
            f"/dav/{user}/",
            headers={"Depth": "0"},
            content=b'<propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>',
        )
    assert r.status_code == 207, (r.status_code, r.text[:300])
