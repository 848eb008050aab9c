"""The `caldav` library (python-caldav) against a real `homeport serve`.

What a Python CalDAV application does, end to end: discovery from the bare server URL,
MKCALENDAR, saving events and to-dos, time-range searches with recurrence expansion
(client-side, as the library does by default, and server-side per RFC 4791 9.6.5),
text and to-do searches, edits with ETags, WebDAV-Sync and free-busy. Searches run
twice where it matters: once as users call them, once with the library's
compatibility workarounds and client-side filtering off, so that the answer is the
server's own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote

import pytest
from caldav.calendarobjectresource import CalendarObjectResource, Event, Todo
from caldav.collection import Calendar, Principal
from caldav.davclient import DAVClient
from caldav.davobject import DAVObject
from caldav.elements import cdav, dav
from caldav.lib import error
from icalendar import Component
from icalendar.prop import vPeriod

from tests.conftest import PASSWORD, Server

T = TypeVar("T")
MARCH_START = datetime(2026, 3, 1, tzinfo=UTC)
MARCH_END = datetime(2026, 4, 1, tzinfo=UTC)
CALDAV = "urn:ietf:params:xml:ns:caldav"
STRICT: dict[str, Any] = {"post_filter": False, "compatibility_workarounds": False}

BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


def now(value: T | Coroutine[Any, Any, T]) -> T:
    """The value of a call on the synchronous client (the library's types allow async)."""
    assert not isinstance(value, Coroutine), "the synchronous client returned a coroutine"
    return value


def vcalendar(*components: str, tz: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Homeport tests//caldav client//EN\r\n"
        + tz
        + "".join(components)
        + "END:VCALENDAR\r\n"
    )


def vevent(uid: str, summary: str, *lines: str) -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        + "".join(line + "\r\n" for line in lines)
        + f"SUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


def vtodo(uid: str, summary: str, *lines: str) -> str:
    return (
        f"BEGIN:VTODO\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        + "".join(line + "\r\n" for line in lines)
        + f"SUMMARY:{summary}\r\nEND:VTODO\r\n"
    )


def utc(value: date) -> datetime:
    """A DATE-TIME as aware UTC (a DATE as midnight UTC)."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    assert value.tzinfo is not None, f"floating time {value} where a zone was expected"
    return value.astimezone(UTC)


def value_of(c: Component, name: str) -> Any:
    """The Python value of a component's property (date, datetime, timedelta, ...)."""
    prop: Any = c[name]
    return prop.dt


def when(c: Component, name: str) -> datetime:
    """A DATE or DATE-TIME property of a component, as aware UTC."""
    return utc(value_of(c, name))


def search(cal: Calendar, **kwargs: Any) -> list[CalendarObjectResource]:
    return list(now(cal.search(**kwargs)))


def query(comp_filter: str) -> str:
    """A raw calendar-query for full calendar data, `comp_filter` inside VCALENDAR."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        f'<C:filter><C:comp-filter name="VCALENDAR">{comp_filter}</C:comp-filter></C:filter>'
        "</C:calendar-query>"
    )


def comp(obj: CalendarObjectResource) -> Component:
    return obj.icalendar_component


def summary(obj: CalendarObjectResource) -> str:
    return str(comp(obj)["SUMMARY"])


def display_name(cal: Calendar) -> str | None:
    """The displayname as the server has it now (the library caches what it set)."""
    value = now(cal.get_property(dav.DisplayName(), use_cached=False))
    return None if value is None else str(value)


def path_of(obj: DAVObject) -> str:
    """The decoded URL path (the server percent-encodes hrefs, the client may not)."""
    assert obj.url is not None
    return unquote(str(obj.url.path))


# -- the calendar every search test reads -------------------------------------------------

# Monday 09:00-09:30 in Berlin from 16 February 2026; 16 March is cancelled (EXDATE) and
# 23 March moved to 11:00. Berlin changes to summer time on 29 March, so the 30 March
# instance is at 07:00 UTC while the others are at 08:00 UTC.
STANDUP = vcalendar(
    vevent(
        "standup-2026@homeport.test",
        "Weekly standup",
        "DTSTART;TZID=Europe/Berlin:20260216T090000",
        "DTEND;TZID=Europe/Berlin:20260216T093000",
        "RRULE:FREQ=WEEKLY;BYDAY=MO",
        "EXDATE;TZID=Europe/Berlin:20260316T090000",
    ),
    vevent(
        "standup-2026@homeport.test",
        "Weekly standup (moved)",
        "RECURRENCE-ID;TZID=Europe/Berlin:20260323T090000",
        "DTSTART;TZID=Europe/Berlin:20260323T110000",
        "DTEND;TZID=Europe/Berlin:20260323T113000",
    ),
    tz=BERLIN,
)
STANDUP_IN_MARCH = {  # RECURRENCE-ID (UTC) -> DTSTART (UTC)
    datetime(2026, 3, 2, 8, tzinfo=UTC): datetime(2026, 3, 2, 8, tzinfo=UTC),
    datetime(2026, 3, 9, 8, tzinfo=UTC): datetime(2026, 3, 9, 8, tzinfo=UTC),
    datetime(2026, 3, 23, 8, tzinfo=UTC): datetime(2026, 3, 23, 10, tzinfo=UTC),
    datetime(2026, 3, 30, 7, tzinfo=UTC): datetime(2026, 3, 30, 7, tzinfo=UTC),
}
EVENTS = {
    "standup-2026@homeport.test": STANDUP,
    "dentist@homeport.test": vcalendar(
        vevent(
            "dentist@homeport.test",
            "Dentist appointment",
            "DTSTART:20260310T120000Z",
            "DTEND:20260310T130000Z",
        )
    ),
    "holiday@homeport.test": vcalendar(
        vevent(
            "holiday@homeport.test",
            "Spring holiday",
            "DTSTART;VALUE=DATE:20260320",
            "DTEND;VALUE=DATE:20260321",
        )
    ),
    "reminder@homeport.test": vcalendar(
        vevent(
            "reminder@homeport.test",
            "Reminder: call Bob",
            "DTSTART:20260312T150000Z",
            "DTEND:20260312T160000Z",
            "TRANSP:TRANSPARENT",
        )
    ),
    # Ends exactly where March starts ([28 Feb, 1 Mar)): outside the range.
    "closing@homeport.test": vcalendar(
        vevent(
            "closing@homeport.test",
            "February closing",
            "DTSTART;VALUE=DATE:20260228",
            "DTEND;VALUE=DATE:20260301",
        )
    ),
    "april@homeport.test": vcalendar(
        vevent(
            "april@homeport.test",
            "April planning",
            "DTSTART:20260415T090000Z",
            "DTEND:20260415T100000Z",
        )
    ),
}
# Every instance in March: (UID, start) with the summary it shows.
MARCH_INSTANCES = {
    **{
        ("standup-2026@homeport.test", start): "Weekly standup"
        + (" (moved)" if start.hour == 10 else "")
        for start in STANDUP_IN_MARCH.values()
    },
    ("dentist@homeport.test", datetime(2026, 3, 10, 12, tzinfo=UTC)): "Dentist appointment",
    ("holiday@homeport.test", datetime(2026, 3, 20, tzinfo=UTC)): "Spring holiday",
    ("reminder@homeport.test", datetime(2026, 3, 12, 15, tzinfo=UTC)): "Reminder: call Bob",
}


@pytest.fixture(scope="module")
def client(shared_server: Server) -> Iterator[DAVClient]:
    with DAVClient(
        url=shared_server.url + "/", username="alice", password=PASSWORD, timeout=30
    ) as dav:
        yield dav


@pytest.fixture(scope="module")
def principal(client: DAVClient) -> Principal:
    return now(client.principal())


def new_calendar(principal: Principal, name: str, *components: str) -> Calendar:
    return now(
        principal.make_calendar(
            name=name,
            cal_id=f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:8]}",
            supported_calendar_component_set=list(components) or None,
        )
    )


@pytest.fixture(scope="module")
def march(principal: Principal) -> Calendar:
    """A calendar holding EVENTS, saved through the library."""
    cal = new_calendar(principal, "March", "VEVENT")
    for uid, data in EVENTS.items():
        saved = now(cal.save_event(data))
        assert comp(saved)["UID"] == uid
    return cal


def instances(objects: list[CalendarObjectResource]) -> dict[tuple[str, datetime], str]:
    """(UID, UTC start) -> SUMMARY, one entry per returned object, which must be unique."""
    out: dict[tuple[str, datetime], str] = {}
    for obj in objects:
        c = comp(obj)
        key = (str(c["UID"]), when(c, "DTSTART"))
        assert key not in out, f"instance {key} returned twice"
        out[key] = str(c["SUMMARY"])
    return out


# -- discovery and collections -------------------------------------------------------------


def test_discovery_from_the_bare_root(shared_server: Server, client: DAVClient) -> None:
    principal = now(client.principal())
    assert path_of(principal) == "/dav/alice/"
    calendars = now(principal.calendars())
    by_name = {now(c.get_display_name()): c for c in calendars}
    assert {"Calendar", "Tasks"} <= set(by_name)
    assert "Contacts" not in by_name  # an address book is not a calendar
    assert path_of(by_name["Calendar"]) == "/dav/alice/calendar/"
    assert path_of(by_name["Tasks"]) == "/dav/alice/tasks/"
    assert now(by_name["Tasks"].get_supported_components()) == ["VTODO"]
    assert "VEVENT" in now(by_name["Calendar"].get_supported_components())
    # The same through a collection URL: the principal is found from anywhere.
    with DAVClient(
        url=shared_server.url + "/dav/alice/calendar/", username="alice", password=PASSWORD
    ) as other:
        assert path_of(now(other.principal())) == "/dav/alice/"


def test_make_calendar_with_name_and_components(principal: Principal) -> None:
    cal = new_calendar(principal, "Project Äpfel ☀", "VEVENT", "VTODO")
    assert display_name(cal) == "Project Äpfel ☀"
    assert sorted(now(cal.get_supported_components())) == ["VEVENT", "VTODO"]
    listed = {path_of(c): now(c.get_display_name()) for c in now(principal.calendars())}
    assert listed[path_of(cal)] == "Project Äpfel ☀"
    # The URL is taken: a second MKCALENDAR there fails and changes nothing.
    cal_id = path_of(cal).rstrip("/").rpartition("/")[2]
    with pytest.raises(error.DAVError):
        principal.make_calendar(name="Other", cal_id=cal_id)
    assert display_name(cal) == "Project Äpfel ☀"


def test_calendar_refuses_a_component_it_does_not_support(principal: Principal) -> None:
    cal = new_calendar(principal, "Events only", "VEVENT")
    with pytest.raises(error.DAVError) as exc:
        cal.save_todo(vcalendar(vtodo(f"todo-{uuid.uuid4()}", "Not here")))
    assert exc.value.status == 403
    assert f"{{{CALDAV}}}supported-calendar-component" in exc.value.preconditions
    assert search(cal, todo=True, include_completed=True) == []


# -- time-range search and recurrence expansion ----------------------------------------------


def test_month_search_expands_recurrences(march: Calendar) -> None:
    """As users call it: expand=True (the library expands what the server selected)."""
    found = search(march, start=MARCH_START, end=MARCH_END, event=True, expand=True)
    assert instances(found) == MARCH_INSTANCES
    rids = {
        when(comp(o), "RECURRENCE-ID")
        for o in found
        if str(comp(o)["UID"]) == "standup-2026@homeport.test"
    }
    assert rids == set(STANDUP_IN_MARCH)


def test_month_search_with_server_side_expand(march: Calendar) -> None:
    """RFC 4791 9.6.5: the server expands, every instance in UTC with its RECURRENCE-ID."""
    found = search(
        march, start=MARCH_START, end=MARCH_END, event=True, server_expand=True, **STRICT
    )
    assert instances(found) == MARCH_INSTANCES
    for obj in found:
        c = comp(obj)
        for name in ("RRULE", "RDATE", "EXDATE"):
            assert name not in c, f"{name} left in an expanded instance"
        if str(c["UID"]) == "standup-2026@homeport.test":
            rid, start = value_of(c, "RECURRENCE-ID"), value_of(c, "DTSTART")
            assert isinstance(rid, datetime) and rid.utcoffset() == timedelta(0)
            assert isinstance(start, datetime) and start.utcoffset() == timedelta(0)
            assert STANDUP_IN_MARCH[rid] == start


def test_time_range_selects_whole_resources(march: Calendar) -> None:
    """Without expand the server returns each matching resource once, as stored."""
    found = search(march, start=MARCH_START, end=MARCH_END, event=True, **STRICT)
    assert sorted(str(comp(o)["UID"]) for o in found) == sorted(
        [
            "standup-2026@homeport.test",
            "dentist@homeport.test",
            "holiday@homeport.test",
            "reminder@homeport.test",
        ]
    )
    standup = next(o for o in found if str(comp(o)["UID"]) == "standup-2026@homeport.test")
    assert "RRULE" in comp(standup) and "EXDATE" in comp(standup)
    # Only the cancelled Monday in range: the EXDATE removes the series' one instance.
    window = (datetime(2026, 3, 16, tzinfo=UTC), datetime(2026, 3, 17, tzinfo=UTC))
    assert search(march, start=window[0], end=window[1], event=True, **STRICT) == []
    # The all-day event counts for the whole 20 March and nothing after it.
    late = (datetime(2026, 3, 20, 23, tzinfo=UTC), datetime(2026, 3, 21, tzinfo=UTC))
    hits = search(march, start=late[0], end=late[1], event=True, **STRICT)
    assert [summary(o) for o in hits] == ["Spring holiday"]


def test_text_search_on_summary(march: Calendar) -> None:
    hits = search(march, summary="Dentist", event=True)
    assert [summary(o) for o in hits] == ["Dentist appointment"]
    # The server's own answer: substring match, i;octet by default (case-sensitive).
    hits = search(march, summary="appoint", event=True, **STRICT)
    assert [summary(o) for o in hits] == ["Dentist appointment"]
    assert search(march, summary="dentist", event=True, **STRICT) == []
    searcher = march.searcher(event=True)
    searcher.add_property_filter("SUMMARY", "weekly STANDUP", case_sensitive=False)
    hits = list(now(searcher.search(**STRICT)))
    assert [str(comp(o)["UID"]) for o in hits] == ["standup-2026@homeport.test"]
    # RFC 4791 9.7.5 negate-condition, in a raw query: every March event but the standup.
    hits = search(
        march,
        xml=query(
            '<C:comp-filter name="VEVENT">'
            '<C:time-range start="20260301T000000Z" end="20260401T000000Z"/>'
            '<C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes" '
            'collation="i;ascii-casemap">STANDUP</C:text-match></C:prop-filter></C:comp-filter>'
        ),
        **STRICT,
    )
    assert sorted(summary(o) for o in hits) == [
        "Dentist appointment",
        "Reminder: call Bob",
        "Spring holiday",
    ]


def test_freebusy_request(march: Calendar) -> None:
    fb = now(march.freebusy_request(MARCH_START, MARCH_END))
    vfb = fb.icalendar_instance.walk("VFREEBUSY")
    assert len(vfb) == 1
    assert when(vfb[0], "DTSTART") == MARCH_START and when(vfb[0], "DTEND") == MARCH_END
    periods: set[tuple[datetime, datetime]] = set()
    for line in re.sub(r"\r?\n[ \t]", "", fb.data).splitlines():
        name, _, value = line.partition(":")
        if name.split(";")[0].upper() != "FREEBUSY":
            continue
        assert "FBTYPE" not in name.upper() or "FBTYPE=BUSY" in name.upper()
        for text in value.split(","):
            start, end = vPeriod.from_ical(text)
            periods.add((utc(start), utc(end if isinstance(end, date) else start + end)))
    half_hour = timedelta(minutes=30)
    expected = {(s, s + half_hour) for s in STANDUP_IN_MARCH.values()} | {
        (datetime(2026, 3, 10, 12, tzinfo=UTC), datetime(2026, 3, 10, 13, tzinfo=UTC)),
        (datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 3, 21, tzinfo=UTC)),
    }  # the TRANSP:TRANSPARENT reminder and the 28 February all-day event are not busy
    assert periods == expected


# -- to-dos --------------------------------------------------------------------------------


def test_todos_in_the_default_task_list(principal: Principal) -> None:
    tasks = now(principal.calendar(cal_id="tasks"))
    tag = uuid.uuid4().hex[:8]
    taxes = now(
        tasks.save_todo(
            vcalendar(vtodo(f"taxes-{tag}", f"File taxes {tag}", "DUE:20260430T170000Z"))
        )
    )
    now(tasks.save_todo(vcalendar(vtodo(f"milk-{tag}", f"Buy milk {tag}"))))
    now(
        tasks.save_todo(
            vcalendar(
                vtodo(
                    f"chore-{tag}",
                    f"Old chore {tag}",
                    "STATUS:COMPLETED",
                    "COMPLETED:20260105T100000Z",
                    "DUE:20260104T100000Z",
                )
            )
        )
    )
    assert when(comp(taxes), "DUE") == datetime(2026, 4, 30, 17, tzinfo=UTC)

    def mine(objs: list[CalendarObjectResource]) -> list[str]:
        return sorted(summary(o) for o in objs if summary(o).endswith(tag))

    assert mine(search(tasks, todo=True)) == [f"Buy milk {tag}", f"File taxes {tag}"]
    assert mine(search(tasks, todo=True, include_completed=True)) == [
        f"Buy milk {tag}",
        f"File taxes {tag}",
        f"Old chore {tag}",
    ]
    # RFC 4791 9.9: a VTODO with DUE only overlaps a range holding the due time; one
    # with no date at all overlaps every range; the chore was due and done in January.
    april = search(
        tasks,
        todo=True,
        include_completed=True,
        start=datetime(2026, 4, 1, tzinfo=UTC),
        end=datetime(2026, 5, 1, tzinfo=UTC),
        **STRICT,
    )
    assert mine(april) == [f"Buy milk {tag}", f"File taxes {tag}"]
    # The server's own "pending" filter (RFC 4791 9.7.4 is-not-defined on COMPLETED).
    pending = search(
        tasks,
        xml=query(
            '<C:comp-filter name="VTODO"><C:prop-filter name="COMPLETED"><C:is-not-defined/>'
            "</C:prop-filter></C:comp-filter>"
        ),
        **STRICT,
    )
    assert mine(pending) == [f"Buy milk {tag}", f"File taxes {tag}"]
    found = now(tasks.object_by_uid(f"taxes-{tag}"))
    assert isinstance(found, Todo) and summary(found) == f"File taxes {tag}"


# -- one object: lookup, edit, delete, conflicts ---------------------------------------------


def test_object_by_uid_edit_and_delete(principal: Principal) -> None:
    cal = new_calendar(principal, "Edits", "VEVENT")
    uid = f"edit-{uuid.uuid4()}"
    now(
        cal.save_event(vcalendar(vevent(uid, "Draft", "DTSTART:20260601T100000Z", "DURATION:PT1H")))
    )
    event = now(cal.object_by_uid(uid))
    assert summary(event) == "Draft"
    etag = event.etag
    assert etag and etag.startswith('"')
    stale = now(cal.object_by_uid(uid))

    comp(event)["SUMMARY"] = "Final"
    now(event.save())
    assert event.etag and event.etag != etag
    reloaded = now(cal.object_by_uid(uid))
    assert summary(reloaded) == "Final" and reloaded.etag == event.etag

    # A save based on the old version is refused (If-Match) and changes nothing.
    comp(stale)["SUMMARY"] = "Lost update"
    with pytest.raises(error.ETagMismatchError):
        stale.save()
    assert summary(now(cal.object_by_uid(uid))) == "Final"

    now(event.delete())
    with pytest.raises(error.NotFoundError):
        cal.object_by_uid(uid)
    assert search(cal, event=True) == []


def test_same_uid_under_another_name_is_refused(principal: Principal) -> None:
    """RFC 4791 5.3.2.1 no-uid-conflict: the second resource is refused, the first kept."""
    cal = new_calendar(principal, "Conflicts", "VEVENT")
    uid = f"dup-{uuid.uuid4()}"
    assert cal.url is not None
    original = now(cal.save_event(vcalendar(vevent(uid, "Original", "DTSTART:20260701T100000Z"))))
    copy = Event(
        cal.client,
        url=cal.url.join("another-name.ics"),
        data=vcalendar(vevent(uid, "Impostor", "DTSTART:20260702T100000Z")),
        parent=cal,
    )
    with pytest.raises(error.UidConflictError) as exc:
        copy.save()
    assert exc.value.status == 409
    assert f"{{{CALDAV}}}no-uid-conflict" in exc.value.preconditions
    assert path_of(original) in str(exc.value.body)  # it names the resource holding the UID
    # The library's own guard (If-None-Match: *) for the same UID fails the same way.
    with pytest.raises(error.ConsistencyError):
        cal.save_event(
            vcalendar(vevent(uid, "Impostor", "DTSTART:20260703T100000Z")), no_overwrite=True
        )
    kept = now(cal.object_by_uid(uid))
    assert path_of(kept) == path_of(original) and summary(kept) == "Original"
    assert [path_of(o) for o in search(cal, event=True)] == [path_of(original)]
    gone = Event(cal.client, url=cal.url.join("another-name.ics"), parent=cal)
    with pytest.raises(error.NotFoundError):
        gone.load()


def test_calendar_properties_and_deletion(client: DAVClient, principal: Principal) -> None:
    cal = new_calendar(principal, "Scratch", "VEVENT")
    now(cal.set_properties([dav.DisplayName("Scratch ✎"), cdav.CalendarDescription("Notes")]))
    fresh = Calendar(client=client, url=cal.url)  # nothing cached: ask the server
    props = now(fresh.get_properties([dav.DisplayName(), cdav.CalendarDescription()]))
    assert props == {
        dav.DisplayName.tag: "Scratch ✎",
        cdav.CalendarDescription.tag: "Notes",
    }
    event = now(
        cal.save_event(vcalendar(vevent(f"gone-{uuid.uuid4()}", "x", "DTSTART:20260901T100000Z")))
    )
    token = now(cal.objects_by_sync_token(disable_fallback=True)).sync_token

    now(cal.delete())
    assert path_of(cal) not in {path_of(c) for c in now(principal.calendars())}
    assert event.url is not None
    assert now(client.request(str(event.url))).status == 404

    # A new calendar at the same URL starts empty; the old token is refused
    # (RFC 6578 3.2 valid-sync-token) and the library falls back to a full listing.
    cal_id = path_of(cal).rstrip("/").rpartition("/")[2]
    again = now(principal.make_calendar(name="Scratch again", cal_id=cal_id))
    with pytest.raises(error.DAVError) as exc:
        again.objects_by_sync_token(sync_token=token, disable_fallback=True)
    assert exc.value.status == 403 and "{DAV:}valid-sync-token" in exc.value.preconditions
    assert list(now(again.objects_by_sync_token(sync_token=token, load_objects=True))) == []


def test_reports_on_a_deleted_calendar_are_404(principal: Principal) -> None:
    """Another device deleted the calendar: queries and sync must say 404 Not Found."""
    cal = new_calendar(principal, "Deleted elsewhere", "VEVENT")
    event = now(
        cal.save_event(vcalendar(vevent(f"lost-{uuid.uuid4()}", "x", "DTSTART:20260901T100000Z")))
    )
    token = now(cal.objects_by_sync_token(disable_fallback=True)).sync_token
    now(cal.delete())
    # load() falls back to a UID query on the parent calendar when GET says 404.
    with pytest.raises(error.NotFoundError):
        event.load()
    with pytest.raises(error.NotFoundError):
        cal.search(event=True, **STRICT)
    with pytest.raises(error.NotFoundError):
        cal.objects_by_sync_token(sync_token=token, disable_fallback=True)
    with pytest.raises(error.NotFoundError):
        cal.freebusy_request(MARCH_START, MARCH_END)


# -- WebDAV-Sync ---------------------------------------------------------------------------


def test_incremental_sync(principal: Principal) -> None:
    cal = new_calendar(principal, "Sync", "VEVENT")

    def save(uid: str, text: str) -> CalendarObjectResource:
        return now(cal.save_event(vcalendar(vevent(uid, text, "DTSTART:20260801T100000Z"))))

    a, b, c = (save(f"{n}-{uuid.uuid4()}", n) for n in ("a", "b", "c"))
    synced = now(cal.objects_by_sync_token(load_objects=True, disable_fallback=True))
    assert str(synced.sync_token).startswith("urn:homeport:sync:")
    assert sorted(summary(o) for o in synced) == ["a", "b", "c"]
    first_token = synced.sync_token

    d = save(f"d-{uuid.uuid4()}", "d")
    comp(b)["SUMMARY"] = "b (edited)"
    now(b.save())
    now(c.delete())
    updated, deleted = now(synced.sync())
    assert str(synced.sync_token).startswith("urn:homeport:sync:")
    assert synced.sync_token != first_token
    assert sorted(path_of(o) for o in updated) == sorted([path_of(b), path_of(d)])
    assert sorted(summary(o) for o in updated) == ["b (edited)", "d"]
    assert [path_of(o) for o in deleted] == [path_of(c)]
    assert sorted(summary(o) for o in synced) == ["a", "b (edited)", "d"]

    # Nothing changed since: an empty delta with the same token.
    assert now(synced.sync()) == ([], [])
    # From the first token in one step: the removal is reported as such (404).
    delta = now(
        cal.objects_by_sync_token(sync_token=first_token, load_objects=True, disable_fallback=True)
    )
    assert {unquote(str(u.path)) for u in delta.deleted_urls} == {path_of(c)}
    changed = {path_of(o): summary(o) for o in delta if o.url.canonical() not in delta.deleted_urls}
    assert changed == {path_of(b): "b (edited)", path_of(d): "d"}
    assert path_of(a) not in changed
