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
def test_callgrind_counts_the_measured_puts_only(tmp_path: Path) -> None:
    kept = tmp_path / "put.callgrind"
    out = run("--puts", "10", "--warmup", "3", "--keep-profile", str(kept))
    assert out.returncode == 0, out.stderr
    found = re.search(r"([\d,]+) instructions, ([\d,]+) per PUT", out.stdout)
    assert found is not None, out.stdout
    each = int(found.group(2).replace(",", ""))
    # A PUT costs a few million instructions, not the billion that start-up would add.
    assert 200_000 < each < 50_000_000, each
    # The kept file is callgrind's own, with the total the script reported.
    totals = re.search(r"^totals:\s*(\d+)", kept.read_text(errors="replace"), re.M)
    assert totals is not None
    assert int(totals.group(1)) == int(found.group(1).replace(",", ""))


def test_keeping_a_profile_needs_valgrind(tmp_path: Path) -> None:
    out = run("--no-valgrind", "--keep-profile", str(tmp_path / "x"), "--puts", "1")
    assert out.returncode != 0
    assert "--keep-profile needs valgrind" in out.stderr
    assert not (tmp_path / "x").exists()


def test_a_profile_into_a_missing_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    out = run("--keep-profile", str(tmp_path / "no-such" / "x"), "--puts", "1")
    assert out.returncode != 0
    assert "--keep-profile: no folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unknown_commit_is_a_clear_error() -> None:
    out = run("--rev", "no-such-commit", "--no-valgrind", "--puts", "1")
    assert out.returncode != 0
    assert "cannot export 'no-such-commit'" in out.stderr
    assert "Traceback" not in out.stderr
