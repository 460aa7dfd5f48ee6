"""Entries written before the published SDET schema, brought to today's form (pure).

Up to commit 072a288 entsync wrote its own reconstruction of the SDET schema. An entry of that
version differs from what :mod:`sync.entries` writes now in these ways, each mended by one rule:

1. Names SDET does not have: ``ENTEleveCycle`` becomes ``entsyncCycle``, ``ENTGroupeNom``
   ``entsyncGroupName``, ``ENTAuxEnsEtablissements`` ``entsyncSchool``, and the guardian DNs of
   ``ENTElevePersRelEleve`` (an ``id$codes`` string in SDET) ``ENTEleveParents``.
2. Bare jointures: ``ENTPersonJointure`` / ``ENTStructureJointure`` become ``SOURCE$key``, the
   source by entity kind (staff: the staff feed's; manual accounts: ``ENT``; else ONDE's).
3. Pupils lacked what SDET makes mandatory: status, MEF (the level), its label, course, of age
   (``N``: the entry does not carry the school year it is judged on; the next record of the pupil
   corrects it) and, for a pupil with no class, ``ENTEleveClasses`` naming its school only (``$``
   when pre-deleted or schoolless), all as :func:`sync.entries.pupil_entry` writes them.
4. Schools lacked the SIREN: it is added when the caller knows it (the last EtabEducNat extract);
   an entry without one cannot be loaded under the SDET schema and is reported by the caller.

Used twice, so the two agree: on the LDIF of an old directory (``entsync directory
migrate-ldif``), and on the entry a worker's state remembers as applied (:func:`upgrade_state`),
so that an unchanged record changes nothing after the upgrade and a changed one never asks the
directory to remove a name the schema no longer defines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from schemas.state import EntityState
from sync import entries
from sync.entries import Entry, JointureSources

RENAMED: Final = {
    "ENTEleveCycle": "entsyncCycle",
    "ENTGroupeNom": "entsyncGroupName",
    "ENTAuxEnsEtablissements": "entsyncSchool",
    "ENTElevePersRelEleve": "ENTEleveParents",
}
_RENAMED_LOWER: Final = {old.lower(): new for old, new in RENAMED.items()}
JOINTURES: Final = ("ENTPersonJointure", "ENTStructureJointure")


def _name(entry: Entry, wanted: str) -> str | None:
    """The attribute name of ``entry`` that is ``wanted`` (LDAP names ignore case)."""
    if wanted in entry:
        return wanted
    lower = wanted.lower()
    return next((name for name in entry if name.lower() == lower), None)


def _values(entry: Entry, wanted: str) -> tuple[str, ...]:
    name = _name(entry, wanted)
    return entry[name] if name is not None else ()


def _is_pupil(entry: Entry) -> bool:
    return "enteleve" in {c.lower() for c in _values(entry, "objectClass")}


def is_legacy(entry: Entry) -> bool:
    """Whether ``entry`` is in the earlier form (cheap: checked on every settled entity)."""
    if any(name.lower() in _RENAMED_LOWER for name in entry):
        return True
    for name in JOINTURES:
        if any("$" not in value for value in _values(entry, name)):
            return True
    return _is_pupil(entry) and not _values(entry, "ENTEleveMEF")


def _source(entry: Entry, sources: JointureSources) -> str:
    kind = (_values(entry, "entsyncKind") or ("",))[0].lower()
    if kind == "staff":
        return sources.staff
    if kind == "manual":
        return entries.MANUAL_SOURCE
    return sources.onde


def upgrade(
    entry: Entry, sources: JointureSources, sirens: Mapping[str, str] | None = None
) -> Entry:
    """``entry`` in today's form; the same object when it is already (rules in the docstring).

    ``sirens``: school jointure (bare) -> SIREN, for school entries that have none."""
    if not is_legacy(entry) and not (sirens and _needs_siren(entry)):
        return entry
    upgraded: dict[str, tuple[str, ...]] = {}
    for name, values in entry.items():
        new = _RENAMED_LOWER.get(name.lower(), name)
        upgraded[new] = tuple(sorted({*upgraded.get(new, ()), *values}))
    source = _source(entry, sources)
    for name in JOINTURES:
        present = _name(upgraded, name)
        if present is not None:
            upgraded[present] = tuple(
                sorted(v if "$" in v else entries.jointure(source, v) for v in upgraded[present])
            )
    if _is_pupil(upgraded):
        _complete_pupil(upgraded)
    if sirens and _needs_siren(upgraded):
        keys = [entries.source_key(v) for v in _values(upgraded, "ENTStructureJointure")]
        siren = next((sirens[k] for k in keys if k in sirens), None)
        if siren is not None:
            upgraded["ENTStructureSIREN"] = (siren,)
    return upgraded


def _needs_siren(entry: Entry) -> bool:
    classes = {c.lower() for c in _values(entry, "objectClass")}
    return "entstructure" in classes and not _values(entry, "ENTStructureSIREN")


def _complete_pupil(entry: dict[str, tuple[str, ...]]) -> None:
    level = (_values(entry, "ENTEleveNivFormation") or (entries.UNKNOWN_LEVEL,))[0]
    mandatory = {
        "ENTEleveStatutEleve": entries.PUPIL_STATUS,
        "ENTEleveMEF": level,
        "ENTEleveLibelleMEF": entries.LEVEL_LABELS.get(level.upper(), level),
        "ENTEleveNivFormation": level,
        "ENTEleveFiliere": entries.PRIMARY_COURSE,
        "ENTEleveMajeur": "N",
    }
    for name, value in mandatory.items():
        if not _values(entry, name):
            entry[name] = (value,)
    if not _values(entry, "ENTEleveClasses"):
        predeleted = _values(entry, "entsyncAccountState") == ("predeleted",)
        school = "" if predeleted else (_values(entry, "ENTPersonStructRattach") or ("",))[0]
        entry["ENTEleveClasses"] = (f"{school}${entries.NO_CLASS}",)


def upgrade_state(state: EntityState, sources: JointureSources) -> EntityState:
    """The state with its remembered entry in today's form (the same object when it is)."""
    applied = state.applied
    if applied is None or not is_legacy(applied):
        return state
    return state.model_copy(update={"applied": upgrade(applied, sources)})


@dataclass(frozen=True, slots=True)
class Migration:
    """What :func:`migrate` did to a whole directory's entries."""

    entries: list[tuple[str, Entry]]
    upgraded: int
    schools_without_siren: tuple[str, ...]  # jointures (bare) of school entries still lacking one


def migrate(
    found: Iterable[tuple[str, Entry]], sources: JointureSources, sirens: Mapping[str, str]
) -> Migration:
    """Every managed entry (it has an ``entsyncId``) in today's form; other entries as they are."""
    out: list[tuple[str, Entry]] = []
    upgraded = 0
    missing: list[str] = []
    for dn, entry in found:
        new = upgrade(entry, sources, sirens) if _values(entry, "entsyncId") else entry
        upgraded += new is not entry
        if _needs_siren(new) and _values(new, "entsyncId"):
            missing.extend(entries.source_key(j) for j in _values(new, "ENTStructureJointure"))
        out.append((dn, new))
    return Migration(out, upgraded, tuple(sorted(missing)))
