"""vCard objects: parsing and validation for CardDAV (RFC 6352 section 5.1, RFC 6350, RFC 2426).

A small line parser rather than vobject: it accepts exactly what real clients send
(iOS, macOS, DAVx5, Thunderbird, Evolution) including group prefixes (``item1.EMAIL``),
inline base64 photos, ``X-`` properties and vCard 2.1-style bare parameters
(``TEL;WORK:``), it never raises anything but ValidationError, and it keeps every
property so `cardquery` can evaluate filters without parsing the body again.
Quoted-printable (vCard 2.1) is not supported: only VERSION 3.0 and 4.0 are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from homeport.errors import ValidationError
from homeport.namespaces import CARDDAV

SUPPORTED_VERSIONS = frozenset({"3.0", "4.0"})

_FOLD = re.compile(r"\r\n[ \t]|\n[ \t]|\r[ \t]")
_NEWLINE = re.compile(r"\r\n|\n|\r")
# RFC 6350 section 3.3: name and group are alphanumerics and "-"; "_" is tolerated
# because some exporters write it in X- names.
_NAME = re.compile(r"(?:([A-Za-z0-9_-]+)\.)?([A-Za-z0-9_-]+)")
_TEXT_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_CARET = re.compile(r"\^(.)", re.DOTALL)
# A content line up to its value's ":" when no parameter is quoted (nearly every line
# clients send): unquoted parameter values cannot hold ":" or a quote, so the first ":"
# ends the parameters. Anything else (quotes, a missing ":") takes the general parser.
_PLAIN_HEAD = re.compile(r"(?:([A-Za-z0-9_-]+)\.)?([A-Za-z0-9_-]+)((?:;[^:\"]*)?):")


class VCardProperty(NamedTuple):
    """One content line: ``[group.]NAME;PARAM=v1,v2:value``.

    `name` and parameter names are upper-case; `value` is the raw text (still escaped),
    `text` the value with RFC 6350 section 3.4 escapes resolved. A named tuple rather
    than a frozen dataclass: a card makes one per line on every PUT, and a frozen
    dataclass sets each field through `object.__setattr__` (0.6 against 0.25 us each).
    """

    name: str
    value: str
    group: str | None = None
    params: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def param(self, name: str) -> tuple[str, ...] | None:
        """All values of one parameter (repeated parameters merged), or None."""
        wanted = name.upper()
        found: list[str] = []
        present = False
        for key, values in self.params:
            if key == wanted:
                present = True
                found.extend(values)
        return tuple(found) if present else None

    @property
    def text(self) -> str:
        return _TEXT_ESCAPE.sub(_unescape, self.value)


@dataclass(frozen=True)
class VCardObject:
    """A validated vCard. `properties` keeps every content line between BEGIN and END."""

    uid: str | None
    version: str
    fn: str | None
    properties: tuple[VCardProperty, ...] = field(default=(), compare=False, repr=False)

    def get(self, name: str) -> list[VCardProperty]:
        """Properties called `name` (case-insensitive), whatever their group."""
        wanted = name.upper()
        return [p for p in self.properties if p.name == wanted]


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, CARDDAV, "valid-address-data")


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    return "\n" if char in "nN" else char


def _uncaret(match: re.Match[str]) -> str:
    """RFC 6868 parameter value encoding: ^n newline, ^' double quote, ^^ caret."""
    char = match.group(1)
    return {"n": "\n", "N": "\n", "'": '"', "^": "^"}.get(char, "^" + char)


