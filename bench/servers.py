"""Start and stop the three servers on loopback with fresh storage; measure them.

Radicale and Xandikos are installed from PyPI into their own virtualenv (a cache folder,
`.bench-venv/` by default) only when they are asked for. Every process is stopped by its
PID, even when the run fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PASSWORD = "bench-password"
USER = "bench"
PEERS = ("radicale", "xandikos")
REPO = Path(__file__).resolve().parent.parent
ALL_SERVERS = ("homeport", *PEERS)


def export_src(rev: str, into: Path) -> Path:
    """`src/` of commit `rev` unpacked under `into`; returns the folder for PYTHONPATH.

    An unknown commit stops the command with a message, not a traceback."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    done = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), rev, "src"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"cannot export {rev!r}: {done.stderr.strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def venv_python(cache: Path) -> Path:
    return cache / "bin" / "python"


def ensure_venv(cache: Path, packages: list[str], log: Callable[[str], None]) -> Path:
    """A virtualenv in `cache` holding `packages` (installed from PyPI when missing)."""
    python = venv_python(cache)
    if not python.exists():
        log(f"creating virtualenv {cache}")
        subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
    missing = [p for p in packages if package_version(cache, p) is None]
    if missing:
        log(f"pip install {' '.join(missing)} into {cache}")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *missing],
            check=True,
        )
    return python


def package_version(cache: Path, package: str) -> str | None:
    python = venv_python(cache)
    if not python.exists():
        return None
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def homeport_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("homeport")


@dataclass
class Server:
    """A running server and where its collections live."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    storage: Path
    log_path: Path
    addressbook_home: str
    calendar_home: str
    auth: tuple[str, str] | None
    extra_pids: list[int] = field(default_factory=list)

    def addressbook(self, coll: str) -> str:
        return f"{self.addressbook_home}{coll}/"

    def calendar(self, coll: str) -> str:
        return f"{self.calendar_home}{coll}/"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        stop_process(self.proc, signal.SIGTERM, timeout)


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20
) -> None:
    """Ask `proc` to stop with `sig`, and kill it if it has not after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited early:\n{server.log_path.read_text(errors='replace')}"
            )
        try:
            r = httpx.request("OPTIONS", server.url + "/", auth=server.auth, timeout=2)
            if r.status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not start:\n{server.log_path.read_text()}")


def _popen(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


def start_homeport(
    workdir: Path,
    src: Path | None = None,
    wrapper: Sequence[str] = (),
    ready_timeout: float = 60,
    add_user: bool = True,
) -> Server:
    """`src`: run Homeport from this source folder (e.g. an exported commit) instead of
    the installed package. `wrapper`: a command the server runs under (valgrind, say),
    which may need a longer `ready_timeout`. `add_user` False: serve a data folder that
    already has the bench user (a kept one)."""
    data = workdir / "data"
    env = dict(os.environ, HOMEPORT_LOG_LEVEL="warning")
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    if add_user:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "homeport",
                "user",
                "add",
                USER,
                "--password-stdin",
                "--data",
                str(data),
            ],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=120,
            env=env,
        )
    port = free_port()
    log = workdir / "server.log"
    cmd = [*wrapper, sys.executable, "-m", "homeport", "serve", "--data", str(data)]
    proc = _popen([*cmd, "--listen", f"127.0.0.1:{port}"], log, env)
    url = f"http://127.0.0.1:{port}"
    home = f"/dav/{USER}/"
    server = Server("homeport", url, proc, data, log, home, home, (USER, PASSWORD))
    _wait_ready(server, ready_timeout)
    return server


def start_radicale(workdir: Path, cache: Path) -> Server:
    storage = workdir / "collections"
    port = free_port()
    config = workdir / "radicale.conf"
    config.write_text(
        "[server]\n"
        f"hosts = 127.0.0.1:{port}\n"
        "[auth]\n"
        "type = none\n"
        "[storage]\n"
        "type = multifilesystem\n"
        f"filesystem_folder = {storage}\n"
        "[logging]\n"
        "level = warning\n"
    )
    log = workdir / "server.log"
    proc = _popen([str(venv_python(cache)), "-m", "radicale", "--config", str(config)], log)
    home = f"/{USER}/"
    server = Server(
        "radicale", f"http://127.0.0.1:{port}", proc, storage, log, home, home, (USER, PASSWORD)
    )
    _wait_ready(server)
    return server


