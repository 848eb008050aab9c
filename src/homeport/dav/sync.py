"""Collection synchronization (RFC 6578): the DAV:sync-collection REPORT body.

Section 3.2 (and the DTD of 6.1-6.3): a sync token (empty on the first sync), a
sync level, an optional limit (section 3.7, RFC 5323 DAV:limit/DAV:nresults) and the
properties to return for changed members. Whether a token is valid is decided where
tokens are known (the change log), not here: this module only reads the request.
The response is a `homeport.dav.webdav.Multistatus` with ``sync_token`` set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lxml import etree

from homeport import namespaces
from homeport.dav.webdav import PropfindRequest, parse_nresults, parse_prop_selection
from homeport.dav.xml import children, clark, require_tag, text_of
from homeport.errors import InvalidRequest

_SYNC_TOKEN = clark(namespaces.DAV, "sync-token")
_SYNC_LEVEL = clark(namespaces.DAV, "sync-level")
_LIMIT = clark(namespaces.DAV, "limit")


@dataclass(frozen=True)
class SyncRequest:
    """A sync-collection REPORT.

    `token` is ``None`` for an initial sync (an empty DAV:sync-token); `level` is
    ``"1"`` (direct members) or ``"infinite"``; `limit` caps the number of responses.
    """

    token: str | None
    level: Literal["1", "infinite"]
    limit: int | None
    props: PropfindRequest


def _single(root: etree._Element, name: str) -> etree._Element | None:
    found = children(root, name)
    if len(found) > 1:
        raise InvalidRequest(f"{name} given more than once")
    return found[0] if found else None


def _level(elem: etree._Element | None) -> Literal["1", "infinite"]:
    # Absent is read as "1": clients written against drafts before sync-level omit it.
    text = "1" if elem is None else text_of(elem).lower()
    if text == "1":
        return "1"
    if text in ("infinite", "infinity"):
        return "infinite"
    raise InvalidRequest(f"sync-level must be 1 or infinite, not {text!r}")


def parse_sync_collection(root: etree._Element | None) -> SyncRequest:
    """Parse a DAV:sync-collection body (RFC 6578 section 3.2)."""
    if root is None:
        raise InvalidRequest("sync-collection needs a body")
    require_tag(root, clark(namespaces.DAV, "sync-collection"))
    token_elem = _single(root, _SYNC_TOKEN)
    token = "" if token_elem is None else text_of(token_elem)
    limit_elem = _single(root, _LIMIT)
    return SyncRequest(
        token=token or None,
        level=_level(_single(root, _SYNC_LEVEL)),
        limit=None if limit_elem is None else parse_nresults(limit_elem),
        props=parse_prop_selection(root) or PropfindRequest("prop"),
    )
