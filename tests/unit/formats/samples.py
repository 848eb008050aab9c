"""Calendar and vCard bodies shared by the formats tests.

The calendar data follows RFC 4791 Appendix B (US/Eastern, January 2006) so that the
section 7.8 examples can be checked against it; the vCards imitate what iOS, DAVx5,
Thunderbird and Evolution actually send.
"""

from __future__ import annotations


def ics(*components: str, tz: bool = False, extra: str = "") -> bytes:
    """A VCALENDAR around `components` (with the US/Eastern VTIMEZONE when `tz`)."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example Corp.//CalDAV Client//EN"]
    if extra:
        parts.append(extra.strip())
    if tz:
        parts.append(US_EASTERN.strip())
    parts.extend(c.strip() for c in components)
    parts.append("END:VCALENDAR")
    return ("\r\n".join("\r\n".join(p.splitlines()) for p in parts) + "\r\n").encode()


US_EASTERN = """
BEGIN:VTIMEZONE
LAST-MODIFIED:20040110T032845Z
TZID:US/Eastern
BEGIN:DAYLIGHT
DTSTART:20000404T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4
TZNAME:EDT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
BEGIN:STANDARD
DTSTART:20001026T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZNAME:EST
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
END:VTIMEZONE
"""

# RFC 4791 Appendix B, abcd1.ics: a single event, 2006-01-02 10:00 EST for an hour.
ABCD1 = ics(
    """
BEGIN:VEVENT
DTSTAMP:20060206T001102Z
DTSTART;TZID=US/Eastern:20060102T100000
DURATION:PT1H
SUMMARY:Event #1
Description:Go Steelers!
UID:74855313FA803DA593CD579A@example.com
END:VEVENT
""",
    tz=True,
)

# abcd2.ics: daily for five days, two instances moved two hours later.
ABCD2 = ics(
    """
BEGIN:VEVENT
DTSTAMP:20060206T001121Z
DTSTART;TZID=US/Eastern:20060102T120000
DURATION:PT1H
RRULE:FREQ=DAILY;COUNT=5
SUMMARY:Event #2
UID:00959BC664CA650E933C892C@example.com
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20060206T001121Z
DTSTART;TZID=US/Eastern:20060104T140000
DURATION:PT1H
RECURRENCE-ID;TZID=US/Eastern:20060104T120000
SUMMARY:Event #2 bis
UID:00959BC664CA650E933C892C@example.com
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20060206T001121Z
DTSTART;TZID=US/Eastern:20060106T140000
DURATION:PT1H
RECURRENCE-ID;TZID=US/Eastern:20060106T120000
SUMMARY:Event #2 bis bis
UID:00959BC664CA650E933C892C@example.com
END:VEVENT
""",
    tz=True,
)

# abcd3.ics: an event with attendees and an alarm ten minutes before.
ABCD3 = ics(
    """
BEGIN:VEVENT
ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:cyrus@example.com
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:lisa@example.com
DTSTAMP:20060206T001220Z
DTSTART;TZID=US/Eastern:20060104T100000
DURATION:PT1H
LAST-MODIFIED:20060206T001330Z
ORGANIZER:mailto:cyrus@example.com
SEQUENCE:1
STATUS:TENTATIVE
SUMMARY:Event #3
UID:DC6C50A017428C5216A2F1CD@example.com
X-ABC-GUID:E1CX5Dr-0007ym-Hz@example.com
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Event reminder
TRIGGER;RELATED=START:-PT10M
END:VALARM
END:VEVENT
""",
    tz=True,
)

# abcd4..abcd8: to-dos in the states section 9.9 distinguishes.
TODO_DUE = ics(
    """
BEGIN:VTODO
DTSTAMP:20060205T235335Z
DUE;VALUE=DATE:20060104
STATUS:NEEDS-ACTION
SUMMARY:Task #1
UID:DDDEEB7915FA61233B861457@example.com
BEGIN:VALARM
ACTION:AUDIO
TRIGGER;VALUE=DATE-TIME:20060104T140000Z
DURATION:PT1H
REPEAT:4
END:VALARM
END:VTODO
"""
)
TODO_START = ics(
    """
BEGIN:VTODO
DTSTAMP:20060205T235300Z
DTSTART;VALUE=DATE:20060102
STATUS:NEEDS-ACTION
SUMMARY:Task #2
UID:E10BA47467C5C69BB74E8720@example.com
END:VTODO
"""
)
TODO_COMPLETED = ics(
    """
BEGIN:VTODO
DTSTAMP:20060205T235240Z
COMPLETED:20051223T122322Z
STATUS:COMPLETED
SUMMARY:Task #3
UID:E10BA47467C5C69BB74E8722@example.com
END:VTODO
"""
)
TODO_CANCELLED = ics(
    """
BEGIN:VTODO
DTSTAMP:20060205T235214Z
STATUS:CANCELLED
SUMMARY:Task #4
UID:E10BA47467C5C69BB74E8725@example.com
END:VTODO
"""
)
TODO_BARE = ics(
    """
BEGIN:VTODO
DTSTAMP:20060205T235214Z
SUMMARY:Task without any date
UID:bare-todo@example.com
END:VTODO
"""
)

JOURNAL = ics(
    """
