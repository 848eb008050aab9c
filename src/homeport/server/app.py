"""The ASGI application: discovery redirects, authentication, and the DAV dispatcher.

Request handling in one picture:

    ASGI request ─► /api/… ? the JSON history API (homeport.server.api)
                 ─► decode + check path ─► /.well-known? redirect (no auth)
                 ─► authenticate (cached: in the loop; else argon2 in a worker thread)
                 ─► read the whole body in the loop (bounded, idle timeout; large
                     PUT bodies spool to a temporary file)
                 ─► a small read (GET, multiget) or a PUT/DELETE: in the event loop,
                     a write's commit awaited from the committer thread; anything
                     that would block goes on to:
                 ─► Handlers.dispatch in a worker thread ─► Response
    Domain errors become responses in `homeport.server.errors`, nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from homeport.config import Config
from homeport.dav import webdav
from homeport.errors import Forbidden, HomeportError, UidConflict, WouldBlock

# Loaded with the app, not by the first REPORT after a start (handlers import it lazily,
# as it imports them for its types): that import was a tenth of the first calendar-query.
from homeport.server import reports  # noqa: F401
from homeport.server.api import Api, is_api_path
from homeport.server.auth import Authenticator
from homeport.server.bodies import RequestBody, declared_length, read_body
from homeport.server.errors import error_response
from homeport.server.handlers import DAV_HEADER, DavRequest, Handlers
from homeport.server.metrics import exposition, is_loopback, registry_for
from homeport.server.resources import DAV_PREFIX, ItemRes, Missing, resolve
from homeport.server.workers import Workers
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.store.core import Store, Transaction

log = logging.getLogger("homeport.server")

WELL_KNOWN = ("/.well-known/caldav", "/.well-known/carddav")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

IN_LOOP_PUT_MAX = 8192
"""The largest PUT body driven from the event loop. Its parse runs there, uninterrupted:
about 1.2 ms per KiB of iCalendar (11 ms at 8 KiB), 0.17 ms per KiB of vCard, measured.
Larger bodies (a vCard with a photo, say) go to a worker thread, where the interpreter's
thread switching still gives the loop its turns during a long parse."""


class HomeportApp:
    """A plain ASGI app (Starlette pieces, no router: DAV methods are not a fixed set)."""

    def __init__(
        self,
        services: Services,
        config: Config,
        metrics: Callable[[], tuple[bytes, str]] | None = None,
    ) -> None:
        self.services = services
        self.metrics = metrics or exposition(lambda: registry_for(services.metrics))
        self.config = config
        self.auth = Authenticator(services.accounts)
        self.handlers = Handlers(services)
        self.max_xml = int(config.get("limits", "max_xml_size"))
        self.max_object = int(config.get("limits", "max_object_size"))
        # The largest PUT body of any kind; each collection kind checks its own limit.
        self.max_body = max(self.max_object, int(config.get("limits", "max_file_size")))
        self.idle_timeout = float(config.get("server", "idle_timeout"))
        self.memory_max = services.store.inline_max
        self.spool_dir = config.data_dir if config.data_dir.is_dir() else None
        # Worker threads: argon2 and SQLite block; keep enough for many slow clients.
        self.workers = Workers(32)
        self.api = Api(services, self.auth, self.workers, self.idle_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self._handle(request)
        except HomeportError as exc:
            response = error_response(exc)
        except ClientDisconnect:
            return
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.workers.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        raw = raw_path.decode("latin-1").split("?", 1)[0]
        if is_api_path(raw):
            return await self.api.handle(request, raw)
        if raw == "/metrics":
            return await self._metrics(request)
        path = webdav.unquote_path(raw or "/")
        method = request.method.upper()
        if path.rstrip("/") in WELL_KNOWN:
            return RedirectResponse(DAV_PREFIX + "/", 301)
        if method == "OPTIONS" and request.headers.get("authorization") is None:
            return Response(b"", 200, {"DAV": DAV_HEADER, "Content-Length": "0"})
        if path == "/" and method in ("GET", "HEAD"):
            return Response(
                b"Homeport is running. Point a CalDAV/CardDAV client at this address.\n",
                200,
                media_type="text/plain; charset=utf-8",
            )
        actor = await self._authenticate(request)
        body = b""
        spooled: RequestBody | None = None
        if method == "PUT":
            # The whole body is read here, in the event loop, before a worker thread is
            # taken: a client that stalls mid-upload holds no thread (server/bodies.py).
            declared_length(request.headers.get("content-length"), self.max_body)
            spooled = await read_body(
                request.stream(),
                limit=self.max_body,
                idle=self.idle_timeout,
                memory_max=self.memory_max,
                spool_dir=self.spool_dir,
            )
            if spooled.in_memory is not None:
                body, spooled = spooled.in_memory, None
        elif method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            body = await self._read_bounded(request, self.max_xml)
        # From the scope directly: Starlette's request.url parses and rebuilds the URL.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        req = DavRequest(
            method=method,
            path=path,
            headers=headers,
            body=body,
            base_url=_base_url(request.scope, headers),
            actor=actor,
            max_xml_size=self.max_xml,
            max_object_size=self.max_object,
            chunks=spooled.chunks() if spooled is not None else None,
        )
        try:
            # The handlers say which methods the loop may take (None: not this one).
            answer = self._answer_in_loop(req)
            if answer is None and len(body) <= IN_LOOP_PUT_MAX:
                answer = await self._write_in_loop(req)
            if answer is not None:
                return answer
            return await self.workers.run(self._dispatch, req)
        except HomeportError as exc:
            return error_response(exc)
        finally:
            if spooled is not None:
                spooled.close()

    def _answer_in_loop(self, req: DavRequest) -> Response | None:
        """A small read answered in the event loop, or None for a worker thread.

        Handing a request to a worker thread and back costs more CPU than serving a
        small inline body (measured in process: 0.17 of 0.25 ms per GET, 0.4 of 2.2 ms
        per 100-item multiget). Only reads that cannot wait are made here: SQLite in WAL
        mode lets readers through while a writer works, and anything that would block
        or run long (a lock, a body in a file, a listing, a large multiget) raises
        `WouldBlock` or answers None and goes to a worker as before.
        """
        try:
            with self.services.store.without_waiting():
                return self.handlers.answer_without_waiting(req)
        except WouldBlock:
            return None

    async def _write_in_loop(self, req: DavRequest) -> Response | None:
        """A PUT (of a body held in memory) or DELETE driven from the event loop, or
        None for a worker thread (and for every other method).

        A write spends most of its time waiting for the group commit's fsync; a worker
        thread parked on that wait, and the hand-offs to it and back, cost more CPU
        than the write's own work (measured: 0.78 vs 0.57 ms per PUT). The steps up to
        the first commit only read (`without_waiting`: anything that would wait raises
        `WouldBlock` before anything is stored, and the whole write is redone in a
        worker); each commit is handed to the committer thread and awaited here.
        """
        if req.chunks is not None:
            return None  # a streamed body cannot be read again by a worker's retry
        store = self.services.store
        try:
            with store.without_waiting():
                steps = self.handlers.write_steps(req)
                if steps is None:
                    return None
                fn = next(steps)
        except WouldBlock:
            return None
        except StopIteration as stop:  # answered without a commit (a 405, say)
            return stop.value
        loop = asyncio.get_running_loop()
        cancelled = False  # the steps run to the end all the same, as in a worker
        try:
            while True:
                result, error, stopped = await _committed(loop, store, fn)
                cancelled = cancelled or stopped
                fn = steps.throw(error) if error is not None else steps.send(result)
        except StopIteration as stop:
            if not cancelled:
                return stop.value
        except UidConflict as exc:
            if not cancelled:
                return error_response(exc, await self.workers.run(self._href_prefix, req))
        except BaseException:
            if not cancelled:
                raise
        raise asyncio.CancelledError()  # whatever the outcome: nobody is waiting for it

    async def _authenticate(self, request: Request) -> Actor:
        """The acting user; a credential verified recently is answered in the event loop,
        only a real password check (argon2) goes to a worker thread."""
        header = request.headers.get("authorization")
        client = request.headers.get("user-agent", "")[:200]
        address = request.client.host if request.client else None
        actor = self.auth.cached(header, client, address)
        if actor is not None:
            return actor
        return await self.workers.run(self.auth.authenticate, header, client, address)

    async def _read_bounded(self, request: Request, limit: int) -> bytes:
        declared_length(request.headers.get("content-length"), limit)
        body = await read_body(
            request.stream(), limit=limit, idle=self.idle_timeout, memory_max=limit
        )
        return body.in_memory or b""

    async def _metrics(self, request: Request) -> Response:
        """Prometheus metrics: loopback clients freely, anyone else only as an admin."""
        if request.method not in ("GET", "HEAD"):
            return Response(b"", 405, {"Allow": "GET, HEAD"})
        host = request.client.host if request.client else None
        if not is_loopback(host):
            actor = await self._authenticate(request)
            if not actor.is_admin:
                raise Forbidden("metrics are for administrators")
        body, content_type = await self.workers.run(self.metrics)
        return Response(body, 200, media_type=content_type)

    def _dispatch(self, req: DavRequest) -> Response:
        try:
            return self.handlers.dispatch(req)
        except UidConflict as exc:  # its body names the conflicting item: read it here
            return error_response(exc, self._href_prefix(req))

    def _href_prefix(self, req: DavRequest) -> str:
        """For no-uid-conflict: the collection URL the conflicting item lives in."""
        try:
            res = resolve(self.services, req.actor, req.path)
        except HomeportError:
            return ""
        if isinstance(res, ItemRes):
            return f"{DAV_PREFIX}/{res.collection.owner}/{res.collection.path}/"
        if isinstance(res, Missing) and res.parent is not None:
            return f"{DAV_PREFIX}/{res.parent.owner}/{res.parent.path}/"
        return ""


async def _committed(
    loop: asyncio.AbstractEventLoop, store: Store, fn: Transaction
) -> tuple[object, BaseException | None, bool]:
    """`fn` committed by the store's committer thread: its result, its error, and
    whether this task was cancelled meanwhile.

    The job commits whether or not the request is cancelled (a client gone, a server
    stopping), so its outcome is awaited to the end, as `Workers.run` waits for its
    thread; the caller raises the cancellation once its steps are done.
    """
    done: asyncio.Future[tuple[object, BaseException | None]] = loop.create_future()

    def settle(result: object, error: BaseException | None) -> None:
        if not done.done():
            done.set_result((result, error))

    def outcome(result: object, error: BaseException | None) -> None:
        loop.call_soon_threadsafe(settle, result, error)

    store.submit(fn, outcome)
    cancelled = False
    while True:
        try:
            result, error = await asyncio.shield(done)
        except asyncio.CancelledError:
            cancelled = True
            continue
        return result, error, cancelled


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    """scheme://host[:port] the client used (its Host header, else the server's address)."""
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    return f"{scope['scheme']}://{host}"


def create_app(
    services: Services,
    config: Config,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
) -> Any:
    return HomeportApp(services, config, metrics)


__all__ = ["Actor", "HomeportApp", "create_app"]
