"""The shapes of the history API: its operations, the JSON views of domain records, and
the OpenAPI 3.1 description built from both.

This module is the one source of truth. `homeport.server.api` routes and validates
requests with the same `Operation` table that the description is generated from; the
CLI's `--json` output uses the same views, so a script sees one shape everywhere.
`docs/openapi.json` is generated from here (`python -m homeport.server.api_schema`),
and a test keeps it equal to what the server serves at `/api/v1/openapi.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from homeport import __version__
from homeport.server.resources import DAV_PREFIX
from homeport.services.guards import Alert
from homeport.services.history import (
    DeletedCollection,
    RevisionInfo,
    RollbackPlan,
    RollbackResult,
    TrashEntry,
)
from homeport.services.moments import format_moment
from homeport.store.model import Collection, Item, Op, Revision, us_to_datetime

API_PREFIX = "/api/v1"
JSON = dict[str, Any]

# -- JSON views of domain records --------------------------------------------------------


def time_json(at_us: int) -> str:
    """ISO 8601 in UTC with microseconds: exact enough to roll back to."""
    return format_moment(us_to_datetime(at_us))


def item_href(coll: Collection, name: str) -> str:
    return f"{DAV_PREFIX}/{coll.owner}/{coll.path}/{name}"


def revision_json(info: RevisionInfo) -> JSON:
    rev = info.revision
    return {
        "seq": rev.seq,
        "time": time_json(rev.at_us),
        "user": rev.user,
        "client": rev.client,
        "op": rev.op.value,
        "size": rev.size,
        "content_type": rev.content_type,
        "uid": rev.uid,
        "summary": info.summary,
        "current": info.current,
        "conflict": rev.op is Op.CONFLICT,
    }


def history_json(coll: Collection, name: str, revisions: list[RevisionInfo]) -> JSON:
    return {
        "user": coll.owner,
        "collection": coll.path,
        "item": name,
        "href": item_href(coll, name),
        "revisions": [revision_json(info) for info in revisions],
    }


def item_json(coll: Collection, item: Item) -> JSON:
    return {
        "collection": coll.path,
        "name": item.name,
        "href": item_href(coll, item.name),
        "seq": item.seq,
        "etag": item.etag,
        "size": item.size,
        "content_type": item.content_type,
        "uid": item.uid,
    }


def collection_json(coll: Collection) -> JSON:
    return {
        "id": coll.id,
        "path": coll.path,
        "href": f"{DAV_PREFIX}/{coll.owner}/{coll.path}/",
        "kind": coll.kind.value,
        "displayname": coll.displayname,
        "deleted": coll.deleted_seq is not None,
    }


def trash_item_json(entry: TrashEntry) -> JSON:
    tomb = entry.deletion
    return {
        "collection": entry.collection.path,
        "name": entry.name,
        "href": item_href(entry.collection, entry.name),
        "uid": entry.last.uid if entry.last else None,
        "label": entry.label,
        "deleted_seq": tomb.seq,
        "deleted_at": time_json(tomb.at_us),
        "deleted_by": tomb.user,
        "client": tomb.client,
        "restore_seq": entry.last.seq if entry.last else None,
    }


def deleted_collection_json(dc: DeletedCollection) -> JSON:
    tomb: Revision | None = dc.deletion
    return {
        "path": dc.collection.path,
        "id": dc.collection.id,
        "kind": dc.collection.kind.value,
        "displayname": dc.collection.displayname,
        "items": dc.items,
        "deleted_seq": dc.collection.deleted_seq,
        "deleted_at": time_json(tomb.at_us) if tomb else None,
        "deleted_by": tomb.user if tomb else None,
        "client": tomb.client if tomb else None,
    }


def trash_json(owner: str, items: list[TrashEntry], colls: list[DeletedCollection]) -> JSON:
    return {
        "user": owner,
        "items": [trash_item_json(e) for e in items],
        "collections": [deleted_collection_json(c) for c in colls],
    }


def plan_json(plan: RollbackPlan, result: RollbackResult | None = None) -> JSON:
    """A rollback's plan (dry run, `result` None) or what it did."""
    return {
        "user": plan.owner,
        "to": plan.moment,
        "position": plan.seq,
        "dry_run": result is None,
        "applied": result is not None and result.first_seq is not None,
        "counts": plan.counts(),
        "collections": [
            {"path": cc.collection.path, "action": cc.action} for cc in plan.collections
        ],
        "items": [
            {
                "collection": pc.collection.path,
                "name": pc.name,
                "href": item_href(pc.collection, pc.name),
                "action": pc.action,
                "description": pc.description,
                "target_seq": pc.target.seq if pc.target else None,
                "current_seq": pc.current_seq,
            }
            for pc in plan.items
        ],
        "first_seq": result.first_seq if result else None,
        "last_seq": result.last_seq if result else None,
        "undo_position": result.undo_position if result else None,
    }


