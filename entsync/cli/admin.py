"""CLI commands: ``entsync admin attach-teacher | gar-manager | ... | resolve-ine``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from connectors.ldap import DirectoryError
from entsync.cli.common import (
    EXIT_CONFIG,
    StateDir,
    console,
    fail,
    settings_or_exit,
)
from entsync.exit_codes import ExitCode
from entsync.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from entsync.admin import AdminDirectory, PreparedCommand


TeacherRef = Annotated[
    str,
    typer.Option(
        "--teacher",
        help=(
            "the teacher: their login (ENTPersonLogin, e.g. their academic login), their source "
            "jointure (ENTPersonJointure) or their entity id (pe-...)"
        ),
    ),
]

PARIS = ZoneInfo("Europe/Paris")

admin_app = typer.Typer(
    name="admin",
    help=(
        "Operator commands. Each one checks the directory first (a clear error and exit 1 when "
        "it cannot be done), then publishes a command that the worker applies: run "
        "'entsync worker' (or 'entsync worker --until-idle') for it to take effect. The entity "
        "that owns the fact has the last word at apply time, and every change is audited with "
        "the command as its cause. Exit codes: 0 published, 1 refused, 2 configuration error."
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""
    app.add_typer(admin_app, name="admin")


Prepare = Callable[["Settings", "AdminDirectory", datetime], "PreparedCommand"]


def _run(state_dir: Path | None, prepare: Prepare) -> None:
    from aiokafka.errors import KafkaError

    from entsync import admin
    from sync.commands import CommandError

    settings = settings_or_exit(state_dir)
    try:
        prepared = prepare(settings, admin.directory_of(settings), admin.utc_now())
        admin.publish(settings, prepared)
    except (admin.AdminRefused, CommandError) as exc:
        raise fail(str(exc), admin.EXIT_REFUSED) from exc
    except (ConfigurationError, DirectoryError) as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    except KafkaError as exc:
        raise fail(f"cannot publish the command: {exc}", ExitCode.BROKER_UNREACHABLE) from exc
    for note in prepared.notes:
        console.print(f"note: {note}", markup=False)
    cause = prepared.command.cause
    console.print(
        f"published: {prepared.summary} (rule {cause.rule}, at {cause.at.isoformat()}); "
        "the worker applies it",
        markup=False,
    )


ATTACH_HELP = (
    "Attach a teacher of the school to an existing class (the teacher gets ENTAuxEnsClasses = "
    "<school DN>$<class code> and joins the class's teachers group), or detach them with "
    "--detach.\n\n"
    "Refused (exit 1) when the teacher, the school or the class is not in the directory, when "
    "the person is not a teacher of that school, or when the class has no pupil: a class exists "
    "only while at least one pupil is in it. When a class loses its last pupil, its teacher "
    "links are withdrawn (attach again if it comes back)."
)
GAR_HELP = (
    "Put a teacher of the school in the school's Resp-Affect-GAR group (GAR assignment "
    "managers), or take them out with --remove.\n\n"
    "The group is created with its first member and is never deleted: removing its last member "
    "is refused (put another teacher in first, then remove). Only teachers of that school can be "
    "put in."
)


@admin_app.command("attach-teacher", help=ATTACH_HELP)
def attach_teacher(
    teacher: TeacherRef,
    class_ref: Annotated[
        str,
        typer.Option(
            "--class",
            help=(
                "the class, '<school jointure or UAI>/<class code>' (e.g. 0750001A/CP-A; the "
                "code is everything after the first '/', so 0750001A/CE1/CE2 is class CE1/CE2)"
            ),
        ),
    ],
    detach: Annotated[
        bool, typer.Option("--detach", help="undo: detach the teacher from the class")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    from entsync.admin import prepare_teacher_class

    _run(
        state_dir,
        lambda settings, directory, now: prepare_teacher_class(
            settings, directory, teacher_ref=teacher, class_ref=class_ref, detach=detach, now=now
        ),
    )


@admin_app.command("gar-manager", help=GAR_HELP)
def gar_manager(
    school: Annotated[str, typer.Option("--school", help="the school: its UAI or its jointure")],
    teacher: TeacherRef,
    remove: Annotated[
        bool, typer.Option("--remove", help="take the teacher out of the group instead")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    from entsync.admin import prepare_gar_manager

    _run(
        state_dir,
        lambda settings, directory, now: prepare_gar_manager(
            settings, directory, school_ref=school, teacher_ref=teacher, remove=remove, now=now
        ),
    )


DETACH_SCHOOL_HELP = (
    "Detach a teacher from a school they no longer work in (a school of exercise): they leave "
    "its teachers group, its ENTAuxEnsEtablissements value and their classes there. --undo "
    "reverses it.\n\n"
    "Refused (exit 1) for the teacher's attachment school (ENTPersonStructRattach), replacement "
    "teachers and trainees included: that one changes only through the staff feed."
)


@admin_app.command("detach-teacher", help=DETACH_SCHOOL_HELP)
def detach_teacher(
    school: Annotated[str, typer.Option("--school", help="the school: its UAI or its jointure")],
    teacher: TeacherRef,
    undo: Annotated[bool, typer.Option("--undo", help="undo a detachment")] = False,
    state_dir: StateDir = None,
) -> None:
    from entsync.admin import prepare_teacher_school

    _run(
        state_dir,
        lambda settings, directory, now: prepare_teacher_school(
            settings, directory, school_ref=school, teacher_ref=teacher, undo=undo, now=now
        ),
    )


RESOLVE_INE_HELP = (
    "Settle an INE conflict (report and audit rule ine_conflict): records carrying one INE whose "
    "names and birth dates both differ are held, and the INE's entry stays as last written, "
    "until the operator says whose the INE is (--ine-holder: that record's person takes the "
    "INE's entry, login included; the other records stay held until their INE changes in the "
    "source) or that they are one person (--same-person). Name the pupil by --ine or by its "
    "entity id (--pupil el-..., from the audit event)."
)


@admin_app.command("resolve-ine", help=RESOLVE_INE_HELP)
def resolve_ine(
    holder: Annotated[
        str | None,
        typer.Option("--ine-holder", help="jointure of the record the INE belongs to"),
    ] = None,
    same_person: Annotated[
        bool, typer.Option("--same-person", help="the records are one person")
    ] = False,
    pupil: Annotated[
        str | None, typer.Option("--pupil", help="the pupil entity id (el-...)")
    ] = None,
    ine: Annotated[str | None, typer.Option("--ine", help="the INE in conflict")] = None,
    state_dir: StateDir = None,
) -> None:
    from entsync.admin import prepare_resolve_ine

    _run(
        state_dir,
        lambda settings, directory, now: prepare_resolve_ine(
            settings, pupil_ref=pupil, ine=ine, holder=holder, same_person=same_person, now=now
        ),
    )


BLOCK_HELP = (
    "Block a school's accounts of some profiles over a time window (e.g. while the school "
    "prepares the new year): each account shows entsyncBlockedFrom / entsyncBlockedUntil / "
    "entsyncBlockedMessage, newcomers too, and the ENT refuses their logins in that window with "
    "the message. The sweeper lifts the block after its end (the worker sweeps nightly). "
    "--cancel with the same options lifts it at once."
)


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"{option} {text!r} is not an ISO date-time (e.g. 2026-08-28T00:00)", 2) from exc
    return value if value.tzinfo else value.replace(tzinfo=PARIS)


@admin_app.command("block", help=BLOCK_HELP)
def block(
    school: Annotated[str, typer.Option("--school", help="the school: its UAI or its jointure")],
    profile: Annotated[
        str, typer.Option("--profile", help="comma-separated: pupils, guardians, teachers, staff")
    ],
    start: Annotated[str, typer.Option("--from", help="start, ISO 8601 (no zone: Europe/Paris)")],
    end: Annotated[str, typer.Option("--to", help="end, ISO 8601 (no zone: Europe/Paris)")],
    message: Annotated[str, typer.Option("--message", help="shown to blocked users")] = "",
    cancel: Annotated[bool, typer.Option("--cancel", help="lift this block now")] = False,
    state_dir: StateDir = None,
) -> None:
    from entsync.admin import prepare_block

    window = (_instant(start, "--from"), _instant(end, "--to"))
    if window[1] <= window[0]:
        raise fail("--to must be after --from", 2)
    profiles = [p.strip() for p in profile.split(",") if p.strip()]
    if not profiles:
        raise fail("--profile names no profile", 2)
    for name in profiles:
        _run(
            state_dir,
            lambda settings, directory, now, name=name: prepare_block(  # type: ignore[misc]
                settings,
                directory,
                school_ref=school,
                profile=name,
                start=window[0],
                end=window[1],
                message=message,
                cancel=cancel,
                now=now,
            ),
        )


@admin_app.command("create-manual")
def create_manual(
    profile: Annotated[
        str, typer.Option("--profile", help="guardian (a foster family, National_2) or guest")
    ],
    first_name: Annotated[str, typer.Option("--first-name")],
    last_name: Annotated[str, typer.Option("--last-name")],
    school: Annotated[str, typer.Option("--school", help="the school: its UAI or its jointure")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    state_dir: StateDir = None,
) -> None:
    """Create a manual account (entsyncManual=TRUE): never subject to the feeds' disappearance;
    it keeps ENT credentials (foster families are not on EduConnect)."""
    from entsync.admin import prepare_create_manual

    _run(
        state_dir,
        lambda settings, directory, now: prepare_create_manual(
            settings,
            directory,
            profile=profile,
            first_name=first_name,
            last_name=last_name,
            school_ref=school,
            email=email,
            now=now,
        ),
    )


@admin_app.command("delete-manual")
def delete_manual(
    account: Annotated[str, typer.Option("--account", help="its login or its id (ma-...)")],
    state_dir: StateDir = None,
) -> None:
    """Delete a manual account: removed at once if never activated, else pre-deleted (the
    sweeper deletes it after the delay; a guest at the next nightly sweep)."""
    from entsync.admin import prepare_delete_manual

    _run(
        state_dir,
        lambda settings, directory, now: prepare_delete_manual(
            settings, directory, account_ref=account, now=now
        ),
    )
