"""Bytes on a socket, for requests that a well-behaved HTTP client refuses to send."""

from __future__ import annotations

import base64
import socket

from tests.conftest import PASSWORD


def basic(user: str = "alice", password: str = PASSWORD) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> tuple[int | None, bytes]:
    """Send `request` as is; (status, whole answer). None when the server just closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request)  # no half-close: uvicorn takes it for a client that went away
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end (a header too large): read what it answered
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if not answer.startswith(b"HTTP/1.1 "):
        return None, answer
    return int(answer[9:12]), answer


def request_bytes(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    user: str = "alice",
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines.append(b"Authorization: " + basic(user))
    for name, value in headers or []:
        lines.append(name + b": " + value)
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
