"""The JSON history API (/api/v1/) against a real `homeport serve`: what it answers, who
may ask, and that no input makes it fail with a 500."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeport.server.api_schema import OPERATIONS, openapi
from tests.conftest import PASSWORD, Server, homeport, start_server

ROOT = Path(__file__).resolve().parents[2]
PHONE = "PhoneReset/2.0"


def vcf(uid: str, fn: str) -> bytes:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nEND:VCARD\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("api") / "data", users=("alice", "bob"))
    homeport(
        "user", "add", "root", "--admin", "--password-stdin", "--data", str(srv.data),
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    try:
        yield srv
    finally:
        srv.stop()


def api(server: Server, user: str = "alice", agent: str = "pytest-api") -> httpx.Client:
    return httpx.Client(
        base_url=server.url, auth=(user, PASSWORD), headers={"User-Agent": agent}, timeout=30
    )


def validate(data: Any, schema_name: str) -> None:
    """Check a response against its schema in the OpenAPI description."""
    jsonschema = pytest.importorskip("jsonschema")
    spec = openapi()
    # The component's $refs point into the description: give it the components beside it.
    schema = {**spec["components"]["schemas"][schema_name], "components": spec["components"]}
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)


def assert_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "message"} and body["message"]
    validate(body, "Error")
    return dict(body)


def new_contact(server: Server, name: str = "", user: str = "alice", fn: str = "Ada") -> str:
    name = name or f"{uuid.uuid4()}.vcf"
    with api(server, user, agent="DAVx5/4.3") as c:
        r = c.put(f"/dav/{user}/contacts/{name}", content=vcf(name, fn))
        assert r.status_code in (201, 204)
    return name


# -- the description ---------------------------------------------------------------------


def test_openapi_is_served_as_committed(server: Server) -> None:
    r = httpx.get(server.url + "/api/v1/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == openapi() == json.loads((ROOT / "docs/openapi.json").read_bytes())


def test_every_documented_operation_is_routed(server: Server) -> None:
    with api(server) as c:
        for op in OPERATIONS:
            path = op.path.replace("{user}", "alice").replace("{seq}", "1").replace("{id}", "1")
            r = c.request(op.method, path)
            assert r.status_code not in (405, 500), (op.operation_id, r.text)
            if r.status_code == 404:
                assert "endpoint" not in r.json()["message"], (op.operation_id, r.text)


def test_security_headers_and_no_caching(server: Server) -> None:
    with api(server) as c:
        for r in (
            c.get("/api/v1/users/alice/trash"),
            c.get("/api/v1/users/bob/trash"),
            httpx.get(server.url + "/api/v1/alerts"),
            c.get("/api/v1/nothing"),
        ):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert r.headers["cache-control"] == "no-store"


def test_authentication_is_required(server: Server) -> None:
    r = httpx.get(server.url + "/api/v1/users/alice/trash")
    assert_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Basic")
    bad = httpx.get(server.url + "/api/v1/users/alice/trash", auth=("alice", "wrong"))
    assert_error(bad, 401)


# -- history, bodies, restore --------------------------------------------------------------


def test_history_body_and_restore(server: Server) -> None:
    name = new_contact(server, fn="Ada")
    new_contact(server, name, fn="Ada Lovelace")
    q = {"collection": "contacts", "item": name}
    with api(server) as c:
        r = c.get("/api/v1/users/alice/history", params=q)
        assert r.status_code == 200
        history = r.json()
        validate(history, "History")
        first, second = history["revisions"]
        assert history["href"] == f"/dav/alice/contacts/{name}"
        assert (first["current"], second["current"]) == (False, True)
        assert second["summary"] == "FN: 'Ada' → 'Ada Lovelace'" and first["client"] == "DAVx5/4.3"

        body = c.get(f"/api/v1/users/alice/history/{first['seq']}", params=q)
        assert body.status_code == 200 and body.content == vcf(name, "Ada")
        assert body.headers["content-type"].startswith("text/vcard")
        assert body.headers["content-disposition"].startswith("attachment")
        assert "sandbox" in body.headers["content-security-policy"]

        r = c.post("/api/v1/users/alice/restore", json={**q, "seq": first["seq"]})
        assert r.status_code == 200, r.text
        validate(r.json(), "ItemResult")
        assert r.json()["item"]["href"] == f"/dav/alice/contacts/{name}"
        assert c.get(f"/dav/alice/contacts/{name}").content == vcf(name, "Ada")
        latest = c.get("/api/v1/users/alice/history", params=q).json()["revisions"][-1]
        assert latest["client"] == "pytest-api" and latest["current"]

        assert_error(c.get("/api/v1/users/alice/history/999999999", params=q), 404)
        assert_error(
            c.get("/api/v1/users/alice/history", params={"collection": "contacts", "item": "x"}),
            404,
        )


def test_trash_and_undelete(server: Server) -> None:
    name = new_contact(server, fn="Trashy")
    with api(server, agent=PHONE) as phone:
        assert phone.delete(f"/dav/alice/contacts/{name}").status_code == 204
    with api(server) as c:
        c.request("MKCOL", "/dav/alice/old-files/")
        c.put("/dav/alice/old-files/a.txt", content=b"hello")
        assert c.delete("/dav/alice/old-files/").status_code == 204

        trash = c.get("/api/v1/users/alice/trash").json()
        validate(trash, "Trash")
        entry = next(e for e in trash["items"] if e["name"] == name)
        assert (entry["label"], entry["client"], entry["collection"]) == (
            "Trashy",
            PHONE,
            "contacts",
        )
        assert [d["path"] for d in trash["collections"]][:1] == ["old-files"]
        only = c.get("/api/v1/users/alice/trash", params={"collection": "contacts"}).json()
        assert only["collections"] == [] and name in {e["name"] for e in only["items"]}

        r = c.post("/api/v1/users/alice/undelete", json={"collection": "contacts", "item": name})
        assert r.status_code == 200, r.text
        validate(r.json(), "UndeleteResult")
        assert c.get(f"/dav/alice/contacts/{name}").content == vcf(name, "Trashy")
        again = c.post(
            "/api/v1/users/alice/undelete", json={"collection": "contacts", "item": name}
        )
        assert assert_error(again, 409)["error"] == "conflict"

        r = c.post("/api/v1/users/alice/undelete", json={"collection": "old-files"})
        assert r.status_code == 200, r.text
        validate(r.json(), "UndeleteResult")
        assert r.json()["item"] is None and not r.json()["collection"]["deleted"]
        assert c.get("/dav/alice/old-files/a.txt").content == b"hello"
        assert_error(c.post("/api/v1/users/alice/undelete", json={"collection": "gone"}), 404)


def test_rollback_dry_run_apply_and_undo(server: Server) -> None:
    with api(server) as c:
        name = new_contact(server, fn="Before")
        position = c.get(
            "/api/v1/users/alice/history", params={"collection": "contacts", "item": name}
        ).json()["revisions"][-1]["seq"]
        new_contact(server, name, fn="After")
        extra = new_contact(server, fn="Newcomer")

        dry = c.post("/api/v1/users/alice/rollback", json={"to": f"@{position}", "dry_run": True})
        assert dry.status_code == 200, dry.text
        plan = dry.json()
        validate(plan, "Rollback")
        assert plan["dry_run"] and not plan["applied"] and plan["undo_position"] is None
        assert {(i["name"], i["action"]) for i in plan["items"]} >= {
            (name, "restore"),
            (extra, "delete"),
        }
        assert c.get(f"/dav/alice/contacts/{extra}").status_code == 200

        done = c.post(
            "/api/v1/users/alice/rollback", json={"to": f"@{position}", "collection": "contacts"}
        )
        assert done.status_code == 200, done.text
        result = done.json()
        validate(result, "Rollback")
        assert result["applied"] and result["undo_position"] == f"@{result['first_seq'] - 1}"
        assert c.get(f"/dav/alice/contacts/{name}").content == vcf(name, "Before")
        assert c.get(f"/dav/alice/contacts/{extra}").status_code == 404

        undo = c.post(
            "/api/v1/users/alice/rollback",
            json={"to": result["undo_position"], "collection": "contacts", "dry_run": False},
        )
        assert undo.status_code == 200 and undo.json()["applied"]
        assert c.get(f"/dav/alice/contacts/{name}").content == vcf(name, "After")
        assert c.get(f"/dav/alice/contacts/{extra}").status_code == 200

        for moment in (
            "yesterday",
            "in two hours",
            "2999-01-01T00:00:00Z",
            "@-1",
            "@99999999",
            "99999999999 weeks ago",
            "0001-01-01T00:00:00+05:00",
        ):
            assert_error(c.post("/api/v1/users/alice/rollback", json={"to": moment}), 400)


# -- who may act on what -------------------------------------------------------------------


def test_users_act_on_their_own_data_only(server: Server) -> None:
    name = new_contact(server)
    q = {"collection": "contacts", "item": name}
    with api(server, "bob") as bob:
        requests = [
            bob.get("/api/v1/users/alice/history", params=q),
            bob.get("/api/v1/users/alice/history/1", params=q),
            bob.get("/api/v1/users/alice/trash"),
            bob.post("/api/v1/users/alice/restore", json={**q, "seq": 1}),
            bob.post("/api/v1/users/alice/undelete", json={"collection": "contacts"}),
            bob.post("/api/v1/users/alice/rollback", json={"to": "@1", "dry_run": True}),
            bob.get("/api/v1/alerts", params={"user": "alice"}),
            # No difference between a user that exists and one that does not.
            bob.get("/api/v1/users/nobody/trash"),
        ]
        for r in requests:
            assert assert_error(r, 403)["error"] == "forbidden"
        mine = bob.get("/api/v1/users/bob/trash")
        assert mine.status_code == 200 and mine.json()["items"] == []


def test_admins_act_on_anyones_data(server: Server) -> None:
    name = new_contact(server, fn="One")
    new_contact(server, name, fn="Two")
    q = {"collection": "contacts", "item": name}
    with api(server, "root") as root:
        history = root.get("/api/v1/users/alice/history", params=q)
        assert history.status_code == 200
        first = history.json()["revisions"][0]["seq"]
        r = root.post("/api/v1/users/alice/restore", json={**q, "seq": first})
        assert r.status_code == 200
        with api(server) as alice:
            assert alice.get(f"/dav/alice/contacts/{name}").content == vcf(name, "One")
        last = root.get("/api/v1/users/alice/history", params=q).json()["revisions"][-1]
        assert last["user"] == "root"
        assert_error(root.get("/api/v1/users/nobody/trash"), 404)
        assert root.get("/api/v1/alerts").status_code == 200


def test_mass_deletion_alert_and_acknowledge(server: Server) -> None:
    names = [new_contact(server, user="bob", fn=f"B{i}") for i in range(12)]
    with api(server, "bob", agent=PHONE) as phone:
        for n in names:
            assert phone.delete(f"/dav/bob/contacts/{n}").status_code == 204
    with api(server, "bob") as bob:
        alerts = bob.get("/api/v1/alerts").json()
        validate(alerts, "Alerts")
        [alert] = [a for a in alerts["alerts"] if a["collection"] == "contacts"]
        assert alert["client"] == PHONE and alert["deleted"] == 12 and not alert["acknowledged"]
        assert alert["rollback_command"].startswith("homeport rollback --data DIR --user bob")
        assert alert["undo_position"] in alert["rollback_command"]
        with api(server) as alice:
            assert all(a["user"] == "alice" for a in alice.get("/api/v1/alerts").json()["alerts"])
            assert_error(alice.post(f"/api/v1/alerts/{alert['id']}/acknowledge"), 403)
        r = bob.post(f"/api/v1/alerts/{alert['id']}/acknowledge")
        assert r.status_code == 200 and r.json() == {"id": alert["id"], "acknowledged": True}
        assert alert["id"] not in {a["id"] for a in bob.get("/api/v1/alerts").json()["alerts"]}
        listed = bob.get("/api/v1/alerts", params={"include_acknowledged": "true"}).json()
        assert next(a for a in listed["alerts"] if a["id"] == alert["id"])["acknowledged"]
        assert_error(bob.post("/api/v1/alerts/99999/acknowledge"), 404)
        # The position in the alert undoes the deletion through the API too.
        r = bob.post(
            "/api/v1/users/bob/rollback",
            json={"to": alert["undo_position"], "collection": "contacts"},
        )
        assert r.status_code == 200 and r.json()["counts"]["restore"] == 12


# -- bad input is a 4xx with a JSON body, never a 500 ---------------------------------------

BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "/api/v1/users/alice/history", {}, 400),
    ("GET", "/api/v1/users/alice/history?collection=contacts", {}, 400),
    ("GET", "/api/v1/users/alice/history?collection=contacts&item=a&item=b", {}, 400),
    ("GET", "/api/v1/users/alice/history?collection=contacts&item=a&bogus=1", {}, 400),
    ("GET", "/api/v1/users/alice/history?collection=&item=a", {}, 400),
    ("GET", "/api/v1/users/alice/history?collection=%00&item=a", {}, 400),
    ("GET", "/api/v1/users/alice/history?collection=nope&item=a", {}, 404),
    ("GET", "/api/v1/users/alice/history/abc?collection=contacts&item=a", {}, 400),
    ("GET", "/api/v1/users/alice/history/-1?collection=contacts&item=a", {}, 400),
    ("GET", "/api/v1/users/alice/history/%C2%B2?collection=contacts&item=a", {}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {"to": "@²"}}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {"to": "@١٢"}}, 400),
    ("GET", "/api/v1/users/alice/history/99999999999999999999999?collection=c&item=a", {}, 400),
    ("GET", "/api/v1/users/%FF/trash", {}, 400),
    ("GET", "/api/v1/users/alice/trash?collection=../../etc", {}, 404),
    ("GET", "/api/v1/alerts?include_acknowledged=maybe", {}, 400),
    ("GET", "/api/v1/alerts/1/acknowledge", {}, 405),
    ("DELETE", "/api/v1/users/alice/trash", {}, 405),
    ("GET", "/api/v1/", {}, 404),
    ("GET", "/api", {}, 404),
    ("GET", "/api/v2/users/alice/trash", {}, 404),
    ("GET", "/api/v1/users/alice/trash/extra", {}, 404),
    ("POST", "/api/v1/users/alice/rollback", {"content": b"{bad json"}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"content": b"[1, 2]"}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"content": b'{"to": NaN}'}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"content": b'{"to": "@1", "to": 1}'}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"content": b"\xff\xfe"}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"content": b"[" * 100_000}, 413),
    ("POST", "/api/v1/users/alice/rollback", {"content": b"[" * 60_000}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {}}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {"to": 5}}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {"to": "@1", "dryrun": True}}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {"to": "@1", "dry_run": "yes"}}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {"to": "soon"}}, 400),
    ("POST", "/api/v1/users/alice/rollback", {"json": {"to": "1 h ago", "collection": 3}}, 400),
    ("POST", "/api/v1/users/alice/restore", {"json": {"collection": "contacts"}}, 400),
    (
        "POST",
        "/api/v1/users/alice/restore",
        {"json": {"collection": "contacts", "item": "a", "seq": True}},
        400,
    ),
    (
        "POST",
        "/api/v1/users/alice/restore",
        {"json": {"collection": "contacts", "item": "a", "seq": 1.5}},
        400,
    ),
    (
        "POST",
        "/api/v1/users/alice/restore",
        {"json": {"collection": "contacts", "item": "a", "seq": 2**70}},
        400,
    ),
    ("POST", "/api/v1/users/alice/undelete", {"json": {"item": "a"}}, 400),
    ("POST", "/api/v1/users/alice/undelete", {"json": {"collection": "x" * 5000}}, 400),
    ("POST", "/api/v1/alerts/abc/acknowledge", {}, 400),
    ("POST", "/api/v1/alerts/1/acknowledge", {"json": {"why": "x"}}, 400),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), BAD_REQUESTS)
def test_bad_requests_are_refused_with_json(
    server: Server, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    with api(server) as c:
        before = c.get("/api/v1/users/alice/trash").json()
        r = c.request(method, path, **kwargs)
        assert_error(r, status)
        assert c.get("/api/v1/users/alice/trash").json() == before


SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
JSON_VALUES = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)
MEMBERS = st.sampled_from(["to", "collection", "item", "seq", "dry_run", "x"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    endpoint=st.sampled_from(["rollback", "restore", "undelete"]),
    body=st.dictionaries(MEMBERS, JSON_VALUES, max_size=4) | JSON_VALUES,
)
def test_random_bodies_never_fail_the_server(server: Server, endpoint: str, body: object) -> None:
    if isinstance(body, dict) and endpoint == "rollback" and body.get("dry_run") is not True:
        body["dry_run"] = True  # random rollbacks would be valid ones, too
    with api(server) as c:
        r = c.post(f"/api/v1/users/alice/{endpoint}", json=body)
        assert r.status_code in (200, 400, 404, 409), r.text
        assert r.headers["content-type"] == "application/json"
