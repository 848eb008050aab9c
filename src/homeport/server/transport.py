"""HTTP/1.1 connection handling: uvicorn's protocols, with the limits Homeport needs.

Two parsers can carry the ASGI app. `httptools` (llhttp, in C) costs about a fifth less
CPU per request than `h11` (pure Python), which matters most for the small requests
that sync clients send by the thousand (GET, PUT, multiget). `h11` stays as the
fallback when httptools is not installed, and as a setting (`server.http_parser`).

Both get the same additions, which uvicorn lacks or does differently:

- a time limit on request headers (`server.idle_timeout`): uvicorn arms its keep-alive
  timer only after a response and any received byte disarms it, so a client that
  connects and never finishes its headers, or trickles them, would hold its connection
  forever. Bodies have their own idle limit in the application (server/bodies.py).
- a size limit on the request line and headers together, answered 431: httptools has
  none (it gathers a header in memory until it ends), and h11's applies only while a
  request is incomplete, so a large header block that arrives in one read passed.
- the answers the protocol writes itself (400 for a malformed request; with httptools,
  405 for a method llhttp does not know, where uvicorn says 400) carry the same
  security headers as the application's.
- (httptools) an absolute-form target (`GET http://host/path`) reaches the application
  whole in `raw_path`, as h11 passes it, so both parsers route it the same way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeport.errors import ConfigError

log = logging.getLogger("homeport.transport")

#: Largest request line plus headers accepted (bytes), for both parsers.
MAX_HEADER_BYTES = 64 * 1024

PARSERS = ("auto", "httptools", "h11")


def protocol_class(parser: str, header_timeout: float, security_headers: dict[str, str]) -> Any:
    """The uvicorn protocol class for `parser` ("auto" prefers httptools)."""
    if parser not in PARSERS:
        raise ConfigError(f"server.http_parser must be one of {', '.join(PARSERS)}, not {parser!r}")
    answers = Answers(security_headers)
    if parser in ("auto", "httptools"):
        try:
            return _httptools_protocol(header_timeout, answers)
        except ImportError:
            if parser == "httptools":
                raise ConfigError(
                    "server.http_parser = httptools, but httptools is not installed"
                ) from None
    return _h11_protocol(header_timeout, answers)


class HeaderBudget:
    """Counts the bytes of a request's line and headers as they arrive, before parsing.

    Neither parser limits this as a whole (httptools not at all, h11 only while a
    request is incomplete, so a 200 KB header block that arrives in one read passes).
    """

    def __init__(self) -> None:
        self.used = 0
        self._tail = b""  # the last bytes counted, for a blank line split between reads

    def take(self, data: bytes) -> bool:
        """Count `data` (received while headers are incomplete); False once over the limit."""
        counted = len(data)
        split = (self._tail + data[:3]).find(b"\r\n\r\n") if self._tail else -1
        if split >= 0:
            counted = split + 4 - len(self._tail)
        else:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                counted = end + 4
        self._tail = (self._tail + data)[-3:] if counted == len(data) else b""
        self.used += counted
        return self.used <= MAX_HEADER_BYTES

    def reset(self) -> None:
        self.used = 0
        self._tail = b""


class Answers:
    """The answers the protocols write themselves, with the application's security headers."""

    def __init__(self, security_headers: dict[str, str]) -> None:
        from homeport.server.handlers import ALLOW

        security = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in security_headers.items())
        self.too_large = _plain_response(
            b"431 Request Header Fields Too Large", b"request headers too large\n", security
        )
        self.bad_method = _plain_response(
            b"405 Method Not Allowed",
            b"this method is not supported here\n",
            security,
            b"allow: " + ALLOW.encode() + b"\r\n",
        )
        self.bad_request = _plain_response(b"400 Bad Request", b"invalid HTTP request\n", security)


class _Limits:
    """What both protocol classes add to uvicorn's: the header timer, the header budget and
    the refusals written straight to the transport. Mixed in before uvicorn's class."""

    timeout: float
    answers: Answers
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None = None
    _budget: HeaderBudget

    def _awaiting_headers(self) -> bool:
        """Whether the connection waits for a request's line and headers."""
        raise NotImplementedError

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.timeout, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        # No complete request line and headers since the timer was armed.
        if self._awaiting_headers() and not self.transport.is_closing():
            log.debug("closing a connection whose request headers did not arrive")
            self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _over_budget(self, data: bytes) -> bool:
        """Count `data` if headers are awaited; refuse (431) once they are too large."""
        if self._awaiting_headers() and not self._budget.take(data):
            self._refuse(self.answers.too_large)
            return True
        return False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._budget = HeaderBudget()
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)  # type: ignore[misc]


def _h11_protocol(timeout: float, answers: Answers) -> Any:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class LimitedH11Protocol(_Limits, H11Protocol):
        parser_name = "h11"

        def _awaiting_headers(self) -> bool:
            return self.conn.their_state is h11.IDLE

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing() or self._over_budget(data):
                return
            super().data_received(data)
            if not self._awaiting_headers():
                self._budget.reset()

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own 400 carries no security headers.
            self._refuse(answers.bad_request)

    LimitedH11Protocol.timeout = timeout
    LimitedH11Protocol.answers = answers
    return LimitedH11Protocol


def _plain_response(status: bytes, body: bytes, security: bytes, extra: bytes = b"") -> bytes:
    return b"".join(
        [
            b"HTTP/1.1 ",
            status,
            b"\r\n",
            security,
            extra,
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
    )


def _httptools_protocol(timeout: float, answers: Answers) -> Any:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class LimitedHttpToolsProtocol(_Limits, HttpToolsProtocol):
        parser_name = "httptools"
        # True from the start of a connection (or the end of a request) until the next
        # request's headers are complete.
        _waiting = True

        def _awaiting_headers(self) -> bool:
            return self._waiting

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing() or self._over_budget(data):
                return
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserInvalidMethodError:
                self._refuse(answers.bad_method)
            except httptools.HttpParserUpgrade:
                # No upgrade (WebSocket, h2c) is offered: the request is served as plain
                # HTTP/1.1, as uvicorn does (curl --http2 asks for h2c on http://).
                pass
            except httptools.HttpParserError:
                self._refuse(answers.bad_request)

        def on_headers_complete(self) -> None:
            self._waiting = False
            self._budget.reset()
            super().on_headers_complete()
            if not self.url.startswith(b"/"):
                # Absolute-form (or `*`): give the application the target as sent, as h11
                # does, rather than the path httptools extracts from it.
                target, _, _ = self.url.partition(b"?")
                self.scope["raw_path"] = target

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._waiting = True
            self._budget.reset()

    LimitedHttpToolsProtocol.timeout = timeout
    LimitedHttpToolsProtocol.answers = answers
    return LimitedHttpToolsProtocol
