"""The SQLite time-range indexes: created when an older database is opened, and used."""

from __future__ import annotations

from pathlib import Path

from homeport.backends.sqlite import SHORT_SPAN_US
from homeport.services import Actor, Limits, Services
from tests.unit.store.support import open_store, raw_db

ALICE = Actor("alice", "pytest")
HOUR = 3_600_000_000


def event(uid: str, start: str, end: str, rule: str = "") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
        f"{rule}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_a_database_without_the_span_indexes_gets_them_and_answers_the_same(
    tmp_path: Path,
) -> None:
    svc = Services.build(open_store(tmp_path), Limits())
    svc.accounts.add("alice", "pw")
    cal = svc.collections.get(ALICE, "alice", "calendar")
    bodies = {
        "short.ics": event("a", "20250310T100000Z", "20250310T110000Z"),
        "weeks.ics": event("b", "20250201T000000Z", "20250320T000000Z"),
        "weekly.ics": event("c", "20250106T090000Z", "20250106T100000Z", "RRULE:FREQ=WEEKLY\r\n"),
        "before.ics": event("d", "20250101T100000Z", "20250101T110000Z"),
    }
    for name, body in bodies.items():
        svc.items.put(ALICE, cal, name, [body], "text/calendar")
    svc.close()
    with raw_db(tmp_path) as db:  # as a database written before these indexes existed
        db.execute("DROP INDEX items_short_by_start")
        db.execute("DROP INDEX items_long_span")

    store = open_store(tmp_path)
    try:
        start, end = 1741564800 * 1_000_000, 1741651200 * 1_000_000  # 2025-03-10, a day
        with store.read() as r:
            found = r.items_overlapping(cal.id, start, end)
        assert sorted(i.name for i in found) == ["short.ics", "weekly.ics", "weeks.ics"]
        short = next(i for i in found if i.name == "short.ics")
        assert short.end_us is not None and short.start_us is not None
        assert short.end_us - short.start_us == HOUR < SHORT_SPAN_US
    finally:
        store.close()
    with raw_db(tmp_path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list(items)")}
        assert {"items_short_by_start", "items_long_span"} <= indexes
        plan = " ".join(
            str(row[-1])
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT name FROM items INDEXED BY items_short_by_start "
                "WHERE collection_id = 1 AND deleted = 0 AND "
                "coalesce(end_us - start_us, 691200000001) <= 691200000000 "
                "AND start_us > 0 AND start_us < 10"
            )
        )
        assert "items_short_by_start" in plan


def test_retired_indexes_are_dropped_and_contacts_stay_out_of_the_span_indexes(
    tmp_path: Path,
) -> None:
    """An older database's `items_by_start` and `items_long` go when it is opened; a card
    (no span) is in neither span index, an endless series is in the long one."""
    svc = Services.build(open_store(tmp_path), Limits())
    svc.accounts.add("alice", "pw")
    book = svc.collections.get(ALICE, "alice", "contacts")
    cal = svc.collections.get(ALICE, "alice", "calendar")
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:C\r\nEND:VCARD\r\n"
    svc.items.put(ALICE, book, "c1.vcf", [card], "text/vcard")
    series = event("w1", "20250106T090000Z", "20250106T100000Z", "RRULE:FREQ=WEEKLY\r\n")
    svc.items.put(ALICE, cal, "w1.ics", [series], "text/calendar")
    svc.close()
    with raw_db(tmp_path) as db:  # as a database from before: the retired indexes present
        db.execute("CREATE INDEX items_by_start ON items(collection_id, start_us)")
        db.execute("CREATE INDEX items_long ON items(collection_id, start_us)")

    store = open_store(tmp_path)
    try:
        with store.read() as r:
            found = r.items_overlapping(cal.id, 0, 2**62)
        assert [i.name for i in found] == ["w1.ics"]
    finally:
        store.close()
    with raw_db(tmp_path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list(items)")}
        assert not indexes & {"items_by_start", "items_long"}
        # Each index read whole (its own WHERE clause, else SQLite may not use it).
        short, long = (
            {
                row[0]
                for row in db.execute(
                    f"SELECT name FROM items INDEXED BY {index} "
                    f"WHERE collection_id IN ({book.id}, {cal.id}) AND deleted = 0 AND {where}"
                )
            }
            for index, where in (
                (
                    "items_short_by_start",
                    "coalesce(end_us - start_us, 691200000001) <= 691200000000",
                ),
                (
                    "items_long_span",
                    "component IS NOT 'VCARD' "
                    "AND coalesce(end_us - start_us, 691200000001) > 691200000000",
                ),
            )
        )
    assert (short, long) == (set(), {"w1.ics"})
