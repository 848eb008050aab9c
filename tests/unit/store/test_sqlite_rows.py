"""The SQLite backend's bulk row readers build the same items as the one-row reader."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from homeport.backends.sqlite import _item, _items
from homeport.store.model import Item

rows = st.tuples(
    st.integers(1, 10**6),
    st.text(min_size=1, max_size=20),
    st.integers(1, 10**9),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    st.integers(0, 10**7),
    st.sampled_from(["text/vcard", "text/calendar", "image/jpeg"]),
    st.none() | st.text(max_size=20),
    st.integers(0, 2**62),
    st.none() | st.sampled_from(["VEVENT", "VTODO"]),
)


@given(st.lists(rows, max_size=5))
def test_items_match_item_field_by_field(batch: list[tuple[object, ...]]) -> None:
    built = _items(batch)
    names = [f.name for f in dataclasses.fields(Item)]
    assert [[getattr(i, n) for n in names] for i in built] == [
        [getattr(_item(row), n) for n in names] for row in batch
    ]
