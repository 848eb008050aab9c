"""Smoke run of the side-by-side benchmark (bench/), Homeport's side only.

The same code as `python bench/run.py`, at N=200 against Homeport alone: it installs
nothing and touches no network beyond loopback. Every workload must run and every
correctness check must pass, so that the benchmark cannot rot.
"""

from __future__ import annotations

from pathlib import Path

from bench.run import Run, parser, table
from bench.workloads import WORKLOADS, Result


def test_bench_smoke_homeport(tmp_path: Path) -> None:
    args = parser().parse_args(
        [
            "--sizes",
            "200",
            "--servers",
            "homeport",
            "--cap-seconds",
            "60",
            "--reps",
            "2",
            "--get-requests",
            "400",
            "--quiet-wait",
            "0",
            "--workdir",
            str(tmp_path),
            "--cache",
            str(tmp_path / "no-venv-needed"),
        ]
    )
    out = Run(args, log=lambda _line: None).execute()
    results = out["results"]["200"]["homeport"]
    by_name = {r["workload"]: r for r in results}
    assert set(by_name) == {name for name, _, _ in WORKLOADS}
    for name, r in by_name.items():
        assert r["correct"], (name, r["problems"])
        assert r["value"] is not None and r["value"] > 0, (name, r)
        assert not r["capped"], (name, r)
    assert by_name["create_contacts_serial"]["done"] == 200
    assert by_name["create_contacts_8"]["done"] == 200
    assert by_name["create_todos"]["done"] == 20
    assert by_name["timerange_expand"]["extra"]["expected_instances"] > 0
    assert not (tmp_path / "no-venv-needed").exists()
    assert "homeport" in out["table"]


def test_table_marks_wrong_answers_and_caps() -> None:
    home = Result("propfind_depth1", "ms", value=10.0)
    peer = Result("propfind_depth1", "ms", capped=True)
    wrong = Result("incremental_sync", "ms", value=5.0, problems=["changed: 1 missing"])
    results = {1000: {"homeport": [home, wrong], "radicale": [peer]}}
    text = table(results, ["homeport", "radicale"], 300)
    assert "> cap (300 s)" in text
    assert "homeport: WRONG (changed: 1 missing)" in text
