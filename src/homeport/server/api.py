"""The history API: JSON over HTTP under /api/v1/, authenticated like DAV (Basic).

Requests are matched against the `Operation` table in `homeport.server.api_schema`
(the same table the OpenAPI description is generated from), their parameters and
bodies are checked against it, and the domain call runs in a worker thread. Domain
errors become JSON `{"error", "message"}` bodies with the status from the one table in
`homeport.server.errors`; nothing here decides a status by itself except routing
(404 unknown endpoint, 405 wrong method).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from homeport.errors import (
    HomeportError,
    IntegrityError,
    InvalidRequest,
    NotFound,
    TooLarge,
)
from homeport.namespaces import DAV
from homeport.server import api_schema as schema
from homeport.server.api_schema import JSON, Field, Operation
from homeport.server.auth import Authenticator
from homeport.server.bodies import read_body
from homeport.server.errors import error_headers, status_for
from homeport.server.workers import Workers
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.services.guards import Guards
from homeport.store.model import Collection

log = logging.getLogger("homeport.api")

MAX_BODY = 64 * 1024
"""Request bodies are small JSON objects; anything larger is refused (413)."""

_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() also takes "²", which int() refuses


@dataclass(frozen=True)
class Call:
    """One validated API request, ready for its handler."""

    actor: Actor
    path: dict[str, Any]
    query: dict[str, Any]
    body: dict[str, Any]


Handler = Callable[[Call], "JSON | Response"]


def is_api_path(raw_path: str) -> bool:
    return raw_path == "/api" or raw_path.startswith("/api/")


def _error_slug(exc: HomeportError) -> str:
    name = type(exc).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def json_error(
    status: int, error: str, message: str, extra: Mapping[str, str] | None = None
) -> JSONResponse:
    headers = {"Cache-Control": "no-store", **(extra or {})}
    return JSONResponse({"error": error, "message": message}, status, headers)


def error_json_response(exc: HomeportError) -> JSONResponse:
    """A domain error as JSON, with the status the server-wide table gives it."""
    if isinstance(exc, IntegrityError):
        log.error("integrity error: %s", exc.message)
    # The headers come from the same place as DAV's: WWW-Authenticate on a 401,
    # Retry-After on every 429.
    return json_error(status_for(exc), _error_slug(exc), exc.message, error_headers(exc))


def _compile(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{pattern}$")


_ROUTES: tuple[tuple[re.Pattern[str], Operation], ...] = tuple(
    (_compile(op.path), op) for op in schema.OPERATIONS
)


def _convert(field: Field, raw: Any, *, from_text: bool) -> Any:
    """A parameter or body member as its declared type; InvalidRequest otherwise."""
    if field.type is str:
        if not isinstance(raw, str) or not raw:
            raise InvalidRequest(f"{field.name!r} must be a non-empty string")
        if len(raw) > 1024 or any(ord(c) < 32 for c in raw):
            raise InvalidRequest(f"{field.name!r} is not a valid value")
        return raw
    if field.type is int:
        if from_text and isinstance(raw, str) and _DIGITS.fullmatch(raw) and len(raw) <= 18:
            return int(raw)
        if not from_text and type(raw) is int and 0 <= raw < 2**63:
            return raw
        raise InvalidRequest(f"{field.name!r} must be a non-negative integer")
    if from_text and raw in ("true", "1"):
        return True
    if from_text and raw in ("false", "0"):
        return False
    if not from_text and isinstance(raw, bool):
        return raw
    raise InvalidRequest(f"{field.name!r} must be true or false")


def _fields(
    fields: tuple[Field, ...], given: Mapping[str, Any], what: str, *, from_text: bool
) -> dict[str, Any]:
    known = {f.name for f in fields}
    unknown = sorted(set(given) - known)
    if unknown:
        # Strict on purpose: a mistyped "dry_run" must not turn a preview into a rollback.
        raise InvalidRequest(f"unknown {what} {unknown[0]!r}")
    out: dict[str, Any] = {}
    for f in fields:
        if f.name in given and given[f.name] is not None:
            out[f.name] = _convert(f, given[f.name], from_text=from_text)
        elif f.required:
            raise InvalidRequest(f"missing {what} {f.name!r}")
    return out


class Api:
    """The /api/v1/ endpoints, mounted by `HomeportApp` in front of the DAV tree."""

    def __init__(
        self,
        services: Services,
        auth: Authenticator,
        workers: Workers,
        idle_timeout: float = 30.0,
    ) -> None:
        self.services = services
        self.idle_timeout = idle_timeout
        self.history = services.history
        self.auth = auth
        self.workers = workers
        self.guards: Guards = services.guards
        self._spec = json.dumps(schema.openapi(), indent=2, ensure_ascii=False).encode()
        self.handlers: dict[str, Handler] = {
            "getHistory": self.get_history,
            "getRevisionBody": self.get_revision_body,
            "restoreRevision": self.restore_revision,
            "getTrash": self.get_trash,
            "undelete": self.undelete,
            "rollback": self.rollback,
            "getAlerts": self.get_alerts,
            "acknowledgeAlert": self.acknowledge_alert,
        }
        missing = {op.operation_id for op in schema.OPERATIONS} - set(self.handlers)
        if missing != {"openapi"}:
            raise RuntimeError(f"API operations without a handler: {sorted(missing)}")

    async def handle(self, request: Request, raw_path: str) -> Response:
        try:
            response = await self._handle(request, raw_path)
        except HomeportError as exc:
            response = error_json_response(exc)
        except ClientDisconnect:
            raise
        except Exception:
            log.exception("API request failed: %s %s", request.method, raw_path)
            response = json_error(500, "internal-error", "the server failed; see its log")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _handle(self, request: Request, raw_path: str) -> Response:
        method = request.method.upper()
        op, path_args = self._route(method, raw_path)
        if op is None:
            allowed = path_args.get("allow")
            if allowed:
                response = json_error(405, "method-not-allowed", f"use {allowed} here")
                response.headers["Allow"] = allowed
                return response
            raise NotFound("no such API endpoint (see /api/v1/openapi.json)")
        if op.operation_id == "openapi":
            return Response(self._spec, 200, media_type="application/json")
        header = request.headers.get("authorization")
        client = request.headers.get("user-agent", "")[:200]
        address = request.client.host if request.client else None
        actor = self.auth.cached(header, client, address)
        if actor is None:
            actor = await self.workers.run(self.auth.authenticate, header, client, address)
        path = _fields(op.path_params, path_args, "path parameter", from_text=True)
        query = _fields(op.query_params, _single_query(request), "query parameter", from_text=True)
        body: dict[str, Any] = {}
        if op.body is not None:
            body = _fields(
                op.body, await _json_body(request, self.idle_timeout), "member", from_text=False
            )
        call = Call(actor, path, query, body)
        handler = self.handlers[op.operation_id]
        result = await self.workers.run(handler, call)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, 200)

    @staticmethod
    def _route(method: str, raw_path: str) -> tuple[Operation | None, dict[str, str]]:
        allowed: list[str] = []
        for pattern, op in _ROUTES:
            match = pattern.match(raw_path)
            if match is None:
                continue
            if op.method == method:
                try:
                    args = {k: unquote(v, errors="strict") for k, v in match.groupdict().items()}
                except UnicodeDecodeError as exc:
                    raise InvalidRequest("the path is not valid UTF-8") from exc
                return op, args
            allowed.append(op.method)
        return None, ({"allow": ", ".join(sorted(set(allowed)))} if allowed else {})

    # -- handlers (worker threads) ----------------------------------------------------

    def _collection(self, call: Call, path: str) -> Collection:
        return self.history.find_collection(call.actor, call.path["user"], path)

    def get_history(self, call: Call) -> JSON:
        coll = self._collection(call, call.query["collection"])
        revisions = self.history.item_history(call.actor, coll, call.query["item"])
        return schema.history_json(coll, call.query["item"], revisions)

    def get_revision_body(self, call: Call) -> Response:
        coll = self._collection(call, call.query["collection"])
        name, seq = call.query["item"], call.path["seq"]
        rev = self.history.revision(call.actor, coll, name, seq)
        body = self.history.revision_body(call.actor, coll, name, seq)
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "body"
        return Response(
            body,
            200,
            {
                # Stored files may be HTML or SVG: never let a browser run them here.
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "X-Homeport-Seq": str(rev.seq),
            },
            media_type=rev.content_type or "application/octet-stream",
        )

    def restore_revision(self, call: Call) -> JSON:
        coll = self._collection(call, call.body["collection"])
        item = self.history.restore_revision(call.actor, coll, call.body["item"], call.body["seq"])
        return {"item": schema.item_json(coll, item)}

    def get_trash(self, call: Call) -> JSON:
        owner = call.path["user"]
        path = call.query.get("collection")
        if path is not None:
            coll = self._collection(call, path)
            return schema.trash_json(owner, self.history.trash_entries(call.actor, owner, coll), [])
        return schema.trash_json(
            owner,
            self.history.trash_entries(call.actor, owner),
            self.history.collection_trash(call.actor, owner),
        )

    def undelete(self, call: Call) -> JSON:
        owner, path = call.path["user"], call.body["collection"]
        name = call.body.get("item")
        if name is None:
            coll = self.history.deleted_collection(call.actor, owner, path)
            back = self.history.undelete_collection(call.actor, coll)
            return {"collection": schema.collection_json(back), "item": None}
        coll = self._collection(call, path)
        item = self.history.undelete_item(call.actor, coll, name)
        return {"collection": schema.collection_json(coll), "item": schema.item_json(coll, item)}

    def rollback(self, call: Call) -> JSON:
        owner, moment = call.path["user"], call.body["to"]
        path = call.body.get("collection")
        coll = self._collection(call, path) if path is not None else None
        if call.body.get("dry_run", False):
            return schema.plan_json(self.history.plan_rollback(call.actor, owner, moment, coll))
        result = self.history.rollback(call.actor, owner, moment, coll)
        log.info(
            "rollback user=%s to=%s by=%s changes=%d",
            owner,
            result.plan.moment,
            call.actor.user,
            len(result.plan.items) + len(result.plan.collections),
        )
        return schema.plan_json(result.plan, result)

    def get_alerts(self, call: Call) -> JSON:
        alerts = self.guards.alerts(
            call.actor,
            call.query.get("user"),
            include_acknowledged=call.query.get("include_acknowledged", False),
        )
        return {"alerts": [schema.alert_json(a) for a in alerts]}

    def acknowledge_alert(self, call: Call) -> JSON:
        self.guards.acknowledge(call.actor, call.path["id"])
        return {"id": call.path["id"], "acknowledged": True}


def _single_query(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in out:
            raise InvalidRequest(f"query parameter {key!r} is given twice")
        out[key] = value
    return out


async def _json_body(request: Request, idle_timeout: float) -> dict[str, Any]:
    """The request's JSON object (empty when there is no body); bounded in size, and
    408 when the client stops sending it for `idle_timeout` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and (not _DIGITS.fullmatch(declared) or int(declared) > MAX_BODY):
        if not _DIGITS.fullmatch(declared):
            raise InvalidRequest("bad Content-Length")
        raise TooLarge(f"request bodies are limited to {MAX_BODY} bytes", DAV, MAX_BODY)
    body = await read_body(request.stream(), limit=MAX_BODY, idle=idle_timeout, memory_max=MAX_BODY)
    buf = body.in_memory or b""
    if not buf.strip():
        return {}
    try:
        value = json.loads(bytes(buf))
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest("the body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value


__all__ = ["MAX_BODY", "Api", "is_api_path"]