BEGIN:VJOURNAL
DTSTAMP:20060206T001220Z
DTSTART;VALUE=DATE:20060104
SUMMARY:Notes of the day
DESCRIPTION:It rained.
UID:journal-1@example.com
END:VJOURNAL
"""
)

FREEBUSY = ics(
    """
BEGIN:VFREEBUSY
UID:fb-1@example.com
DTSTAMP:20060206T001220Z
DTSTART:20060108T000000Z
DTEND:20060109T000000Z
FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20060108T090000Z/PT2H
FREEBUSY;FBTYPE=FREE:20060108T130000Z/PT1H
FREEBUSY:20060108T150000Z/20060108T160000Z
END:VFREEBUSY
"""
)

# A yearly all-day birthday that never ends, from before the Unix epoch.
BIRTHDAY = ics(
    """
BEGIN:VEVENT
UID:birthday-ada@example.com
DTSTAMP:20240101T000000Z
DTSTART;VALUE=DATE:19601210
DTEND;VALUE=DATE:19601211
RRULE:FREQ=YEARLY
SUMMARY:Ada's birthday
TRANSP:TRANSPARENT
END:VEVENT
"""
)

CALENDAR_SAMPLES = [
    ABCD1,
    ABCD2,
    ABCD3,
    TODO_DUE,
    TODO_START,
    TODO_COMPLETED,
    TODO_CANCELLED,
    TODO_BARE,
    JOURNAL,
    FREEBUSY,
    BIRTHDAY,
]


def vcard(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# iOS / macOS Contacts: vCard 3.0, groups with X-ABLabel, folded base64 photo.
IOS = vcard(
    "BEGIN:VCARD",
    "VERSION:3.0",
    "PRODID:-//Apple Inc.//iPhone OS 17.2//EN",
    "N:Appleseed;Johnny;;;",
    "FN:Johnny Appleseed",
    "ORG:Example Inc.;",
    "item1.EMAIL;type=INTERNET;type=pref:johnny@example.com",
    "item1.X-ABLabel:_$!<Other>!$_",
    "EMAIL;type=INTERNET;type=WORK:j.appleseed@work.example",
    "TEL;type=CELL;type=VOICE;type=pref:+1 (555) 555-0100",
    "item2.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;USA",
    "item2.X-ABADR:us",
    "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDA",
    " sLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAR",
    " EA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==",
    "X-SOCIALPROFILE;type=twitter:http://twitter.com/johnny",
    "NOTE:Likes apples\\, pears\\nand plums",
    "UID:5E8F2D5B-1C5B-4C5C-9B3A-2C1F0E6D7A8B",
    "REV:2024-01-05T10:00:00Z",
    "END:VCARD",
)

# DAVx5 (ez-vcard) writing vCard 4.0.
DAVX5 = vcard(
    "BEGIN:VCARD",
    "VERSION:4.0",
    "PRODID:ez-vcard 0.11.3",
    "UID:urn:uuid:2d0b8f1e-4ab3-4d6f-9a5e-0c3b1a2e4f5d",
    "FN:Erika Mustermann",
    "N:Mustermann;Erika;;Dr.;",
    "EMAIL;TYPE=work:erika@example.org",
    "TEL;TYPE=cell;VALUE=uri:tel:+49-170-1234567",
    'ADR;LABEL="Heidestraße 17^n51147 Köln";TYPE=home:;;Heidestraße 17;Köln;;51147;Germany',
    "CATEGORIES:Friends,Family",
    "NOTE:Met at FOSDEM\\, Brussels",
    "X-PHONETIC-FIRST-NAME:Erika",
    "REV:20240105T100000Z",
    "END:VCARD",
)

# Thunderbird's address book (vCard 4.0), LF line endings.
THUNDERBIRD = (
    b"BEGIN:VCARD\n"
    b"VERSION:4.0\n"
    b"EMAIL;PREF=1:tb@example.net\n"
    b"FN:Thunder Bird\n"
    b"NICKNAME:TB\n"
    b"ORG:Mozilla;Thunderbird\n"
    b"TEL;TYPE=home;VALUE=TEXT:+1 555 0101\n"
    b"UID:7c2b2c59-8a3f-4e0d-b4f7-3f1a4a6c2d10\n"
    b"X-MOZILLA-HTML:FALSE\n"
    b"END:VCARD\n"
)

# Evolution / older exporters: vCard 3.0, comma TYPE lists, bare 2.1-style params, no UID.
EVOLUTION = vcard(
    "BEGIN:VCARD",
    "VERSION:3.0",
    "FN:Straße Ärger",
    "N:Ärger;Straße;;;",
    "TEL;TYPE=WORK,VOICE:+49 30 123456",
    "TEL;HOME:+49 30 654321",
    'X-EVOLUTION-FILE-AS:"Ärger, Straße"',
    "EMAIL;TYPE=INTERNET;X-EVOLUTION-UI-SLOT=1:strasse@example.de",
    "END:VCARD",
)

VCARD_SAMPLES = [IOS, DAVX5, THUNDERBIRD, EVOLUTION]
