"""The parent bridge's rules: who a sign-in is, and which children it may attach. Pure.

Identity resolution (:func:`resolve`), in order:

1. an existing bridge for (provider, subject digest) wins;
2. EduConnect: the guardian records whose ONDE source key (``ENTPersonJointure``) is among the
   identity's source keys, all of them (one person in several schools or sources is one bridge);
3. FranceConnect: identity claims. The rule, chosen to never link the wrong person:
   normalized family names equal (case, accents, hyphens, apostrophes and spaces folded), the
   guardian's first name equal to the leading given name(s) of the claim (FranceConnect gives
   every given name), the birth date compared when the record has one (ONDE guardian records
   have none), and **exactly one** guardian record matching, else no link;
4. otherwise no automatic link.

Only records of the last J+1 snapshot are candidates; records already bridged to another
identity and manual accounts (foster families) never are. When only manual accounts match,
the answer is ``manual-account``: the person keeps the ENT-credentials entry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from schemas.bridge import AccountOrigin, GuardianFacts, Provider, Snapshot

ORIGIN_FRANCECONNECT: AccountOrigin = "FranceConnect"


def subject_digest(key: bytes, provider: Provider, subject: str) -> str:
    """Keyed digest of an OIDC subject: what the store, events and logs use instead of it."""
    return hmac.new(key, f"{provider}\x1f{subject}".encode(), hashlib.sha256).hexdigest()


def bridge_id_for(key: bytes, provider: Provider, subject: str) -> str:
    """A new bridge's opaque id (``br-`` + 20 hex), derived from its first sign-in."""
    return "br-" + subject_digest(key, provider, subject)[:20]


_FOLD = re.compile(r"[\s\-'’.]+")


