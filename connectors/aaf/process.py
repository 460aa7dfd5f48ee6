"""The per-record core shared by pass 1 (scan) and pass 2 (events): raw request → outcome.

Both passes run exactly this code on the same bytes with the same context, which is what makes
pass 2 yield what pass 1 validated.

``modifyRequest`` policy: the contract's events carry full records, and a modification carries
only the attributes that changed. A modification is therefore completed against ``base`` (a
mapping ``record_key → record`` given by the caller: the directory's or a state store's current
view, or :func:`connectors.aaf.collect_records` of an earlier full extract): the base record is
turned back into attributes, the modified attributes replace theirs, and the result is validated
like an ``addRequest`` (admission holds are recomputed). A modification whose record is not in
``base`` (or when no base is given) is **not published** and is reported as rejected with rule
``modify_unknown_record``. Known loss: a base pupil held for an invalid INE (the INE itself is not
kept) is re-evaluated as ``ine_missing`` unless the modification carries the INE.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.aaf.attrs import KIND_OF, Kind, Record, record_to_attrs
from connectors.aaf.build import BUILDERS
from connectors.aaf.config import FileRejected
from connectors.aaf.fields import Attrs, BuildContext, Issue
from connectors.aaf.reader import RawRequest
from connectors.aaf.report import Severity
from schemas.feed import Category, Pupil, payload_version, record_key
from sync.validation import format_date, normalize_jointure

_CATEGORY_ATTR = {Category.SCHOOLS: "categorieStructure"}
# 2D (secondary) extracts name pupils' and guardians' attributes in the SDET/LDAP way where AAF1D
# has ENTPerson...: reading one with the 1D builders would drop classes, guardian links and
# contacts without a word. EtabEducNat and PersEducNat are the same in both and read from either.
_2D_CONTACT = frozenset({"personalTitle", "mail", "telephoneNumber", "mobile", "homePhone"})
ATTRS_2D: dict[Category, frozenset[str]] = {
    Category.PUPILS: _2D_CONTACT
    | {
        "ENTEleveClasses",
        "ENTElevePersRelEleve",
        "ENTEleveMEF",
        "ENTEleveLibelleMEF",
        "ENTEleveNivFormation",
        "ENTEleveFiliere",
        "ENTEleveStatutEleve",
        "ENTEleveMajeur",
    },
    Category.GUARDIANS: _2D_CONTACT,
}


def content_digest(content: Mapping[str, Any]) -> str:
    """Version of events that carry no record (deletes, snapshot markers)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Outcome:
    request: RawRequest
    kind: Kind
    jointure: str | None
    record: Record | None
    issues: list[Issue]
    key: str | None = None  # set when the record is published
    # What pass 2 must find again beyond the file bytes: the merged attributes of a modification
    # (they depend on ``base``); empty for the other requests, which depend on the bytes only.
    fingerprint: str = ""

    def version(self) -> str:
        """The event version (computed in pass 2 only: pass 1 does not need it)."""
        if self.record is not None:
            return payload_version(self.record)
        return content_digest({"op": "delete", "kind": self.kind, "jointure": self.jointure})

    @property
    def published(self) -> bool:
        return self.key is not None

    @property
    def deleted(self) -> bool:
        return self.published and self.record is None

    @property
    def rejected_key(self) -> str | None:
        """The key of a record that was refused although its jointure is known (an add or a
        modify that failed validation): in a complete extract it still counts as present.
        Persons only: schools are never subject to absence."""
        if self.key is not None or self.jointure is None or self.request.op == "delete":
            return None
        return None if self.kind == "school" else record_key(self.kind, self.jointure)

    def rejection_rules(self) -> tuple[str, ...]:
        return tuple(sorted({i.rule for i in self.issues if i.severity is Severity.REJECTED}))


def category_of(request: RawRequest, expected: Category | None, path: Any) -> Category:
    """The request's category, which must agree with the file's (name or first record)."""
    try:
        category = Category(request.category)
    except ValueError:
        raise FileRejected(path, f"line {request.line}: unknown category") from None
    if expected is not None and category is not expected:
        raise FileRejected(
            path, f"line {request.line}: {category.value} record in a {expected.value} file"
        )
    if request.category_attr != _CATEGORY_ATTR.get(category, "categoriePersonne"):
        raise FileRejected(
            path, f"line {request.line}: {request.category_attr} for {category.value}"
        )
    return category


def refuse_2d(request: RawRequest, category: Category, path: Any) -> None:
    """Refuse a 2D Eleve or PersRelEleve file by name, saying which attributes revealed it."""
    markers = ATTRS_2D.get(category)
    found = markers.intersection(request.attrs) if markers else None
    if found:
        raise FileRejected(
            path,
            f"2D {category.value} file: not supported (line {request.line}: 2D attributes "
            f"{', '.join(sorted(found))}); only AAF1D {category.value} files are read",
        )


def merge_modification(base: Record, modifications: Attrs, ctx: BuildContext) -> Attrs:
    attrs = record_to_attrs(base)
    if isinstance(base, Pupil) and base.school_year is None:
        # The base pupil's enrolment had ended; keep it ended unless the modification says more.
        attrs["ENTEleveDateSortieStructRattach"] = [format_date(ctx.extract_date)]
    attrs.update(modifications)
    return attrs


def process(
    request: RawRequest,
    category: Category,
    ctx: BuildContext,
    base: Mapping[str, Record] | None,
) -> Outcome:
    kind = KIND_OF[category]
    if request.op == "delete":
        jointure = normalize_jointure(request.identifier)
        outcome = Outcome(request, kind, jointure, None, [])
        if jointure is None:
            outcome.issues.append(
                Issue(
                    "identifier",
                    "jointure_invalid",
                    "identifier/id: invalid jointure",
                    Severity.REJECTED,
                )
            )
            return outcome
        outcome.key = record_key(kind, jointure)
        return outcome
    attrs = request.attrs
    if request.op == "modify":
        jointure = normalize_jointure(request.identifier)
        known = base.get(record_key(kind, jointure)) if base is not None and jointure else None
        if known is None:
            issue = Issue(
                None,
                "modify_unknown_record",
                "modifyRequest for a record absent from the base: partial record not published",
                Severity.REJECTED,
            )
            return Outcome(request, kind, jointure, None, [issue])
        attrs = merge_modification(known, request.attrs, ctx)
    record, issues, jointure = BUILDERS[kind](attrs, request.identifier, ctx)
    outcome = Outcome(request, kind, jointure, record, issues)
    if record is not None:
        outcome.key = record_key(kind, record.jointure)
        if request.op == "modify":
            outcome.fingerprint = content_digest(attrs)
    return outcome
