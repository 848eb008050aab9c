"""Smoke run of bench/first_query.py on what a small `bench/run.py --keep` run left,
Homeport alone: the first and second query after each start are timed and checked
against the generator, and a kept folder it cannot serve is refused with a message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench.first_query import main
from bench.run import Run, parser

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--size", "10", "--servers", "homeport"]


def test_first_query_after_a_restart_is_timed_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parser().parse_args(
        [
            "--sizes",
            "120",
            "--servers",
            "homeport",
            "--workloads",
            "timerange_query",
            "--reps",
            "1",
            "--quiet-wait",
            "0",
            "--keep",
            "--workdir",
            str(tmp_path),
            "--cache",
            str(tmp_path / "no-venv-needed"),
        ]
    )
    Run(args, log=lambda _line: None).execute()
    (kept,) = tmp_path.glob("homeport-bench-*")
    out = tmp_path / "first.json"
    argv = ["--kept", str(kept), "--size", "120", "--servers", "homeport", "--restarts", "1"]
    code = main([*argv, "--json", str(out)])
    assert code == 0, capsys.readouterr().out
    text = out.read_text()
    assert '"problems": []' in text and '"events_held": 120' in text
    assert "| homeport | 120 |" in capsys.readouterr().out


def test_a_folder_without_kept_storage_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "first_query.py"), "--kept", str(tmp_path), *ARGS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "no kept storage for homeport" in done.stderr
    assert "Traceback" not in done.stderr
