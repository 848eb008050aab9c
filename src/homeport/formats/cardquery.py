"""CardDAV addressbook-query evaluation (RFC 6352 section 10.5).

`matches` takes a parsed `VCardObject` or the raw body. Pass the parsed object when
you have it (it carries every property, so evaluation never parses again); a body is
parsed once per call, and a body that is not a valid vCard simply matches nothing.

Semantics chosen where RFC 6352 leaves room:
- a prop-filter is satisfied by one property instance that passes its tests together
  (``EMAIL`` containing "work" *and* TYPE=home means one such address, not two);
- a prop-filter names a property regardless of its group (``EMAIL`` finds
  ``item1.EMAIL``); ``item1.EMAIL`` names that group only;
- text-match compares the value with escapes resolved; structured values (N, ADR)
  keep their ";" separators;
- a multi-valued parameter (``TYPE=home,pref``) matches when one value does, and
  negate-condition inverts that whole answer ("no TYPE value is work").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from homeport.errors import ValidationError
from homeport.formats.filters import (
    SUPPORTED_COLLATIONS,
    AddressbookQuery,
    ParamFilter,
    PropFilter,
    TextMatch,
    text_matches,
)
from homeport.formats.vcard import VCardObject, VCardProperty, parse_vcard
from homeport.namespaces import CARDDAV


def _unsupported(tm: TextMatch) -> ValidationError:
    return ValidationError(
        f"collation {tm.collation} is not supported", CARDDAV, "supported-collation"
    )


def check_query(query: AddressbookQuery) -> None:
    """Refuse, before reading any card, a query with a collation we do not implement
    (RFC 6352 section 10.5.4 and the supported-collation precondition of 8.6)."""
    for pf in query.prop_filters:
        tms = list(pf.text_matches) + [
            p.text_match for p in pf.param_filters if p.text_match is not None
        ]
        for tm in tms:
            if tm.collation not in SUPPORTED_COLLATIONS:
                raise _unsupported(tm)


def matches(card: VCardObject | bytes, query: AddressbookQuery) -> bool:
    """Whether a vCard satisfies the query's filter (anyof/allof over prop-filters).

    An empty filter matches every card. Raises ValidationError(supported-collation)
    only for a collation outside SUPPORTED_COLLATIONS (see `check_query`).
    """
    if not isinstance(card, VCardObject):
        try:
            card = parse_vcard(bytes(card))
        except ValidationError:
            return False
    if not query.prop_filters:
        return True
    results = (_match_prop(card, pf) for pf in query.prop_filters)
    return all(results) if query.test == "allof" else any(results)


def _named(card: VCardObject, name: str) -> list[VCardProperty]:
    group, _, prop = name.upper().rpartition(".")
    if not group:
        return card.get(prop)
    return [p for p in card.properties if p.name == prop and (p.group or "").upper() == group]


def _match_prop(card: VCardObject, pf: PropFilter) -> bool:
    """RFC 6352 section 10.5.1."""
    props = _named(card, pf.name)
    if pf.is_not_defined:
        return not props
    if not pf.text_matches and not pf.param_filters:
        return bool(props)
    return any(_match_instance(prop, pf) for prop in props)


def _match_instance(prop: VCardProperty, pf: PropFilter) -> bool:
    results = _instance_results(prop, pf)
    return all(results) if pf.test == "allof" else any(results)


def _instance_results(prop: VCardProperty, pf: PropFilter) -> Iterator[bool]:
    """Each test's outcome, lazily, so anyof/allof stop at the first decisive one."""
    text = prop.text
    for tm in pf.text_matches:
        yield _text(text, tm)
    for pm in pf.param_filters:
        yield _match_param(prop, pm)


def _match_param(prop: VCardProperty, pm: ParamFilter) -> bool:
    """RFC 6352 section 10.5.2."""
    values = prop.param(pm.name)
    if pm.is_not_defined:
        return values is None
    if values is None:
        return False
    if pm.text_match is None:
        return True
    positive = replace(pm.text_match, negate=False)
    hit = any(_text(value, positive) for value in values)
    return hit != pm.text_match.negate


def _text(value: str, tm: TextMatch) -> bool:
    """RFC 6352 section 10.5.4."""
    try:
        return text_matches(value, tm)
    except ValueError:
        raise _unsupported(tm) from None


__all__ = ["check_query", "matches"]
