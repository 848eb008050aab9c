"""Hypothesis strategies for whole HTTP requests to a DAV server.

Requests are built from the vocabularies a DAV server must understand (methods,
paths with traversal pieces, DAV/CalDAV/CardDAV elements, iCalendar and vCard
properties) so that most inputs get past the first check and reach the deeper code,
and mutated so that many are subtly wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st
from lxml import etree

D, C, R = "DAV:", "urn:ietf:params:xml:ns:caldav", "urn:ietf:params:xml:ns:carddav"
CS = "http://calendarserver.org/ns/"

METHODS = [
    "GET",
    "HEAD",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "MKCALENDAR",
    "COPY",
    "MOVE",
    "REPORT",
    "LOCK",
    "UNLOCK",
    "POST",
    "PATCH",
    "TRACE",
    "ACL",
    "SEARCH",
    "X-FUZZ",
]

SEGMENTS = [
    "contacts",
    "calendar",
    "tasks",
    "files",
    "fuzz",
    "sub",
    "a.vcf",
    "b.ics",
    "x.bin",
    "..",
    ".",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff",
    "%c3%a9",
    "é",
    "a%20b",
    "~",
    "index.html",
    "",
    "x" * 300,
    "%25",
    ";p=1",
    "?q=1",
    "#f",
]

OWNERS = ["alice", "alice", "alice", "bob", "nobody", "", ".."]

DAV_ELEMENTS = (
    [
        (D, n)
        for n in (
            "propfind",
            "prop",
            "propname",
            "allprop",
            "include",
            "propertyupdate",
            "set",
            "remove",
            "href",
            "mkcol",
            "resourcetype",
            "collection",
            "sync-collection",
            "sync-token",
            "sync-level",
            "limit",
            "nresults",
            "displayname",
            "getetag",
            "getcontenttype",
            "getcontentlength",
            "getlastmodified",
            "creationdate",
            "current-user-principal",
            "current-user-privilege-set",
            "supported-report-set",
            "owner",
            "principal-URL",
            "quota-used-bytes",
            "quota-available-bytes",
        )
    ]
    + [
        (C, n)
        for n in (
            "calendar-query",
            "calendar-multiget",
            "free-busy-query",
            "mkcalendar",
            "filter",
            "comp-filter",
            "prop-filter",
            "param-filter",
            "is-not-defined",
            "text-match",
            "time-range",
            "calendar-data",
            "expand",
            "limit-recurrence-set",
            "limit-freebusy-set",
            "comp",
            "prop",
            "calendar",
            "calendar-home-set",
            "supported-calendar-component-set",
            "calendar-description",
            "calendar-timezone",
            "max-resource-size",
        )
    ]
    + [
        (R, n)
        for n in (
            "addressbook-query",
            "addressbook-multiget",
            "filter",
            "prop-filter",
            "param-filter",
            "is-not-defined",
            "text-match",
            "address-data",
            "prop",
            "allprop",
            "limit",
            "nresults",
            "addressbook",
            "addressbook-home-set",
        )
    ]
    + [(CS, "getctag"), ("urn:x", "dead"), ("", "plain")]
)

ROOTS = [
    (D, "propfind"),
    (D, "propertyupdate"),
    (D, "mkcol"),
    (D, "sync-collection"),
    (C, "mkcalendar"),
    (C, "calendar-query"),
    (C, "calendar-multiget"),
    (C, "free-busy-query"),
    (R, "addressbook-query"),
    (R, "addressbook-multiget"),
]

ATTRIBUTES = {
    "name": [
        "VCALENDAR",
        "VEVENT",
        "VTODO",
        "VJOURNAL",
        "VALARM",
        "VCARD",
        "SUMMARY",
        "UID",
        "FN",
        "EMAIL",
        "DTSTART",
        "TZID",
        "X-FUZZ",
        "",
        "vevent",
    ],
    "start": [
        "20060104T000000Z",
        "20260101T000000Z",
        "20260101",
        "00000000T000000Z",
        "99991231T235959Z",
        "garbage",
        "20260230T250000Z",
        "-1",
        "",
    ],
    "end": [
        "20060105T000000Z",
        "20260102T000000Z",
        "20250101T000000Z",
        "99991231T235959Z",
        "garbage",
        "",
    ],
    "collation": ["i;ascii-casemap", "i;octet", "i;unicode-casemap", "x-unknown", ""],
    "match-type": ["equals", "contains", "starts-with", "ends-with", "regex", ""],
    "negate-condition": ["yes", "no", "maybe"],
    "test": ["anyof", "allof", "nope"],
    "content-type": ["text/calendar", "text/vcard", "application/json", ""],
    "version": ["2.0", "3.0", "4.0", "1.0"],
}

HREF_TEXTS = [
    "/dav/alice/contacts/a.vcf",
    "/dav/alice/calendar/b.ics",
    "/dav/bob/contacts/bob.vcf",
    "/dav/alice/../bob/contacts/bob.vcf",
    "http://127.0.0.1/dav/alice/contacts/a.vcf",
    "http://evil.example/dav/bob/contacts/bob.vcf",
    "/dav/alice/contacts/%ff",
    "a.vcf",
    "",
    "urn:homeport:sync:1:1",
    "urn:homeport:sync:999999:99999999",
    "urn:homeport:sync:x",
    "1",
    "0",
    "-5",
    "infinite",
]

xml_text = st.one_of(
    st.sampled_from([*HREF_TEXTS, "UID", "Card", "meeting", "é", "\u202e", " "]),
    st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\ufffe\uffff"),
        max_size=20,
    ).filter(lambda s: all(c == "\t" or c == "\n" or c == "\r" or ord(c) >= 32 for c in s)),
)


@st.composite
def xml_tree(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    ns, name = draw(st.sampled_from(ROOTS if depth == 0 else DAV_ELEMENTS))
    elem = etree.Element(f"{{{ns}}}{name}" if ns else name)
    for attr in draw(st.lists(st.sampled_from(sorted(ATTRIBUTES)), max_size=3, unique=True)):
        elem.set(attr, draw(st.sampled_from(ATTRIBUTES[attr])))
    if draw(st.booleans()):
        elem.text = draw(xml_text)
    if depth < 5:
        for _ in range(draw(st.integers(0, 4 if depth < 3 else 1))):
            elem.append(draw(xml_tree(depth + 1)))
    return elem


@st.composite
def xml_body(draw: st.DrawFn) -> bytes:
    data = etree.tostring(draw(xml_tree()), xml_declaration=draw(st.booleans()), encoding="utf-8")
    return draw(mutated(data, light=True))


VEVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Paris:20260301T100000\r\n"
    "DTEND;TZID=Europe/Paris:20260301T110000\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\n"
    "EXDATE;TZID=Europe/Paris:20260308T100000\r\nSUMMARY:Fuzz meeting\r\n"
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@example.org\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n"
    "TRIGGER:-PT15M\r\nDESCRIPTION:r\r\nEND:VALARM\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "RECURRENCE-ID;TZID=Europe/Paris:20260315T100000\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;TZID=Europe/Paris:20260315T120000\r\nDURATION:PT1H\r\nSUMMARY:Moved\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
VTODO = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//EN\r\nBEGIN:VTODO\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDUE;VALUE=DATE:20260401\r\nSTATUS:NEEDS-ACTION\r\n"
    "SUMMARY:Fuzz todo\r\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20270101T000000Z\r\n"
    "END:VTODO\r\nEND:VCALENDAR\r\n"
)
VCARD = (
    "BEGIN:VCARD\r\nVERSION:{version}\r\nUID:{uid}\r\nFN:Fuzz Person\r\nN:Person;Fuzz;;;\r\n"
    "EMAIL;TYPE=INTERNET,HOME:fuzz@example.org\r\nTEL;TYPE=CELL:+33 6 00 00 00 00\r\n"
    "ADR;TYPE=HOME:;;1 Rue;Paris;;75001;France\r\nBDAY:1990-01-01\r\n"
    "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQ==\r\nNOTE:line\\, with\\; escapes\\n\r\n"
    "END:VCARD\r\n"
)

ICAL_LINES = [
    "RRULE:FREQ=DAILY;COUNT=3",
    "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    # INTERVAL=0 is left out: it makes expansion loop forever, a known bug
    # (tests/security/test_protocol_safety.py::test_a_zero_interval_rule_cannot_hang_queries).
    "RRULE:FREQ=MINUTELY;INTERVAL=2",
    "RRULE:FREQ=HOURLY;UNTIL=19000101T000000Z",
    "RRULE:FREQ=MONTHLY;BYDAY=5FR;COUNT=999999999",
    "RRULE:FREQ=WEEKLY;BYSETPOS=-1000",
    "RRULE:garbage",
    "RDATE;VALUE=PERIOD:20260101T000000Z/PT1H",
    "EXDATE:20260101",
    "DTSTART:20260101",
    "DTSTART:99991231T235959Z",
    "DTSTART;TZID=Nowhere/Land:20260101T000000",
    "DTEND:19700101T000000Z",
    "DURATION:-P1D",
    "DURATION:P99999999W",
    "DUE:20260101T000000Z",
    "UID:",
    "UID:other",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    "END:VEVENT",
    "BEGIN:VTIMEZONE",
    "BEGIN:VALARM",
    "END:VCALENDAR",
    "SUMMARY;LANGUAGE=fr:\u00e9t\u00e9",
    'X-FUZZ;X-P="a:b;c":v',
    " folded continuation",
    "TRIGGER;RELATED=END:PT0S",
    "REPEAT:1000000",
    "ATTENDEE:mailto:\u202e",
    "VERSION:1.0",
    "N:;;;;",
    "FN:",
    'EMAIL;TYPE="x":',
    "BEGIN:VCARD",
    "END:VCARD",
    "KIND:group",
    "MEMBER:urn:uuid:x",
    "TEL;VALUE=uri:tel:+1",
    "ADR:;;;;;;;;;;;;",
]


@st.composite
def mutated(draw: st.DrawFn, data: bytes, light: bool = False) -> bytes:
    """`data`, sometimes left alone, otherwise changed by a few random edits."""
    if draw(st.integers(0, 3 if light else 1)) != 0:
        return data
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "dup", "bytes"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip":
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 20)) :]
        elif kind == "dup":
            data = data[:at] + data[at : at + 40] * draw(st.integers(2, 5)) + data[at:]
        else:
            data = draw(st.binary(max_size=64))
    return data


@st.composite
def calendar_body(draw: st.DrawFn) -> bytes:
    uid = draw(
        st.one_of(
            st.sampled_from(["fuzz-1", "fuzz-2", "é", "a b", "x" * 300]),
            st.integers(0, 10_000).map(lambda n: f"fuzz-{n}"),
        )
    )
    template = draw(st.sampled_from([VEVENT, VTODO]))
    lines = template.format(uid=uid).split("\r\n")
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["add", "drop", "swap", "replace"]))
        at = draw(st.integers(0, len(lines) - 1))
        if op == "add":
            lines.insert(at, draw(st.sampled_from(ICAL_LINES)))
        elif op == "drop":
            del lines[at]
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines[at] = draw(st.sampled_from(ICAL_LINES))
    return draw(mutated("\r\n".join(lines).encode(), light=True))


@st.composite
def vcard_body(draw: st.DrawFn) -> bytes:
    uid = draw(
        st.one_of(
            st.sampled_from(["card-1", "card-2", "é"]),
            st.integers(0, 10_000).map(lambda n: f"card-{n}"),
        )
    )
    version = draw(st.sampled_from(["3.0", "4.0", "2.1", "5"]))
    lines = VCARD.format(uid=uid, version=version).split("\r\n")
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            lines.insert(at, draw(st.sampled_from(ICAL_LINES)))
        else:
            del lines[at]
    return draw(mutated("\r\n".join(lines).encode(), light=True))


@st.composite
def path(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["/", "/dav", "/dav/", "/.well-known/caldav", "*", ""]))
    owner = draw(st.sampled_from(OWNERS))
    segments = draw(st.lists(st.sampled_from(SEGMENTS), max_size=4))
    trailing = "/" if draw(st.booleans()) else ""
    return "/dav/" + "/".join([owner, *segments]) + trailing


HEADER_VALUES: dict[str, list[str]] = {
    "Depth": ["0", "1", "infinity", "2", "", "1,0", "-1"],
    "Overwrite": ["T", "F", "t", "x", ""],
    "If-Match": ['"abc"', "*", 'W/"x"', '"a", "b"', "", "garbage"],
    "If-None-Match": ["*", '"abc"', 'W/"x"', ""],
    "If": ['(["abc"])', "(<urn:x>)", "(Not <DAV:no-lock>)", '<http://x/> (["a"])', "((", ""],
    "Content-Type": [
        "text/calendar",
        "text/vcard; charset=utf-8",
        "application/xml",
        "text/xml; charset=latin-1",
        "application/octet-stream",
        "image/jpeg",
        "",
        "multipart/form-data; boundary=x",
    ],
    "Content-Range": ["bytes 0-1/2"],
    "Prefer": ["return=minimal", "depth-noroot"],
    "Brief": ["t"],
    "Timeout": ["Second-1", "Infinite"],
    "Lock-Token": ["<urn:x>"],
    "Accept-Encoding": ["gzip", "br, zstd"],
    "Range": ["bytes=0-1", "bytes=5-"],
    "Expect": ["100-continue"],
}


TIMES = [
    "20260101T000000Z",
    "20260301T000000Z",
    "20260315T120000Z",
    "20270101T000000Z",
    "20260101",
    "19000101T000000Z",
    "99991231T235959Z",
    "2026-01-01T00:00:00Z",
    "",
]


@st.composite
def time_range(draw: st.DrawFn, ns: str = C) -> str:
    attrs = ""
    if draw(st.integers(0, 4)):
        attrs += f' start="{draw(st.sampled_from(TIMES))}"'
    if draw(st.integers(0, 4)):
        attrs += f' end="{draw(st.sampled_from(TIMES))}"'
    return f"<X:time-range{attrs}/>".replace("X:", "C:" if ns == C else "A:")


@st.composite
def text_match(draw: st.DrawFn, prefix: str) -> str:
    attrs = ""
    for name in ("collation", "negate-condition", "match-type"):
        if draw(st.booleans()):
            attrs += f' {name}="{draw(st.sampled_from(ATTRIBUTES[name]))}"'
    text = draw(
        st.sampled_from(["Fuzz", "fuzz", "é", "", "meeting", "@example.org", "+33", "x" * 500])
    )
    return f"<{prefix}:text-match{attrs}>{text}</{prefix}:text-match>"


@st.composite
def prop_filter(draw: st.DrawFn, prefix: str, names: list[str]) -> str:
    name = draw(st.sampled_from(names))
    inner = draw(
        st.lists(
            st.one_of(
                st.just(f"<{prefix}:is-not-defined/>"),
                text_match(prefix),
                time_range(C) if prefix == "C" else text_match(prefix),
                st.just(
                    f'<{prefix}:param-filter name="TYPE"><{prefix}:text-match>home'
                    f"</{prefix}:text-match></{prefix}:param-filter>"
                ),
            ),
            max_size=2,
        )
    )
    return f'<{prefix}:prop-filter name="{name}">{"".join(inner)}</{prefix}:prop-filter>'


@st.composite
def calendar_query(draw: st.DrawFn) -> bytes:
    comp = draw(st.sampled_from(["VEVENT", "VTODO", "VJOURNAL", "VALARM", "VFREEBUSY", "X"]))
    inner = "".join(
        draw(
            st.lists(
                st.one_of(
                    time_range(C),
                    prop_filter("C", ["SUMMARY", "UID", "ATTENDEE", "DTSTART", "STATUS"]),
                    st.just("<C:is-not-defined/>"),
                ),
                max_size=3,
            )
        )
    )
    data = draw(
        st.sampled_from(
            [
                "",
                "<C:calendar-data/>",
                '<C:calendar-data><C:expand start="20260101T000000Z" end="20260401T000000Z"/>'
                "</C:calendar-data>",
                '<C:calendar-data><C:limit-recurrence-set start="20260101T000000Z" '
                'end="20260201T000000Z"/></C:calendar-data>',
                '<C:calendar-data><C:comp name="VCALENDAR"><C:prop name="VERSION"/>'
                '<C:comp name="VEVENT"><C:prop name="SUMMARY"/></C:comp></C:comp>'
                "</C:calendar-data>",
            ]
        )
    )
    body = (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/>{data}</D:prop>'
        f'<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="{comp}">{inner}'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    ).encode()
    return draw(mutated(body, light=True))


@st.composite
def addressbook_query(draw: st.DrawFn) -> bytes:
    test = draw(st.sampled_from(["", ' test="anyof"', ' test="allof"', ' test="x"']))
    filters = "".join(
        draw(
            st.lists(prop_filter("A", ["FN", "EMAIL", "TEL", "UID", "NICKNAME", "ADR"]), max_size=3)
        )
    )
    limit = draw(
        st.sampled_from(
            [
                "",
                "<A:limit><A:nresults>1</A:nresults></A:limit>",
                "<A:limit><A:nresults>-1</A:nresults></A:limit>",
            ]
        )
    )
    body = (
        f'<A:addressbook-query xmlns:D="DAV:" xmlns:A="{R}"><D:prop><D:getetag/>'
        f"<A:address-data/></D:prop><A:filter{test}>{filters}</A:filter>{limit}"
        "</A:addressbook-query>"
    ).encode()
    return draw(mutated(body, light=True))


COLLECTIONS = ["contacts", "calendar", "tasks", "files", "fuzz"]
NAMES = ["a.vcf", "b.ics", "x.bin", "new.ics", "new.vcf", "n1", "n2", "sub", "é.ics"]


@st.composite
def plausible_path(draw: st.DrawFn, item: bool) -> str:
    owner = "alice" if draw(st.integers(0, 12)) else draw(st.sampled_from(["bob", "nobody"]))
    coll = draw(st.sampled_from(COLLECTIONS))
    if not item:
        return f"/dav/{owner}/{coll}/"
    return f"/dav/{owner}/{coll}/{draw(st.sampled_from(NAMES))}"


@st.composite
def destination(draw: st.DrawFn) -> str:
    prefix = draw(
        st.sampled_from(["", "http://127.0.0.1", "http://evil.example", "https://127.0.0.1"])
    )
    return prefix + draw(path())


@dataclass
class FuzzRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    user: str = "alice"


@st.composite
def plausible(draw: st.DrawFn) -> FuzzRequest:
    """A request a real client could send, with fuzzed details: it reaches deep code."""
    scenario = draw(
        st.sampled_from(["put", "put", "put", "query", "query", "propfind", "write", "transfer"])
    )
    if scenario == "put":
        url = draw(plausible_path(item=True))
        if "/contacts/" in url:
            body = draw(vcard_body())
        elif "/files/" in url or "/fuzz/" in url:
            body = draw(st.binary(max_size=300))
        else:
            body = draw(calendar_body())
        return FuzzRequest("PUT", url, {}, body)
    if scenario == "query":
        url = draw(plausible_path(item=draw(st.integers(0, 5)) == 0))
        if "/contacts/" in url:
            matching = addressbook_query()
        elif "/calendar/" in url or "/tasks/" in url:
            matching = calendar_query()
        else:
            matching = xml_body()
        body = draw(st.one_of(matching, matching, matching, xml_body(), st.just(SYNC_BODY)))
        return FuzzRequest("REPORT", url, {"Depth": draw(st.sampled_from(["1", "0"]))}, body)
    if scenario == "propfind":
        url = draw(plausible_path(item=draw(st.booleans())))
        return FuzzRequest(
            "PROPFIND", url, {"Depth": draw(st.sampled_from(["0", "1"]))}, draw(xml_body())
        )
    if scenario == "write":
        method = draw(st.sampled_from(["PROPPATCH", "MKCOL", "MKCALENDAR", "DELETE"]))
        url = draw(plausible_path(item=method == "DELETE" and draw(st.booleans())))
        if method in ("MKCOL", "MKCALENDAR"):
            url = url.rstrip("/") + draw(st.sampled_from(["-new/", "/sub/", "2/"]))
        return FuzzRequest(method, url, {}, b"" if method == "DELETE" else draw(xml_body()))
    method = draw(st.sampled_from(["COPY", "MOVE"]))
    src = draw(plausible_path(item=draw(st.integers(0, 4)) > 0))
    dst = draw(plausible_path(item=draw(st.booleans())))
    headers = {"Destination": quote(dst), "Overwrite": draw(st.sampled_from(["T", "F"]))}
    if draw(st.booleans()):
        headers["Depth"] = draw(st.sampled_from(["0", "infinity", "1"]))
    return FuzzRequest(method, src, headers)


SYNC_BODY = (
    b'<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
    b"<prop><getetag/></prop></sync-collection>"
)


@st.composite
def requests(draw: st.DrawFn) -> FuzzRequest:
    """Mostly plausible requests; one in three anything at all."""
    if draw(st.integers(0, 2)):
        req = draw(plausible())
        if draw(st.integers(0, 15)) == 0:
            req.user = "bob"
        return req
    return draw(chaotic())


@st.composite
def chaotic(draw: st.DrawFn) -> FuzzRequest:
    method = draw(st.sampled_from(METHODS))
    req = FuzzRequest(method, draw(path()))
    for name in draw(st.lists(st.sampled_from(sorted(HEADER_VALUES)), max_size=3, unique=True)):
        req.headers[name] = draw(st.sampled_from(HEADER_VALUES[name]))
    if method in ("COPY", "MOVE") or draw(st.integers(0, 20)) == 0:
        req.headers["Destination"] = draw(destination())
    kind = draw(st.sampled_from(["xml", "xml", "calendar", "vcard", "bytes", "none"]))
    if kind == "xml":
        req.body = draw(xml_body())
    elif kind == "calendar":
        req.body = draw(calendar_body())
    elif kind == "vcard":
        req.body = draw(vcard_body())
    elif kind == "bytes":
        req.body = draw(st.binary(max_size=200))
    if draw(st.integers(0, 15)) == 0:
        req.user = "bob"
    return req
