"""CLI: ``entsync bridge serve``, ``entsync educonnect sync-now``, and the school's manual
procedure ``entsync admin unblock-attachment | attach-child | bridge-parent | parent-account``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from entsync.cli.common import (
    EXIT_CONFIG,
    EXIT_REFUSED,
    StateDir,
    console,
    fail,
    settings_or_exit,
)
from entsync.exit_codes import ExitCode
from entsync.settings import ConfigurationError

if TYPE_CHECKING:
    from connectors.bridge.service import BridgeService

T = TypeVar("T")


GuardianRef = Annotated[str, typer.Option("--guardian", help="guardian entity id (re-...)")]
ChildRef = Annotated[str, typer.Option("--child", help="pupil entity id (el-...)")]

bridge_app = typer.Typer(
    name="bridge",
    help="The parent bridge: EduConnect / FranceConnect sign-in and attachment of children.",
    no_args_is_help=True,
)
educonnect_app = typer.Typer(
    name="educonnect", help="The J+1 synchronisation towards EduConnect.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(bridge_app, name="bridge")
    app.add_typer(educonnect_app, name="educonnect")


def _with_service(state_dir: Path | None, action: Callable[[BridgeService], Awaitable[T]]) -> T:
    from aiokafka.errors import KafkaError

    from connectors.bridge.service import AdminError
    from connectors.ldap import DirectoryError
    from entsync.bridge_runtime import open_service
    from entsync.kafka_clients import kafka_params

    settings = settings_or_exit(state_dir)

    async def run() -> T:
        async with open_service(settings, kafka_params(settings)) as service:
            return await action(service)

    try:
        return asyncio.run(run())
    except AdminError as exc:
        raise fail(str(exc), EXIT_REFUSED) from exc
    except (ConfigurationError, DirectoryError) as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    except KafkaError as exc:
        raise fail(f"cannot publish: {exc}", ExitCode.BROKER_UNREACHABLE) from exc


@bridge_app.command("serve")
def serve(state_dir: StateDir = None) -> None:
    """Run the bridge's web service (and the nightly J+1 sync unless disabled).

    Configuration: ENTSYNC_BRIDGE_* variables (see README, "Parent bridge").
    """
    from entsync.bridge_runtime import serve as run_serve
    from entsync.kafka_clients import kafka_params

    settings = settings_or_exit(state_dir)
    try:
        asyncio.run(run_serve(settings, kafka_params(settings)))
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc


@educonnect_app.command("sync-now")
def sync_now(state_dir: StateDir = None) -> None:
    """Run the J+1 sync at once: publish the guardians' changes, remove lost attachments."""

    async def action(service: BridgeService) -> int:
        return await service.sync_now()

    count = _with_service(state_dir, action)
    console.print(f"published {count} guardian change(s) on entsync.educonnect-sync.v1")


def register_admin(admin_app: typer.Typer) -> None:
    """The school's manual procedure, as ``entsync admin`` subcommands."""

    @admin_app.command("unblock-attachment")
    def unblock_attachment(
        guardian: GuardianRef, child: ChildRef, state_dir: StateDir = None
    ) -> None:
        """Lift a blocked attachment (wrong birth date): the parent may confirm it again."""

        async def action(service: BridgeService) -> None:
            await service.unblock(guardian, child)

        _with_service(state_dir, action)
        console.print(f"unblocked: {child} for {guardian}", markup=False)

    @admin_app.command("attach-child")
    def attach_child(guardian: GuardianRef, child: ChildRef, state_dir: StateDir = None) -> None:
        """Attach a child to a bridged parent account by hand (child not proposed, or blocked)."""

        async def action(service: BridgeService) -> None:
            from connectors.bridge.directory import person_exists
            from connectors.bridge.service import AdminError

            if not await asyncio.to_thread(
                person_exists, service.ldap, service.base_dn, child, "ENTEleve"
            ):
                raise AdminError(f"no pupil {child} in the directory")
            await service.attach(guardian, child)

        _with_service(state_dir, action)
        console.print(f"attached: {child} to {guardian}", markup=False)

    @admin_app.command("bridge-parent")
    def bridge_parent(
        provider: Annotated[str, typer.Option("--provider", help="educonnect or franceconnect")],
        subject_digest: Annotated[
            str,
            typer.Option(
                "--subject-digest", help="from the IdentityUnresolved event of the sign-in"
            ),
        ],
        guardians: Annotated[
            list[str], typer.Option("--guardian", help="guardian entity id (re-...), repeatable")
        ],
        state_dir: StateDir = None,
    ) -> None:
        """Link a sign-in the bridge could not resolve (several candidates, names alone) to the
        parent's guardian records, after the school has checked who the parent is."""
        if provider not in ("educonnect", "franceconnect"):
            raise fail(f"unknown provider {provider!r}: educonnect or franceconnect", EXIT_CONFIG)

        async def action(service: BridgeService) -> str:
            return await service.bridge_by_hand(
                provider,  # type: ignore[arg-type]
                subject_digest,
                tuple(guardians),
            )

        bridge_id = _with_service(state_dir, action)
        console.print(f"bridged: {', '.join(guardians)} as {bridge_id}", markup=False)

    @admin_app.command("parent-account")
    def parent_account(guardian: GuardianRef, state_dir: StateDir = None) -> None:
        """Show a guardian's bridged account: origin (decides whether a reset is appropriate),
        its guardian records and its attachments."""
        from entsync.bridge_runtime import store_path

        try:
            store = store_path(settings_or_exit(state_dir))
        except ConfigurationError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
        try:
            bridge_id = store.bridge_of_guardian(guardian)
            if bridge_id is None:
                raise fail(f"{guardian} has not signed in with EduConnect yet", EXIT_REFUSED)
            provider, origin = store.bridge_info(bridge_id) or ("?", None)
            console.print(f"bridge: {bridge_id} (signed in with {provider})", markup=False)
            console.print(f"origin: {origin or 'unknown'}", markup=False)
            if origin in ("FranceConnect", "Responsable"):
                console.print(
                    "  self-activated: send the parent to EduConnect's forgotten-credentials "
                    "service rather than issuing new credentials",
                    markup=False,
                )
            console.print(f"guardian records: {', '.join(store.guardians_of(bridge_id))}")
            for child_id, att in sorted(store.attachments(bridge_id).items()):
                console.print(
                    f"  {child_id}: {att.status} by {att.by} at {att.at.isoformat()}", markup=False
                )
        finally:
            store.close()
