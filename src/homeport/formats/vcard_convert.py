"""Serve a vCard in the version a client asked for (RFC 6352 section 10.4, RFC 6350 appendix A).

Homeport stores the bytes a client sent, untouched; conversion happens only on the way
out, when a CardDAV client asks for ``address-data version="4.0"`` of a card written as
3.0 (or the reverse). An iPhone writes 3.0 and DAVx5 may write 4.0 to the same address
book, so each must be able to read the other's cards in its own dialect.

Only what differs between the versions is rewritten: the VERSION line, inline photos
and logos (``ENCODING=b`` against ``data:`` URIs), ``TYPE=PREF`` against ``PREF=1``,
dates (``1985-04-12`` against ``19850412``, Apple's year-less birthdays against
``--0412``), group cards (Apple's ``X-ADDRESSBOOKSERVER-*`` against ``KIND``/``MEMBER``)
and ``tel:`` URIs. Every other line is copied as it was, so nothing a client stored is
dropped by a round trip through the other version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from homeport.formats.vcard import (
    VCardProperty,
    parse_content_line,
    parse_vcard,
    unfolded_lines,
)

_VERSION_LINE = re.compile(rb"(?m)^VERSION:([0-9.]+)\r?$")
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(;[^,]*)?,(.*)", re.DOTALL | re.IGNORECASE)
_DATE_3 = re.compile(r"(\d{4})-(\d{2})-(\d{2})(.*)")
_DATE_4 = re.compile(r"(\d{4})(\d{2})(\d{2})(.*)")
_NO_YEAR_4 = re.compile(r"--(\d{2})(\d{2})")
_OMIT_YEAR = "X-APPLE-OMIT-YEAR"
_MEDIA = ("PHOTO", "LOGO", "SOUND", "KEY")
_DATES = ("BDAY", "ANNIVERSARY", "X-ANNIVERSARY")
_NEEDS_QUOTES = re.compile(r'[;:,"]')

Params = list[tuple[str, tuple[str, ...]]]


def convert_vcard(body: bytes, version: str) -> bytes:
    """Return `body` as a vCard of `version` ("3.0" or "4.0"); unchanged if already so.

    `body` is a stored, already validated card; the result parses as the same contact.
    """
    marker = b"\nVERSION:" + version.encode("ascii")
    if body.find(marker + b"\r\n") >= 0 or body.find(marker + b"\n") >= 0:
        return body  # the common case, found without a regex and without parsing the card
    quick = _VERSION_LINE.search(body)
    if quick is not None and quick.group(1).decode() == version:
        return body
    card = parse_vcard(body)
    if card.version == version:
        return body
    lines = [line for line in unfolded_lines(body.decode("utf-8-sig")) if line]
    convert: Callable[[VCardProperty], Iterable[VCardProperty]] = (
        _to_4 if version == "4.0" else _to_3
    )
    out: list[str] = []
    for line in lines:
        if line.strip().upper() in ("BEGIN:VCARD", "END:VCARD"):
            out.append(line.strip().upper())
            continue
        prop = parse_content_line(line)
        if prop.name == "VERSION":
            out.append(f"VERSION:{version}")
            continue
        converted = list(convert(prop))
        if converted == [prop]:
            out.append(line)  # untouched: keep the client's own spelling
        else:
            out.extend(_format(p) for p in converted)
    return "".join(_fold(line) + "\r\n" for line in out).encode("utf-8")


def _to_4(prop: VCardProperty) -> Iterable[VCardProperty]:
    name, params, value = prop.name, list(prop.params), prop.value
    types = _types(params)
    if "PREF" in types:
        params = _set_types(params, [t for t in _type_values(params) if t.upper() != "PREF"])
        params.append(("PREF", ("1",)))
    if name in _MEDIA and _has(params, "ENCODING"):
        encoding = (_get(params, "ENCODING") or "").upper()
        if encoding in ("B", "BASE64"):
            kinds = _type_values(params)
            media = _media_type(name, kinds[0] if kinds else "")
            params = _without(_without(params, "ENCODING"), "TYPE")
            params = [p for p in params if p[0] != "VALUE"]
            value = f"data:{media};base64,{value.strip()}"
    elif name in _MEDIA and (_get(params, "VALUE") or "").upper() == "URI":
        params = _without(params, "VALUE")
    if name in _DATES:
        omit = _get(params, _OMIT_YEAR)
        params = _without(params, _OMIT_YEAR)
        match = _DATE_3.fullmatch(value.strip())
        if match:
            year, month, day, rest = match.groups()
            if omit is not None and omit == year:
                value = f"--{month}{day}"
            else:
                value = f"{year}{month}{day}{rest.replace(':', '').replace('-', '')}"
        if name == "X-ANNIVERSARY":
            name = "ANNIVERSARY"
    if name == "X-ADDRESSBOOKSERVER-KIND":
        name = "KIND"
    elif name == "X-ADDRESSBOOKSERVER-MEMBER":
        name = "MEMBER"
    if name == "TEL" and value.lower().startswith("tel:") and not _has(params, "VALUE"):
        # 3.0 text that happens to start like a tel: URI stays text, so that `_to_3`
        # does not strip it as a URI's scheme on the way back
        params.append(("VALUE", ("text",)))
    return [VCardProperty(name=name, value=value, group=prop.group, params=tuple(params))]


def _to_3(prop: VCardProperty) -> Iterable[VCardProperty]:
    name, params, value = prop.name, list(prop.params), prop.value
    pref = _get(params, "PREF")
    if pref is not None:
        params = _without(params, "PREF")
        if pref.strip() == "1":
            params = _set_types(params, [*_type_values(params), "PREF"])
    if name in _MEDIA:
        match = _DATA_URI.fullmatch(value.strip())
        if match and "base64" in (match.group(2) or "").lower():
            media = (match.group(1) or "").lower()
            subtype = media.split("/", 1)[1].upper() if "/" in media else ""
            params = [p for p in _without(params, "VALUE") if p[0] != "MEDIATYPE"]
            params = _set_types(params, [subtype] if subtype else [])
            params.append(("ENCODING", ("b",)))
            value = match.group(3)
        elif ":" in value and not _has(params, "VALUE"):
            params.append(("VALUE", ("uri",)))
    if name in ("BDAY", "ANNIVERSARY"):
        stripped = value.strip()
        no_year = _NO_YEAR_4.fullmatch(stripped)
        match = _DATE_4.fullmatch(stripped)
        if no_year:
            params.append((_OMIT_YEAR, ("1604",)))
            value = f"1604-{no_year.group(1)}-{no_year.group(2)}"
        elif match and not _has(params, "VALUE"):
            year, month, day, rest = match.groups()
            value = f"{year}-{month}-{day}{_time_3(rest)}"
        if name == "ANNIVERSARY":
            name = "X-ANNIVERSARY"
    if name == "KIND":
        name = "X-ADDRESSBOOKSERVER-KIND"
    elif name == "MEMBER":
        name = "X-ADDRESSBOOKSERVER-MEMBER"
    elif name == "TEL" and (_get(params, "VALUE") or "").upper() == "TEXT":
        params = _without(params, "VALUE")  # marked by `_to_4`: text that starts "tel:"
    elif name == "TEL" and value.lower().startswith("tel:"):
        params = _without(params, "VALUE")
        value = value[4:]
    return [VCardProperty(name=name, value=value, group=prop.group, params=tuple(params))]


def _time_3(rest: str) -> str:
    """``T102200Z`` becomes ``T10:22:00Z`` (vCard 3.0 uses ISO 8601 extended format)."""
    match = re.fullmatch(r"T(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{2}\d{2})?", rest)
    if not match:
        return rest
    hour, minute, second, zone = match.groups()
    text = f"T{hour}:{minute}" + (f":{second}" if second else "")
    if zone and zone != "Z":
        zone = f"{zone[:3]}:{zone[3:]}"
    return text + (zone or "")


def _media_type(name: str, kind: str) -> str:
    kind = kind.strip().lower()
    if "/" in kind:
        return kind
    family = {"SOUND": "audio", "KEY": "application"}.get(name, "image")
    if family == "application":
        return f"application/{kind or 'octet-stream'}"
    return f"{family}/{kind or ('jpeg' if family == 'image' else 'basic')}"


def _types(params: Params) -> set[str]:
    return {t.upper() for t in _type_values(params)}


def _type_values(params: Params) -> list[str]:
    return [v for key, values in params if key == "TYPE" for v in values if v]


def _set_types(params: Params, types: list[str]) -> Params:
    rest = _without(params, "TYPE")
    if not types:
        return rest
    index = next((i for i, (key, _) in enumerate(params) if key == "TYPE"), len(rest))
    rest.insert(min(index, len(rest)), ("TYPE", tuple(dict.fromkeys(types))))
    return rest


def _has(params: Params, key: str) -> bool:
    return any(k == key for k, _ in params)


def _get(params: Params, key: str) -> str | None:
    for k, values in params:
        if k == key:
            return ",".join(values)
    return None


def _without(params: Params, key: str) -> Params:
    return [(k, v) for k, v in params if k != key]


def _format(prop: VCardProperty) -> str:
    head = f"{prop.group}.{prop.name}" if prop.group else prop.name
    for key, values in prop.params:
        head += f";{key}=" + ",".join(_param_value(v) for v in values)
    return f"{head}:{prop.value}"


def _param_value(value: str) -> str:
    encoded = value.replace("^", "^^").replace("\n", "^n").replace('"', "^'")
    return f'"{encoded}"' if _NEEDS_QUOTES.search(value) else encoded


def _fold(line: str) -> str:
    """Fold at 75 octets without splitting a UTF-8 sequence (RFC 6350 section 3.2)."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts: list[str] = []
    start, limit = 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start, limit = end, 74
    return "\r\n ".join(parts)


__all__ = ["convert_vcard"]
