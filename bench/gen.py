"""Deterministic, seeded, realistic test data: contacts, events and to-dos.

Everything here is a pure function of (seed, index), so every server gets the same bytes
and the expected answers (which events overlap a time range, how many instances) are
computed once from the generator's own output with `recurring-ical-events`, independently
of any server.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Anna Ben Clara David Emma Felix Greta Hugo Ida Jonas Karla Leo Mia Noah Olga Paul "
    "Quinn Rosa Sam Tara Uwe Vera Wim Xenia Yusuf Zoe Amir Bea Chen Dara Elif Farid Gita "
    "Hana Ivan Jana Kofi Lena Marta Nils Omar Pia Raj Sara Timo Una Vik Wen Yara"
)
LAST = _words(
    "Müller Schmidt Novak Rossi García Silva Kowalski Nguyen Smith Jones Dubois Martin "
    "Larsen Jensen Virtanen Horvat Popescu Ivanova Yilmaz Khan Tanaka Kim Okafor Mensah "
    "Santos Costa Fischer Weber Wagner Becker Hoffmann Schulz Koch Richter Klein Wolf"
)
STREETS = (
    "Hauptstraße",
    "Rue de la Paix",
    "Via Roma",
    "Calle Mayor",
    "Market Street",
    "Kings Road",
    "Lindenweg",
)
CITIES = (
    ("Berlin", "10115", "Germany"),
    ("Paris", "75002", "France"),
    ("Roma", "00184", "Italy"),
    ("Madrid", "28013", "Spain"),
    ("London", "SW3 4UY", "United Kingdom"),
    ("Lyon", "69002", "France"),
    ("Wien", "1010", "Austria"),
)
ORGS = ("ACME GmbH", "Initech", "Globex", "Umbrella Ltd", "Stark Industries", "Hooli", "")
DOMAINS = ("example.org", "example.com", "mail.example.net", "corp.example")
WORDS = _words(
    "weekly sync review planning lunch dentist standup retro budget call workshop "
    "interview onboarding yoga football piano school parents evening dinner trip"
)

# Two years of events, and the one-month window queried. The window's edges are at
# 12:07 UTC so that no generated start or end (on quarter hours or whole days) touches
# them: the expected answer does not depend on tie-breaking or on how a server places
# floating all-day events (±12 h).
SPAN_START = datetime(2024, 7, 1, tzinfo=UTC)
SPAN_DAYS = 730
QUERY_START = datetime(2025, 3, 10, 12, 7, tzinfo=UTC)  # includes the EU DST change
QUERY_END = datetime(2025, 4, 10, 12, 7, tzinfo=UTC)

BERLIN_VTIMEZONE = (
    "BEGIN:VTIMEZONE\r\n"
    "TZID:Europe/Berlin\r\n"
    "BEGIN:DAYLIGHT\r\n"
    "TZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\n"
    "TZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    "END:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\n"
    "TZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0100\r\n"
    "TZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
    "END:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


@dataclass(frozen=True)
class Item:
    """One generated object: its resource name (without extension), UID and body."""

    name: str
    uid: str
    body: bytes


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 6350 / RFC 5545), CRLF-terminated."""
    raw = line.encode()
    if len(raw) <= 75:
        return line + "\r\n"
    parts: list[str] = []
    start, limit = 0, 75
    while start < len(raw):
        end = min(start + limit, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # do not split a UTF-8 char
            end -= 1
        parts.append(raw[start:end].decode())
        start, limit = end, 74
    return "\r\n ".join(parts) + "\r\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fake_jpeg(rng: random.Random) -> bytes:
    size = rng.randint(2000, 6000)
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(size) + b"\xff\xd9"


def contact(seed: int, index: int, revision: int = 0) -> Item:
    """A vCard 3.0 contact; ~5% carry a small embedded photo. `revision` > 0 edits it."""
    rng = _rng(seed, "contact", index)
    uid = _uid(rng)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    lines = ["BEGIN:VCARD", "VERSION:3.0", "PRODID:-//Homeport bench//EN", f"UID:{uid}"]
    lines += [f"FN:{first} {last}", f"N:{_escape(last)};{_escape(first)};;;"]
    org = rng.choice(ORGS)
    if org:
        lines += [f"ORG:{_escape(org)}", f"TITLE:{rng.choice(('Engineer', 'Manager', 'CEO'))}"]
    for k in range(rng.randint(1, 3)):
        kind = ("HOME", "WORK", "OTHER")[k]
        local = f"{first}.{last}{'' if k == 0 else k}".lower()
        lines.append(f"EMAIL;TYPE=INTERNET,{kind}:{local}@{rng.choice(DOMAINS)}")
    for k in range(rng.randint(1, 3)):
        kind = ("CELL", "HOME", "WORK")[k]
        number = "".join(str(rng.randint(0, 9)) for _ in range(9))
        lines.append(f"TEL;TYPE={kind}:+49 {number[:3]} {number[3:]}")
    for k in range(rng.randint(1, 2)):
        city, code, country = rng.choice(CITIES)
        street = f"{rng.choice(STREETS)} {rng.randint(1, 200)}"
        kind = ("HOME", "WORK")[k]
        lines.append(f"ADR;TYPE={kind}:;;{_escape(street)};{city};;{code};{country}")
    if rng.random() < 0.4:
        year, month, day = rng.randint(1940, 2010), rng.randint(1, 12), rng.randint(1, 28)
        lines.append(f"BDAY:{year}-{month:02d}-{day:02d}")
    if rng.random() < 0.3:
        lines.append(f"URL:https://{rng.choice(DOMAINS)}/~{first.lower()}")
    if rng.random() < 0.3 or revision:
        note = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25)))
        if revision:
            note += f" (edited, revision {revision})"
        lines.append(f"NOTE:{_escape(note)}")
    lines.append(f"CATEGORIES:{rng.choice(('friends', 'work', 'family', 'sports'))}")
    lines.append(f"REV:2025-01-{1 + revision % 28:02d}T10:00:00Z")
    if rng.random() < 0.05:
        photo = base64.b64encode(_fake_jpeg(rng)).decode()
        lines.append(f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}")
    lines.append("END:VCARD")
    return Item(f"c{index:06d}-{uid[:8]}", uid, "".join(fold(x) for x in lines).encode())