def normalize_name(text: str) -> tuple[str, ...]:
    """Words of a name, casefolded, accents removed, hyphens/apostrophes/dots as spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return tuple(word for word in _FOLD.split(bare) if word)


@dataclass(frozen=True)
class Identity:
    """What the bridge retains of one sign-in (the subject only as digest)."""

    provider: Provider
    subject_digest: str
    source_keys: frozenset[str] = frozenset()
    family_name: str | None = None
    given_name: str | None = None
    birth_date: date | None = None


@dataclass(frozen=True)
class Existing:
    bridge_id: str
    joined: tuple[str, ...] = ()
    """guardian ids newly found by source keys, to add to the bridge"""


@dataclass(frozen=True)
class Matched:
    guardian_ids: tuple[str, ...]
    method: Literal["source-keys", "identity-claims"]


@dataclass(frozen=True)
class Unresolved:
    reason: Literal["no-candidate", "several-candidates", "manual-account"]
    candidate_ids: tuple[str, ...] = ()


Resolution = Existing | Matched | Unresolved


def _claims_match(identity: Identity, guardian: GuardianFacts, name_only: bool = False) -> bool:
    """Family name, given names and birth date all agree. ONDE guardian records carry no birth
    date: such a record matches on names alone only when the operator allowed it (``name_only``),
    since a namesake anywhere in France would otherwise see the children and take the account."""
    if not identity.family_name or not identity.given_name:
        return False
    family = normalize_name(identity.family_name)
    given = normalize_name(identity.given_name)
    first = normalize_name(guardian.first_name)
    if not family or not first or normalize_name(guardian.last_name) != family:
        return False
    if given[: len(first)] != first:
        return False
    if guardian.birth_date is not None:
        return identity.birth_date == guardian.birth_date
    return name_only


def _by_source_keys(identity: Identity, guardians: Iterable[GuardianFacts]) -> list[GuardianFacts]:
    keys = identity.source_keys
    return [g for g in guardians if g.jointure in keys] if keys else []


def resolve(
    identity: Identity,
    *,
    existing_bridge: str | None,
    guardians: Mapping[str, GuardianFacts],
    bridged: Mapping[str, str],
    name_only_claims: bool = False,
) -> Resolution:
    """Who signed in. ``bridged`` maps guardian id → bridge id for every bridged record.
    ``name_only_claims``: see :func:`_claims_match` (off by default)."""
    ordered = [guardians[k] for k in sorted(guardians)]
    by_keys = _by_source_keys(identity, ordered)
    free_by_keys = [g for g in by_keys if not g.manual and g.guardian_id not in bridged]
    if existing_bridge is not None:
        return Existing(existing_bridge, tuple(g.guardian_id for g in free_by_keys))
    if free_by_keys:
        return Matched(tuple(g.guardian_id for g in free_by_keys), "source-keys")
    if by_keys and all(g.manual for g in by_keys):
        return Unresolved("manual-account", tuple(g.guardian_id for g in by_keys))
    if identity.provider != "franceconnect":
        return Unresolved("no-candidate")
    matching = [g for g in ordered if _claims_match(identity, g, name_only_claims)]
    free = [g for g in matching if not g.manual and g.guardian_id not in bridged]
    if len(free) == 1 and len(matching) == 1:
        return Matched((free[0].guardian_id,), "identity-claims")
    if matching and all(g.manual for g in matching):
        return Unresolved("manual-account", tuple(g.guardian_id for g in matching))
    if len(matching) > 1:
        return Unresolved("several-candidates", tuple(g.guardian_id for g in matching))
    return Unresolved("no-candidate", tuple(g.guardian_id for g in matching))


@dataclass(frozen=True)
class CandidateIndex:
    """The guardian records a sign-in could resolve to, found without reading them all.

    :func:`resolve` only ever keeps records whose source key is among the identity's keys or
    whose normalized family name is the claim's, so giving it just those (and the bridges of
    just those) decides the same. At academy size (hundreds of thousands of guardian records)
    a sign-in then looks at a handful, not all of them.
    """

    by_jointure: Mapping[str, tuple[str, ...]]
    by_family: Mapping[tuple[str, ...], tuple[str, ...]]

    @classmethod
    def of(cls, guardians: Mapping[str, GuardianFacts]) -> CandidateIndex:
        by_jointure: dict[str, list[str]] = {}
        by_family: dict[tuple[str, ...], list[str]] = {}
        for guardian_id in sorted(guardians):
            guardian = guardians[guardian_id]
            if guardian.jointure:
                by_jointure.setdefault(guardian.jointure, []).append(guardian_id)
            family = normalize_name(guardian.last_name)
            if family:
                by_family.setdefault(family, []).append(guardian_id)
        return cls(
            {k: tuple(v) for k, v in by_jointure.items()},
            {k: tuple(v) for k, v in by_family.items()},
        )

    def candidates(self, identity: Identity) -> frozenset[str]:
        found = {g for key in identity.source_keys for g in self.by_jointure.get(key, ())}
        if identity.family_name:
            found.update(self.by_family.get(normalize_name(identity.family_name), ()))
        return frozenset(found)


# --- attachments -------------------------------------------------------------------------------

Status = Literal["pending", "attached", "blocked"]


@dataclass(frozen=True)
class Attachment:
    """Recorded decision on one child for one bridge (no row: pending)."""

    child_id: str
    guardian_id: str
    status: Literal["attached", "blocked"]
    at: datetime
    by: Literal["parent", "school"] = "parent"


@dataclass(frozen=True)
class Proposal:
    """A child shown on the attachment page: first name and school, never the birth date."""

    child_id: str
    guardian_id: str
    first_name: str
    school_name: str | None
    status: Status


def proposals(
    guardian_ids: Iterable[str],
    snapshot: Snapshot | None,
    attachments: Mapping[str, Attachment],
) -> tuple[Proposal, ...]:
    """Children of the bridged records as of the last J+1 snapshot, in a stable order.

    A child with no known birth date cannot be confirmed and is not proposed (the school
    attaches it by hand); attached children stay listed as such.
    """
    if snapshot is None:
        return ()
    seen: dict[str, Proposal] = {}
    for guardian_id in sorted(set(guardian_ids)):
        guardian = snapshot.guardians.get(guardian_id)
        if guardian is None or guardian.manual:
            continue
        for child_id in guardian.child_ids:
            child = snapshot.children.get(child_id)
            if child is None or child_id in seen:
                continue
            recorded = attachments.get(child_id)
            if recorded is None and child.birth_date is None:
                continue
            seen[child_id] = Proposal(
                child_id=child_id,
                guardian_id=guardian_id,
                first_name=child.first_name,
                school_name=child.school_name,
                status=recorded.status if recorded else "pending",
            )
    return tuple(
        sorted(seen.values(), key=lambda p: (p.school_name or "", p.first_name, p.child_id))
    )


_DMY = re.compile(r"^\s*(\d{1,2})\s*[/.\- ]\s*(\d{1,2})\s*[/.\- ]\s*(\d{4})\s*$")
_ISO = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


def parse_birth_date(text: str) -> date | None:
    """``JJ/MM/AAAA`` (also with ``.``, ``-`` or spaces) or ``AAAA-MM-JJ``; None if not a date."""
    iso = _ISO.match(text)
    dmy = _DMY.match(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if dmy:
            return date(int(dmy[3]), int(dmy[2]), int(dmy[1]))
    except ValueError:
        return None
    return None


Outcome = Literal["attached", "blocked", "unchanged"]


def decide_attempt(status: Status, given: date, expected: date | None) -> Outcome:
    """A parent's answer for one proposed child. Only a pending child can change, once."""
    if status != "pending":
        return "unchanged"
    return "attached" if expected is not None and given == expected else "blocked"


# --- directory attributes the bridge owns ------------------------------------------------------

BRIDGE_ATTRIBUTES = (
    "entsyncBridgeId",
    "entsyncAccountOrigin",
    "entsyncAttachedChild",
    "entsyncAttachmentBlocked",
    "entsyncEntLoginDisabled",
)


def guardian_attributes(
    *,
    bridge_id: str | None,
    origin: AccountOrigin | None,
    attached_dns: Iterable[str],
    blocked_dns: Iterable[str],
    ent_login_disabled: bool,
) -> dict[str, tuple[str, ...]]:
    """The bridge's attributes on one guardian entry (empty tuple: attribute absent)."""
    return {
        "entsyncBridgeId": (bridge_id,) if bridge_id else (),
        "entsyncAccountOrigin": (origin,) if origin and bridge_id else (),
        "entsyncAttachedChild": tuple(sorted(set(attached_dns))),
        "entsyncAttachmentBlocked": tuple(sorted(set(blocked_dns))),
        "entsyncEntLoginDisabled": ("TRUE",) if ent_login_disabled and bridge_id else (),
    }


def present(attributes: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Only the attributes with values (the form :func:`sync.diff.diff` compares)."""
    return {name: values for name, values in attributes.items() if values}


# --- rate limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    started: float
    count: int


def hit(window: Window | None, now: float, *, limit: int, seconds: float) -> tuple[bool, Window]:
    """Fixed-window counter: whether one more attempt is allowed, and the new window."""
    if window is None or now - window.started >= seconds or now < window.started:
        window = Window(started=now, count=0)
    if window.count >= limit:
        return False, window
    return True, Window(started=window.started, count=window.count + 1)
