"""A login the directory already holds on another entry (a manual account or another tool made
it after the worker started): the add is refused once, then the person gets another login, and
that login is never handed out again."""

from __future__ import annotations

from schemas.entities import LoginAssigned, LoginRefused, LoginRequested
from sync.ops import AddEntry
from sync.reconcile import decide
from tests.unit.core_factories import cause, pupil, staff
from tests.unit.test_reconcile import CTX, assigned, record_set, step


def _refused(entity_id: str, login: str, offset: int = 200) -> LoginRefused:
    return LoginRefused(entity_id=entity_id, cause=cause(offset, "ldap.refused"), login=login)


def test_a_refused_login_is_replaced_and_never_handed_out_again() -> None:
    inp = record_set(pupil("P1", first="Zoe", last="Lefevre", ine="1234567890A"), 1)
    requested = step(None, inp)
    (request,) = [e for e in requested.emits if isinstance(e, LoginRequested)]
    allocator = decide(None, request, CTX)
    (answer,) = allocator.emits
    assert isinstance(answer, LoginAssigned) and answer.login == "zoe.lefevre"
    added = step(requested.state, answer)
    assert isinstance(added.ops[0], AddEntry)

    # The shell: the add was refused, another entry holds zoe.lefevre. The state keeps no entry.
    before = added.state.model_copy(update={"applied": None})
    asked = step(before, _refused(inp.entity_id, "zoe.lefevre"))
    assert asked.ops == () and asked.state.login is None
    (again,) = [e for e in asked.emits if isinstance(e, LoginRequested)]
    assert again.refused == "zoe.lefevre"
    reallocated = decide(allocator.state, again, CTX)
    (second,) = reallocated.emits
    assert isinstance(second, LoginAssigned) and second.login == "zoe.lefevre2"
    # A stale answer with the refused login changes nothing; the new one is taken.
    assert step(asked.state, assigned(inp.entity_id, "zoe.lefevre")).state.login is None
    written = step(asked.state, second)
    (op,) = written.ops
    assert isinstance(op, AddEntry) and op.attributes["ENTPersonLogin"] == ("zoe.lefevre2",)

    # Another Zoé Lefèvre never gets the login the directory holds.
    other = record_set(pupil("P2", first="Zoe", last="Lefevre", ine="1234567891A"), 3)
    (request2,) = [e for e in step(None, other).emits if isinstance(e, LoginRequested)]
    third = decide(reallocated.state, request2, CTX)
    (answer3,) = third.emits
    assert isinstance(answer3, LoginAssigned) and answer3.login == "zoe.lefevre3"
    # Delivered twice, the request changes nothing more.
    assert decide(third.state, again, CTX).state == third.state


def test_a_person_whose_entry_exists_keeps_its_login() -> None:
    inp = record_set(pupil("P1", first="Zoe", last="Lefevre", ine="1234567890A"), 1)
    state = step(step(None, inp).state, assigned(inp.entity_id, "zoe.lefevre")).state
    assert state.applied is not None
    kept = step(state, _refused(inp.entity_id, "zoe.lefevre"))
    assert kept.state == state and kept.emits == () and kept.ops == ()


def test_an_academic_login_held_elsewhere_decides_nothing_again() -> None:
    """A teacher's academic login cannot be exchanged: the news changes nothing and tries no
    add again (that would be refused again, for ever)."""
    inp = record_set(staff("T1", first="Paul", academic_login="pmartin"), 1)
    state = step(None, inp).state
    decision = step(state, _refused(inp.entity_id, "pmartin"))
    assert decision.state == state and decision.ops == () and decision.emits == ()
