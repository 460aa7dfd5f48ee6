"""Guardian links checked from both sides, across a pupils file and a guardians file.

A pupil names its guardians with parental authority (``ENTEleveAutoriteParentale``, first ``$``
field); a guardian names its pupils (``ENTPersRelEleveEleve``). Pupils and guardians come in
separate files, so one file shows one side only: :func:`check_links` compares the two sides once
both files are scanned together (``scan_many``). Findings are warnings: each file's records are
published as they are; the report tells the operator which links are one-sided or dangling.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from connectors.aaf.report import ReportItem, Severity

PUPIL_LINK_ATTR = "ENTEleveAutoriteParentale"
GUARDIAN_LINK_ATTR = "ENTPersRelEleveEleve"


def check_links(
    pupils_side: Mapping[str, Collection[str]],
    guardians_side: Mapping[str, Collection[str]],
    *,
    pupils_file: str = "Eleve",
    guardians_file: str = "PersRelEleve",
) -> list[ReportItem]:
    """One warning per one-sided link.

    ``pupils_side``: pupil jointure → guardian jointures; ``guardians_side``: guardian jointure →
    pupil jointures. Rules: ``link_guardian_missing`` / ``link_pupil_missing`` (the other record is
    absent from the other side's files), ``link_not_reciprocated`` (present but not linking back).
    """
    items: list[ReportItem] = []
    for pupil in sorted(pupils_side):
        for guardian in sorted(set(pupils_side[pupil])):
            back = guardians_side.get(guardian)
            if back is None:
                rule, message = (
                    "link_guardian_missing",
                    f"guardian {guardian} is not in the guardian files",
                )
            elif pupil not in back:
                rule, message = (
                    "link_not_reciprocated",
                    f"guardian {guardian} does not list this pupil in {GUARDIAN_LINK_ATTR}",
                )
            else:
                continue
            items.append(
                ReportItem(
                    file=pupils_file,
                    record_id=pupil,
                    field=PUPIL_LINK_ATTR,
                    rule=rule,
                    message=message,
                    severity=Severity.WARNING,
                )
            )
    for guardian in sorted(guardians_side):
        for pupil in sorted(set(guardians_side[guardian])):
            back = pupils_side.get(pupil)
            if back is None:
                rule, message = "link_pupil_missing", f"pupil {pupil} is not in the pupil files"
            elif guardian not in back:
                rule, message = (
                    "link_not_reciprocated",
                    f"pupil {pupil} does not list this guardian in {PUPIL_LINK_ATTR}",
                )
            else:
                continue
            items.append(
                ReportItem(
                    file=guardians_file,
                    record_id=guardian,
                    field=GUARDIAN_LINK_ATTR,
                    rule=rule,
                    message=message,
                    severity=Severity.WARNING,
                )
            )
    return items
