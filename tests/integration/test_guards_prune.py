"""`homeport prune` on a data directory with months of history, beside a running server."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from homeport.cli.prune import prune
from homeport.services import Accounts, Actor
from homeport.store.model import CollectionKind, datetime_to_us
from homeport.wiring import open_store
from tests.conftest import PASSWORD, homeport, start_server
from tests.unit.services.support import DAY, HOUR, Clock, build, install_clock, vcf

ALICE = Actor("alice", "DAVx5/4.3")


def pruned_count(data: Path) -> int:
    with sqlite3.connect(data / "homeport.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM log WHERE pruned = 1").fetchone()[0])


@pytest.fixture
def old_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sixty days of edits, ending 140 days ago: a contact edited twice a day, and a
    photo replaced twice on some days (its morning version is thinned away)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = datetime_to_us(today - timedelta(days=200))
    clock = install_clock(monkeypatch, Clock(start))
    data = tmp_path / "data"
    svc = build(open_store(data), users=())
    try:
        Accounts(svc.store).add("alice", PASSWORD)
        book = svc.collections.get(ALICE, "alice", "contacts")
        files = svc.collections.create(ALICE, "alice", "files", CollectionKind.PLAIN)
        for day in range(60):
            for hour in (8, 20):
                clock.set(start + day * DAY + hour * HOUR)
                svc.items.put(ALICE, book, "a.vcf", [vcf("a", f"d{day}h{hour}")], "text/vcard")
                if day % 10 == 0:
                    photo = bytes([day, hour]) * 50_000
                    svc.items.put(ALICE, files, "p.jpg", [photo], "image/jpeg")
    finally:
        svc.close()
    monkeypatch.undo()
    # The files were written just now; in real life they would be months old. (Files
    # younger than an hour are left alone: a write may be about to record them.)
    then = time.time() - 7200
    for path in (data / "blobs").glob("*/*/*"):
        os.utime(path, (then, then))
    return data


def test_prune_dry_run_then_apply_beside_a_running_server(old_data: Path) -> None:
    runner = CliRunner()
    usage = runner.invoke(prune, ["--data", str(old_data)])
    assert usage.exit_code == 2 and "--dry-run" in usage.output
    server = start_server(old_data, users=())
    try:
        with server.client() as c:
            photo = c.get("/dav/alice/files/p.jpg").content
            contact = c.get("/dav/alice/contacts/a.vcf").content
        dry = runner.invoke(prune, ["--data", str(old_data), "--dry-run", "--json"])
        assert dry.exit_code == 0, dry.output
        planned = json.loads(dry.output)
        assert planned["dry_run"] and planned["revisions"] > 0
        assert planned["external_bytes"] >= 100_000 and planned["inline_bytes"] > 0
        assert pruned_count(old_data) == 0, "a dry run changes nothing"
        text = runner.invoke(prune, ["--data", str(old_data), "--dry-run"])
        assert "would prune" in text.output and "nothing was changed" in text.output

        done = runner.invoke(prune, ["--data", str(old_data), "--apply", "--json"])
        assert done.exit_code == 0, done.output
        applied = json.loads(done.output)
        for key in ("revisions", "blobs", "inline_bytes", "external_bytes"):
            assert applied[key] == planned[key], key
        assert pruned_count(old_data) == applied["revisions"]
        with server.client() as c:  # the server goes on serving every current body
            assert c.get("/dav/alice/files/p.jpg").content == photo
            assert c.get("/dav/alice/contacts/a.vcf").content == contact
            assert c.put("/dav/alice/contacts/b.vcf", content=vcf("b", "B")).status_code == 201
    finally:
        server.stop()
    check = homeport("check", "--data", str(old_data), "--json")
    assert json.loads(check.stdout)["ok"]
    again = runner.invoke(prune, ["--data", str(old_data), "--apply", "--json"])
    assert json.loads(again.output)["revisions"] == 0


def test_prune_with_retention_off_changes_nothing(old_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "keep.toml"
    config.write_text("[retention]\nkeep_all_days = 0\n")
    result = CliRunner().invoke(
        prune, ["--data", str(old_data), "--config", str(config), "--apply"]
    )
    assert result.exit_code == 0 and "every revision is kept" in result.output
    assert pruned_count(old_data) == 0


def test_prune_on_an_empty_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(prune, ["--data", str(tmp_path / "none"), "--dry-run"])
    assert result.exit_code == 2 and "holds no Homeport data" in result.output
