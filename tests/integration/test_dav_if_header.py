"""The RFC 4918 section 10.4 If header, over HTTP: entity-tag conditions are evaluated
against the resources they name, state tokens never match (Homeport has no locks),
a failed header is 412 and a malformed one 400, and nothing is written either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import Proc, fresh_data, launcher

DOC = "/dav/alice/files/doc.txt"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Proc]:
    data = fresh_data(tmp_path, users=("alice", "bob"))
    with launcher() as starter:
        yield starter.start(data)


@pytest.fixture
def c(server: Proc) -> Iterator[httpx.Client]:
    with server.client() as client:
        assert client.request("MKCOL", "/dav/alice/files/").status_code == 201
        yield client


def etag_of(c: httpx.Client, path: str) -> str:
    r = c.head(path)
    assert r.status_code == 200
    return r.headers["etag"]


def test_a_matching_etag_lets_the_write_through(c: httpx.Client) -> None:
    first = c.put(DOC, content=b"v1").headers["etag"]
    r = c.put(DOC, content=b"v2", headers={"If": f"([{first}])"})
    assert r.status_code == 204
    assert c.get(DOC).content == b"v2"
    r = c.delete(DOC, headers={"If": f"([{first}])"})
    assert r.status_code == 412
    assert (
        c.delete(DOC, headers={"If": f"([{r.headers.get('etag') or etag_of(c, DOC)}])"}).status_code
        == 204
    )


def test_lists_are_alternatives_and_not_negates(c: httpx.Client) -> None:
    tag = c.put(DOC, content=b"v1").headers["etag"]
    assert c.put(DOC, content=b"a", headers={"If": f'(["nope"]) ([{tag}])'}).status_code == 204
    tag = etag_of(c, DOC)
    assert c.put(DOC, content=b"b", headers={"If": f"(Not [{tag}])"}).status_code == 412
    assert c.put(DOC, content=b"b", headers={"If": '(Not ["other"])'}).status_code == 204
    assert c.get(DOC).content == b"b"


def test_state_tokens_never_match_without_locks(c: httpx.Client) -> None:
    tag = c.put(DOC, content=b"v1").headers["etag"]
    token = "<opaquelocktoken:e71d4fae-5dec-22d6-fea5-00a0c91e6be4>"
    assert c.put(DOC, content=b"x", headers={"If": f"({token})"}).status_code == 412
    assert c.put(DOC, content=b"x", headers={"If": f"({token} [{tag}])"}).status_code == 412
    # The litmus idiom: "my lock, or no lock, as long as the ETag matches".
    idiom = f"({token} [{tag}]) (Not <DAV:no-lock> [{tag}])"
    assert c.put(DOC, content=b"x", headers={"If": idiom}).status_code == 204
    assert c.get(DOC).content == b"x"


def test_tagged_lists_are_checked_against_their_own_resource(server: Proc, c: httpx.Client) -> None:
    other = "/dav/alice/files/other.txt"
    other_tag = c.put(other, content=b"o").headers["etag"]
    c.put(DOC, content=b"v1")
    good = f"<{server.url}{other}> ([{other_tag}])"
    assert c.put(DOC, content=b"v2", headers={"If": good}).status_code == 204
    bad = f'<{other}> (["stale"])'
    assert c.put(DOC, content=b"v3", headers={"If": bad}).status_code == 412
    assert c.get(DOC).content == b"v2"
    # Another user's item is never revealed: its ETag condition is simply false.
    with server.client("bob") as b:
        bob_tag = b.put("/dav/bob/contacts/x.vcf", content=_card("x")).headers["etag"]
    probe = f"</dav/bob/contacts/x.vcf> ([{bob_tag}])"
    assert c.put(DOC, content=b"v4", headers={"If": probe}).status_code == 412


def test_reads_and_collections_obey_the_if_header(c: httpx.Client) -> None:
    tag = c.put(DOC, content=b"v1").headers["etag"]
    assert c.get(DOC, headers={"If": f"([{tag}])"}).status_code == 200
    assert c.get(DOC, headers={"If": '(["stale"])'}).status_code == 412
    # A collection has no ETag: an ETag condition on it is false.
    r = c.request("PROPFIND", "/dav/alice/files/", headers={"Depth": "0", "If": f"([{tag}])"})
    assert r.status_code == 412
    r = c.request(
        "MOVE", DOC, headers={"Destination": "/dav/alice/files/moved.txt", "If": '(["stale"])'}
    )
    assert r.status_code == 412
    assert c.get(DOC).status_code == 200


@pytest.mark.parametrize("value", ["", "garbage", "([abc])", '(["a"]', "()", '["a"]'])
def test_a_malformed_if_header_is_400_and_writes_nothing(c: httpx.Client, value: str) -> None:
    c.put(DOC, content=b"v1")
    r = c.put(DOC, content=b"v2", headers={"If": value})
    assert r.status_code == 400, (value, r.status_code)
    assert c.get(DOC).content == b"v1"


def _card(uid: str) -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{uid}\r\nN:{uid};;;;\r\nEND:VCARD\r\n"
    ).encode()
