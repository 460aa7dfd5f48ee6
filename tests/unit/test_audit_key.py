"""Where the audit digest key comes from: the setting, the local services' own key, or an error."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from entsync.audit_key import KEY_FILE, audit_digest_key
from entsync.settings import SERVICES_FILE, ConfigurationError, Settings


def _local_services(state_dir: Path) -> Settings:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / SERVICES_FILE).write_text(json.dumps({"kafka_bootstrap": "127.0.0.1:1"}))
    return Settings(state_dir=state_dir)


def test_the_configured_key_is_used(tmp_path: Path) -> None:
    key = "k" * 40
    settings = _local_services(tmp_path).model_copy(update={"audit_digest_key": SecretStr(key)})
    assert audit_digest_key(settings) == key.encode()
    assert not (tmp_path / KEY_FILE).exists()


def test_a_short_configured_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, audit_digest_key=SecretStr("short"))
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        audit_digest_key(settings)


def test_a_deployment_without_a_key_is_told_to_set_one(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="kafka:9092")  # no local services
    with pytest.raises(ConfigurationError, match="ENTSYNC_AUDIT_DIGEST_KEY must be set"):
        audit_digest_key(settings)
    assert not (tmp_path / KEY_FILE).exists()


def test_the_local_services_make_their_key_once_readable_by_their_owner(tmp_path: Path) -> None:
    settings = _local_services(tmp_path)
    first = audit_digest_key(settings)
    path = tmp_path / KEY_FILE
    assert len(first) >= 32 and path.read_text().strip().encode() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit_digest_key(settings) == first  # kept: the same digests after a restart
    assert audit_digest_key(_local_services(tmp_path / "other")) != first


def test_an_unusable_key_file_is_not_replaced_silently(tmp_path: Path) -> None:
    settings = _local_services(tmp_path)
    (tmp_path / KEY_FILE).write_text("\n")
    with pytest.raises(ConfigurationError, match="holds no usable audit digest key"):
        audit_digest_key(settings)
