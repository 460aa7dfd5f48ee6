"""Parent bridge at the edges: the store's contract (the J+1 snapshot parsed and indexed per
run, sessions, single use, first answers, rate windows, seen from a second connection as a
second process or replica would); client IPs, proxies.

The store tests run on SQLite here and on PostgreSQL in ``tests/integration/
test_bridge_postgres.py``, which gives ``bridge_store_url`` another value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.bridge.store import BridgeStore, open_bridge_store
from schemas.bridge import GuardianFacts, Snapshot
from sync.bridge import Attachment

T0 = datetime(2026, 9, 1, 2, tzinfo=UTC)
Opener = Callable[[], BridgeStore]


@pytest.fixture
def bridge_store_url(tmp_path: Path) -> str:
    return str(tmp_path / "bridge.sqlite")


@pytest.fixture
def opener(bridge_store_url: str, tmp_path: Path) -> Iterator[Opener]:
    """Opens the one store under test again: each call is another process's connection."""
    opened: list[BridgeStore] = []

    def open_one() -> BridgeStore:
        opened.append(open_bridge_store(bridge_store_url, tmp_path / "unused.sqlite"))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def snapshot(at: datetime, *guardians: str) -> Snapshot:
    return Snapshot(
        run_at=at,
        guardians={
            g: GuardianFacts(
                guardian_id=g, dn=f"uid={g}", jointure=g, last_name="M", first_name="C"
            )
            for g in guardians
        },
    )


def test_the_snapshot_is_parsed_once_per_run(opener: Opener) -> None:
    store = opener()
    assert store.last_snapshot() is None
    store.save_snapshot(snapshot(T0, "a"))
    first = store.last_snapshot()
    assert first is not None and set(first.guardians) == {"a"}
    assert store.last_snapshot() is first  # not parsed again
    store.save_snapshot(snapshot(T0 + timedelta(days=1), "a", "b"))
    newer = store.last_snapshot()
    assert newer is not None and set(newer.guardians) == {"a", "b"}


def test_a_run_saved_by_another_process_is_seen(opener: Opener) -> None:
    """``educonnect sync-now`` writes the store while ``bridge serve`` holds it open."""
    serving, other = opener(), opener()
    serving.save_snapshot(snapshot(T0, "a"))
    assert set(serving.last_snapshot().guardians) == {"a"}  # type: ignore[union-attr]
    other.save_snapshot(snapshot(T0 + timedelta(days=1), "b"))
    assert set(serving.last_snapshot().guardians) == {"b"}  # type: ignore[union-attr]


def test_the_sign_in_index_follows_the_last_run_and_bridges_are_read_by_id(
    opener: Opener,
) -> None:
    from sync.bridge import Identity

    store, other = opener(), opener()
    assert store.indexed_snapshot() is None
    store.save_snapshot(snapshot(T0, "a", "b"))
    indexed = store.indexed_snapshot()
    assert indexed is not None and store.indexed_snapshot() == indexed  # built once
    signing_in = Identity("educonnect", "d", source_keys=frozenset({"b", "z"}))
    assert indexed[1].candidates(signing_in) == {"b"}
    other.save_snapshot(snapshot(T0 + timedelta(days=1), "z"))
    newer = store.indexed_snapshot()
    assert newer is not None and newer[1].candidates(signing_in) == {"z"}

    store.create_bridge("br-1", "educonnect", "d", None, ("a", "b"), T0)
    many = [f"g{i}" for i in range(1200)] + ["b"]  # more than one query's parameters
    assert store.bridged_among(many) == {"b": "br-1"}
    assert store.bridge_of_guardian("a") == "br-1" and store.bridge_of_guardian("z") is None
    assert other.bridge_for("educonnect", "d") == "br-1"
    assert other.bridge_info("br-1") == ("educonnect", None)
    other.join_guardians("br-1", ("b", "c"))  # b already there: no error, no duplicate
    assert store.guardians_of("br-1") == ("a", "b", "c")
    assert store.bridged() == {"a": "br-1", "b": "br-1", "c": "br-1"}


