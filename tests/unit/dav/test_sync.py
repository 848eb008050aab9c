"""RFC 6578 sync-collection bodies from real clients."""

from __future__ import annotations

import pytest
from lxml import etree

from homeport.dav.sync import SyncRequest, parse_sync_collection
from homeport.dav.webdav import PropfindRequest
from homeport.dav.xml import parse_body
from homeport.errors import InvalidRequest

ETAG_PROPS = PropfindRequest("prop", ("{DAV:}getcontenttype", "{DAV:}getetag"))


def parse(body: str) -> etree._Element:
    root = parse_body(body.encode())
    assert root is not None
    return root


DAVX5_INITIAL = (
    "<?xml version='1.0' encoding='UTF-8' ?><sync-collection xmlns=\"DAV:\"><sync-token />"
    "<sync-level>1</sync-level><prop><getcontenttype /><getetag /></prop></sync-collection>"
)

DAVX5_PAGED = (
    "<?xml version='1.0' encoding='UTF-8' ?><sync-collection xmlns=\"DAV:\">"
    "<sync-token>https://homeport.invalid/sync/1234</sync-token><sync-level>1</sync-level>"
    "<limit><nresults>100</nresults></limit>"
    "<prop><getcontenttype /><getetag /></prop></sync-collection>"
)

IOS_SYNC = """<?xml version="1.0" encoding="UTF-8"?>
<A:sync-collection xmlns:A="DAV:">
  <A:sync-token>https://homeport.invalid/sync/99</A:sync-token>
  <A:sync-level>1</A:sync-level>
  <A:prop>
    <A:getcontenttype/>
    <A:getetag/>
  </A:prop>
</A:sync-collection>
"""

RFC6578_INFINITE = """<?xml version="1.0" encoding="utf-8" ?>
<D:sync-collection xmlns:D="DAV:">
  <D:sync-token/>
  <D:sync-level>infinite</D:sync-level>
  <D:prop>
    <D:getetag/>
  </D:prop>
</D:sync-collection>
"""


def test_davx5_initial_and_paged() -> None:
    assert parse_sync_collection(parse(DAVX5_INITIAL)) == SyncRequest(None, "1", None, ETAG_PROPS)
    assert parse_sync_collection(parse(DAVX5_PAGED)) == SyncRequest(
        "https://homeport.invalid/sync/1234", "1", 100, ETAG_PROPS
    )


def test_ios_and_rfc() -> None:
    request = parse_sync_collection(parse(IOS_SYNC))
    assert request.token == "https://homeport.invalid/sync/99"
    assert request.props == ETAG_PROPS
    request = parse_sync_collection(parse(RFC6578_INFINITE))
    assert request.level == "infinite"
    assert request.token is None


def test_lenient_about_what_old_clients_leave_out() -> None:
    body = '<sync-collection xmlns="DAV:"><sync-token>  t  </sync-token></sync-collection>'
    assert parse_sync_collection(parse(body)) == SyncRequest(
        "t", "1", None, PropfindRequest("prop")
    )


@pytest.mark.parametrize(
    "body",
    [
        '<sync-collection xmlns="DAV:"><sync-level>2</sync-level><prop/></sync-collection>',
        '<sync-collection xmlns="DAV:"><sync-token/><sync-token/><prop/></sync-collection>',
        '<sync-collection xmlns="DAV:"><limit><nresults>0</nresults></limit></sync-collection>',
        '<sync-collection xmlns="DAV:"><limit/></sync-collection>',
        '<sync-collection xmlns="DAV:"><prop/><allprop/></sync-collection>',
        '<propfind xmlns="DAV:"/>',
    ],
)
def test_malformed(body: str) -> None:
    root = parse(body)
    with pytest.raises(InvalidRequest):
        parse_sync_collection(root)
    with pytest.raises(InvalidRequest):
        parse_sync_collection(None)
