"""`bench/instructions.py` runs its two parts on a small data folder and reports them,
with callgrind when valgrind is installed (CI's machine has it), so that it cannot rot."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from homeport.services import Actor, Services
from homeport.store.model import CollectionKind
from homeport.wiring import open_store

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "instructions.py"
CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u{i}\r\nFN:Name {i} é\r\nN:x;;;;\r\nEND:VCARD\r\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("instructions") / "data"
    services = Services.build(open_store(folder))
    services.accounts.add("bench", "pw")
    actor = Actor("bench", "pytest")
    coll = services.collections.create(actor, "bench", "book", CollectionKind.ADDRESSBOOK)
    for i in range(150):  # two multigets: 100 and 50
        body = CARD.format(i=i).encode()
        services.items.put(actor, coll, f"c{i:03d}.vcf", iter((body,)), "text/vcard")
    services.close()
    return folder


def run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def rows(table: str) -> dict[str, list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ")][1:]
    return {
        cells[0]: cells[1:]
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)
    }


def test_both_parts_run_without_valgrind(data: Path) -> None:
    got = rows(run("--data", str(data), "--collection", "book", "--no-valgrind"))
    assert set(got) == {"sync", "multiget"}
    assert got["sync"][0] == got["multiget"][0] == "150"
    assert got["sync"][1] == "-"


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_callgrind_counts_the_measured_part_only(data: Path) -> None:
    got = rows(run("--data", str(data), "--collection", "book", "--parts", "multiget"))
    count = int(got["multiget"][1].replace(",", ""))
    # 150 cards cost millions of instructions, not the billion that start-up would add.
    assert 1_000_000 < count < 400_000_000


def test_an_unknown_collection_is_a_clear_error(data: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(data), "--collection", "nope", "--no-valgrind"],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "no collection 'nope'" in out.stderr


def test_a_folder_without_homeport_data_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(tmp_path / "typo"), "--no-valgrind"],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "not a Homeport data folder" in out.stderr
    assert not (tmp_path / "typo").exists()
