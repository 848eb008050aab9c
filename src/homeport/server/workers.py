"""Worker threads for the blocking parts of a request (SQLite, argon2, blob files).

A plain `ThreadPoolExecutor` behind the event loop rather than `anyio.to_thread`: anyio
looks up its backend (an import and a sniffio probe) on every call, which cost about a
tenth of the server's CPU per small request (a GET, a PUT). The bound is the same: at
most `size` jobs run at once, the rest queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Workers:
    def __init__(self, size: int = 32) -> None:
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="homeport-worker")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread.

        Not cancellable once started, like anyio's default: a cancelled caller waits for
        the thread to finish before its own clean-up runs (a spooled body is closed only
        after the thread that reads it is done).
        """
        fut = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            while not fut.done():
                try:
                    await asyncio.shield(fut)
                except asyncio.CancelledError:
                    continue
                except BaseException:
                    break
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
