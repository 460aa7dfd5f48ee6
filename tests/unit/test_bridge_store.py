"""Parent bridge at the edges: the J+1 snapshot parsed and indexed per run; client IPs, proxies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.bridge.store import BridgeStore
from schemas.bridge import GuardianFacts, Snapshot

T0 = datetime(2026, 9, 1, 2, tzinfo=UTC)


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


def test_the_snapshot_is_parsed_once_per_run(tmp_path: Path) -> None:
    store = BridgeStore(tmp_path / "bridge.sqlite")
    try:
        assert store.last_snapshot() is None
        store.save_snapshot(snapshot(T0, "a"))
        first = store.last_snapshot()
        assert first is not None and set(first.guardians) == {"a"}
        assert store.last_snapshot() is first  # not parsed again
        store.save_snapshot(snapshot(T0 + timedelta(days=1), "a", "b"))
        newer = store.last_snapshot()
        assert newer is not None and set(newer.guardians) == {"a", "b"}
    finally:
        store.close()


def test_a_run_saved_by_another_process_is_seen(tmp_path: Path) -> None:
    """``educonnect sync-now`` writes the file while ``bridge serve`` holds it open."""
    path = tmp_path / "bridge.sqlite"
    serving, other = BridgeStore(path), BridgeStore(path)
    try:
        serving.save_snapshot(snapshot(T0, "a"))
        assert set(serving.last_snapshot().guardians) == {"a"}  # type: ignore[union-attr]
        other.save_snapshot(snapshot(T0 + timedelta(days=1), "b"))
        assert set(serving.last_snapshot().guardians) == {"b"}  # type: ignore[union-attr]
    finally:
        serving.close()
        other.close()


def test_the_sign_in_index_follows_the_last_run_and_bridges_are_read_by_id(
    tmp_path: Path,
) -> None:
    from sync.bridge import Identity

    path = tmp_path / "bridge.sqlite"
    store, other = BridgeStore(path), BridgeStore(path)
    try:
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
    finally:
        store.close()
        other.close()


def test_a_session_ends_at_logout_or_expiry(tmp_path: Path) -> None:
    import time

    store = BridgeStore(tmp_path / "bridge.sqlite")
    try:
        now = time.time()
        store.open_session("s1", "br-1", now + 60)
        store.open_session("s2", "br-2", now - 1)  # already expired: never open
        assert store.session_bridge("s1", now) == "br-1"
        assert store.session_bridge("s2", now) is None
        assert store.session_bridge("s1", now + 61) is None
        store.close_session("s1")
        assert store.session_bridge("s1", now) is None
    finally:
        store.close()


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

    from connectors.bridge.runtime import server_config
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
