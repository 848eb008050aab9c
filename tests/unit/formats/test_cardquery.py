"""addressbook-query evaluation (RFC 6352 section 10.5)."""

from __future__ import annotations

from typing import Literal

import pytest

from homeport.errors import ValidationError
from homeport.formats.cardquery import check_query, matches
from homeport.formats.filters import AddressbookQuery, MatchType, ParamFilter, PropFilter, TextMatch
from homeport.formats.vcard import parse_vcard
from homeport.namespaces import CARDDAV

from .samples import DAVX5, EVOLUTION, IOS, THUNDERBIRD

CARDS = {"ios": IOS, "davx5": DAVX5, "thunderbird": THUNDERBIRD, "evolution": EVOLUTION}


def tm(
    text: str,
    match_type: MatchType = "contains",
    collation: str = "i;unicode-casemap",
    negate: bool = False,
) -> TextMatch:
    return TextMatch(text, collation, negate, match_type)


def q(*props: PropFilter, test: Literal["anyof", "allof"] = "anyof") -> AddressbookQuery:
    return AddressbookQuery(prop_filters=props, test=test)


def hits(query: AddressbookQuery) -> set[str]:
    return {name for name, body in CARDS.items() if matches(parse_vcard(body), query)}


def test_empty_filter_matches_every_card() -> None:
    assert hits(q()) == set(CARDS)


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (tm("johnny appleseed", "equals"), {"ios"}),
        (tm("johnny", "equals"), set()),
        (tm("erika", "starts-with"), {"davx5"}),
        (tm("BIRD", "ends-with"), {"thunderbird"}),
        (tm("a", "contains"), {"ios", "davx5", "evolution"}),
        (tm("STRASSE", "starts-with"), {"evolution"}),  # full case folding: ß = ss
        (tm("STRASSE", "starts-with", "i;ascii-casemap"), set()),
        (tm("ärger", "ends-with", "i;ascii-casemap"), set()),  # Ä is not ASCII
        (tm("ärger", "ends-with"), {"evolution"}),
        (tm("straße", "starts-with", "i;ascii-casemap"), {"evolution"}),
        (tm("thunder", collation="i;octet"), set()),
        (tm("Thunder", collation="i;octet"), {"thunderbird"}),
        (tm("bird", negate=True), {"ios", "davx5", "evolution"}),
    ],
)
def test_text_match_on_fn(match: TextMatch, expected: set[str]) -> None:
    assert hits(q(PropFilter("FN", text_matches=(match,)))) == expected


def test_group_prefixes_are_transparent_unless_named() -> None:
    assert hits(q(PropFilter("EMAIL", text_matches=(tm("johnny@"),)))) == {"ios"}
    assert hits(q(PropFilter("item1.EMAIL"))) == {"ios"}
    assert hits(q(PropFilter("item2.EMAIL"))) == set()


def test_presence_and_absence() -> None:
    assert hits(q(PropFilter("PHOTO"))) == {"ios"}
    assert hits(q(PropFilter("UID", is_not_defined=True))) == {"evolution"}
    assert hits(q(PropFilter("X-MOZILLA-HTML"))) == {"thunderbird"}


def test_param_filters() -> None:
    work = ParamFilter("TYPE", text_match=tm("work", "equals"))
    assert hits(q(PropFilter("EMAIL", param_filters=(work,)))) == {"ios", "davx5"}
    assert hits(q(PropFilter("TEL", param_filters=(work,)))) == {"evolution"}
    assert hits(q(PropFilter("EMAIL", param_filters=(ParamFilter("PREF"),)))) == {"thunderbird"}
    no_type = ParamFilter("TYPE", is_not_defined=True)
    assert hits(q(PropFilter("EMAIL", param_filters=(no_type,)))) == {"thunderbird"}
    # negation covers the whole parameter: no TYPE value is "work"
    not_work = ParamFilter("TYPE", text_match=tm("work", "equals", negate=True))
    assert hits(q(PropFilter("EMAIL", param_filters=(not_work,)))) == {"ios", "evolution"}


def test_anyof_and_allof_inside_a_prop_filter_apply_to_one_property() -> None:
    # iOS has a pref address johnny@... and a WORK address j.appleseed@...
    johnny_work = (tm("johnny@"),)
    work = (ParamFilter("TYPE", text_match=tm("work", "equals")),)
    allof = PropFilter("EMAIL", text_matches=johnny_work, param_filters=work, test="allof")
    anyof = PropFilter("EMAIL", text_matches=johnny_work, param_filters=work, test="anyof")
    assert hits(q(allof)) == set()
    assert hits(q(anyof)) == {"ios", "davx5"}
    pref = PropFilter(
        "EMAIL",
        text_matches=johnny_work,
        param_filters=(ParamFilter("TYPE", text_match=tm("pref", "equals")),),
        test="allof",
    )
    assert hits(q(pref)) == {"ios"}


def test_anyof_and_allof_across_prop_filters() -> None:
    fn_erika = PropFilter("FN", text_matches=(tm("erika"),))
    has_photo = PropFilter("PHOTO")
    assert hits(q(fn_erika, has_photo)) == {"ios", "davx5"}
    assert hits(q(fn_erika, has_photo, test="allof")) == set()
    assert hits(q(fn_erika, PropFilter("NOTE"), test="allof")) == {"davx5"}


def test_text_is_compared_unescaped_and_structured_values_keep_separators() -> None:
    assert hits(q(PropFilter("NOTE", text_matches=(tm("fosdem, brussels"),)))) == {"davx5"}
    assert hits(q(PropFilter("N", text_matches=(tm("mustermann;erika", "starts-with"),)))) == {
        "davx5"
    }


def test_raw_bodies_are_accepted_and_invalid_ones_match_nothing() -> None:
    query = q(PropFilter("FN", text_matches=(tm("thunder"),)))
    assert matches(THUNDERBIRD, query)
    assert not matches(b"not a vcard", query)
    assert not matches(b"not a vcard", q())


def test_unsupported_collation_is_a_carddav_precondition() -> None:
    query = q(PropFilter("FN", text_matches=(tm("x", collation="i;klingon"),)))
    with pytest.raises(ValidationError) as info:
        matches(IOS, query)
    assert (info.value.namespace, info.value.precondition) == (CARDDAV, "supported-collation")
    with pytest.raises(ValidationError):
        check_query(query)
    check_query(q(PropFilter("FN", text_matches=(tm("x"),))))
