"""207 Multi-Status responses, whole or streamed (PROPFIND, REPORT)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from starlette.responses import Response, StreamingResponse

from homeport.dav import webdav

XML = "application/xml; charset=utf-8"


def multistatus(ms: webdav.Multistatus) -> Response:
    return Response(ms.to_bytes(), 207, media_type=XML)


def multistatus_response(head: list[str], rest: Iterable[str] | None = None) -> Response:
    """`head` (responses rendered before the first byte, so that an error about the whole
    request still gets its own status) and then `rest`, streamed as it is consumed."""
    if rest is None:
        return Response(b"".join(webdav.multistatus_chunks(head)), 207, media_type=XML)
    return StreamingResponse(
        webdav.multistatus_chunks(itertools.chain(head, rest)), 207, media_type=XML
    )
