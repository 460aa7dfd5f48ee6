"""The key of the audit events' value digests (``ENTSYNC_AUDIT_DIGEST_KEY``).

Audit events name attribute values by HMAC-SHA256 digest only (:func:`sync.diff.values_digest`).
Every worker and replay of a deployment must use the same key: the digests, and the audit event
ids built from them, must not depend on which worker wrote a change or on a restart. A
deployment sets the key (a secret, at least 32 characters). On the local services alone (``entsync
services up``, the demo, the tests) a key is made once and kept in ``<state_dir>/audit-digest.key``
(readable by its owner only). Changing the key later changes the digests of every value from then
on: the before-digest of the next change no longer matches the after-digest of the previous one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from entsync.logs import get_logger
from entsync.settings import ConfigurationError, Settings

log = get_logger(__name__)

MIN_KEY_LENGTH = 32
KEY_FILE = "audit-digest.key"


def audit_digest_key(settings: Settings) -> bytes:
    """The configured key; else the local services' key (made on first use); else an error."""
    if settings.audit_digest_key is not None:
        key = settings.audit_digest_key.get_secret_value()
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigurationError(
                f"ENTSYNC_AUDIT_DIGEST_KEY must be at least {MIN_KEY_LENGTH} characters long"
            )
        return key.encode()
    if settings.local_services() is None:
        raise ConfigurationError(
            f"ENTSYNC_AUDIT_DIGEST_KEY must be set to at least {MIN_KEY_LENGTH} random "
            "characters: it keys the digests of attribute values in audit events, and every "
            "worker and replay of the deployment needs the same one (only the local services "
            f"of 'entsync services up' keep one of their own, in <state_dir>/{KEY_FILE})"
        )
    return _local_key(settings.state_dir / KEY_FILE)


def _local_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process of the same services
            text = path.read_text().strip()
        else:
            with os.fdopen(fd, "w") as out:
                out.write(text + "\n")
            log.info("audit.digest_key_created", path=str(path))
    if len(text) < MIN_KEY_LENGTH:
        raise ConfigurationError(
            f"{path} holds no usable audit digest key: set ENTSYNC_AUDIT_DIGEST_KEY, or remove "
            "the file to make a new key (the digests of values change with it)"
        )
    return text.encode()
