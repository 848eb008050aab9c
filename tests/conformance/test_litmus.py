"""litmus (the WebDAV conformance suite, Debian package) against a plain collection."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import PASSWORD, Server, require_tool

SUITES = ("basic", "copymove", "props", "http")


def test_litmus_passes_every_test(server: Server, tmp_path: Path) -> None:
    litmus = require_tool("litmus")
    proc = subprocess.run(
        [litmus, "-k", f"{server.url}/dav/alice/", "alice", PASSWORD],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # litmus writes debug.log and child.log into its working directory
        env={"TESTS": " ".join(SUITES), "PATH": "/usr/bin:/bin"},
    )
    out = proc.stdout + proc.stderr
    summaries = re.findall(
        r"summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed", out
    )
    assert {s[0] for s in summaries} >= set(SUITES), out
    failed = {name: int(f) for name, _run, _ok, f in summaries if int(f)}
    assert not failed, out
    assert "FAIL" not in out, out
