"""The audit hash chain: untouched chains verify, any single alteration or removal is found."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.auditchain import (
    DUPLICATE,
    EVENT,
    START,
    ChainEnd,
    Finding,
    Gap,
    Incoming,
    Link,
    OffsetRegressed,
    append,
    link_hash,
    offset_gaps,
    verify_chain,
)

values = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=6))
field_maps = st.dictionaries(st.sampled_from(["a", "b", "dn", "raw"]), values, max_size=4)


@st.composite
def chains(draw: st.DrawFn, min_size: int = 1) -> tuple[list[Link], ChainEnd]:
    """A chain built by ``append`` over increasing offsets (holes allowed) and its head."""
    steps = draw(st.lists(st.integers(1, 3), min_size=min_size, max_size=12))
    offsets = [sum(steps[: i + 1]) - 1 for i in range(len(steps))]
    incoming = [
        Incoming(o, {**draw(field_maps), "status": EVENT, "event_id": f"e{o}", "offset": o})
        for o in offsets
    ]
    done = append(START, incoming, known=set())
    return done.links, done.head


def tampers(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.tampering]


@given(chains(min_size=0))
def test_an_untouched_chain_verifies_and_reports_its_gaps(
    chain: tuple[list[Link], ChainEnd],
) -> None:
    links, head = chain
    check = verify_chain(START, links, head)
    assert check.ok and check.records == len(links)
    expected = offset_gaps(None, [link.offset for link in links])
    assert [(f.offset, f.kind) for f in check.gaps] == [(g.start, "gap") for g in expected]


@given(chains(), st.data())
def test_a_changed_record_is_named(chain: tuple[list[Link], ChainEnd], data: st.DataObject) -> None:
    links, head = chain
    i = data.draw(st.integers(0, len(links) - 1))
    name = data.draw(st.sampled_from(["a", "dn", "raw", "status", "offset"]))
    fields = dict(links[i].fields)
    fields[name] = "tampered" if fields.get(name) != "tampered" else "other"
    altered = [*links[:i], replace(links[i], fields=fields), *links[i + 1 :]]
    check = verify_chain(START, altered, head)
    assert not check.ok
    assert [(f.kind, f.offset) for f in tampers(check.findings)] == [("changed", links[i].offset)]


@given(chains(), st.data())
def test_a_changed_and_rehashed_record_breaks_the_next_link_or_the_head(
    chain: tuple[list[Link], ChainEnd], data: st.DataObject
) -> None:
    links, head = chain
    i = data.draw(st.integers(0, len(links) - 1))
    fields = {**links[i].fields, "dn": "uid=someone-else"}
    rehashed = replace(links[i], fields=fields, hash=link_hash(links[i].prev_hash, fields))
    check = verify_chain(START, [*links[:i], rehashed, *links[i + 1 :]], head)
    assert not check.ok
    found = tampers(check.findings)
    if i + 1 < len(links):
        # Right after a hole in the offsets, this cannot be told from a removal.
        kinds = {"broken_link", "missing"}
        assert [(f.kind in kinds, f.offset) for f in found] == [(True, links[i + 1].offset)]
    else:
        assert [f.kind for f in found] == ["truncated"]


@given(chains(), st.data())
def test_a_removed_record_is_found(chain: tuple[list[Link], ChainEnd], data: st.DataObject) -> None:
    links, head = chain
    i = data.draw(st.integers(0, len(links) - 1))
    check = verify_chain(START, [*links[:i], *links[i + 1 :]], head)
    assert not check.ok
    found = tampers(check.findings)
    assert len(found) == 1
    if i + 1 < len(links):
        assert (found[0].kind, found[0].offset) == ("missing", links[i + 1].offset)
        assert found[0].missing is not None
        assert found[0].missing.start <= links[i].offset < found[0].missing.end
    else:
        assert found[0].kind == "truncated"


@given(chains(min_size=2), st.data())
def test_after_pruning_a_prefix_the_rest_verifies_from_its_anchor(
    chain: tuple[list[Link], ChainEnd], data: st.DataObject
) -> None:
    links, head = chain
    k = data.draw(st.integers(0, len(links) - 2))
    anchor = ChainEnd(links[k].offset, links[k].hash)
    rest = links[k + 1 :]
    assert verify_chain(anchor, rest, head).ok
    # One more record removed at the start of what remains is still found.
    assert not verify_chain(anchor, rest[1:], head).ok
    # And a forged anchor does not hide a change.
    assert not verify_chain(ChainEnd(anchor.offset, "f" * 64), rest, head).ok


def test_an_inserted_record_is_found() -> None:
    links = append(
        START, [Incoming(o, {"status": EVENT, "event_id": f"e{o}"}) for o in (0, 2)], set()
    )
    forged = Link(1, {"status": EVENT, "event_id": "forged"}, links.links[0].hash, "")
    forged = replace(forged, hash=link_hash(forged.prev_hash, forged.fields))
    check = verify_chain(START, [links.links[0], forged, links.links[1]], links.head)
    assert [(f.kind, f.offset) for f in tampers(check.findings)] == [("broken_link", 2)]


def test_append_marks_known_and_repeated_event_ids_as_duplicates() -> None:
    batch = [Incoming(o, {"status": EVENT, "event_id": e}) for o, e in enumerate("abab")]
    batch.append(Incoming(4, {"status": "invalid", "event_id": "invalid:x"}))
    first = append(START, batch[:1], known=set())
    rest = append(first.head, batch[1:], known={"a"})
    assert [link.fields["status"] for link in rest.links] == [
        EVENT,
        DUPLICATE,
        DUPLICATE,
        "invalid",
    ]
    assert rest.duplicates == 2 and rest.head.offset == 4
    assert verify_chain(START, [*first.links, *rest.links], rest.head).ok


def test_append_reports_holes_and_refuses_offsets_below_the_head() -> None:
    done = append(
        START, [Incoming(o, {"status": EVENT, "event_id": str(o)}) for o in (2, 3, 7)], set()
    )
    assert done.gaps == [Gap(0, 2), Gap(4, 7)]
    assert Gap(4, 7).describe() == "offsets 4-6" and Gap(0, 1).describe() == "offset 0"
    with pytest.raises(OffsetRegressed):
        append(done.head, [Incoming(7, {"status": EVENT, "event_id": "x"})], set())
    assert append(done.head, [], set()).head == done.head