def _dt(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def event(seed: int, index: int) -> Item:
    """A VEVENT over two years: ~20% weekly recurring (COUNT, UNTIL or open-ended),
    ~20% in Europe/Berlin local time, ~5% all-day, the rest in UTC."""
    rng = _rng(seed, "event", index)
    uid = _uid(rng)
    start = SPAN_START + timedelta(minutes=15 * rng.randrange(SPAN_DAYS * 24 * 4))
    summary = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))).capitalize()
    props = [f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"SUMMARY:{_escape(summary)}"]
    style = rng.random()
    tz = ""
    if style < 0.05:  # all-day
        day = start.date()
        props += [
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=rng.randint(1, 3)):%Y%m%d}",
        ]
    else:
        length = timedelta(minutes=15 * rng.randint(2, 12))
        if style < 0.25:
            tz = BERLIN_VTIMEZONE
            local = start.replace(tzinfo=None)
            props += [
                f"DTSTART;TZID=Europe/Berlin:{_dt(local)}",
                f"DTEND;TZID=Europe/Berlin:{_dt(local + length)}",
            ]
        else:
            props += [f"DTSTART:{_dt(start)}Z", f"DTEND:{_dt(start + length)}Z"]
        if rng.random() < 0.20:
            kind = rng.randrange(3)
            if kind == 0:
                props.append(f"RRULE:FREQ=WEEKLY;COUNT={rng.randint(4, 30)}")
            elif kind == 1:
                until = start + timedelta(weeks=rng.randint(2, 20), hours=1)
                props.append(f"RRULE:FREQ=WEEKLY;UNTIL={_dt(until.astimezone(UTC))}Z")
            else:
                props.append("RRULE:FREQ=WEEKLY")
    if rng.random() < 0.3:
        props.append(f"LOCATION:{_escape(rng.choice(CITIES)[0])}")
    if rng.random() < 0.2:
        props.append(f"DESCRIPTION:{_escape(' '.join(rng.choice(WORDS) for _ in range(20)))}")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Homeport bench//EN"]
    body = "".join(fold(x) for x in lines) + tz
    body += "BEGIN:VEVENT\r\n" + "".join(fold(p) for p in props) + "END:VEVENT\r\n"
    body += "END:VCALENDAR\r\n"
    return Item(f"e{index:06d}-{uid[:8]}", uid, body.encode())


def todo(seed: int, index: int) -> Item:
    """A VTODO: most with a DUE date, some completed."""
    rng = _rng(seed, "todo", index)
    uid = _uid(rng)
    summary = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))).capitalize()
    props = [f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"SUMMARY:{_escape(summary)}"]
    props.append(f"PRIORITY:{rng.choice((0, 1, 5, 9))}")
    if rng.random() < 0.8:
        due = SPAN_START + timedelta(days=rng.randrange(SPAN_DAYS), hours=17)
        props.append(f"DUE:{_dt(due)}Z")
    if rng.random() < 0.3:
        props += ["STATUS:COMPLETED", "COMPLETED:20250102T090000Z", "PERCENT-COMPLETE:100"]
    else:
        props.append("STATUS:NEEDS-ACTION")
    body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Homeport bench//EN\r\nBEGIN:VTODO\r\n"
    body += "".join(fold(p) for p in props) + "END:VTODO\r\nEND:VCALENDAR\r\n"
    return Item(f"t{index:06d}-{uid[:8]}", uid, body.encode())


class Expectations:
    """What a correct server answers to the one-month query, per generated event,
    computed with recurring-ical-events (cached: every server uses the same events)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._instances: dict[int, int] = {}

    def instances(self, index: int) -> int:
        """How many instances of event `index` overlap [QUERY_START, QUERY_END)."""
        found = self._instances.get(index)
        if found is None:
            import icalendar
            import recurring_ical_events

            cal = icalendar.Calendar.from_ical(event(self.seed, index).body)
            found = len(list(recurring_ical_events.of(cal).between(QUERY_START, QUERY_END)))
            self._instances[index] = found
        return found

    def query(self, indexes: list[int]) -> tuple[int, int]:
        """(matching events, total expanded instances) for the events held."""
        counts = [self.instances(i) for i in indexes]
        return sum(1 for c in counts if c), sum(counts)