def test_a_session_ends_at_logout_or_expiry_wherever_it_was_opened(opener: Opener) -> None:
    store, replica = opener(), opener()
    now = time.time()
    store.open_session("s1", "br-1", now + 60)
    store.open_session("s2", "br-2", now - 1)  # already expired: never open
    assert replica.session_bridge("s1", now) == "br-1"
    assert store.session_bridge("s2", now) is None
    assert store.session_bridge("s1", now + 61) is None
    assert replica.session_bridge("s1", now + 59.5) == "br-1"  # epoch seconds kept exactly
    replica.close_session("s1")
    assert store.session_bridge("s1", now) is None


def test_responses_are_used_once_and_the_first_answer_wins_across_connections(
    opener: Opener,
) -> None:
    store, replica = opener(), opener()
    assert store.use_once("state-1", T0) is True
    assert replica.use_once("state-1", T0) is False
    assert replica.use_once("state-2", T0 + timedelta(days=2)) is True
    store.purge_used(T0 + timedelta(days=1))
    assert store.use_once("state-1", T0) is True  # purged: a state is never reused anyway
    assert store.use_once("state-2", T0) is False

    first = Attachment("el-1", "re-1", "attached", T0, "parent")
    late = Attachment("el-1", "re-1", "blocked", T0 + timedelta(seconds=1), "parent")
    assert store.record_if_pending("br-1", first) is True
    assert replica.record_if_pending("br-1", late) is False
    assert replica.attachments("br-1") == {"el-1": first}
    school = Attachment("el-1", "re-2", "attached", T0 + timedelta(days=1), "school")
    replica.record_attachment("br-1", school)  # the school overrides
    assert store.attachments("br-1") == {"el-1": school}
    store.remove_attachment("br-1", "el-1")
    assert replica.attachments("br-1") == {}


def test_rate_windows_count_the_attempts_of_every_connection(opener: Opener) -> None:
    store, replica = opener(), opener()
    now = 1_800_000_000.25
    outcomes = [
        (store if i % 2 else replica).hit("login:ip:x", now + i, limit=3, seconds=60)
        for i in range(5)
    ]
    assert outcomes == [True, True, True, False, False]
    assert store.hit("login:ip:x", now + 61, limit=3, seconds=60) is True  # a new window
    window = replica.window("login:ip:x")
    assert window is not None and window.started == now + 61 and window.count == 1


def test_one_replica_of_many_claims_each_nightly_run(opener: Opener) -> None:
    from entsync.bridge_runtime import claim_run

    store, replica = opener(), opener()
    assert claim_run(store, T0) is True
    assert claim_run(replica, T0) is False
    assert claim_run(replica, T0 + timedelta(days=1)) is True


async def test_readiness_names_a_store_that_does_not_answer(opener: Opener) -> None:
    from connectors.bridge.health import readiness, ready

    store = opener()
    assert await readiness(store, {}) == {"store": "ok"}
    store.close()
    facts = await readiness(store, {})
    assert facts["store"] != "ok" and not ready(facts)


async def _client_seen(app: Any, peer: str) -> str:
    """What the app takes for the client's address, for one request from ``peer``."""
    sent: list[bytes] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"x-forwarded-for", b"203.0.113.9")],
        "client": (peer, 40000),
        "server": ("127.0.0.1", 8400),
    }
    await app(scope, receive, send)
    return b"".join(sent).decode()


async def test_client_addresses_come_from_trusted_proxies_only() -> None:
    """Rate limits count per client IP: behind a named proxy, the forwarded one."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from entsync.bridge_runtime import server_config
    from entsync.settings import Settings

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.client.host if request.client else "?")

    app = Starlette(routes=[Route("/", whoami)])
    seen: dict[str | None, dict[str, str]] = {}
    for proxies in (None, "10.0.0.5"):
        config = server_config(Settings(bridge_trusted_proxies=proxies), app)
        config.load()
        seen[proxies] = {
            peer: await _client_seen(config.loaded_app, peer) for peer in ("10.0.0.5", "10.0.0.6")
        }
    assert seen[None] == {"10.0.0.5": "10.0.0.5", "10.0.0.6": "10.0.0.6"}
    assert seen["10.0.0.5"] == {"10.0.0.5": "203.0.113.9", "10.0.0.6": "10.0.0.6"}
