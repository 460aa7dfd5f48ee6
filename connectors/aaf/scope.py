"""The absence scope of a file: which accounts a complete extract may mark as departed.

Downstream (:mod:`sync.absence`) a complete snapshot of scope S marks absent the accounts last
fed by S that it does not contain. A scope wider than what the file covers reads the accounts
outside the file as departures; a narrower or different one only misses departures. Hence the
order, safest evidence first:

1. the file name, in our shape ``ENT_<scope>_...`` (a UAI or an academy such as ``AC-DIJON``);
2. complete extracts only: the records, when every one names the same single school (pupils:
   ``ENTPersonStructRattach`` and the school of each class; staff: attachment and schools of
   exercise; schools: the school itself). Guardians name no school. Records never give an
   academy-wide scope: an extract of one school's guardians, all ``AC-DIJON$...``, would then
   mark every other guardian of the academy as departed;
3. the operator's ``--scope`` (``ScanConfig.scope``): an academy-wide drop named ``ENT_Complet_``
   or ``FULL_ENTTSSERVICES_Complet_`` says which academy it covers only there.

A complete extract with none of them is refused; a delta keeps no scope. A school scope from the
records is the school's jointure, the UAI where the feed uses UAIs as jointures (ONDE does).
"""

from __future__ import annotations

from connectors.aaf.attrs import Record
from connectors.aaf.filename import FileName
from connectors.aaf.reader import RawRequest
from schemas.feed import Pupil, School, Staff
from sync.validation import normalize_jointure

# Schools a request names when no record could be built from it (rejected records still count
# as present in a complete extract): the first ``$`` field of these attributes.
_RAW_SCHOOL_ATTRS = ("ENTPersonStructRattach", "ENTPersonClasses", "ENTPersonFonctions")


class SchoolsSeen:
    """Whether every record of a file names one and the same school (memory: two names)."""

    def __init__(self) -> None:
        self._schools: set[str] = set()
        self._unknown = False

    def add(self, record: Record | None, request: RawRequest) -> None:
        if request.op == "delete" or self._unknown or len(self._schools) > 1:
            return  # a delete names no school; the verdict is already "none"
        schools = _schools_of(record, request)
        if not schools:
            self._unknown = True
        self._schools.update(schools)

    def single(self) -> str | None:
        if self._unknown or len(self._schools) != 1:
            return None
        return next(iter(self._schools))


def record_schools(record: Record) -> set[str]:
    """The school jointures a record names: a pupil's school and classes, a member of staff's
    attachment and schools of exercise, a school itself; none for a guardian."""
    if isinstance(record, Pupil):
        found = {record.school_jointure, *(c.school_jointure for c in record.classes)}
    elif isinstance(record, Staff):
        found = {record.attachment_school_jointure, *record.school_jointures}
    elif isinstance(record, School):
        found = {record.jointure}
    else:
        return set()
    return {school for school in found if school}


def _schools_of(record: Record | None, request: RawRequest) -> set[str]:
    if record is not None:
        return record_schools(record)
    raw = [v.split("$", 1)[0] for a in _RAW_SCHOOL_ATTRS for v in request.attrs.get(a, [])]
    return {school for v in raw if (school := normalize_jointure(v))}


def resolve_scope(
    name: FileName, seen: SchoolsSeen, option: str | None
) -> tuple[str | None, str | None]:
    """``(scope, where it came from)``: ``name``, ``records`` or ``option``; (None, None)."""
    if name.scope:
        return name.scope, "name"
    single = seen.single() if name.complete else None
    if single:
        return single, "records"
    if option:
        return option, "option"
    return None, None


NO_SCOPE = (
    "complete extract without a scope: its name gives none (only ENT_<scope>_Complet_... does) "
    "and its records do not all name one school; give it with --scope (UAI or academy, "
    "ScanConfig.scope), it is never read as a delta"
)
