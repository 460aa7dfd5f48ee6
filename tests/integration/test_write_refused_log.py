"""A write the real slapd refuses is logged with the server's diagnostic text, without values."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.ldap.connection import LdapParams
from connectors.ldap.writer import DirectoryWriter, RetryPolicy
from connectors.stream.progress import Progress
from connectors.stream.reconciler import Reconciler
from sync.lifecycle import Policy
from sync.ops import AddEntry
from sync.reconcile import Context
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

SECRET_LOGINS = ("first.secret-login", "second.secret-login")


def _reconciler(writer: DirectoryWriter, base_dn: str) -> Reconciler:
    # Only the writer and the counters take part in a write; the stream parts are not used.
    unused: Any = None
    return Reconciler(
        entities=unused,
        writer=writer,
        entities_topic=unused,
        audit_topic=unused,
        decisions_topic=unused,
        partitions=1,
        ctx=Context(base_dn=base_dn, namespace="test", digest_key=b"k" * 32),
        policy=Policy(),
        progress=Progress(),
        generation=lambda: 0,
    )


async def test_refused_write_logs_the_server_diagnostic(
    local_services: LocalServices, clean_directory: LdapParams
) -> None:
    dn = f"uid=refused-1,ou=people,{local_services.base_dn}"
    entry = {
        "objectClass": ("top", "person", "organizationalPerson", "inetOrgPerson", "ENTPerson"),
        "uid": ("refused-1",),
        "cn": ("refused-1",),
        "sn": ("refused-1",),
        # SINGLE-VALUE in our schema: slapd refuses two values.
        "ENTPersonLogin": SECRET_LOGINS,
        "ENTPersonJointure": ("ONDE$refused-1",),
    }
    async with DirectoryWriter(clean_directory, retry=RetryPolicy(total=5.0)) as writer:
        reconciler = _reconciler(writer, local_services.base_dn)
        with capture_logs() as events:
            results = await reconciler._apply([AddEntry(dn, entry)])
    assert results == [None]
    assert reconciler.progress.refused_writes == 1
    [event] = [e for e in events if e["event"] == "directory.write_refused"]
    assert event["dn"] == dn and event["operation"] == "add"
    assert event["code"] == 19 and event["result"] == "constraintViolation"
    # The server's own words name the attribute type...
    assert "ENTPersonLogin" in event["diagnostic"]
    # ...and never a value.
    assert not any(login in repr(event) for login in SECRET_LOGINS)
