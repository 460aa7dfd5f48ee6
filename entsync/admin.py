"""``entsync admin``: check an admin command against the directory, then publish it.

Imperative shell around :mod:`sync.commands`. The directory is read first so that an operator
gets a clear refusal at once (no such teacher, class or school; not a teacher of that school;
last member of the GAR group); the command is then published on ``entsync.entities.v1``, keyed
by the entity that decides it when the worker applies it (the class, or the school's teachers
group). The check and the decision are separate on purpose: the directory may change between
them (the class may lose its last pupil), and the authority entity has the last word.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ldap3.utils.conv import escape_filter_chars

from connectors.ldap import DirectoryEntry, LdapParams, read_entry, search_entries
from connectors.stream import clients
from connectors.stream.topics import ensure_topics
from entsync.kafka_clients import kafka_params
from entsync.ldap_clients import ldap_params
from entsync.logs import get_logger
from entsync.settings import Settings
from schemas.entities import EntityInput, EntityMessage, ManualAccount
from schemas.topics import ENTITIES
from sync import commands, dit, entries, ids, ineconflict

log = get_logger(__name__)

EXIT_REFUSED = 1


class AdminRefused(Exception):
    """The directory shows the command cannot be carried out; the message says why."""


@dataclass(frozen=True)
class SchoolRef:
    jointure: str
    uai: str | None
    dn: str


@dataclass(frozen=True)
class Person:
    entity_id: str
    dn: str
    login: str
    is_teacher: bool
    schools: frozenset[str]  # lowercased school DNs (entsyncSchool)
    classes: frozenset[str]  # lowercased ENTAuxEnsClasses values
    attachment: str | None = None  # lowercased ENTPersonStructRattach


@dataclass(frozen=True)
class PreparedCommand:
    """A checked command, ready to publish, and what the operator should be told."""

    command: EntityInput
    summary: str
    notes: tuple[str, ...] = ()


def _one(entry: DirectoryEntry, name: str) -> str | None:
    values = entry.get(name)
    return values[0] if values else None


class AdminDirectory:
    """The few reads the admin commands need."""

    def __init__(self, params: LdapParams, base_dn: str) -> None:
        self.params = params
        self.base_dn = base_dn

    def school(self, ref: str) -> SchoolRef:
        value = escape_filter_chars(ref.strip())
        found = search_entries(
            self.params,
            f"ou={dit.STRUCTURES_OU},{self.base_dn}",
            f"(&(objectClass=ENTStructure)(|(ENTStructureJointure={value})"
            f"(ENTStructureJointure=*${value})(ENTStructureUAI={value})))",
            ["ENTStructureJointure", "ENTStructureUAI"],
            scope="one",
        )
        if not found:
            raise AdminRefused(f"no school with jointure or UAI {ref!r} in the directory")
        if len(found) > 1:
            raise AdminRefused(f"{ref!r} names several schools: pass the school jointure")
        entry = found[0]
        jointure = _one(entry, "ENTStructureJointure")
        if jointure is None:
            raise AdminRefused(f"school {entry.dn} has no ENTStructureJointure")
        return SchoolRef(entries.source_key(jointure), _one(entry, "ENTStructureUAI"), entry.dn)

    def person(self, ref: str) -> Person:
        raw = ref.strip()
        value = escape_filter_chars(raw)
        by_id = f"(entsyncId={value})" if raw.startswith(f"{ids.PREFIXES['staff']}-") else ""
        found = search_entries(
            self.params,
            f"ou={dit.PEOPLE_OU},{self.base_dn}",
            f"(&(objectClass=ENTPerson)(|(ENTPersonLogin={value})(ENTPersonJointure={value})"
            f"(ENTPersonJointure=*${value}){by_id}))",
            [
                "objectClass",
                "entsyncId",
                "ENTPersonLogin",
                "entsyncSchool",
                "ENTAuxEnsClasses",
                "ENTPersonStructRattach",
            ],
            scope="one",
        )
        if not found:
            raise AdminRefused(f"no person with login or jointure {ref!r} in the directory")
        if len(found) > 1:
            raise AdminRefused(f"{ref!r} names several persons: pass the source jointure")
        entry = found[0]
        entity_id = _one(entry, "entsyncId")
        if entity_id is None or ids.kind_of(entity_id) != "staff":
            raise AdminRefused(f"{ref!r} is not a member of staff (only teachers can be attached)")
        return Person(
            entity_id=entity_id,
            dn=entry.dn,
            login=_one(entry, "ENTPersonLogin") or "",
            is_teacher="entauxenseignant" in {c.lower() for c in entry.get("objectClass")},
            schools=frozenset(v.lower() for v in entry.get("entsyncSchool")),
            classes=frozenset(v.lower() for v in entry.get("ENTAuxEnsClasses")),
            attachment=(_one(entry, "ENTPersonStructRattach") or "").lower() or None,
        )

    def members(self, dn: str) -> tuple[str, ...] | None:
        """The ``member`` values of a group; None when the group does not exist."""
        entry = read_entry(self.params, dn, ["member"])
        return None if entry is None else tuple(v.lower() for v in entry.get("member"))


def _teacher_of(directory: AdminDirectory, teacher_ref: str, school: SchoolRef) -> Person:
    teacher = directory.person(teacher_ref)
    if not teacher.is_teacher:
        raise AdminRefused(f"{teacher_ref!r} is not a teacher (no ENTAuxEnseignant)")
    if school.dn.lower() not in teacher.schools:
        raise AdminRefused(f"{teacher_ref!r} is not a teacher of school {school.jointure}")
    return teacher


def prepare_teacher_class(
    settings: Settings,
    directory: AdminDirectory,
    *,
    teacher_ref: str,
    class_ref: str,
    detach: bool,
    now: datetime,
) -> PreparedCommand:
    """Check an attach (or detach) against the directory and build the command."""
    school_ref, code = commands.parse_class_ref(class_ref)
    school = directory.school(school_ref)
    class_name = f"{school.jointure}/{code}"
    class_dn = dit.group_dn(commands.class_spec(school.jointure, code), settings.ldap_base_dn)
    value = entries.class_value(school.jointure, code, settings.ldap_base_dn).lower()
    notes: list[str] = []
    if detach:
        # Always published: an attach not yet applied would otherwise survive the detach.
        teacher = directory.person(teacher_ref)
        if value not in teacher.classes:
            notes.append("the directory does not show this attachment (yet): nothing may change")
    else:
        teacher = _teacher_of(directory, teacher_ref, school)
        if directory.members(class_dn) is None:
            raise AdminRefused(
                f"class {class_name} does not exist: a class exists only while at least one "
                "pupil is in it, and teachers can only be attached to a class that exists"
            )
        if value in teacher.classes:
            notes.append("the directory already shows this attachment: nothing should change")
    command = commands.teacher_class_request(
        settings.id_namespace,
        teacher_id=teacher.entity_id,
        school_jointure=school.jointure,
        class_code=code,
        attach=not detach,
        at=now,
    )
    verb = "detach teacher" if detach else "attach teacher"
    return PreparedCommand(
        command,
        f"{verb} {teacher.entity_id} {'from' if detach else 'to'} class {class_name}",
        tuple(notes),
    )


def prepare_gar_manager(
    settings: Settings,
    directory: AdminDirectory,
    *,
    school_ref: str,
    teacher_ref: str,
    remove: bool,
    now: datetime,
) -> PreparedCommand:
    """Check a GAR group change against the directory and build the command."""
    school = directory.school(school_ref)
    gar_dn = dit.gar_group_dn(school.jointure, settings.ldap_base_dn)
    group_name = dit.gar_group_name(school.jointure)
    members = directory.members(gar_dn)
    notes: list[str] = []
    if remove:
        teacher = directory.person(teacher_ref)
        if members is not None and members == (teacher.dn.lower(),):
            raise AdminRefused(
                f"{teacher_ref!r} is the last member of {group_name}, which is never deleted: "
                "put another teacher in first (and let the worker apply it)"
            )
        if members is None or teacher.dn.lower() not in members:
            notes.append("the directory does not show this teacher in the group (yet)")
    else:
        teacher = _teacher_of(directory, teacher_ref, school)
        if members is None:
            notes.append(f"{group_name} does not exist yet: it is created with this member")
        elif teacher.dn.lower() in members:
            notes.append("the directory already shows this teacher in the group")
    command = commands.gar_manager_request(
        settings.id_namespace,
        teacher_id=teacher.entity_id,
        school_jointure=school.jointure,
        add=not remove,
        at=now,
    )
    verb = "remove" if remove else "add"
    where = "from" if remove else "to"
    return PreparedCommand(
        command, f"{verb} teacher {teacher.entity_id} {where} {group_name}", tuple(notes)
    )


def prepare_teacher_school(
    settings: Settings,
    directory: AdminDirectory,
    *,
    school_ref: str,
    teacher_ref: str,
    undo: bool,
    now: datetime,
) -> PreparedCommand:
    """Check a detachment from a school against the directory and build the command."""
    school = directory.school(school_ref)
    teacher = directory.person(teacher_ref)
    notes: list[str] = []
    if not undo:
        if teacher.attachment == school.dn.lower():
            raise AdminRefused(
                f"school {school.jointure} is the attachment school of {teacher_ref!r} "
                "(ENTPersonStructRattach): a teacher cannot be detached from it, even a "
                "replacement teacher or a trainee; it changes only through the staff feed"
            )
        if school.dn.lower() not in teacher.schools:
            notes.append("the directory does not show this school for the teacher (yet)")
    command = commands.teacher_school_request(
        teacher_id=teacher.entity_id, school_jointure=school.jointure, detach=not undo, at=now
    )
    verb = "undo the detachment of" if undo else "detach"
    return PreparedCommand(
        command, f"{verb} teacher {teacher.entity_id} from school {school.jointure}", tuple(notes)
    )


def prepare_create_manual(
    settings: Settings,
    directory: AdminDirectory,
    *,
    profile: str,
    first_name: str,
    last_name: str,
    school_ref: str,
    email: str | None,
    now: datetime,
) -> PreparedCommand:
    """A new manual account (foster family or guest) of an existing school."""
    if profile not in ("guardian", "guest"):
        raise AdminRefused(f"unknown profile {profile!r}: choose guardian (foster family) or guest")
    if not first_name.strip() or not last_name.strip():
        raise AdminRefused("a manual account needs a first and a last name")
    school = directory.school(school_ref)
    account = ManualAccount(
        profile=profile,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        school_jointure=school.jointure,
        email=email,
    )
    command = commands.manual_account_request(
        settings.id_namespace, token=secrets.token_hex(16), account=account, at=now
    )
    return PreparedCommand(
        command,
        f"create manual account {command.entity_id} ({profile}) in school {school.jointure}",
        ("its login is allocated by the worker: look it up by its id (entsyncId) afterwards",),
    )


def prepare_delete_manual(
    settings: Settings, directory: AdminDirectory, *, account_ref: str, now: datetime
) -> PreparedCommand:
    """Delete a manual account: at once if never activated, else pre-deleted."""
    del settings
    raw = account_ref.strip()
    value = escape_filter_chars(raw)
    found = search_entries(
        directory.params,
        f"ou={dit.PEOPLE_OU},{directory.base_dn}",
        f"(&(objectClass=ENTPerson)(|(ENTPersonLogin={value})(entsyncId={value})))",
        ["entsyncId", "entsyncManual", "entsyncActivated"],
        scope="one",
    )
    if not found:
        raise AdminRefused(f"no account with login or id {account_ref!r} in the directory")
    if len(found) > 1:
        raise AdminRefused(f"{account_ref!r} names several accounts: pass the id (ma-...)")
    entry = found[0]
    entity_id = _one(entry, "entsyncId")
    if _one(entry, "entsyncManual") != "TRUE" or entity_id is None:
        raise AdminRefused(
            f"{account_ref!r} is not a manual account: accounts from the feeds leave through "
            "the feeds (deleteRequest or absence from a complete extract)"
        )
    activated = _one(entry, "entsyncActivated") == "TRUE"
    command = commands.manual_deletion(entity_id, activated=activated, at=now)
    outcome = "pre-deleted (it was activated)" if activated else "deleted at once (never activated)"
    return PreparedCommand(command, f"delete manual account {entity_id}: {outcome}")


BLOCKABLE_PROFILES = ("pupils", "guardians", "teachers", "staff")


def prepare_block(
    settings: Settings,
    directory: AdminDirectory,
    *,
    school_ref: str,
    profile: str,
    start: datetime,
    end: datetime,
    message: str,
    cancel: bool,
    now: datetime,
) -> PreparedCommand:
    """Check a bulk block against the directory and build the command for one profile."""
    if profile not in BLOCKABLE_PROFILES:
        raise AdminRefused(
            f"unknown profile {profile!r}: choose among {', '.join(BLOCKABLE_PROFILES)}"
        )
    if not message.strip() and not cancel:
        raise AdminRefused("the message shown to blocked users must not be empty")
    school = directory.school(school_ref)
    command = commands.block_request(
        settings.id_namespace,
        school_jointure=school.jointure,
        profile=profile,  # type: ignore[arg-type]
        start=start,
        end=end,
        message=message,
        cancel=cancel,
        at=now,
    )
    notes: list[str] = []
    if end <= now and not cancel:
        notes.append("the block has already ended: the next sweep lifts it")
    verb = "cancel the block of" if cancel else "block"
    return PreparedCommand(
        command,
        f"{verb} the {profile} of school {school.jointure} from {start.isoformat()} to "
        f"{end.isoformat()} (block {command.block.block_id})",
        tuple(notes),
    )


def prepare_resolve_ine(
    settings: Settings,
    *,
    pupil_ref: str | None,
    ine: str | None,
    holder: str | None,
    same_person: bool,
    now: datetime,
) -> PreparedCommand:
    """An INE conflict settled by the operator; addressed to the pupil entity of the INE.

    No directory read: the records in conflict are held, so they may have no entry at all. The
    pupil entity has the last word (an unknown holder record is refused there)."""
    if (pupil_ref is None) == (ine is None):
        raise AdminRefused("name the pupil by --pupil (el-... entity id) or by --ine")
    if ine is not None:
        pupil_id = ids.entity_id(settings.id_namespace, "pupil", f"ine:{ine.strip().upper()}")
    else:
        pupil_id = (pupil_ref or "").strip()
        if not pupil_id.startswith(f"{ids.PREFIXES['pupil']}-"):
            raise AdminRefused(f"{pupil_id!r} is not a pupil entity id (el-...)")
    jointure = entries.source_key(holder.strip()) if holder is not None else None
    command = ineconflict.resolution_request(
        pupil_id=pupil_id, holder_jointure=jointure, same_person=same_person, at=now
    )
    what = "the records are one person" if same_person else f"the INE is record {jointure}'s"
    return PreparedCommand(command, f"resolve the INE conflict of pupil {pupil_id}: {what}")


async def _publish(settings: Settings, inputs: Sequence[EntityInput]) -> None:
    kafka = kafka_params(settings)
    await ensure_topics(kafka, settings.topic_partitions)
    producer = clients.producer(kafka, acks="all", request_timeout_ms=30000)
    await producer.start()
    try:
        for inp in inputs:
            # Keyed like every entity input: the default partitioner puts it on the partition
            # (and the agent) that owns the entity.
            await producer.send_and_wait(
                ENTITIES.name,
                key=inp.entity_id.encode(),
                value=EntityMessage(inp).model_dump_json().encode(),
            )
    finally:
        await producer.stop()


def publish(settings: Settings, prepared: PreparedCommand) -> None:
    asyncio.run(_publish(settings, [prepared.command]))
    log.info(
        "admin.published",
        type=prepared.command.type,
        rule=prepared.command.cause.rule,
        entity_id=prepared.command.entity_id,
    )


def directory_of(settings: Settings) -> AdminDirectory:
    return AdminDirectory(ldap_params(settings), settings.ldap_base_dn)


def utc_now() -> datetime:
    return datetime.now(UTC)
