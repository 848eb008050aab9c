"""XML in and out for every DAV module: one hardened parser, Clark names, one serializer.

Request bodies come from the network, so the parser refuses anything a DAV body never
needs and an attacker would: a DOCTYPE (and with it every entity, internal or
external: XXE, "billion laughs"), network access, bodies larger than a limit, trees
deeper than `MAX_DEPTH` and bytes that are not UTF-8. Every refusal is an
`InvalidRequest`, so a handler answers 400 and never sees an lxml exception.

Names are handled in Clark notation, ``{namespace}local``, which is what lxml uses
for tags, so a parsed element's ``.tag`` can be compared with `clark(...)` directly.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from lxml import etree

from homeport import namespaces
from homeport.errors import InvalidRequest

MAX_DEPTH: Final = 64
"""Deepest element nesting accepted; real DAV bodies stay below 10."""

DEFAULT_MAX_BYTES: Final = 1_000_000

XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
XML_LANG: Final = f"{{{XML_NS}}}lang"

NSMAP: Final[dict[str, str]] = {
    "d": namespaces.DAV,
    "cal": namespaces.CALDAV,
    "card": namespaces.CARDDAV,
    "cs": namespaces.CALENDARSERVER,
    "ical": namespaces.APPLE_ICAL,
}
"""Prefixes used in every response body (clients must not care, but people read logs)."""

_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="utf-8"?>\n'
_UTF8_BOM: Final = b"\xef\xbb\xbf"

# What may precede the root element: whitespace, the XML declaration, PIs, comments.
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


def clark(namespace: str | None, name: str) -> str:
    """The Clark-notation name lxml uses as a tag: ``{namespace}name``, or ``name``."""
    return f"{{{namespace}}}{name}" if namespace else name


def split_clark(name: str) -> tuple[str, str]:
    """Split ``{namespace}local`` into ``(namespace, local)``; no namespace gives ``""``."""
    if name.startswith("{"):
        namespace, sep, local = name[1:].partition("}")
        if not sep or not local:
            raise InvalidRequest(f"not a Clark-notation name: {name!r}")
        return namespace, local
    return "", name


def _make_parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        strip_cdata=True,
    )


def _has_doctype(data: bytes) -> bool:
    """True if a DOCTYPE appears before the root element (where XML allows it)."""
    pos = 0
    while True:
        match = _PROLOG_ITEM.match(data, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
    return data.startswith(b"<!DOCTYPE", pos) or data.startswith(b"<!doctype", pos)


# Is there an element MAX_DEPTH levels below the root? Answered inside libxml2, without
# an lxml proxy per element (walking the tree in Python cost a third of a parse).
# lxml serialises calls to one XPath object, so threads can share it.
_TOO_DEEP = etree.XPath("boolean(" + "/".join(["*"] * MAX_DEPTH) + ")")


def _check_depth(root: etree._Element) -> None:
    if _TOO_DEEP(root):
        raise InvalidRequest(f"XML body nests deeper than {MAX_DEPTH} elements")


def parse_body(body: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element | None:
    """Parse a request body into its root element; ``None`` for an empty body.

    Raises `InvalidRequest` for anything that is not a small, well-formed, UTF-8,
    DTD-free XML document.
    """
    if len(body) > max_bytes:
        raise InvalidRequest(f"XML body is larger than {max_bytes} bytes")
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"XML body is not valid UTF-8 (byte {exc.start})") from exc
    if not text.strip():
        return None
    if "\x00" in text:
        raise InvalidRequest("XML body contains a NUL character")
    if _has_doctype(body):
        raise InvalidRequest("XML body has a DOCTYPE; DTDs and entities are not accepted")
    try:
        root = etree.fromstring(body, _make_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidRequest(f"XML body is not well-formed: {exc}") from exc
    except (ValueError, etree.LxmlError) as exc:
        raise InvalidRequest(f"XML body could not be parsed: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if getattr(docinfo, "doctype", "") or docinfo.internalDTD is not None:
        raise InvalidRequest("XML body has a DOCTYPE; DTDs and entities are not accepted")
    _check_depth(root)
    _refuse_entities(root)
    return root


def _refuse_entities(root: etree._Element) -> None:
    # Entity references survive only when something slipped past the checks above.
    for _ in root.iter(etree.Entity):
        raise InvalidRequest("XML body contains an entity reference")


def element(name: str, text: str | None = None) -> etree._Element:
    """A new standalone element named by Clark `name`, using the prefixes of `NSMAP`.

    For values inside a response body prefer `Markup` (`text_markup`, `empty_markup`):
    building one lxml tree per property costs more than the rest of a listing together.
    """
    elem = etree.Element(name, nsmap=NSMAP)
    if text is not None:
        elem.text = text
    return elem


def sub_element(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    """Append a new child named by Clark `name` to `parent` and return it."""
    child = etree.SubElement(parent, name)
    if text is not None:
        child.text = text
    return child


def serialize(elem: etree._Element) -> bytes:
    """The UTF-8 bytes of a response body: an XML declaration, then `elem`."""
    return _XML_DECLARATION + etree.tostring(elem, encoding="utf-8", with_tail=False)


def text_of(elem: etree._Element | None) -> str:
    """All text inside `elem` (children included), stripped; ``""`` for ``None``."""
    if elem is None:
        return ""
    return "".join(str(part) for part in elem.itertext()).strip()


def require_tag(elem: etree._Element, name: str) -> None:
    """Refuse (`InvalidRequest`) an element that is not the Clark-named one expected."""
    if elem.tag != name:
        raise InvalidRequest(f"expected a {name} element, found {elem.tag}")


def local_name(elem: etree._Element) -> str:
    """The tag of `elem` without its namespace, for messages."""
    return split_clark(str(elem.tag))[1]


def children(elem: etree._Element, *tags: str) -> list[etree._Element]:
    """The child elements of `elem` (comments and PIs are removed at parse time); with
    `tags`, only those (picked by libxml2: a multiget's hundreds of hrefs are not
    wrapped as Python objects to find its one DAV:prop)."""
    if tags:
        return list(elem.iterchildren(*tags))
    return [child for child in elem if isinstance(child.tag, str)]


# --- Writing XML as text --------------------------------------------------------------
#
# Large responses (a PROPFIND of 10,000 members, a sync of a whole collection) are
# written as text, not as lxml trees: same document, several times cheaper. Every
# element written here uses the prefixes of `NSMAP`, which the multistatus root element
# declares once; a name in any other namespace declares its namespace on itself.

_PREFIX_OF: Final[dict[str, str]] = {namespace: prefix for prefix, namespace in NSMAP.items()}
NSMAP_DECLARATIONS: Final = "".join(
    f' xmlns:{prefix}="{namespace}"' for prefix, namespace in NSMAP.items()
)
"""The ``xmlns:`` attributes a root element needs for markup written by this module."""

XML_DECLARATION_TEXT: Final = _XML_DECLARATION.decode()

# Characters XML 1.0 does not allow at all, not even as character references.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Markup:
    """A piece of serialized XML (one element) to be copied into a response verbatim.

    Written with the prefixes of `NSMAP` (in scope in every response body), by
    `text_markup`, `empty_markup` and `element_markup`; never built from unescaped input.
    """

    __slots__ = ("xml",)

    def __init__(self, xml: str) -> None:
        self.xml = xml

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Markup) and other.xml == self.xml

    def __hash__(self) -> int:
        return hash(self.xml)

    def __repr__(self) -> str:
        return f"Markup({self.xml!r})"


def _check_chars(text: str) -> None:
    if _NOT_XML_CHAR.search(text) is not None:
        # The same refusal (and type) lxml gives for such text.
        raise ValueError(
            "All strings must be XML compatible: Unicode or ASCII, no NULL bytes or "
            "control characters"
        )


def escape_text(text: str) -> str:
    """`text` as element content: ``& < >`` escaped, CR kept as ``&#13;`` (as lxml does).

    Raises ValueError for characters XML cannot carry (NUL, most C0 controls, U+FFFE).
    """
    _check_chars(text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


_C0_BYTES: Final = bytes(b for b in range(0x20) if b not in b"\t\n\r")
_NOT_C0_BYTES: Final = bytes(b for b in range(0x100) if b not in _C0_BYTES)


def escape_utf8(data: bytes) -> str:
    """UTF-8 `data` (a stored body) as element content, like
    ``escape_text(data.decode("utf-8", errors="replace"))`` but checked on the bytes,
    several times faster for the bodies a sync or multiget carries by the thousand."""
    # U+FFFE/U+FFFF are EF BF BE/BF: a one-byte search for EF (memchr) rules both out
    # for nearly every body; a three-byte search costs ten times as much. (`find`, not
    # `in`: `bytes in bytes` first tries the needle as an int and formats a TypeError.)
    if data.translate(None, _NOT_C0_BYTES) or (
        data.find(b"\xef") >= 0
        and (data.find(b"\xef\xbf\xbe") >= 0 or data.find(b"\xef\xbf\xbf") >= 0)
    ):
        return escape_text(data.decode("utf-8", errors="replace"))  # raises ValueError
    # No C0 control and no U+FFFE/U+FFFF; invalid UTF-8 decodes to U+FFFD: all XML chars.
    # Escaped as bytes (a third faster): & < > CR never occur inside a UTF-8 sequence.
    escaped = (
        data.replace(b"&", b"&amp;")
        .replace(b"<", b"&lt;")
        .replace(b">", b"&gt;")
        .replace(b"\r", b"&#13;")
    )
    return escaped.decode("utf-8", errors="replace")


def escape_attr(text: str) -> str:
    """`text` as a double-quoted attribute value (whitespace kept as references)."""
    _check_chars(text)
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )


@lru_cache(maxsize=2048)
def qualified(name: str) -> tuple[str, str]:
    """(tag, declaration) to write Clark `name`: ``("d:getetag", "")`` for a name in
    `NSMAP`, ``("x:foo", ' xmlns:x="urn:other"')`` for any other namespace."""
    namespace, local = split_clark(name)
    if not namespace:
        return local, ""
    prefix = _PREFIX_OF.get(namespace)
    if prefix is not None:
        return f"{prefix}:{local}", ""
    return f"x:{local}", f' xmlns:x="{escape_attr(namespace)}"'


def start_tag(name: str) -> str:
    """``<tag>`` for Clark `name` (see `qualified`)."""
    tag, declaration = qualified(name)
    return f"<{tag}{declaration}>"


def end_tag(name: str) -> str:
    return f"</{qualified(name)[0]}>"


def empty_markup(name: str) -> Markup:
    """An empty element, e.g. a property name in a 404 propstat."""
    tag, declaration = qualified(name)
    return Markup(f"<{tag}{declaration}/>")


def text_markup(name: str, text: str) -> Markup:
    """An element holding `text` (escaped). ValueError for text XML cannot carry."""
    tag, declaration = qualified(name)
    return Markup(f"<{tag}{declaration}>{escape_text(text)}</{tag}>")


def element_markup(elem: etree._Element) -> Markup:
    """An lxml element (with its children, attributes and namespaces) as markup."""
    return Markup(etree.tostring(elem, encoding="unicode", with_tail=False))


def markup_element(markup: Markup) -> etree._Element:
    """Parse markup back into a standalone element (for code that builds lxml trees)."""
    wrapper = etree.fromstring(f"<w{NSMAP_DECLARATIONS}>{markup.xml}</w>", _make_parser())
    return wrapper[0]
