"""J+1 sync and the school's manual procedure on the real slapd and broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import read_entry
from schemas.audit import DirectoryChanged
from schemas.bridge import EduConnectGuardianChanged
from tests.integration.bridge_support.harness import provider_config, running_bridge
from tests.integration.bridge_support.providers import EduConnect, educonnect
from tests.integration.bridge_support.world import seed, set_children
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration


@pytest.fixture
def ec() -> Iterator[EduConnect]:
    with educonnect() as provider:
        yield provider


def attached(params: LdapParams, dn: str) -> set[str]:
    entry = read_entry(params, dn)
    assert entry is not None
    return set(entry.get("entsyncAttachedChild"))


async def test_lost_responsibility_removes_the_attachment_at_the_next_sync(
    local_services: LocalServices, clean_directory: LdapParams, ec: EduConnect, tmp_path: Path
) -> None:
    world = seed(clean_directory, local_services.base_dn)
    ec.set_user("ec-mother", {"FrEduCtSourceKeys": ["ONDE$G-MERE"]})
    async with running_bridge(
        ldap=local_services.ldap_params,
        base_dn=local_services.base_dn,
        bootstrap=local_services.kafka_bootstrap,
        store_file=tmp_path / "bridge.sqlite3",
        providers={"educonnect": provider_config("educonnect", ec.issuer)},
    ) as bridge:
        assert (await bridge.sign_in("educonnect", "ec-mother")).status_code == 303
        bridge_id = bridge.service.store.bridge_of_guardian("re-mere")
        assert bridge_id is not None
        service = bridge.service
        assert await service.answer(bridge_id, "el-lea", date(2017, 3, 14)) == "attached"
        # the school attaches a child that was never proposed to this parent
        await service.attach("re-mere", "el-other")
        mother = world.dn("re-mere")
        assert attached(clean_directory, mother) == {world.dn("el-lea"), world.dn("el-other")}

        # ONDE drops Léa from the mother; the reconciler writes it; the night's sync follows
        set_children(clean_directory, mother, [world.dn("el-hugo")])
        assert await service.sync_now() == 1
        assert attached(clean_directory, mother) == {world.dn("el-other")}
        modified = [
            v
            for _, v in bridge.sink.sent
            if isinstance(v, EduConnectGuardianChanged) and v.change == "modified"
        ]
        assert [(c.guardian_id, c.children_lost) for c in modified] == [("re-mere", ("el-lea",))]
        rules = [v.cause.rule for _, v in bridge.sink.sent if isinstance(v, DirectoryChanged)]
        assert rules[-1] == "educonnect.sync.link-lost"
        assert "admin.attach-child" in rules and "bridge.attach-child" in rules
        # Léa is no longer proposed; nothing changes at a second run
        assert "el-lea" not in {p.child_id for p in service.proposals(bridge_id)}
        assert await service.sync_now() == 0
