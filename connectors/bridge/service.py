"""The bridge's use cases, between the pure rules (``sync.bridge``, ``sync.educonnect``), its
store, the directory and the event topics. Used by the web service and the CLI alike.

Every directory change is audited (``DirectoryChanged``, one per modified entry) with a cause
naming the rule; every decision is published on the bridge-events topic for the schools.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

import structlog

from connectors.bridge.directory import read_snapshot, write_bridge_attributes
from connectors.bridge.events import EventSink
from connectors.bridge.store import BridgeStore
from connectors.ldap.connection import LdapParams
from connectors.monitoring.metrics import (
    BRIDGE_ATTACHMENTS,
    BRIDGE_SIGN_INS,
    BRIDGE_SYNC_LAST_SUCCESS,
)
from schemas.bridge import (
    AccountOrigin,
    AttachmentBlocked,
    AttachmentRecorded,
    AttachmentRemoved,
    AttachmentUnblocked,
    IdentityBridged,
    IdentityUnresolved,
    Provider,
    SessionsRevoked,
    Snapshot,
)
from schemas.entities import Cause
from schemas.topics import BRIDGE_EVENTS, EDUCONNECT_SYNC
from sync import bridge as rules
from sync import dit, educonnect
from sync.auditindex import school_of_dn

log = structlog.get_logger(__name__)


class AdminError(RuntimeError):
    """An admin command that cannot be done; the message says why (ids only)."""


@dataclass(frozen=True)
class SignIn:
    bridge_id: str | None
    unresolved: Literal["no-candidate", "several-candidates", "manual-account"] | None = None
    first_login: bool = False


@dataclass
class BridgeService:
    store: BridgeStore
    ldap: LdapParams
    base_dn: str
    sink: EventSink
    digest_key: bytes  # keys the subject digests
    audit_key: bytes  # keys the value digests of audit events (entsync.audit_key)
    disable_ent_login: bool = True
    franceconnect_name_only: bool = False  # see sync.bridge._claims_match
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _cause(self, rule: str, topic: str = BRIDGE_EVENTS.name) -> Cause:
        return Cause(topic=topic, rule=rule, at=self.clock())

    def _event_id(self) -> str:
        return uuid.uuid4().hex

    def _schools(self, guardian_ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        snap = self.store.last_snapshot()
        if snap is None:
            return ()
        found = {
            s for g in guardian_ids if g in snap.guardians for s in snap.guardians[g].school_dns
        }
        return tuple(sorted(found))

    def _child_school(self, snap: Snapshot | None, child_id: str) -> tuple[str, ...]:
        child = snap.children.get(child_id) if snap else None
        return (child.school_dn,) if child and child.school_dn else ()

    # --- directory ---------------------------------------------------------------------------

    async def refresh_guardian(self, bridge_id: str | None, guardian_id: str, rule: str) -> None:
        """Write the bridge's attributes of one guardian entry from the store, audited."""
        origin: AccountOrigin | None = None
        attached: list[str] = []
        blocked: list[str] = []
        if bridge_id is not None:
            info = self.store.bridge_info(bridge_id)
            origin = info[1] if info else None
            for child_id, att in self.store.attachments(bridge_id).items():
                if att.guardian_id != guardian_id:
                    continue
                target = attached if att.status == "attached" else blocked
                target.append(dit.people_dn(child_id, self.base_dn))
        desired = rules.guardian_attributes(
            bridge_id=bridge_id,
            origin=origin,
            attached_dns=attached,
            blocked_dns=blocked,
            ent_login_disabled=self.disable_ent_login,
        )
        event = await asyncio.to_thread(
            write_bridge_attributes,
            self.ldap,
            dit.people_dn(guardian_id, self.base_dn),
            desired,
            entity_id=guardian_id,
            audit_key=self.audit_key,
            cause=self._cause(
                rule, EDUCONNECT_SYNC.name if rule.startswith("educonnect.") else BRIDGE_EVENTS.name
            ),
        )
        if event is not None:
            schools = (school_of_dn(dn) for dn in self._schools([guardian_id]))
            event = event.model_copy(update={"schools": tuple(sorted(s for s in schools if s))})
            await self.sink.audit(event)
            log.info("bridge.directory_changed", guardian=guardian_id, rule=rule)

    # --- sign-in -----------------------------------------------------------------------------

    async def sign_in(self, identity: rules.Identity, origin: AccountOrigin | None) -> SignIn:
        indexed = self.store.indexed_snapshot()
        existing = self.store.bridge_for(identity.provider, identity.subject_digest)
        possible = indexed[1].candidates(identity) if indexed else frozenset()
        guardians = {g: indexed[0].guardians[g] for g in possible} if indexed else {}
        resolution = rules.resolve(
            identity,
            existing_bridge=existing,
            guardians=guardians,
            bridged=self.store.bridged_among(possible),
            name_only_claims=self.franceconnect_name_only,
        )
        now = self.clock()
        match resolution:
            case rules.Existing(bridge_id=bridge_id, joined=joined):
                # The store and the directory are not written in one transaction: a directory
                # write lost earlier (server down after the store's commit) is made again here.
                # Nothing is written (nor audited) when the entries already agree.
                for guardian_id in self.store.guardians_of(bridge_id):
                    await self.refresh_guardian(bridge_id, guardian_id, "bridge.repair")
                if joined:
                    self.store.join_guardians(bridge_id, joined)
                    await self._bridged(bridge_id, identity, joined, "source-keys", origin)
                log.info("bridge.signed_in", bridge=bridge_id, provider=identity.provider)
                BRIDGE_SIGN_INS.labels(identity.provider, "signed_in", "").inc()
                return SignIn(bridge_id)
            case rules.Matched(guardian_ids=guardian_ids, method=method):
                bridge_id = rules.bridge_id_for(
                    self.digest_key, identity.provider, identity.subject_digest
                )
                self.store.create_bridge(
                    bridge_id, identity.provider, identity.subject_digest, origin, guardian_ids, now
                )
                await self._bridged(bridge_id, identity, guardian_ids, method, origin)
                log.info("bridge.first_sign_in", bridge=bridge_id, provider=identity.provider)
                BRIDGE_SIGN_INS.labels(identity.provider, "first_sign_in", "").inc()
                return SignIn(bridge_id, first_login=True)
            case rules.Unresolved(reason=reason, candidate_ids=candidates):
                await self.sink.bridge(
                    identity.subject_digest,
                    IdentityUnresolved(
                        event_id=self._event_id(),
                        at=now,
                        school_dns=self._schools(list(candidates)),
                        provider=identity.provider,
                        subject_digest=identity.subject_digest,
                        reason=reason,
                        candidate_ids=candidates,
                    ),
                )
                log.info("bridge.unresolved", provider=identity.provider, reason=reason)
                BRIDGE_SIGN_INS.labels(identity.provider, "unresolved", reason).inc()
                return SignIn(None, unresolved=reason)
        raise AssertionError("unreachable")

    async def _bridged(
        self,
        bridge_id: str,
        identity: rules.Identity,
        guardian_ids: tuple[str, ...],
        method: Literal["source-keys", "identity-claims", "admin"],
        origin: AccountOrigin | None,
    ) -> None:
        for guardian_id in guardian_ids:
            await self.refresh_guardian(bridge_id, guardian_id, "bridge.identity-bridged")
        await self.sink.bridge(
            bridge_id,
            IdentityBridged(
                event_id=self._event_id(),
                at=self.clock(),
                school_dns=self._schools(guardian_ids),
                bridge_id=bridge_id,
                provider=identity.provider,
                method=method,
                guardian_ids=guardian_ids,
                origin=origin,
            ),
        )
        # The ENT-credential sessions of these records end (first sign-in, or records that
        # joined the bridge later): from now on the parent comes through the provider.
        await self.sink.sessions(
            SessionsRevoked(
                event_id=self._event_id(),
                at=self.clock(),
                bridge_id=bridge_id,
                guardian_ids=guardian_ids,
                ent_login_disabled=self.disable_ent_login,
            )
        )

    # --- attachments -------------------------------------------------------------------------

    def proposals(self, bridge_id: str) -> tuple[rules.Proposal, ...]:
        return rules.proposals(
            self.store.guardians_of(bridge_id),
            self.store.last_snapshot(),
            self.store.attachments(bridge_id),
        )

    async def answer(self, bridge_id: str, child_id: str, given: date) -> rules.Outcome:
        """A parent's birth date for one child; unknown or not-proposed children: unchanged."""
        proposal = next((p for p in self.proposals(bridge_id) if p.child_id == child_id), None)
        snap = self.store.last_snapshot()
        if proposal is None or snap is None:
            return "unchanged"
        expected = snap.children[child_id].birth_date
        outcome = rules.decide_attempt(proposal.status, given, expected)
        BRIDGE_ATTACHMENTS.labels(outcome, "parent").inc()
        if outcome == "unchanged":
            return outcome
        now = self.clock()
        status: Literal["attached", "blocked"] = outcome
        recorded = rules.Attachment(child_id, proposal.guardian_id, status, now, "parent")
        if not self.store.record_if_pending(bridge_id, recorded):
            return "unchanged"
        rule = "bridge.attach-child" if outcome == "attached" else "bridge.attachment-blocked"
        await self.refresh_guardian(bridge_id, proposal.guardian_id, rule)
        schools = self._child_school(snap, child_id)
        if outcome == "attached":
            await self.sink.bridge(
                bridge_id,
                AttachmentRecorded(
                    event_id=self._event_id(),
                    at=now,
                    school_dns=schools,
                    bridge_id=bridge_id,
                    guardian_id=proposal.guardian_id,
                    child_id=child_id,
                    by="parent",
                ),
            )
        else:
            await self.sink.bridge(
                bridge_id,
                AttachmentBlocked(
                    event_id=self._event_id(),
                    at=now,
                    school_dns=schools,
                    bridge_id=bridge_id,
                    guardian_id=proposal.guardian_id,
                    child_id=child_id,
                ),
            )
        log.info("bridge.attachment", bridge=bridge_id, child=child_id, outcome=outcome)
        return outcome

    # --- the school's manual procedure ---------------------------------------------------------

    async def bridge_by_hand(
        self, provider: Provider, subject_digest: str, guardian_ids: tuple[str, ...]
    ) -> str:
        """The school links a sign-in it could not resolve (``IdentityUnresolved``: several
        candidates, or names alone) to the parent's guardian records; the bridge id.

        Refused for records not in the last J+1 snapshot, manual accounts (they keep the
        ENT-credentials entry) and records already bridged to another sign-in.
        """
        if not re.fullmatch(r"[0-9a-f]{64}", subject_digest):
            raise AdminError("not a subject digest (64 hex digits, as in IdentityUnresolved)")
        snap = self.store.last_snapshot()
        known = snap.guardians if snap else {}
        for guardian_id in guardian_ids:
            facts = known.get(guardian_id)
            if facts is None:
                raise AdminError(f"{guardian_id} is not a guardian of the last J+1 sync")
            if facts.manual:
                raise AdminError(f"{guardian_id} is a manual account: it is never bridged")
        existing = self.store.bridge_for(provider, subject_digest)
        bridge_id = existing or rules.bridge_id_for(self.digest_key, provider, subject_digest)
        taken = {g: b for g, b in self.store.bridged_among(guardian_ids).items() if b != bridge_id}
        if taken:
            raise AdminError(f"already bridged to another sign-in: {', '.join(sorted(taken))}")
        already = set(self.store.guardians_of(bridge_id)) if existing else set()
        new = tuple(g for g in dict.fromkeys(guardian_ids) if g not in already)
        if not new:
            raise AdminError("these records are already bridged to this sign-in")
        if existing:
            self.store.join_guardians(bridge_id, new)
        else:
            self.store.create_bridge(bridge_id, provider, subject_digest, None, new, self.clock())
        identity = rules.Identity(provider, subject_digest)
        await self._bridged(bridge_id, identity, new, "admin", None)
        log.info("bridge.bridged_by_school", bridge=bridge_id, provider=provider)
        return bridge_id

    def _bridge_of(self, guardian_id: str) -> str:
        bridge_id = self.store.bridge_of_guardian(guardian_id)
        if bridge_id is None:
            raise AdminError(
                f"guardian {guardian_id} has not signed in with EduConnect or FranceConnect yet"
            )
        return bridge_id

    async def unblock(self, guardian_id: str, child_id: str) -> None:
        bridge_id = self._bridge_of(guardian_id)
        current = self.store.attachments(bridge_id).get(child_id)
        if current is None or current.status != "blocked":
            raise AdminError(f"the attachment of {child_id} to {guardian_id} is not blocked")
        self.store.remove_attachment(bridge_id, child_id)
        await self.refresh_guardian(bridge_id, current.guardian_id, "admin.unblock-attachment")
        await self.sink.bridge(
            bridge_id,
            AttachmentUnblocked(
                event_id=self._event_id(),
                at=self.clock(),
                school_dns=self._child_school(self.store.last_snapshot(), child_id),
                bridge_id=bridge_id,
                guardian_id=current.guardian_id,
                child_id=child_id,
            ),
        )

    async def attach(self, guardian_id: str, child_id: str) -> None:
        bridge_id = self._bridge_of(guardian_id)
        current = self.store.attachments(bridge_id).get(child_id)
        if current is not None and current.status == "attached":
            raise AdminError(f"{child_id} is already attached to {guardian_id}'s account")
        now = self.clock()
        self.store.record_attachment(
            bridge_id, rules.Attachment(child_id, guardian_id, "attached", now, "school")
        )
        if current is not None and current.guardian_id != guardian_id:
            await self.refresh_guardian(bridge_id, current.guardian_id, "admin.attach-child")
        await self.refresh_guardian(bridge_id, guardian_id, "admin.attach-child")
        await self.sink.bridge(
            bridge_id,
            AttachmentRecorded(
                event_id=self._event_id(),
                at=now,
                school_dns=self._child_school(self.store.last_snapshot(), child_id),
                bridge_id=bridge_id,
                guardian_id=guardian_id,
                child_id=child_id,
                by="school",
            ),
        )

    # --- J+1 ---------------------------------------------------------------------------------

    async def sync_now(self) -> int:
        """Publish the guardians' changes since the last run, apply lost links; the count."""
        run_at = self.clock()
        current = await asyncio.to_thread(read_snapshot, self.ldap, self.base_dn, run_at)
        previous = self.store.last_snapshot()
        events = educonnect.changes(
            previous.guardians if previous else {}, current.guardians, run_at
        )
        for event in events:
            await self.sink.educonnect(event)
        self.store.save_snapshot(current)
        bridged = self.store.bridged()
        touched: set[tuple[str, str]] = set()
        for guardian_id, child_id in sorted(educonnect.lost_links(events)):
            bridge_id = bridged.get(guardian_id)
            if bridge_id is None:
                continue
            held = self.store.attachments(bridge_id).get(child_id)
            if held is None or held.guardian_id != guardian_id:
                continue
            self.store.remove_attachment(bridge_id, child_id)
            touched.add((bridge_id, guardian_id))
            await self.sink.bridge(
                bridge_id,
                AttachmentRemoved(
                    event_id=self._event_id(),
                    at=run_at,
                    school_dns=self._child_school(previous, child_id),
                    bridge_id=bridge_id,
                    guardian_id=guardian_id,
                    child_id=child_id,
                ),
            )
        for bridge_id, guardian_id in sorted(touched):
            if guardian_id in current.guardians:
                await self.refresh_guardian(bridge_id, guardian_id, "educonnect.sync.link-lost")
        log.info("educonnect.sync_done", changes=len(events), removed=len(touched))
        BRIDGE_SYNC_LAST_SUCCESS.set_to_current_time()
        return len(events)
