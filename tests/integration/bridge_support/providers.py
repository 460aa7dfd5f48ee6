"""Real OpenID providers for the bridge's integration tests, and an honest tampering proxy.

- EduConnect: ``oidc-provider-mock`` (a real provider built on authlib's server) in a thread;
  per-user claims are set over its HTTP API (``PUT /users/<sub>``). It does not offer PKCE,
  like many providers; the relying party then goes without.
- FranceConnect v2: Node's certified ``oidc-provider`` (``provider.mjs`` beside this file) in a
  child process stopped by pid: PKCE S256, ``acr_values=eidas1``, signed userinfo JWT.
- :class:`SlowLink`: a slow network in front of the bridge (the way back from the provider).
- :class:`TamperingProxy`: a man-in-the-middle between the relying party and a real provider's
  token endpoint that re-signs the real ID token with a key the provider never published (the
  "bad signature" case). Everything else is forwarded untouched.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from oidc_provider_mock import run_server_in_thread

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EduConnect:
    issuer: str

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        response = httpx.put(f"{self.issuer}/users/{sub}", json=claims)
        response.raise_for_status()


@contextlib.contextmanager
def educonnect(max_age: timedelta = timedelta(hours=1)) -> Iterator[EduConnect]:
    with run_server_in_thread(port=free_port(), access_token_max_age=max_age) as server:
        yield EduConnect(issuer=f"http://127.0.0.1:{server.server_port}")


@dataclass
class FranceConnect:
    issuer: str
    accounts_file: Path
    pid: int

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        accounts = json.loads(self.accounts_file.read_text())
        accounts[sub] = claims
        self.accounts_file.write_text(json.dumps(accounts))


def node_available() -> bool:
    return shutil.which("node") is not None and (HERE / "node_modules" / "oidc-provider").is_dir()


@contextlib.contextmanager
def franceconnect(
    tmp: Path, *, client_id: str, client_secret: str, bridge_url: str, code_ttl: int = 60
) -> Iterator[FranceConnect]:
    """The Node provider; ``code_ttl``: seconds an authorization code may be redeemed in."""
    port = free_port()
    accounts = tmp / "fc-accounts.json"
    accounts.write_text("{}")
    env = {
        **os.environ,
        "FC_PORT": str(port),
        "FC_CLIENT_ID": client_id,
        "FC_CLIENT_SECRET": client_secret,
        "FC_REDIRECT_URI": f"{bridge_url}/retour/franceconnect",
        "FC_LOGOUT_REDIRECT_URI": f"{bridge_url}/",
        "FC_ACCOUNTS": str(accounts),
        "FC_CODE_TTL": str(code_ttl),
    }
    log = (tmp / "fc.log").open("wb")
    proc = subprocess.Popen(
        ["node", str(HERE / "provider.mjs")], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        issuer = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"FranceConnect test provider did not start: {tmp / 'fc.log'}")
            time.sleep(0.1)
        yield FranceConnect(issuer=issuer, accounts_file=accounts, pid=proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


class InThread:
    """A socket server run in a thread for a ``with`` block, then shut down and closed."""

    server: socketserver.BaseServer

    def _run(self, server: socketserver.BaseServer) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class TamperingProxy(InThread):
    """Forwards to ``upstream``; token responses get their ID token re-signed by a foreign key.

    Its discovery document is the upstream's, with the token endpoint pointed at the proxy;
    the issuer and JWKS stay the real provider's, so the relying party checks the tampered
    token against the provider's real keys and must refuse it.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.foreign_key = RSAKey.generate_key(2048, {"kid": "not-the-provider"})
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{server.server_port}"
        self._run(server)

    def resign(self, id_token: str) -> str:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        header = {"alg": "RS256", "kid": "not-the-provider"}
        return jwt.encode(header, claims, self.foreign_key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                upstream = httpx.request(
                    method, proxy.upstream + self.path, content=body, headers=headers
                )
                content = upstream.content
                if self.path.startswith("/.well-known/openid-configuration"):
                    doc = upstream.json()
                    doc["token_endpoint"] = proxy.url + httpx.URL(doc["token_endpoint"]).path
                    content = json.dumps(doc).encode()
                elif method == "POST" and "id_token" in content.decode(errors="ignore"):
                    token = upstream.json()
                    token["id_token"] = proxy.resign(token["id_token"])
                    content = json.dumps(token).encode()
                self.send_response(upstream.status_code)
                self.send_header("content-type", upstream.headers.get("content-type", "text/plain"))
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        return Handler


class SlowLink(InThread):
    """A TCP relay in front of the bridge that holds each request to ``/retour/`` for
    ``delay`` seconds: a slow network between the parent's browser and the bridge (Chromium's
    request routing in playwright does not see the provider's redirects)."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port, self.delay = target_port, delay
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._run(server)

    def _handler(self) -> type[socketserver.BaseRequestHandler]:
        link = self

        def pump(src: socket.socket, dst: socket.socket, slow: bool) -> None:
            with contextlib.suppress(OSError):
                while chunk := src.recv(65536):
                    if slow and b" /retour/" in chunk:
                        time.sleep(link.delay)
                    dst.sendall(chunk)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(("127.0.0.1", link.target_port)) as upstream:
                    back = threading.Thread(target=pump, args=(upstream, self.request, False))
                    back.start()
                    pump(self.request, upstream, True)
                    back.join(30)

        return Handler
