"""What entsync writes to the directory, as names: derived by running the entry builders.

The directory preflight must know which object classes and attribute types entsync writes, and
with which classes together. A hand-kept list would drift from :mod:`sync.entries`, so this
module builds a sample entry of every kind and state through the real builders (every optional
record field filled, so that every attribute a builder can emit shows) and keeps only the
shapes: classes, attribute names, and which attributes got several values. Values are dummies
and never leave this module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from schemas.entities import BlockSpec, GroupSpec, ManualAccount
from schemas.feed import ClassAssignment, Guardian, Pupil, School, Staff
from sync import bridge, dit, entries, ids

M = TypeVar("M", bound=BaseModel)

BASE_DN: Final = dit.DEFAULT_BASE_DN
NAMESPACE: Final = "preflight"
_WHEN: Final = datetime(2025, 1, 1, tzinfo=UTC)
# Optional record fields, by annotation, and a dummy that fills them (two values for tuples, so
# that multi-valued attributes show as such).
_FILLERS: Final[tuple[tuple[Any, Any], ...]] = (
    (str | None, "x"),
    (tuple[str, ...], ("x", "y")),
    (date | None, date(2015, 1, 1)),
    (bool | None, True),
)


@dataclass(frozen=True)
class EntryShape:
    """The names one kind of entry carries. ``label`` says which kind, for messages."""

    label: str
    classes: tuple[str, ...]
    attributes: frozenset[str]  # objectClass excluded
    multi_valued: frozenset[str]


def shape(label: str, entry: entries.Entry) -> EntryShape:
    return EntryShape(
        label=label,
        classes=tuple(entry.get("objectClass", ())),
        attributes=frozenset(name for name in entry if name.lower() != "objectclass"),
        multi_valued=frozenset(
            name for name, values in entry.items() if len(values) > 1 and name != "objectClass"
        ),
    )


def filled(record: M) -> M:
    """``record`` with every empty optional field of a known type given a dummy value."""
    update: dict[str, Any] = {}
    for name, info in type(record).model_fields.items():
        if getattr(record, name) not in (None, ()):
            continue
        for annotation, dummy in _FILLERS:
            if info.annotation == annotation:
                update[name] = dummy
                break
    return record.model_copy(update=update)


def _classes(school: str) -> tuple[ClassAssignment, ...]:
    return tuple(ClassAssignment(school_jointure=school, code=c, label=c) for c in ("A", "B"))


def _guardian_ids(pupil: Pupil) -> frozenset[str]:
    """Every guardian of ``pupil`` as having an entry (so that ENTEleveParents shows)."""
    return frozenset(ids.guardian_id(NAMESPACE, j) for j in pupil.guardian_jointures)


def _people() -> Iterator[tuple[str, entries.Entry]]:
    """Every person entry kind, active and disappeared."""
    school = "S"
    pupil = filled(
        Pupil(
            jointure="P",
            last_name="x",
            first_name="x",
            school_jointure=school,
            classes=_classes(school),
        )
    )
    guardian = filled(Guardian(jointure="G", last_name="x", first_name="x"))
    for state in ("active", "disappeared"):
        common: dict[str, Any] = {
            "login": "x",
            "account_state": state,
            "disappeared_at": _WHEN,
            "base_dn": BASE_DN,
        }
        yield (
            "pupil",
            entries.pupil_entry(
                "p", pupil, parents=_guardian_ids(pupil), namespace=NAMESPACE, **common
            ),
        )
        yield "guardian", entries.guardian_entry("g", guardian, children=("p", "q"), **common)
        yield "guardian without child", entries.guardian_entry("h", guardian, children=(), **common)
        for teacher in (True, False):
            staff = filled(
                Staff(
                    jointure="T",
                    last_name="x",
                    first_name="x",
                    attachment_school_jointure=school,
                    is_teacher=teacher,
                    is_director=True,
                )
            )
            label = "teacher" if teacher else "non-teaching staff"
            classes = ((school, "A"), (school, "B"))
            yield label, entries.staff_entry("t", staff, classes=classes, **common)
        for profile in ("guardian", "guest"):
            account = filled(
                ManualAccount(
                    profile=profile, first_name="x", last_name="x", school_jointure=school
                )
            )
            yield (
                f"manual {profile}",
                entries.manual_entry("m", account, login="x", account_state=state, base_dn=BASE_DN),
            )


def _groups() -> Iterator[tuple[str, entries.Entry]]:
    specs = {
        "class group": GroupSpec(school_jointure="S", profile="pupils", class_code="A"),
        "school group": GroupSpec(school_jointure="S", profile="teachers"),
        "GAR group": dit.gar_group_spec("S"),
    }
    for label, spec in specs.items():
        yield label, entries.group_entry("grp", spec, ("p", "q"), base_dn=BASE_DN)


def _bridged(entry: entries.Entry) -> entries.Entry:
    """A guardian entry with what the parent bridge writes on it."""
    owned = bridge.guardian_attributes(
        bridge_id="x",
        origin="FranceConnect",
        attached_dns=("a", "b"),
        blocked_dns=("c", "d"),
        ent_login_disabled=True,
    )
    return {**entry, **bridge.present(owned)}


def sample_entries(*, bridge_owned: bool = True) -> Iterator[tuple[str, entries.Entry]]:
    """(label, entry) for every kind and state of entry entsync writes; ``bridge_owned``: with
    what the parent bridge writes on guardians (the reconciler's own entries without it)."""
    block = BlockSpec(
        block_id="b", school_jointure="S", profile="pupils", start=_WHEN, end=_WHEN, message="x"
    )
    for label, entry in _people():
        yield label, entry
        yield f"{label}, pre-deleted", entries.predeleted(entry, _WHEN)
        yield f"{label}, blocked", entries.blocked(entry, block)
        if label == "guardian" and bridge_owned:
            yield "guardian, parent bridge", _bridged(entry)
    school = filled(School(jointure="S", uai="0000000A", name="x"))
    yield "school", entries.school_entry("s", school)
    yield from _groups()


def written_shapes() -> tuple[EntryShape, ...]:
    """The shapes of every entry entsync writes, each once."""
    return tuple(dict.fromkeys(shape(label, entry) for label, entry in sample_entries()))


def written_names(shapes: Iterable[EntryShape]) -> tuple[frozenset[str], frozenset[str]]:
    """(object classes, attribute types) the shapes use."""
    shapes = list(shapes)
    classes = frozenset(c for s in shapes for c in s.classes)
    attributes = frozenset(a for s in shapes for a in s.attributes)
    return classes, attributes


@functools.cache
def reconciler_names() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Per entity kind (``entsyncKind``), the (object classes, attribute types) the reconciler
    writes itself: what its ``applied`` entries may hold (an entry read back from the directory
    is cut to them; what the bridge or other tools write on it is theirs)."""
    by_kind: dict[str, list[EntryShape]] = {}
    for label, entry in sample_entries(bridge_owned=False):
        by_kind.setdefault(entry["entsyncKind"][0], []).append(shape(label, entry))
    return {
        kind: (classes, attributes | {"objectClass"})
        for kind, shapes in by_kind.items()
        for classes, attributes in [written_names(shapes)]
    }
