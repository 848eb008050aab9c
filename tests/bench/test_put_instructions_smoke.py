"""`bench/put_instructions.py` starts a server, PUTs contacts and reports their cost, with
callgrind when valgrind is installed (CI's machine has it), so that it cannot rot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "put_instructions.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900
    )


def test_puts_run_without_valgrind() -> None:
    out = run("--puts", "20", "--warmup", "5", "--no-valgrind")
    assert out.returncode == 0, out.stderr
    assert re.search(r"installed: 20 PUTs, [\d,]+ PUTs/s$", out.stdout.strip()), out.stdout


def test_puts_from_eight_clients_at_once() -> None:
    out = run("--puts", "24", "--warmup", "8", "--clients", "8", "--no-valgrind")
    assert out.returncode == 0, out.stderr
    assert re.search(r"installed, 8 clients: 24 PUTs, [\d,]+ PUTs/s$", out.stdout.strip())


def test_bad_counts_are_refused() -> None:
    out = run("--clients", "0", "--no-valgrind")
    assert out.returncode != 0
    assert "--clients must be at least 1" in out.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_callgrind_counts_the_measured_puts_only() -> None:
    out = run("--puts", "10", "--warmup", "3")
    assert out.returncode == 0, out.stderr
    found = re.search(r"([\d,]+) instructions, ([\d,]+) per PUT", out.stdout)
    assert found is not None, out.stdout
    each = int(found.group(2).replace(",", ""))
    # A PUT costs a few million instructions, not the billion that start-up would add.
    assert 200_000 < each < 50_000_000, each


def test_an_unknown_commit_is_a_clear_error() -> None:
    out = run("--rev", "no-such-commit", "--no-valgrind", "--puts", "1")
    assert out.returncode != 0
    assert "cannot export 'no-such-commit'" in out.stderr
    assert "Traceback" not in out.stderr