def start_xandikos(workdir: Path, cache: Path) -> Server:
    storage = workdir / "xandikos"
    port = free_port()
    log = workdir / "server.log"
    cmd = [str(cache / "bin" / "xandikos"), "serve", "-d", str(storage), "--defaults"]
    cmd += ["-l", "127.0.0.1", "-p", str(port), "--current-user-principal", f"/{USER}/"]
    proc = _popen(cmd, log)
    server = Server(
        "xandikos",
        f"http://127.0.0.1:{port}",
        proc,
        storage,
        log,
        f"/{USER}/contacts/",
        f"/{USER}/calendars/",
        None,
    )
    _wait_ready(server)
    return server


def fill_collection(server: Server, coll_url: str, files: Sequence[tuple[str, bytes]]) -> None:
    """Write items straight into a peer's storage, as if they had been PUT.

    A peer capped while creating holds a fraction of N; the read workloads would then
    time it on a smaller collection than Homeport's, which flatters it. Filling the rest
    through the storage both peers document as editable (Radicale's folder of files,
    Xandikos's git repository) lets every server answer the reads at the same N, while
    the create figures stay those of the PUTs made before the cap. Call it only while
    no request is in flight.
    """
    rel = coll_url.strip("/")
    if server.name == "radicale":
        folder = server.storage / "collection-root" / rel
    elif server.name == "xandikos":
        folder = server.storage / rel
    else:
        raise ValueError(f"fill_collection: no storage layout known for {server.name}")
    if not folder.is_dir():
        raise RuntimeError(f"{server.name}: no collection folder {folder}")
    for name, body in files:
        (folder / name).write_bytes(body)
    if server.name == "xandikos":
        # no automatic `git gc` in the background: it would run during the next workload
        who = ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "gc.auto=0"]
        git = ["git", "-C", str(folder), *who]
        subprocess.run([*git, "add", "-A", "."], check=True, capture_output=True)
        subprocess.run(
            [*git, "commit", "-q", "-m", f"bench: fill {len(files)} items"],
            check=True,
            capture_output=True,
        )


def start(name: str, workdir: Path, cache: Path, homeport_src: Path | None = None) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "homeport":
        return start_homeport(workdir, homeport_src)
    if name == "radicale":
        return start_radicale(workdir, cache)
    if name == "xandikos":
        return start_xandikos(workdir, cache)
    raise ValueError(f"unknown server {name!r}")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
            found += _children(int(entry.name))
    return found


def peak_rss_bytes(pid: int) -> int:
    """VmHWM (peak resident set) of the process and its children, in bytes."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_usage(path: Path) -> tuple[int, int]:
    """(allocated bytes as `du` counts them, apparent bytes) under `path`."""
    allocated = apparent = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_quiet(
    max_wait: float, threshold: float = 0.10, log: Callable[[str], None] = print
) -> float:
    """Wait (at most `max_wait` s) until the machine is nearly idle: other processes
    (this run's are idle now) using under `threshold` of all cores over one second.
    Returns the busy share last seen."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait
    warned = False
    while True:
        b0 = machine_busy_seconds()
        time.sleep(1.0)
        share = (machine_busy_seconds() - b0) / cores
        if share < threshold or time.monotonic() > deadline:
            return share
        if not warned:
            log(f"  (waiting for the machine to be quiet: {share:.0%} busy)")
            warned = True


def fsync_probe(directory: Path, count: int = 30) -> float:
    """Median milliseconds to write 4 KiB and fsync it, in `directory` (disk context)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fsync-probe"
    times: list[float] = []
    with open(path, "wb") as fh:
        for _ in range(count):
            t0 = time.perf_counter()
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
            times.append(time.perf_counter() - t0)
    path.unlink()
    times.sort()
    return round(times[len(times) // 2] * 1000, 3)
