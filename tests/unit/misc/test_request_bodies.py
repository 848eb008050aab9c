"""Request bodies read in the event loop (homeport.server.bodies): in memory up to a
threshold, spooled to an anonymous file past it, bounded, and cut off when idle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from homeport.errors import InvalidRequest, TooLarge
from homeport.server.bodies import declared_length, read_body
from homeport.server.errors import RequestTimeout, error_response


async def _stream(
    chunks: list[bytes], stall_after: int | None = None, pause: float = 0.0
) -> AsyncIterator[bytes]:
    for i, chunk in enumerate(chunks):
        if stall_after is not None and i == stall_after:
            await anyio.sleep(3600)
        if pause:
            await anyio.sleep(pause)
        yield chunk


def _read(chunks: list[bytes], tmp: Path, **kw: object) -> tuple[bytes | None, bytes, int]:
    async def go() -> tuple[bytes | None, bytes, int]:
        args: dict[str, object] = {"limit": 1000, "idle": 5.0, "memory_max": 10}
        args.update(kw)
        body = await read_body(
            _stream(chunks, args.pop("stall_after", None), args.pop("pause", 0.0)),  # type: ignore[arg-type]
            spool_dir=tmp,
            **args,  # type: ignore[arg-type]
        )
        try:
            return body.in_memory, b"".join(body.chunks()), body.size
        finally:
            body.close()

    return anyio.run(go)


def test_a_small_body_stays_in_memory(tmp_path: Path) -> None:
    assert _read([b"abc", b"def"], tmp_path) == (b"abcdef", b"abcdef", 6)
    assert _read([], tmp_path) == (b"", b"", 0)


def test_a_large_body_is_spooled_to_an_unnamed_file(tmp_path: Path) -> None:
    chunks = [bytes([65 + i]) * 7 for i in range(20)]
    in_memory, data, size = _read(chunks, tmp_path)
    assert in_memory is None
    assert data == b"".join(chunks) and size == 140
    assert list(tmp_path.iterdir()) == []  # no name left behind, even while open


def test_a_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        _read([b"x" * 600, b"y" * 600], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_body_that_stalls_times_out(tmp_path: Path) -> None:
    with pytest.raises(RequestTimeout):
        _read([b"x" * 50, b"y"], tmp_path, idle=0.2, stall_after=1)
    response = error_response(RequestTimeout("stalled"))
    assert response.status_code == 408
    assert response.headers["connection"] == "close"


def test_a_slow_but_steady_body_is_read_whole(tmp_path: Path) -> None:
    """The limit is on silence, not on the whole upload: each chunk moves it on."""
    chunks = [bytes([65 + i]) for i in range(6)]
    assert _read(chunks, tmp_path, idle=0.3, pause=0.1) == (b"ABCDEF", b"ABCDEF", 6)


@pytest.mark.parametrize("value", ["x", "-1", "1e3", "²", " 5"])
def test_a_bad_content_length_is_400(value: str) -> None:
    with pytest.raises(InvalidRequest):
        declared_length(value, 100)


def test_content_length_over_the_limit_is_413() -> None:
    assert declared_length(None, 100) is None
    assert declared_length("100", 100) == 100
    with pytest.raises(TooLarge):
        declared_length("101", 100)


def test_a_full_disk_while_spooling_is_507(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import tempfile

    from homeport.errors import InsufficientStorage

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            pass

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(tempfile, "TemporaryFile", lambda dir=None: Full())
    with pytest.raises(InsufficientStorage):
        _read([b"x" * 8, b"y" * 8], tmp_path)
    assert error_response(InsufficientStorage("full")).status_code == 507
