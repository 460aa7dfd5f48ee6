"""A CA and one certificate it issued, in one call, for the Kafka TLS tests (see
:mod:`tests.tls_certs`, which makes them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.tls_certs import TestCA


@dataclass(frozen=True)
class Pki:
    """A CA and one certificate it issued, with its key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def write_pki(
    directory: Path,
    *,
    hosts: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = ("127.0.0.1",),
    key_password: bytes | None = None,
) -> Pki:
    """A new CA in ``directory`` and a certificate naming ``hosts`` and ``ips`` (subject
    alternative names: what clients check the host they connect to against)."""
    ca = TestCA(directory, name=f"entsync test CA {directory.name}")
    issued = ca.issue("cert", *hosts, *ips, password=key_password)
    return Pki(ca.ca_file, issued.cert_file, issued.key_file)
