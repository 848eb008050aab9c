"""The SQLite backend's fast row readers build the same objects as the dataclasses' own
constructors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeport.backends.sqlite import _collection, _item, _items
from homeport.store.model import Collection, CollectionKind, Item

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


collection_rows = st.tuples(
    st.integers(1, 10**6),
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=40),
    st.sampled_from([k.value for k in CollectionKind]),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.none() | st.text(max_size=20),
    st.none() | st.text(max_size=20),
    st.none() | st.text(max_size=9),
    st.none() | st.text(max_size=5),
    st.none() | st.sampled_from(["", "VEVENT", "VEVENT,VTODO", "VTODO,,VJOURNAL", ","]),
    st.none() | st.integers(0, 10**9),
)


@given(collection_rows)
def test_collection_rows_match_the_dataclass(row: tuple[object, ...]) -> None:
    raw = row[10]
    expected = Collection(
        id=row[0],  # type: ignore[arg-type]
        owner=row[1],  # type: ignore[arg-type]
        path=row[2],  # type: ignore[arg-type]
        kind=CollectionKind(row[3]),
        created_seq=row[4],  # type: ignore[arg-type]
        sync_seq=row[5],  # type: ignore[arg-type]
        displayname=row[6],  # type: ignore[arg-type]
        description=row[7],  # type: ignore[arg-type]
        color=row[8],  # type: ignore[arg-type]
        order=row[9],  # type: ignore[arg-type]
        components=tuple(c for c in (raw or "").split(",") if c),  # type: ignore[attr-defined]
        deleted_seq=row[11],  # type: ignore[arg-type]
    )
    built = _collection(row)
    assert built == expected
    assert vars(built) == vars(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.path = "elsewhere"  # type: ignore[misc]


def test_a_collection_row_of_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        _collection((1, "alice", "x", "spreadsheet", 0, 0, None, None, None, None, "", None))
