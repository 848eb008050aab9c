"""Request bodies, read off the socket in the event loop before a worker thread is taken.

A worker thread is held only while a request is being *handled*, never while its
client is still sending: a client that stalls mid-body costs a coroutine and (for a
large body) an unnamed temporary file, not one of the worker threads every other
request needs. Between two chunks the client may pause at most `idle` seconds; after
that the request is answered 408 and nothing of it is stored.

Small bodies (up to `memory_max` bytes) stay in memory; larger ones are spooled to an
anonymous temporary file (gone when closed, or when the process dies) in the data
folder, so memory does not grow with the size of an upload.
"""

from __future__ import annotations

import asyncio
import errno
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

from homeport.errors import InsufficientStorage, InvalidRequest, TooLarge
from homeport.namespaces import DAV
from homeport.server.errors import RequestTimeout

CHUNK = 64 * 1024


class RequestBody:
    """A complete request body: in memory, or in a temporary file. Close it when done."""

    def __init__(self, data: bytes, spool: IO[bytes] | None = None, size: int | None = None):
        self._data = data
        self._spool = spool
        self.size = len(data) if size is None else size

    @property
    def in_memory(self) -> bytes | None:
        """The whole body when it is held in memory, else None (it is spooled)."""
        return self._data if self._spool is None else None

    def chunks(self) -> Iterator[bytes]:
        """The body from its start, in chunks (reads the spool file: call off the loop)."""
        if self._spool is None:
            if self._data:
                yield self._data
            return
        self._spool.seek(0)
        while chunk := self._spool.read(CHUNK):
            yield chunk

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def declared_length(value: str | None, limit: int) -> int | None:
    """The Content-Length header, checked: 400 when malformed, 413 when over `limit`."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is true, int() refuses it
        raise InvalidRequest("bad Content-Length")
    declared = int(value)
    if declared > limit:
        raise TooLarge(f"request bodies are limited to {limit} bytes", DAV, limit)
    return declared


async def read_body(
    stream: AsyncIterator[bytes],
    *,
    limit: int,
    idle: float,
    memory_max: int,
    spool_dir: Path | None = None,
) -> RequestBody:
    """Read a whole body: TooLarge past `limit` bytes, RequestTimeout after `idle` s of
    silence. Whatever is raised, nothing read so far is kept."""
    buf = bytearray()
    spool: IO[bytes] | None = None
    size = 0
    loop = asyncio.get_running_loop()
    try:
        # One timer for the whole body, moved on at each chunk (a timeout context per
        # chunk made three per small PUT, as Starlette's stream ends with an empty chunk:
        # 26 against 19 us per body read).
        try:
            async with asyncio.timeout(idle) as silence:
                async for chunk in stream:
                    silence.reschedule(loop.time() + idle)
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"request bodies are limited to {limit} bytes", DAV, limit)
                    if spool is None and size > memory_max:
                        spool = _spool(spool_dir, buf)
                        buf = bytearray()
                    if spool is not None:
                        # A write into the page cache: short enough for the event loop.
                        _write(spool, chunk)
                    else:
                        buf += chunk
        except TimeoutError as exc:
            raise RequestTimeout(
                f"the request body stopped arriving for {idle:g} s; send it again"
            ) from exc
        if spool is not None:
            _write(spool, b"", flush=True)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    if spool is not None:
        return RequestBody(b"", spool, size)
    return RequestBody(bytes(buf))


def _spool(spool_dir: Path | None, head: bytes | bytearray) -> IO[bytes]:
    """An anonymous temporary file holding `head` (O_TMPFILE where the platform has it:
    no name, nothing left behind by a crash)."""
    try:
        spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (closed by RequestBody)
    except OSError as exc:
        raise _storage_error(exc) from exc
    try:
        _write(spool, head)
    except BaseException:
        spool.close()
        raise
    return spool


def _write(spool: IO[bytes], data: bytes | bytearray, flush: bool = False) -> None:
    try:
        if data:
            spool.write(data)
        if flush:
            spool.flush()
    except OSError as exc:
        raise _storage_error(exc) from exc


def _storage_error(exc: OSError) -> Exception:
    """A full disk is the client's 507 (nothing stored); anything else stays an OSError."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("no space left to receive this body")
    return exc
