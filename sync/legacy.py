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
JOINTURES: Final = ("ENTPersonJointure", "ENTStructureJointure")
# Every name the rules read, for entries whose names come in another case (an LDIF export).
_READ: Final = {
    n.lower(): n
    for n in (
        *RENAMED,
        *RENAMED.values(),
        *JOINTURES,
        "objectClass",
        "entsyncId",
        "entsyncKind",
        "entsyncAccountState",
        "ENTPersonStructRattach",
        "ENTStructureSIREN",
        "ENTEleveStatutEleve",
        "ENTEleveMEF",
        "ENTEleveLibelleMEF",
        "ENTEleveNivFormation",
        "ENTEleveFiliere",
        "ENTEleveMajeur",
        "ENTEleveClasses",
    )
}


def canonical_names(entry: Entry) -> Entry:
    """``entry`` with the names the rules read spelled as entsync writes them (LDAP names
    ignore case; entsync's own entries are already spelled so, and go through untouched)."""
    return {_READ.get(name.lower(), name): values for name, values in entry.items()}


def _first(entry: Entry, name: str, default: str = "") -> str:
    values = entry.get(name)
    return values[0] if values else default


def is_legacy(entry: Entry) -> bool:
    """Whether ``entry`` (names as entsync spells them) is in the earlier form. Cheap: it is
    checked for every entity the core settles."""
    if any(name in entry for name in RENAMED):
        return True
    for name in JOINTURES:
        values = entry.get(name)
        if values and any("$" not in value for value in values):
            return True
    return "ENTEleveMEF" not in entry and "ENTEleve" in entry.get("objectClass", ())


def _source(entry: Entry, sources: JointureSources) -> str:
    kind = _first(entry, "entsyncKind").lower()
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
        new = RENAMED.get(name, name)
        upgraded[new] = tuple(sorted({*upgraded.get(new, ()), *values}))
    source = _source(entry, sources)
    for name in JOINTURES:
        if name in upgraded:
            upgraded[name] = tuple(
                sorted(v if "$" in v else entries.jointure(source, v) for v in upgraded[name])
            )
    if "ENTEleve" in upgraded.get("objectClass", ()):
        _complete_pupil(upgraded)
    if sirens and _needs_siren(upgraded):
        keys = [entries.source_key(v) for v in upgraded.get("ENTStructureJointure", ())]
        siren = next((sirens[k] for k in keys if k in sirens), None)
        if siren is not None:
            upgraded["ENTStructureSIREN"] = (siren,)
    return upgraded


def _needs_siren(entry: Entry) -> bool:
    return "ENTStructure" in entry.get("objectClass", ()) and "ENTStructureSIREN" not in entry


def _complete_pupil(entry: dict[str, tuple[str, ...]]) -> None:
    level = _first(entry, "ENTEleveNivFormation", entries.UNKNOWN_LEVEL)
    mandatory = {
        "ENTEleveStatutEleve": entries.PUPIL_STATUS,
        "ENTEleveMEF": level,
        "ENTEleveLibelleMEF": entries.LEVEL_LABELS.get(level.upper(), level),
        "ENTEleveNivFormation": level,
        "ENTEleveFiliere": entries.PRIMARY_COURSE,
        "ENTEleveMajeur": "N",
    }
    for name, value in mandatory.items():
        entry.setdefault(name, (value,))
    if "ENTEleveClasses" not in entry:
        predeleted = entry.get("entsyncAccountState") == ("predeleted",)
        school = "" if predeleted else _first(entry, "ENTPersonStructRattach")
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
    for dn, found_entry in found:
        entry = canonical_names(found_entry)
        new = upgrade(entry, sources, sirens) if "entsyncId" in entry else entry
        if new is entry:
            new = found_entry  # copied as it was
        else:
            upgraded += 1
        if "entsyncId" in entry and _needs_siren(canonical_names(new)):
            missing.extend(entries.source_key(j) for j in entry.get("ENTStructureJointure", ()))
        out.append((dn, new))
    return Migration(out, upgraded, tuple(sorted(missing)))
