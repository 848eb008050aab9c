"""The restore-vs-restic benchmark runs end to end at a tiny size, so it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


def test_restore_vs_restic_smoke(tmp_path: Path) -> None:
    require_tool("restic")
    require_tool("weed")
    out = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.restore_vs_restic",
            "--contacts",
            "12",
            "--events",
            "6",
            "--blob-mb",
            "1",
            "--blob-size-mb",
            "0.5",
            "--lag-seconds",
            "1",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    tools = [r["tool"] for r in result["rows"]]
    assert tools == ["homeport restore (verified)", "restic restore", "restic restore --verify"]
    assert all(r["items"] == 12 + 2 * 6 + 2 and r["seconds"] > 0 for r in result["rows"])
    assert result["data"]["files"] == 2 and result["lag"]["writes"] >= 40
    assert "| restore | seconds | MB/s | items/s |" in done.stdout
    assert "replication lag at 50 writes/s" in done.stdout
    assert not list(tmp_path.glob("hp-bench-restic-*"))  # the work folder is removed
