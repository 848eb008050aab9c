"""WebDAV (RFC 4918): PROPFIND and PROPPATCH bodies, DAV headers, multistatus and error bodies.

Sections implemented here:

* 9.1 PROPFIND request body (`parse_propfind`, and `parse_prop_selection` for the
  REPORTs that reuse its ``allprop | propname | prop`` choice);
* 9.2 PROPPATCH request body (`parse_proppatch`), with 4.3/4.4 dead properties kept
  verbatim (namespaces, ``xml:lang``, mixed content) by `dead_property_to_bytes` /
  `dead_property_from_bytes`;
* 10.2 Depth, 10.3 Destination, 10.4 If, 10.6 Overwrite headers;
* 13 and 14.16 multistatus responses (`Multistatus`), 16 and 14.5 precondition error
  bodies (`error_body`);
* 8.3 URL handling: hrefs are percent-encoded on the way out (`quote_href`) and
  decoded and checked on the way in (`unquote_path`, `href_to_path`).

Everything here works on decoded absolute paths (``/dav/alice/calendar/é.ics``);
quoting happens only when an href is written into XML.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final, Literal
from urllib.parse import SplitResult, quote, unquote, urlsplit

from lxml import etree

from homeport import namespaces
from homeport.dav.xml import (
    NSMAP,
    NSMAP_DECLARATIONS,
    XML_DECLARATION_TEXT,
    XML_LANG,
    Markup,
    children,
    clark,
    element,
    element_markup,
    empty_markup,
    escape_text,
    local_name,
    markup_element,
    parse_body,
    require_tag,
    serialize,
    sub_element,
    text_markup,
)
from homeport.errors import IntegrityError, InvalidRequest

DAV: Final = namespaces.DAV

Depth = Literal["0", "1", "infinity"]

_PROPFIND = clark(DAV, "propfind")
_PROPERTYUPDATE = clark(DAV, "propertyupdate")
_PROP = clark(DAV, "prop")
_PROPNAME = clark(DAV, "propname")
_ALLPROP = clark(DAV, "allprop")
_INCLUDE = clark(DAV, "include")
_SET = clark(DAV, "set")
_REMOVE = clark(DAV, "remove")
_HREF = clark(DAV, "href")


# --- PROPFIND (9.1) -----------------------------------------------------------------


@dataclass(frozen=True)
class PropfindRequest:
    """Which properties a PROPFIND (or a REPORT) asks for.

    ``kind="prop"``: exactly `names` (Clark names, in request order, no duplicates).
    ``kind="propname"``: the names of all properties, without values.
    ``kind="allprop"``: all dead properties and the live ones RFC 4918 lists, plus
    `include` (section 9.1: live properties too costly for allprop, e.g. calendar-data).
    """

    kind: Literal["prop", "propname", "allprop"]
    names: tuple[str, ...] = ()
    include: tuple[str, ...] = ()


ALLPROP: Final = PropfindRequest("allprop")


def _names_in(container: etree._Element) -> tuple[str, ...]:
    return tuple(dict.fromkeys(child.tag for child in children(container)))


def parse_prop_selection(parent: etree._Element) -> PropfindRequest | None:
    """Read the ``(allprop [include] | propname | prop)`` child of `parent`, if any.

    Shared by PROPFIND and the REPORTs of RFC 4791, 6352 and 6578, whose bodies embed
    the same choice. ``None`` when `parent` has none of the three.
    """
    found = children(parent, _PROP, _PROPNAME, _ALLPROP)
    if not found:
        return None
    if len(found) > 1:
        raise InvalidRequest("only one of DAV:prop, DAV:propname, DAV:allprop may be given")
    chosen = found[0]
    if chosen.tag == _PROP:
        return PropfindRequest("prop", _names_in(chosen))
    if chosen.tag == _PROPNAME:
        return PropfindRequest("propname")
    include: tuple[str, ...] = ()
    for child in children(parent, _INCLUDE):
        include += tuple(name for name in _names_in(child) if name not in include)
    return PropfindRequest("allprop", include=include)


def parse_propfind(root: etree._Element | None) -> PropfindRequest:
    """Parse a PROPFIND body (section 9.1); an empty body means allprop."""
    if root is None:
        return ALLPROP
    require_tag(root, _PROPFIND)
    selection = parse_prop_selection(root)
    # An empty <propfind/> is treated like an empty body rather than refused.
    return ALLPROP if selection is None else selection


# --- PROPPATCH (9.2) and dead properties (4.3, 4.4) -----------------------------------


@dataclass(frozen=True)
class PropSet:
    """Set property `name` to `value`, the DAV:prop child element itself.

    `value` is a standalone copy: it carries every namespace declaration that was in
    scope in the request, and the ``xml:lang`` it inherited (section 4.3), so it can be
    stored with `dead_property_to_bytes` and returned exactly as it was sent.
    """

    name: str
    value: etree._Element


@dataclass(frozen=True)
class PropRemove:
    """Remove property `name` (removing a missing property is not an error, 9.2)."""

    name: str


PropUpdate = PropSet | PropRemove


def _inherited_lang(elem: etree._Element) -> str | None:
    node: etree._Element | None = elem
    while node is not None:
        lang = node.get(XML_LANG)
        if lang is not None:
            return lang
        node = node.getparent()
    return None


def _standalone(elem: etree._Element) -> etree._Element:
    """A detached copy of `elem` that keeps all in-scope namespaces and its xml:lang.

    A round trip through bytes is used rather than `copy.deepcopy`, which drops
    namespace declarations that no tag uses, yet a property's text may still refer to
    them (QName values such as ``d:href``).
    """
    lang = _inherited_lang(elem)
    data = dead_property_to_bytes(elem)
    standalone = parse_body(data, max_bytes=len(data))
    if standalone is None:  # cannot happen: an element always serializes to something
        raise InvalidRequest("empty property value")
    if lang is not None and standalone.get(XML_LANG) is None:
        standalone.set(XML_LANG, lang)
    return standalone


def parse_set_props(prop: etree._Element) -> list[PropSet]:
    """The `PropSet` for each child of a DAV:prop inside DAV:set (also used by MKCOL)."""
    require_tag(prop, _PROP)
    return [PropSet(child.tag, _standalone(child)) for child in children(prop)]


def parse_proppatch(root: etree._Element | None) -> list[PropUpdate]:
    """Parse a PROPPATCH body (section 9.2) into its updates, in document order.

    Order matters: the RFC requires the instructions to be applied in sequence, and the
    whole request to succeed or fail as one.
    """
    if root is None:
        raise InvalidRequest("PROPPATCH needs a DAV:propertyupdate body")
    require_tag(root, _PROPERTYUPDATE)
    updates: list[PropUpdate] = []
    for instruction in children(root):
        if instruction.tag not in (_SET, _REMOVE):
            continue  # section 17: unknown elements are ignored
        props = [child for child in children(instruction) if child.tag == _PROP]
        if not props:
            raise InvalidRequest(f"DAV:{local_name(instruction)} without a DAV:prop")
        for prop in props:
            if instruction.tag == _SET:
                updates.extend(parse_set_props(prop))
            else:
                updates.extend(PropRemove(child.tag) for child in children(prop))
    if not updates:
        raise InvalidRequest("DAV:propertyupdate names no property to set or remove")
    return updates


def dead_property_to_bytes(value: etree._Element) -> bytes:
    """Serialize a property element for storage: UTF-8, no declaration, no tail text."""
    return etree.tostring(value, encoding="utf-8", xml_declaration=False, with_tail=False)


def dead_property_from_bytes(data: bytes) -> etree._Element:
    """Turn stored bytes from `dead_property_to_bytes` back into an element.

    Raises `IntegrityError`: bad bytes here mean stored data was damaged, not that a
    client sent something wrong.
    """
    try:
        value = parse_body(data, max_bytes=max(len(data), 1))
    except InvalidRequest as exc:
        raise IntegrityError(f"stored dead property is not valid XML: {exc.message}") from exc
    if value is None:
        raise IntegrityError("stored dead property is empty")
    return value


_NRESULTS = (clark(DAV, "nresults"), clark(namespaces.CARDDAV, "nresults"))


def parse_nresults(limit: etree._Element) -> int:
    """The positive integer in a limit element's nresults (RFC 5323 5.17).

    Used by sync-collection (DAV:limit) and addressbook-query (CARDDAV:limit, which
    RFC 6352 section 10.6 copies into its own namespace).
    """
    values = [child for child in children(limit) if child.tag in _NRESULTS]
    if len(values) != 1:
        raise InvalidRequest("limit must hold exactly one nresults")
    text = (values[0].text or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise InvalidRequest(f"nresults must be a positive integer, not {text!r}")
    return int(text)


# --- Headers (10.2, 10.3, 10.6) -------------------------------------------------------


def parse_depth(value: str | None, default: Depth) -> Depth:
    """The Depth header (section 10.2); `default` applies when it is absent.

    The default differs per method (PROPFIND: infinity, REPORT: 0), so the caller
    names it.
    """
    if value is None:
        return default
    normalized = value.strip().lower()
    if normalized == "0":
        return "0"
    if normalized == "1":
        return "1"
    if normalized == "infinity":
        return "infinity"
    raise InvalidRequest(f"Depth header must be 0, 1 or infinity, not {value!r}")


def parse_overwrite(value: str | None) -> bool:
    """The Overwrite header (section 10.6): T or F, T when absent."""
    if value is None:
        return True
    normalized = value.strip().upper()
    if normalized in ("T", "F"):
        return normalized == "T"
    raise InvalidRequest(f"Overwrite header must be T or F, not {value!r}")


class ForeignDestination(InvalidRequest):
    """A COPY/MOVE Destination names another server; section 9.8.5 answers 502."""


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN_SAFE_PATH = re.compile(r"(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9._~!$&'()*+,;=:@-]+)*/?\Z")
"""A path that decodes to itself and passes every check of `unquote_path`: no
percent-escape, no control character, no ``.``/``..`` or empty segment."""


_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
"""A character that may not appear in a URI (RFC 3986 section 2) unencoded."""
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _split_url(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise InvalidRequest(f"malformed URL {url!r}: {exc}") from exc


def _origin(scheme: str, netloc: str) -> tuple[str, str, int | None]:
    parts = _split_url(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"bad port in {netloc!r}") from exc
    scheme = scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def unquote_path(raw: str) -> str:
    """Decode a percent-encoded absolute path and refuse the ones that could escape.

    Refused (`InvalidRequest`): relative paths, ``.``/``..`` segments, empty segments
    (``//``), encoded slashes (``%2F``, which would make one name look like two),
    control characters, and percent-escapes that are not UTF-8.
    """
    if not raw.startswith("/"):
        raise InvalidRequest(f"not an absolute path: {raw!r}")
    if _PLAIN_SAFE_PATH.match(raw):
        return raw  # the common case (a multiget's hrefs by the hundred)
    return _unquote_checked(raw)


def _unquote_checked(raw: str) -> str:
    if "%2f" in raw.lower():
        raise InvalidRequest("encoded slashes (%2F) are not allowed in paths")
    try:
        path = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("percent-escapes in the path are not UTF-8") from exc
    if _CONTROL.search(path):
        raise InvalidRequest("control characters are not allowed in paths")
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        if segment in (".", ".."):
            raise InvalidRequest("'.' and '..' segments are not allowed in paths")
        if segment == "" and index != len(segments) - 1:
            raise InvalidRequest("empty path segments ('//') are not allowed")
    return path


def quote_href(path: str) -> str:
    """Percent-encode a decoded path for an href (RFC 3986), keeping the ``/``s."""
    return quote(path, safe="/", encoding="utf-8", errors="strict")


_PLAIN_PATH = re.compile(r"[^?#\\\t\r\n]*\Z")


class ForeignHref(InvalidRequest):
    """An absolute href names a resource on another server: it is never looked up here."""


def _same_host(parts: SplitResult, origin: str) -> bool:
    """Whether an absolute href's host (and port, when both name one) is `origin`'s.

    The scheme is not compared: behind a TLS-terminating proxy the server sees http
    while its clients write https URLs, and both name the same resource.
    """
    base = _split_url(origin)
    try:
        href_host, href_port = (parts.hostname or "").lower(), parts.port
        base_host, base_port = (base.hostname or "").lower(), base.port
    except ValueError as exc:
        raise InvalidRequest(f"bad port in {parts.netloc!r}") from exc
    if href_host != base_host:
        return False
    return href_port is None or base_port is None or href_port == base_port


def href_to_path(href: str, origin: str | None = None) -> str:
    """Decode an href found in a request (a path or an absolute URL) to a checked path.

    With `origin` (the request's own ``scheme://host[:port]``), an absolute URL on
    another host raises `ForeignHref`: it names something on another server, which
    must not be answered with the local resource of the same path. Without `origin`
    the host of an absolute URL is not checked.
    """
    href = href.strip()
    if href[:1] == "/" and _PLAIN_SAFE_PATH.match(href):
        return href  # the commonest case (a multiget's hrefs by the hundred): decodes to itself
    if not href:
        raise InvalidRequest("empty href")
    if href.startswith("/") and not href.startswith("//") and _PLAIN_PATH.match(href):
        return unquote_path(href)  # the common case: a path, no query, fragment or host
    parts = _split_url(href)
    if parts.query or parts.fragment:
        raise InvalidRequest(f"href must not have a query or fragment: {href!r}")
    if parts.scheme and parts.scheme.lower() not in _DEFAULT_PORTS:
        raise InvalidRequest(f"href must be an http(s) URL or a path: {href!r}")
    path = unquote_path(parts.path or "/")
    if origin is not None and parts.netloc and not _same_host(parts, origin):
        raise ForeignHref(f"href {href[:200]!r} names another server")
    return path


Hrefs = tuple[tuple[str, str | None], ...]
"""A multiget's hrefs in order: ``(key, decoded path or None if on another server)``."""


def request_hrefs(root: etree._Element, origin: str | None = None) -> Hrefs:
    """The DAV:href children of a multiget body, in order, duplicates dropped.

    Each is ``(decoded path, decoded path)`` for an href naming this server, and
    ``(href as sent, None)`` for one naming another server (absolute, other host, when
    `origin` is given). A body without any href, or a malformed href, raises
    `InvalidRequest`.
    """
    out: dict[str, str | None] = {}
    for child in children(root, _HREF):
        text = (child.text or "").strip()
        try:
            path: str | None = href_to_path(text, origin)
        except ForeignHref:
            path = None
        out.setdefault(text if path is None else path, path)
    if not out:
        raise InvalidRequest(f"{root.tag} needs at least one DAV:href")
    return tuple(out.items())


def parse_destination(value: str | None, base_url: str) -> str:
    """The Destination header (section 10.3) as a decoded, checked path.

    `base_url` is the request's own origin (scheme, host, port), e.g.
    ``https://dav.example.com``; behind a TLS-terminating proxy it must be the
    client-facing one. A Destination with another origin raises `ForeignDestination`;
    anything malformed raises `InvalidRequest`.
    """
    if value is None or not value.strip():
        raise InvalidRequest("the Destination header is required")
    value = value.strip()
    # Section 10.3: Destination = Simple-ref, an absolute URI or an absolute path, so
    # ASCII only, no spaces (a folded header), and well-formed percent-escapes. Raw
    # non-ASCII bytes reach us decoded as Latin-1 and would name the wrong item.
    if _NOT_URI.search(value):
        raise InvalidRequest(
            "Destination is not a URI: non-ASCII characters, spaces and other characters "
            "outside RFC 3986 must be percent-encoded"
        )
    if _BAD_ESCAPE.search(value):
        raise InvalidRequest("Destination has a malformed percent-escape")
    parts = _split_url(value)
    if parts.query or parts.fragment:
        raise InvalidRequest("Destination must not have a query or fragment")
    if parts.scheme or parts.netloc:
        if not parts.scheme or not parts.netloc:
            raise InvalidRequest(f"Destination is not an absolute URL or path: {value!r}")
        base = _split_url(base_url)
        if _origin(parts.scheme, parts.netloc) != _origin(base.scheme, base.netloc):
            raise ForeignDestination(f"Destination {value!r} is on another server")
    return unquote_path(parts.path or "/")


# --- The If header (10.4) ---------------------------------------------------------------


@dataclass(frozen=True)
class IfCondition:
    """One Condition: a state token (``<...>``) or an entity tag (``[...]``), maybe negated.

    `etag` keeps the quotes as written (``"abc"`` or ``W/"abc"``), like an ETag header.
    """

    negated: bool
    state_token: str | None = None
    etag: str | None = None

    def holds(self, current_etag: str | None) -> bool:
        """Whether the condition is true for a resource whose ETag is `current_etag`.

        Homeport has no locks, so no state token ever matches a resource: a state token
        condition is false, and ``Not <token>`` (e.g. ``Not <DAV:no-lock>``) is true.
        """
        matched = self.etag is not None and current_etag is not None and self.etag == current_etag
        return matched != self.negated


@dataclass(frozen=True)
class IfList:
    """A List production: true when every condition holds for `resource`.

    `resource` is the decoded path of the Tagged-list's resource tag, or ``None`` for a
    No-tag-list, which applies to the request URI.
    """

    conditions: tuple[IfCondition, ...]
    resource: str | None = None


@dataclass(frozen=True)
class IfHeader:
    """A parsed If header: it holds when at least one of its lists holds (10.4.3)."""

    lists: tuple[IfList, ...]

    def evaluate(self, request_path: str, etag_of: Callable[[str], str | None]) -> bool:
        """Evaluate the header; `etag_of(path)` gives a resource's ETag, ``None`` if absent.

        Untagged lists are tested against `request_path`, tagged lists against their own
        resource. A false result means the request fails with 412 (section 10.4.1).
        """
        for if_list in self.lists:
            path = request_path if if_list.resource is None else if_list.resource
            current = etag_of(path)
            if all(condition.holds(current) for condition in if_list.conditions):
                return True
        return False


class _IfScanner:
    """A hand-written scanner for the section 10.4 grammar; refuses what it cannot read."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take_until(self, end: str) -> str:
        stop = self.text.find(end, self.pos)
        if stop < 0:
            raise InvalidRequest(f"If header: missing {end!r}")
        value = self.text[self.pos : stop]
        self.pos = stop + 1
        return value

    def coded_url(self) -> str:
        self.pos += 1  # "<"
        value = self.take_until(">")
        if not value or any(ch in value for ch in " \t<"):
            raise InvalidRequest("If header: malformed <URL>")
        return value

    def entity_tag(self) -> str:
        self.pos += 1  # "["
        self.skip_space()
        start = self.pos
        if self.text.startswith("W/", self.pos):
            self.pos += 2
        if not self.text.startswith('"', self.pos):
            raise InvalidRequest("If header: entity tag must be quoted")
        self.pos += 1
        self.take_until('"')
        etag = self.text[start : self.pos]
        self.skip_space()
        if not self.text.startswith("]", self.pos):
            raise InvalidRequest("If header: missing ']' after entity tag")
        self.pos += 1
        return etag

    def condition_list(self) -> tuple[IfCondition, ...]:
        self.pos += 1  # "("
        conditions: list[IfCondition] = []
        while True:
            char = self.peek()
            if char == ")":
                self.pos += 1
                break
            negated = False
            if self.text[self.pos : self.pos + 3].lower() == "not":
                negated = True
                self.pos += 3
                char = self.peek()
            if char == "<":
                conditions.append(IfCondition(negated, state_token=self.coded_url()))
            elif char == "[":
                conditions.append(IfCondition(negated, etag=self.entity_tag()))
            else:
                raise InvalidRequest("If header: expected <state-token> or [etag] in a list")
        if not conditions:
            raise InvalidRequest("If header: empty list '()'")
        return tuple(conditions)


def parse_if_header(value: str) -> IfHeader:
    """Parse an If header (section 10.4.2) into its lists; malformed → `InvalidRequest`."""
    scanner = _IfScanner(value)
    lists: list[IfList] = []
    tagged: bool | None = None
    resource: str | None = None
    while (char := scanner.peek()) != "":
        if char == "<":
            if tagged is False:
                raise InvalidRequest("If header mixes tagged and untagged lists")
            tagged = True
            resource = href_to_path(scanner.coded_url())
            if scanner.peek() != "(":
                raise InvalidRequest("If header: a resource tag must be followed by a list")
        elif char == "(":
            if tagged is None:
                tagged = False
            lists.append(IfList(scanner.condition_list(), resource))
        else:
            raise InvalidRequest(f"If header: unexpected {char!r}")
    if not lists:
        raise InvalidRequest("If header has no condition list")
    return IfHeader(tuple(lists))


# --- Building responses (13, 14.16, 16) ------------------------------------------------

PropValue = etree._Element | str | Markup
"""A property in a response: an element with its value, a Clark name (an empty
element), or `Markup` (the element already written as text, the fast path)."""


def prop_element(name: str, text: str | None = None) -> etree._Element:
    """An element for property `name` (Clark), empty or holding `text`."""
    return element(name, text)


def href_element(path: str) -> etree._Element:
    """A DAV:href for a decoded path, percent-encoded."""
    return element(_HREF, quote_href(path))


def status_line(code: int) -> str:
    """The text of a DAV:status element, e.g. ``HTTP/1.1 404 Not Found``."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {code} {phrase}".rstrip()


def error_element(namespace: str, name: str, message: str | None = None) -> etree._Element:
    """A DAV:error naming a precondition (section 16), with an optional human message."""
    root = etree.Element(clark(DAV, "error"), nsmap={**NSMAP, "hp": namespaces.HOMEPORT})
    sub_element(root, clark(namespace, name))
    if message:
        sub_element(root, clark(namespaces.HOMEPORT, "message"), message)
    return root


def error_body(namespace: str, name: str, message: str | None = None) -> bytes:
    """The body of a 403/409/412 naming a failed precondition, e.g. CALDAV valid-filter."""
    return serialize(error_element(namespace, name, message))


def _attached(value: PropValue) -> etree._Element:
    if isinstance(value, str):
        return element(value)
    if isinstance(value, Markup):
        return markup_element(value)
    # Appending moves an lxml element; copy one that belongs to another tree.
    return copy.deepcopy(value) if value.getparent() is not None else value


def _groups(
    props_by_status: Mapping[int, Iterable[PropValue]],
) -> list[tuple[int, list[PropValue]]]:
    """Non-empty groups, 200 first then by code; none at all gives one empty 200."""
    groups = [(code, list(values)) for code, values in props_by_status.items()]
    groups = [(code, values) for code, values in groups if values]
    groups.sort(key=lambda group: (group[0] != 200, group[0]))
    return groups or [(200, [])]


def append_propstats(
    parent: etree._Element, props_by_status: Mapping[int, Iterable[PropValue]]
) -> None:
    """Append one DAV:propstat per status (200 first); a response with none gets an empty 200.

    Used by the MKCOL/MKCALENDAR response bodies; a multistatus writes the same
    structure as text (`response_markup`).
    """
    for code, values in _groups(props_by_status):
        propstat = sub_element(parent, clark(DAV, "propstat"))
        prop = sub_element(propstat, _PROP)
        for value in values:
            prop.append(_attached(value))
        sub_element(propstat, clark(DAV, "status"), status_line(code))


# Multistatus bodies are written as text: one lxml tree for 10,000 members cost more
# than everything else in a PROPFIND together, and text can be streamed.

_STATUS_TEXT: dict[int, str] = {}


def _status_markup(code: int) -> str:
    text = _STATUS_TEXT.get(code)
    if text is None:
        text = _STATUS_TEXT[code] = f"<d:status>{status_line(code)}</d:status>"
    return text


def value_markup(value: PropValue) -> str:
    """The text of one property value, whatever form it comes in."""
    if isinstance(value, Markup):
        return value.xml
    if isinstance(value, str):
        return empty_markup(value).xml
    return element_markup(value).xml


def href_markup(path: str) -> str:
    """``<d:href>`` for a decoded path. Percent-encoding leaves only characters that
    XML takes as they are (letters, digits, ``_.-~/%``), so nothing else is escaped."""
    return f"<d:href>{quote_href(path)}</d:href>"


def propstat_markup(code: int, values: Iterable[str]) -> str:
    """One DAV:propstat from property values already written as text."""
    return f"<d:propstat><d:prop>{''.join(values)}</d:prop>{_status_markup(code)}</d:propstat>"


def response_markup(
    path: str,
    props_by_status: Mapping[int, Iterable[PropValue]],
    *,
    description: str | None = None,
) -> str:
    """One DAV:response (section 14.24) for decoded `path`, properties grouped by status."""
    parts = [f"<d:response>{href_markup(path)}"]
    for code, values in _groups(props_by_status):
        parts.append(propstat_markup(code, [value_markup(v) for v in values]))
    if description:
        parts.append(text_markup(clark(DAV, "responsedescription"), description).xml)
    parts.append("</d:response>")
    return "".join(parts)


def status_response_markup(
    href: str,
    status: int,
    *,
    error: tuple[str, str] | None = None,
    description: str | None = None,
    quoted: bool = False,
) -> str:
    """A DAV:response with a bare status for `href` (a deleted member, a failed href).

    `href` is a decoded path, or with `quoted` the href exactly as to be written (an
    href a client sent, escaped here).
    """
    href_xml = f"<d:href>{escape_text(href)}</d:href>" if quoted else href_markup(href)
    parts = [f"<d:response>{href_xml}{_status_markup(status)}"]
    if error is not None:
        parts.append(f"<d:error>{empty_markup(clark(*error)).xml}</d:error>")
    if description:
        parts.append(text_markup(clark(DAV, "responsedescription"), description).xml)
    parts.append("</d:response>")
    return "".join(parts)


MULTISTATUS_START: Final = f"{XML_DECLARATION_TEXT}<d:multistatus{NSMAP_DECLARATIONS}>"
MULTISTATUS_END: Final = "</d:multistatus>"
_MULTISTATUS_END_BYTES: Final = MULTISTATUS_END.encode()


def sync_token_markup(token: str) -> str:
    return text_markup(clark(DAV, "sync-token"), token).xml


def multistatus_chunks(
    responses: Iterable[str], *, tail: str = "", chunk_size: int = 262144
) -> Iterator[bytes]:
    """A multistatus body as UTF-8 chunks of about `chunk_size` bytes, for streaming.

    `responses` is consumed lazily, so memory stays bounded by one chunk (plus what
    the iterable holds); `tail` (e.g. `sync_token_markup`) goes just before the end.
    """
    # Each response is encoded on its own: an ASCII one is copied as it is, where one
    # accented name in a joined chunk would send every character through the encoder.
    buf = [MULTISTATUS_START.encode()]
    size = len(buf[0])
    for response in responses:
        encoded = response.encode()
        buf.append(encoded)
        size += len(encoded)
        if size >= chunk_size:
            yield b"".join(buf)
            buf, size = [], 0
    buf.append(tail.encode())
    buf.append(_MULTISTATUS_END_BYTES)
    yield b"".join(buf)


class Multistatus:
    """Builds a 207 Multi-Status body (section 13) one response at a time.

    >>> ms = Multistatus()
    >>> ms.add_propstat("/dav/alice/", {200: [prop_element("{DAV:}displayname", "A")],
    ...                                 404: ["{http://calendarserver.org/ns/}getctag"]})
    >>> ms.add_status("/dav/alice/gone.ics", 404)
    >>> ms.sync_token = "https://homeport.invalid/sync/42"
    >>> body = ms.to_bytes()
    """

    def __init__(self) -> None:
        self._responses: list[str] = []
        self.sync_token: str | None = None

    def __len__(self) -> int:
        return len(self._responses)

    def add_propstat(
        self,
        path: str,
        props_by_status: Mapping[int, Iterable[PropValue]],
        *,
        description: str | None = None,
    ) -> None:
        """Add a response for decoded `path` with its properties grouped by status."""
        self._responses.append(response_markup(path, props_by_status, description=description))

    def add_status(
        self,
        path: str,
        status: int,
        *,
        error: tuple[str, str] | None = None,
        description: str | None = None,
    ) -> None:
        """Add a response with a bare status for `path` (a deleted member, a failed href).

        `error` is a ``(namespace, name)`` precondition, e.g.
        ``(DAV, "number-of-matches-within-limits")`` for a truncated result (507).
        """
        self._responses.append(
            status_response_markup(path, status, error=error, description=description)
        )

    def add_markup(self, response: str) -> None:
        """Add a response already written as text (`response_markup` and friends)."""
        self._responses.append(response)

    def to_bytes(self) -> bytes:
        """The body; the sync token, when set, goes last as RFC 6578 section 6.4 requires."""
        tail = "" if self.sync_token is None else sync_token_markup(self.sync_token)
        return b"".join(multistatus_chunks(self._responses, tail=tail, chunk_size=1 << 62))
