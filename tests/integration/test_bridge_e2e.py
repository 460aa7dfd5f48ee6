"""End to end in headless Chromium: a parent signs in with EduConnect (a real provider), sees
two children of one school (and one of another), confirms one birth date correctly and one
wrongly; the directory shows one attachment and one block; the school unblocks with
``entsync admin unblock-attachment``; the parent's retry then succeeds.

Everything runs as in production: ``entsync educonnect sync-now`` and ``entsync bridge serve``
are child processes (stopped by pid), on the session's real slapd and broker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import read_entry
from tests.integration.bridge_support.providers import EduConnect, educonnect, free_port
from tests.integration.bridge_support.world import World, seed
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ENTSYNC = str(Path(sys.executable).parent / "entsync")


@pytest.fixture
def env(local_services: LocalServices, tmp_path: Path) -> Iterator[dict[str, str]]:
    with educonnect() as provider:
        yield _env(local_services, tmp_path, provider)


def _env(services: LocalServices, tmp: Path, ec: EduConnect) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(services.state_dir),
        "ENTSYNC_BRIDGE_STORE": str(tmp / "bridge.sqlite3"),
        "ENTSYNC_BRIDGE_SECRET": "e2e-secret-0123456789-0123456789-abcdef",
        "ENTSYNC_BRIDGE_PORT": str(port),
        "ENTSYNC_BRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ENTSYNC_BRIDGE_COOKIE_SECURE": "false",  # plain http on localhost, tests only
        "ENTSYNC_BRIDGE_SYNC_ENABLED": "false",
        "ENTSYNC_BRIDGE_EDUCONNECT_ISSUER": ec.issuer,
        "ENTSYNC_BRIDGE_EDUCONNECT_CLIENT_ID": "ent-bridge",
        "ENTSYNC_BRIDGE_EDUCONNECT_CLIENT_SECRET": "client-secret-for-tests-only",
        "ENTSYNC_LOG_FORMAT": "json",
        "EC_ISSUER": ec.issuer,
    }


def _entsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [ENTSYNC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


@contextlib.contextmanager
def bridge_server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``entsync bridge serve`` as a child process, stopped by pid."""
    url = env["ENTSYNC_BRIDGE_PUBLIC_URL"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([ENTSYNC, "bridge", "serve"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "bridge did not start"
            time.sleep(0.2)
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def _links(params: LdapParams, dn: str) -> tuple[set[str], set[str]]:
    entry = read_entry(params, dn)
    assert entry is not None
    return set(entry.get("entsyncAttachedChild")), set(entry.get("entsyncAttachmentBlocked"))


def test_parent_attaches_children_in_chromium(
    local_services: LocalServices,
    clean_directory: LdapParams,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("chromium is needed: ./dev setup installs it")
    world: World = seed(clean_directory, local_services.base_dn)
    httpx.put(
        f"{env['EC_ISSUER']}/users/ec-mother", json={"FrEduCtSourceKeys": ["ONDE$G-MERE"]}
    ).raise_for_status()
    _entsync(env, "educonnect", "sync-now")  # the J+1 run the proposals come from
    with bridge_server(env, tmp_path) as url:
        _browse(url, env, world, clean_directory)


def _browse(url: str, env: dict[str, str], world: World, directory: LdapParams) -> None:
    from playwright.sync_api import sync_playwright

    mother = world.dn("re-mere")
    lea, hugo = world.dn("el-lea"), world.dn("el-hugo")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(java_script_enabled=False)  # the pages need none
            page.goto(url + "/")
            page.get_by_role("link", name="Se connecter avec EduConnect").click()
            page.fill("input[name=sub]", "ec-mother")
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_url(url + "/rattachement")
            assert page.get_by_role("heading", name="Rattachement de vos enfants").is_visible()
            body = page.inner_text("main")
            assert "Léa" in body and "Hugo" in body and "École Jean Jaurès" in body
            assert "2017" not in body and "2015" not in body

            page.get_by_label("Date de naissance de Léa").fill("14/03/2017")
            page.get_by_label("Date de naissance de Hugo").fill("01/01/2015")
            page.get_by_role("button", name="Confirmer").click()
            body = page.inner_text("main")
            assert "Léa est maintenant rattaché(e)" in body
            assert "pour Hugo ne correspond pas" in body
            assert page.get_by_label("Date de naissance de Hugo").count() == 0  # no retry
            assert _links(directory, mother) == ({lea}, {hugo})

            _entsync(
                env, "admin", "unblock-attachment", "--guardian", "re-mere", "--child", "el-hugo"
            )
            assert _links(directory, mother) == ({lea}, set())

            page.goto(url + "/rattachement")
            page.get_by_label("Date de naissance de Hugo").fill("02/09/2015")
            page.get_by_role("button", name="Confirmer").click()
            assert "Hugo est maintenant rattaché(e)" in page.inner_text("main")
            assert _links(directory, mother) == ({lea, hugo}, set())
            shown = _entsync(env, "admin", "parent-account", "--guardian", "re-mere").stdout
            assert "origin:" in shown and "el-hugo: attached by parent" in shown
        finally:
            browser.close()
    finally:
        playwright.stop()