def alert_json(alert: Alert, data_dir: str | None = None) -> JSON:
    """An alert; `rollback_command` names the data directory as DIR unless it is given."""
    return {
        "id": alert.id,
        "time": time_json(alert.at_us),
        "user": alert.owner,
        "collection": alert.collection_path,
        "collection_id": alert.collection_id,
        "deleted_by": alert.user,
        "client": alert.client,
        "deleted": alert.deleted,
        "collection_size": alert.collection_size,
        "first_seq": alert.first_seq,
        "last_seq": alert.last_seq,
        "undo_position": alert.undo_position,
        "rollback_command": alert.command(data_dir),
        "acknowledged": alert.acknowledged,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": time_json(alert.acknowledged_us) if alert.acknowledged_us else None,
    }


# -- operations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A path or query parameter, or a member of a JSON request body."""

    name: str
    type: type  # str, int or bool
    description: str
    required: bool = False
    where: str = "query"  # "path", "query" or "body"

    def schema(self) -> JSON:
        kind = {str: "string", int: "integer", bool: "boolean"}[self.type]
        out: JSON = {"type": kind}
        if self.type is int:
            out["minimum"] = 0
        return out


@dataclass(frozen=True)
class Operation:
    """One endpoint: how it is called, what it answers, and which errors it can give."""

    method: str
    path: str  # below the server root, e.g. "/api/v1/users/{user}/trash"
    operation_id: str
    summary: str
    description: str
    params: tuple[Field, ...] = ()
    body: tuple[Field, ...] | None = None  # a JSON object with these members
    response: str | None = None  # a schema in components; None: see `media`
    media: tuple[str, ...] = ()  # non-JSON response types
    errors: tuple[int, ...] = (400, 401, 403, 404)
    authenticated: bool = True

    @property
    def path_params(self) -> tuple[Field, ...]:
        return tuple(p for p in self.params if p.where == "path")

    @property
    def query_params(self) -> tuple[Field, ...]:
        return tuple(p for p in self.params if p.where == "query")


