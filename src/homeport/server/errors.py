"""The one table that turns domain errors into HTTP statuses and DAV error bodies."""

from __future__ import annotations

import logging

from starlette.responses import Response

from homeport.dav.webdav import ForeignDestination, error_body
from homeport.errors import (
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    Forbidden,
    HomeportError,
    InsufficientStorage,
    IntegrityError,
    InvalidRequest,
    InvalidSyncToken,
    NotFound,
    PreconditionFailed,
    TooLarge,
    TooManyRequests,
    UidConflict,
    ValidationError,
)
from homeport.namespaces import DAV, HOMEPORT

log = logging.getLogger("homeport.server")


class RequestTimeout(InvalidRequest):
    """The client stopped sending its request (the body) for longer than the idle limit.

    An HTTP matter, not a domain one: raised by the ASGI layer only. Answered 408 with
    ``Connection: close`` (RFC 9110 15.5.9): the rest of the body is never read.
    """


# Most specific first: the first matching class decides.
STATUS_TABLE: tuple[tuple[type[HomeportError], int], ...] = (
    (AuthenticationFailed, 401),
    (TooManyRequests, 429),
    (ForeignDestination, 502),
    (RequestTimeout, 408),
    (InvalidRequest, 400),
    (NotFound, 404),
    (Forbidden, 403),
    (AlreadyExists, 405),
    (UidConflict, 409),
    (TooLarge, 413),
    (ValidationError, 403),
    (InvalidSyncToken, 403),
    (PreconditionFailed, 412),
    (Conflict, 409),
    (InsufficientStorage, 507),
    (IntegrityError, 500),
)

REALM = 'Basic realm="Homeport", charset="UTF-8"'


def status_for(exc: HomeportError) -> int:
    for cls, status in STATUS_TABLE:
        if isinstance(exc, cls):
            return status
    return 400


def error_headers(exc: HomeportError) -> dict[str, str]:
    """The headers a refusal must carry whatever its body: the Basic challenge on a 401,
    how long to wait on a 429 (RFC 9110 10.2.3, RFC 6585 4)."""
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = REALM
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, RequestTimeout):
        headers["Connection"] = "close"
    return headers


def error_response(exc: HomeportError, href_prefix: str = "") -> Response:
    """The response for a domain error: a DAV:error body where a precondition exists."""
    status = status_for(exc)
    headers = error_headers(exc)
    if isinstance(exc, IntegrityError):
        log.error("integrity error: %s", exc.message)
    if isinstance(exc, ValidationError):
        body = error_body(exc.namespace, exc.precondition, exc.message)
        if isinstance(exc, UidConflict) and href_prefix:
            body = _with_href(body, exc.namespace, f"{href_prefix}{exc.existing_name}")
        return Response(body, status, headers, media_type="application/xml; charset=utf-8")
    if isinstance(exc, InvalidSyncToken):
        body = error_body(DAV, "valid-sync-token", exc.message)
        return Response(body, status, headers, media_type="application/xml; charset=utf-8")
    body = error_body(HOMEPORT, _slug(type(exc).__name__), exc.message)
    return Response(body, status, headers, media_type="application/xml; charset=utf-8")


def _slug(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def _with_href(body: bytes, namespace: str, href: str) -> bytes:
    """RFC 4791 5.3.2.1: no-uid-conflict carries the href of the item already holding the UID."""
    from lxml import etree

    from homeport.dav.webdav import quote_href

    root = etree.fromstring(body)
    for elem in root.iter(f"{{{namespace}}}no-uid-conflict"):
        etree.SubElement(elem, f"{{{DAV}}}href").text = quote_href(href)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")
