"""Worker threads: results and errors come back; a cancelled caller waits for its thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from homeport.server.workers import Workers


def test_results_and_errors_come_back_from_the_thread() -> None:
    workers = Workers(2)

    async def main() -> None:
        assert await workers.run(lambda a, b: a + b, 2, 3) == 5
        assert await workers.run(threading.get_ident) != threading.get_ident()
        with pytest.raises(ZeroDivisionError):
            await workers.run(lambda: 1 / 0)

    try:
        asyncio.run(main())
    finally:
        workers.close()


def test_a_cancelled_caller_resumes_only_after_its_thread_is_done() -> None:
    """The caller's clean-up (closing a spooled body) must not run under the thread."""
    workers = Workers(2)
    events: list[str] = []

    def slow() -> None:
        time.sleep(0.3)
        events.append("thread done")

    async def caller() -> None:
        try:
            await workers.run(slow)
        finally:
            events.append("caller cleans up")

    async def main() -> None:
        task = asyncio.create_task(caller())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.01)
        task.cancel()  # twice: still waits
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    finally:
        workers.close()
    assert events == ["thread done", "caller cleans up"]


def test_at_most_size_jobs_run_at_once() -> None:
    workers = Workers(2)
    running = 0
    peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(workers.run(job) for _ in range(6)))

    try:
        asyncio.run(main())
    finally:
        workers.close()
    assert peak == 2