USER = Field(
    "user",
    str,
    "The account whose data is read or changed: your own, or (admins) anyone's.",
    required=True,
    where="path",
)
COLLECTION_Q = Field(
    "collection",
    str,
    "A collection's path in the account's home, e.g. `contacts` or `files/photos`.",
    required=True,
)
ITEM_Q = Field("item", str, "The item's name in the collection, e.g. `ab12.vcf`.", required=True)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        f"{API_PREFIX}/openapi.json",
        "openapi",
        "This description",
        "The OpenAPI 3.1 description of this API (no authentication needed).",
        response=None,
        media=("application/json",),
        errors=(),
        authenticated=False,
    ),
    Operation(
        "GET",
        f"{API_PREFIX}/users/{{user}}/history",
        "getHistory",
        "Every revision of an item",
        "Every revision of one item, oldest first: when, by whom, through which client, "
        "its size and a readable summary of what it changed. `current` marks the revision "
        "clients see now; `conflict` marks a rejected edit that was kept aside.",
        params=(USER, COLLECTION_Q, ITEM_Q),
        response="History",
    ),
    Operation(
        "GET",
        f"{API_PREFIX}/users/{{user}}/history/{{seq}}",
        "getRevisionBody",
        "The body of one revision",
        "The exact bytes of one revision of an item, with its content type. "
        "A deletion has no body (404).",
        params=(
            USER,
            Field("seq", int, "The revision's log position.", required=True, where="path"),
            COLLECTION_Q,
            ITEM_Q,
        ),
        media=("text/vcard", "text/calendar", "application/octet-stream"),
    ),
    Operation(
        "POST",
        f"{API_PREFIX}/users/{{user}}/restore",
        "restoreRevision",
        "Make an earlier revision current again",
        "Appends a new revision with the body of revision `seq` (also brings back a deleted "
        "item). Clients pick it up at their next sync; the restore is itself in the history.",
        params=(USER,),
        body=(
            Field("collection", str, COLLECTION_Q.description, required=True, where="body"),
            Field("item", str, ITEM_Q.description, required=True, where="body"),
            Field("seq", int, "The revision to bring back.", required=True, where="body"),
        ),
        response="ItemResult",
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Operation(
        "GET",
        f"{API_PREFIX}/users/{{user}}/trash",
        "getTrash",
        "Deleted items and collections",
        "Deleted items (newest deletion first, with who and which client deleted them) "
        "of one collection, or of every live collection and, then, the deleted collections.",
        params=(
            USER,
            Field("collection", str, "Only this collection's deleted items.", required=False),
        ),
        response="Trash",
    ),
    Operation(
        "POST",
        f"{API_PREFIX}/users/{{user}}/undelete",
        "undelete",
        "Bring back a deleted item or collection",
        "With `item`: the item as it was just before it was deleted. Without: the deleted "
        "collection at `collection`, with every item it held when it was deleted.",
        params=(USER,),
        body=(
            Field("collection", str, COLLECTION_Q.description, required=True, where="body"),
            Field("item", str, "The deleted item; omit to undelete the collection.", where="body"),
        ),
        response="UndeleteResult",
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Operation(
        "POST",
        f"{API_PREFIX}/users/{{user}}/rollback",
        "rollback",
        "Return an account or a collection to a moment",
        "Every item changed since `to` returns to its state then, items created since are "
        "deleted and items deleted since come back, in one transaction of new revisions. "
        "With `dry_run` nothing changes and the plan is returned. After a rollback, "
        "`undo_position` is a moment (`@SEQ`) that undoes it when rolled back to.",
        params=(USER,),
        body=(
            Field(
                "to",
                str,
                'ISO 8601 ("2026-11-27T10:00:00Z"; without a zone: the server\'s), a '
                'relative time ("2 hours ago") or an exact log position ("@1234").',
                required=True,
                where="body",
            ),
            Field("collection", str, "Only this collection (default: the account).", where="body"),
            Field("dry_run", bool, "Only say what would change (default false).", where="body"),
        ),
        response="Rollback",
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Operation(
        "GET",
        f"{API_PREFIX}/alerts",
        "getAlerts",
        "Mass-deletion alerts",
        "Newest first: your own alerts, or (admins) everyone's, each with the exact "
        "command that undoes the deletions.",
        params=(
            Field("user", str, "Only this account's alerts (admins: anyone's)."),
            Field("include_acknowledged", bool, "Also list acknowledged alerts."),
        ),
        response="Alerts",
    ),
    Operation(
        "POST",
        f"{API_PREFIX}/alerts/{{id}}/acknowledge",
        "acknowledgeAlert",
        "Acknowledge an alert",
        "Marks the alert as seen; it stays listed with `include_acknowledged`.",
        params=(Field("id", int, "The alert's id.", required=True, where="path"),),
        body=(),
        response="Acknowledged",
        errors=(400, 401, 403, 404, 413),
    ),
)


# -- the OpenAPI description -----------------------------------------------------------


def _nullable(kind: str) -> JSON:
    return {"type": [kind, "null"]}


def _object(props: dict[str, JSON], description: str = "") -> JSON:
    out: JSON = {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }
    if description:
        out["description"] = description
    return out


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


STRING: JSON = {"type": "string"}
INTEGER: JSON = {"type": "integer"}
BOOLEAN: JSON = {"type": "boolean"}
TIME: JSON = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, JSON] = {
    "Error": _object(
        {
            "error": {**STRING, "description": "A stable slug, e.g. `not-found`."},
            "message": {**STRING, "description": "What went wrong, in a sentence."},
        }
    ),
    "Revision": _object(
        {
            "seq": {**INTEGER, "description": "The log position; a moment `@SEQ` names it."},
            "time": TIME,
            "user": STRING,
            "client": {**STRING, "description": "The client's User-Agent, or homeport-cli."},
            "op": {"enum": ["put", "delete", "conflict"]},
            "size": INTEGER,
            "content_type": _nullable("string"),
            "uid": _nullable("string"),
            "summary": STRING,
            "current": BOOLEAN,
            "conflict": BOOLEAN,
        }
    ),
    "History": _object(
        {
            "user": STRING,
            "collection": STRING,
            "item": STRING,
            "href": STRING,
            "revisions": {"type": "array", "items": _ref("Revision")},
        }
    ),
    "Item": _object(
        {
            "collection": STRING,
            "name": STRING,
            "href": STRING,
            "seq": INTEGER,
            "etag": STRING,
            "size": INTEGER,
            "content_type": STRING,
            "uid": _nullable("string"),
        }
    ),
    "Collection": _object(
        {
            "id": INTEGER,
            "path": STRING,
            "href": STRING,
            "kind": {"enum": ["calendar", "addressbook", "plain"]},
            "displayname": _nullable("string"),
            "deleted": BOOLEAN,
        }
    ),
    "ItemResult": _object({"item": _ref("Item")}),
    "UndeleteResult": _object(
        {
            "collection": _ref("Collection"),
            "item": {"oneOf": [_ref("Item"), {"type": "null"}]},
        },
        "`item` is null when a whole collection was undeleted.",
    ),
    "TrashItem": _object(
        {
            "collection": STRING,
            "name": STRING,
            "href": STRING,
            "uid": _nullable("string"),
            "label": {**_nullable("string"), "description": "FN or SUMMARY of the last body."},
            "deleted_seq": INTEGER,
            "deleted_at": TIME,
            "deleted_by": STRING,
            "client": STRING,
            "restore_seq": {
                **_nullable("integer"),
                "description": "The revision an undelete brings back.",
            },
        }
    ),
    "DeletedCollection": _object(
        {
            "path": STRING,
            "id": INTEGER,
            "kind": {"enum": ["calendar", "addressbook", "plain"]},
            "displayname": _nullable("string"),
            "items": {**INTEGER, "description": "Items it held when it was deleted."},
            "deleted_seq": INTEGER,
            "deleted_at": _nullable("string"),
            "deleted_by": _nullable("string"),
            "client": _nullable("string"),
        }
    ),
    "Trash": _object(
        {
            "user": STRING,
            "items": {"type": "array", "items": _ref("TrashItem")},
            "collections": {"type": "array", "items": _ref("DeletedCollection")},
        }
    ),
    "Rollback": _object(
        {
            "user": STRING,
            "to": {**STRING, "description": "The moment rolled back to, in UTC."},
            "position": {**INTEGER, "description": "The log position of that moment."},
            "dry_run": BOOLEAN,
            "applied": {**BOOLEAN, "description": "False for a dry run or nothing to do."},
            "counts": _object(
                {
                    "restore": INTEGER,
                    "delete": INTEGER,
                    "undelete_collection": INTEGER,
                    "delete_collection": INTEGER,
                }
            ),
            "collections": {
                "type": "array",
                "items": _object({"path": STRING, "action": {"enum": ["undelete", "delete"]}}),
            },
            "items": {
                "type": "array",
                "items": _object(
                    {
                        "collection": STRING,
                        "name": STRING,
                        "href": STRING,
                        "action": {"enum": ["restore", "delete"]},
                        "description": STRING,
                        "target_seq": _nullable("integer"),
                        "current_seq": _nullable("integer"),
                    }
                ),
            },
            "first_seq": _nullable("integer"),
            "last_seq": _nullable("integer"),
            "undo_position": {
                **_nullable("string"),
                "description": "Roll back to this (`@SEQ`) to undo the rollback.",
            },
        }
    ),
    "Alert": _object(
        {
            "id": INTEGER,
            "time": TIME,
            "user": {**STRING, "description": "The account whose data was deleted."},
            "collection": STRING,
            "collection_id": INTEGER,
            "deleted_by": STRING,
            "client": STRING,
            "deleted": INTEGER,
            "collection_size": INTEGER,
            "first_seq": {**INTEGER, "description": "The first deletion of the burst."},
            "last_seq": {**INTEGER, "description": "The newest deletion of the burst."},
            "undo_position": {
                **STRING,
                "description": "Roll the collection back to this (`@SEQ`) to undo it.",
            },
            "rollback_command": {
                **STRING,
                "description": "The CLI command that undoes it; DIR is the data directory.",
            },
            "acknowledged": BOOLEAN,
            "acknowledged_by": _nullable("string"),
            "acknowledged_at": _nullable("string"),
        }
    ),
    "Alerts": _object({"alerts": {"type": "array", "items": _ref("Alert")}}),
    "Acknowledged": _object({"id": INTEGER, "acknowledged": BOOLEAN}),
}

ERROR_TEXT = {
    400: "The request is malformed: a bad parameter, body or moment.",
    401: "Credentials are missing or wrong.",
    403: "This belongs to another user.",
    404: "No such user, collection, item, revision or endpoint.",
    405: "The endpoint does not allow this method.",
    409: "The request cannot apply to the current state.",
    413: "The request body is too large.",
}


def _operation_json(op: Operation) -> JSON:
    out: JSON = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
    }
    if op.params:
        out["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": p.schema(),
            }
            for p in op.params
        ]
    if op.body is not None:
        props = {f.name: {**f.schema(), "description": f.description} for f in op.body}
        schema: JSON = {
            "type": "object",
            "properties": props,
            "required": [f.name for f in op.body if f.required],
            "additionalProperties": False,
        }
        out["requestBody"] = {
            "required": bool(schema["required"]),
            "content": {"application/json": {"schema": schema}},
        }
    if op.response is not None:
        content: JSON = {"application/json": {"schema": _ref(op.response)}}
    else:
        content = {media: {} for media in op.media}
    responses: JSON = {"200": {"description": "Success.", "content": content}}
    for status in op.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    out["responses"] = responses
    if not op.authenticated:
        out["security"] = []
    return out


def openapi() -> JSON:
    """The OpenAPI 3.1 description of the history API."""
    paths: dict[str, JSON] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation_json(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Homeport history API",
            "version": __version__,
            "description": (
                "History, trash, undelete and point-in-time rollback of a Homeport "
                "account. Authenticate with HTTP Basic, as for CalDAV/CardDAV. A user acts "
                "on their own data; an admin on anyone's. Errors are JSON objects "
                "`{error, message}`. See docs/api.md."
            ),
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": SCHEMAS,
            "responses": {
                f"E{status}": {
                    "description": text,
                    "content": {"application/json": {"schema": _ref("Error")}},
                }
                for status, text in ERROR_TEXT.items()
            },
        },
    }


def openapi_text() -> str:
    """The description as committed in docs/openapi.json."""
    return json.dumps(openapi(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.buffer.write(openapi_text().encode("utf-8"))