def parse_vcard(body: bytes) -> VCardObject:
    """Parse and validate one address object resource (RFC 6352 section 5.1).

    Raises ValidationError(valid-address-data) for anything but exactly one vCard of
    VERSION 3.0 or 4.0. A missing UID is accepted (uid None): older clients omit it.
    Messages name at most a property, never content.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _invalid("vCard data is not valid UTF-8") from None
    if "\x00" in text:
        raise _invalid("vCard data contains a NUL character")
    lines = [line for line in unfolded_lines(text) if line.strip()]
    if not lines or lines[0].strip().upper() != "BEGIN:VCARD":
        raise _invalid("data does not start with BEGIN:VCARD")
    properties: list[VCardProperty] = []
    ended = False
    for line in lines[1:]:
        marker = line.strip().upper()
        if ended:
            if marker == "BEGIN:VCARD":
                raise _invalid("more than one vCard in one resource")
            raise _invalid("content after END:VCARD")
        if marker == "END:VCARD":
            ended = True
            continue
        if marker == "BEGIN:VCARD":
            raise _invalid("a vCard is nested inside another")
        properties.append(parse_content_line(line))
    if not ended:
        raise _invalid("vCard is missing END:VCARD")

    versions = {p.value.strip() for p in properties if p.name == "VERSION"}
    if not versions:
        raise _invalid("vCard has no VERSION")
    if len(versions) > 1:
        raise _invalid("vCard has more than one VERSION")
    version = versions.pop()
    if version not in SUPPORTED_VERSIONS:
        raise _invalid("only vCard VERSION 3.0 and 4.0 are supported")
    uid = (_first_text(properties, "UID") or "").strip()
    return VCardObject(
        uid=uid or None,
        version=version,
        fn=_first_text(properties, "FN") or None,
        properties=tuple(properties),
    )


def unfolded_lines(text: str) -> list[str]:
    """The content lines of `text`: folds removed (a line break then a space or tab, RFC
    6350 section 3.2), split at CRLF, LF or CR.

    Cards break lines with CRLF or LF throughout and fold with a space: `str` methods then
    give the same lines as the two regular expressions, which scan every character (5
    against 12 us per card over the benchmark's cards; a property test checks both agree).
    Mixed or lone CRs and folds with a tab take the expressions."""
    lf = text.replace("\r\n", "\n") if "\r" in text else text
    if "\r" not in lf and "\n\t" not in lf:
        return lf.replace("\n ", "").split("\n")
    return _NEWLINE.split(_FOLD.sub("", text))


def _first_text(properties: list[VCardProperty], name: str) -> str | None:
    for prop in properties:
        if prop.name == name:
            return prop.text
    return None


def parse_content_line(line: str) -> VCardProperty:
    """One unfolded content line (RFC 6350 section 3.3), quoted parameter values included.

    Lines without quoted parameters are split with one regular expression and `str`
    methods; the general parser below gives the same answer for them (property test) and
    handles the rest, errors included."""
    plain = _PLAIN_HEAD.match(line)
    if plain is not None:
        group, name, raw = plain.groups()
        value = line[plain.end() :]
        if not raw:
            return VCardProperty(name.upper(), value, group)
        params = _plain_params(raw)
        if params is not None:
            return VCardProperty(name.upper(), value, group, params)
    return _parse_content_line(line)


def _plain_params(raw: str) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    """`;A=x,y;B` (no quotes, no ":") as the general parser reads it; None when a
    parameter needs its checks (an empty name), so that it raises its own error."""
    params: list[tuple[str, tuple[str, ...]]] = []
    for piece in raw[1:].split(";"):
        key, eq, rest = piece.partition("=")
        key = key.strip().upper()
        if not key:
            return None
        if not eq:
            params.append(("TYPE", (key,)))
            continue
        values = rest.split(",")
        if "^" in rest:
            values = [_CARET.sub(_uncaret, v) for v in values]
        if key == "TYPE":
            values = [v.strip() for v in values]
        params.append((key, tuple(values)))
    return tuple(params)


def _parse_content_line(line: str) -> VCardProperty:
    """The general content-line parser: quoted parameter values, and every error."""
    head = _NAME.match(line)
    if head is None or head.end() >= len(line) or line[head.end()] not in ";:":
        raise _invalid("vCard has a line that is not a property")
    group, name = head.group(1), head.group(2).upper()
    label = name[:40]  # for messages: a name, never content, and never a long one
    pos = head.end()
    params: list[tuple[str, tuple[str, ...]]] = []
    while line[pos] == ";":
        pos, param = _parse_param(line, pos + 1, label)
        params.append(param)
        if pos >= len(line):
            raise _invalid(f"vCard {label} property has no value")
    # line[pos] == ":" here
    return VCardProperty(name=name, value=line[pos + 1 :], group=group, params=tuple(params))


def _parse_param(line: str, pos: int, prop: str) -> tuple[int, tuple[str, tuple[str, ...]]]:
    """Parse ``NAME=v1,"v 2"`` from `pos`; returns the position of the next ; or :."""
    end = len(line)
    start = pos
    while pos < end and line[pos] not in "=;:":
        pos += 1
    key = line[start:pos].strip().upper()
    if not key:
        raise _invalid(f"vCard {prop} property has an empty parameter")
    if pos >= end or line[pos] != "=":
        return pos, ("TYPE", (key,))  # vCard 2.1 style: TEL;WORK;VOICE:...
    pos += 1
    values: list[str] = []
    while True:
        if pos < end and line[pos] == '"':
            close = line.find('"', pos + 1)
            if close < 0:
                raise _invalid(f"vCard {prop} property has an unterminated quoted parameter")
            values.append(_CARET.sub(_uncaret, line[pos + 1 : close]))
            pos = close + 1
        else:
            start = pos
            while pos < end and line[pos] not in ",;:":
                pos += 1
            values.append(_CARET.sub(_uncaret, line[start:pos]))
        if pos < end and line[pos] == ",":
            pos += 1
            continue
        if pos >= end or line[pos] in ";:":
            if key == "TYPE":  # TYPE="home,work" is a list too (RFC 6350 section 5.6)
                values = [v.strip() for value in values for v in value.split(",")]
            return pos, (key, tuple(values))
        raise _invalid(f"vCard {prop} property has a malformed parameter")


__all__ = [
    "SUPPORTED_VERSIONS",
    "VCardObject",
    "VCardProperty",
    "parse_content_line",
    "parse_vcard",
]
