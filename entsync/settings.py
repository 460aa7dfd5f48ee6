"""Configuration: ``ENTSYNC_*`` environment variables, an optional file, then local defaults.

Precedence (highest first): environment variables, the file named by ``ENTSYNC_CONFIG`` (a
``KEY=value`` env file), then the local services described by ``<state_dir>/services.json`` when
``entsync services up`` has started them. Production sets ``ENTSYNC_KAFKA_BOOTSTRAP`` and the
``ENTSYNC_LDAP_*`` variables to point at Apache Kafka and an existing directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.errors import ConfigurationError as ConfigurationError  # re-exported
from connectors.stream.deployment import (
    FETCH_PARTITION_BYTES,
    INTAKE_MAX_WAITING,
    WINDOW_MAX_INPUTS,
)
from schemas.topics import REPLAY_PRIVATE, TopicSpec, run_topic_name
from sync.entries import JointureSources

SERVICES_FILE = "services.json"


# Writer processes with at least two cores (see writer_processes): ldap3's CPU needs two;
# python-ldap's one, for the interpreter lock (see connectors.ldap.writer_processes).
DEFAULT_WRITER_PROCESSES = {"python-ldap": 1, "ldap3": 2}
DEFAULT_METRICS_PORT = 9464  # the chart's 'metrics' port


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENTSYNC_", extra="ignore")

    state_dir: Path = Field(default=Path(".entsync"), description="local services and stores")
    kafka_bootstrap: str | None = None
    ldap_url: str | None = None
    ldap_bind_dn: str | None = None
    ldap_password: SecretStr | None = None
    ldap_base_dn: str = "dc=ent,dc=example"
    ldap_writer: Literal["python-ldap", "ldap3"] = Field(
        default="python-ldap",
        description="the client the worker writes the directory with: python-ldap (libldap, a "
        "batch's requests pipelined on one connection) or ldap3 (pure Python, a connection per "
        "thread, optionally in processes of their own). Reads and admin commands use ldap3",
    )
    ldap_max_in_flight: int = Field(
        default=8,
        ge=1,
        le=64,
        description="directory writes under way at once: requests in flight on the python-ldap "
        "writer's connection, or the ldap3 writer's connections",
    )
    ldap_writer_processes: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="run directory writes in this many processes of their own, sharing "
        "ldap_max_in_flight (in threads of the worker, a writer shares its interpreter lock "
        "with deciding); 0: in threads of the worker. Default with at least two cores: 1 for "
        "python-ldap, 2 for ldap3 (pure Python); else 0. Each process costs about 40 MB",
    )
    ldap_retry_total_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="how long a directory write is retried while the directory is unreachable "
        "or busy; past it the worker stops with exit code 6 (its unacknowledged inputs are "
        "read again at the next start)",
    )
    # LDAP security (see README "LDAP security"); checked by entsync.ldap_clients
    ldap_tls_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CAs that may sign the directory's certificate (ldaps:// "
        "or StartTLS); unset: the system's trust store. The certificate and host name are "
        "always checked",
    )
    ldap_starttls: bool = Field(
        default=False, description="on an ldap:// URL: StartTLS before the bind"
    )
    ldap_allow_cleartext_bind: bool = Field(
        default=False,
        description="allow a simple bind in clear text (ldap:// without StartTLS) to a host "
        "other than this machine; refused at start-up otherwise",
    )
    app_id: str = Field(default="entsync", description="faust app id = consumer group prefix")
    topic_partitions: int = Field(default=4, ge=1)
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="longest wait of the worker's fetches for data (faust's own: 1500)",
    )
    intake_max_waiting: int = Field(
        default=INTAKE_MAX_WAITING,
        ge=0,
        description="entity inputs waiting over which the worker pauses its feed partitions "
        "(resumed under half; 0: never paused); see connectors/stream/intake.py",
    )
    kafka_fetch_partition_bytes: int = Field(
        default=FETCH_PARTITION_BYTES,
        ge=1_024,
        description="the most one fetch of the worker brings per partition (a larger record "
        "batch still comes whole): small keeps the feed taken in ahead of the decisions small "
        "(connectors/stream/intake.py); larger reads lost tables back from their changelogs "
        "in fewer round trips",
    )
    write_window_max_inputs: int = Field(
        default=WINDOW_MAX_INPUTS,
        ge=1,
        description="entity inputs a write window holds at most before its entries are written "
        "(up to three windows at once): the worker's memory during a load against writing an "
        "entry once; see connectors/stream/write_window.py",
    )
    kafka_session_timeout_s: float = Field(
        default=10.0,
        ge=1,
        description="consumer group session: a stopped worker's partitions move after this; "
        "the local broker also waits half of it before a join completes",
    )

    # Kafka security and topics: checked by entsync.kafka_clients; see README "Kafka security"
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (required with SASL)"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle the brokers' certificates are checked against; "
        "unset: the system's CAs",
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None, description="client certificate (PEM; may hold the key too)"
    )
    kafka_ssl_key_file: Path | None = Field(default=None, description="its unencrypted key")
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="the broker's certificate must name the host connected to"
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, le=32, description="of the topics entsync (and faust) create"
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None, ge=1, le=32, description="of the topics entsync creates; unset: broker's"
    )
    kafka_retention_ms: int = Field(
        default=-1,
        ge=-1,
        description="retention of the stream topics entsync creates; -1 keeps them forever "
        "(replay and the ingest ledger read the whole history); changelogs are compacted",
    )
    id_namespace: str = Field(
        default="entsync",
        description="namespace of opaque entity ids; fixed for the life of a directory",
    )
    jointure_source_onde: str = Field(
        default="ONDE",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="SOURCE of the SOURCE$key jointures of ONDE records (schools, pupils, "
        "guardians); fixed for the life of a directory",
    )
    jointure_source_staff: str = Field(
        default="AAF",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="SOURCE of the SOURCE$key jointures of staff records; fixed for the life of "
        "a directory",
    )
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: str = "INFO"

    # lifecycle (pre-deletion, guards, school year): see README "Account lifecycle"
    lifecycle_predelete_days: int = Field(
        default=90, ge=1, description="disappeared -> predeleted, unless set per profile below"
    )
    lifecycle_delete_days: int = Field(default=90, ge=1, description="predeleted -> deleted")
    lifecycle_predelete_days_pupil: int | None = Field(default=None, ge=1)
    lifecycle_predelete_days_guardian: int | None = Field(default=None, ge=1)
    lifecycle_predelete_days_staff: int | None = Field(default=None, ge=1)
    lifecycle_delete_days_pupil: int | None = Field(default=None, ge=1)
    lifecycle_delete_days_guardian: int | None = Field(default=None, ge=1)
    lifecycle_delete_days_staff: int | None = Field(default=None, ge=1)
    lifecycle_guard_share: float = Field(
        default=0.10, gt=0, le=1, description="hold a snapshot marking more than this share"
    )
    lifecycle_guard_min_count: int = Field(
        default=5, ge=1, description="...and at least this many accounts"
    )
    lifecycle_grace_days: int = Field(
        default=30, ge=0, description="after a switchover, absence of pupils/guardians waits"
    )
    lifecycle_sweep_hour: int | None = Field(
        default=2, ge=0, le=23, description="nightly sweep hour (Europe/Paris); None: off"
    )

    # parent bridge (entsync bridge serve, entsync educonnect sync-now): see README "Parent bridge"
    bridge_host: str = "127.0.0.1"
    bridge_port: int = Field(default=8400, ge=0, le=65535)
    bridge_public_url: str = Field(
        default="http://127.0.0.1:8400", description="the bridge's URL as browsers see it"
    )
    bridge_secret: SecretStr | None = Field(
        default=None, description="signs session cookies and keys subject digests (32+ chars)"
    )
    bridge_cookie_secure: bool = Field(
        default=True, description="Secure cookies; false only for http://localhost in tests"
    )
    bridge_store: Path | None = Field(
        default=None, description="default <state_dir>/bridge.sqlite3"
    )
    bridge_store_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host/db (a store shared by several bridge "
        "replicas), or sqlite:///path; unset: the SQLite file of ENTSYNC_BRIDGE_STORE",
    )
    bridge_educonnect_issuer: str | None = None
    bridge_educonnect_client_id: str | None = None
    bridge_educonnect_client_secret: SecretStr | None = None
    bridge_educonnect_scope: str = "openid profile"
    bridge_educonnect_source_keys_claim: str = "FrEduCtSourceKeys"
    bridge_educonnect_origin_claim: str = "FrEduCtAccountOrigin"
    bridge_franceconnect_issuer: str | None = None
    bridge_franceconnect_client_id: str | None = None
    bridge_franceconnect_client_secret: SecretStr | None = None
    bridge_franceconnect_scope: str = "openid given_name family_name birthdate"
    bridge_franceconnect_acr: str = "eidas1"
    bridge_franceconnect_name_only_match: bool = Field(
        default=False,
        description="link a FranceConnect identity to a guardian record without a birth date "
        "on names alone (a namesake would get the children: off unless the academy accepts it)",
    )
    bridge_oidc_leeway_seconds: int = Field(default=30, ge=0, le=300)
    bridge_disable_ent_login: bool = True
    bridge_ent_login_url: str = Field(
        default="/", description="the ENT-credentials entry (Personnel collectivité et invité)"
    )
    bridge_sync_hour: int = Field(default=2, ge=0, le=23, description="J+1 run, Europe/Paris")
    bridge_sync_enabled: bool = Field(default=True, description="nightly run inside serve")
    bridge_login_limit: int = Field(default=20, ge=1, description="logins per IP per window")
    bridge_attempt_limit: int = Field(default=10, ge=1, description="date forms per window")
    bridge_rate_window_seconds: int = Field(default=900, ge=1)
    bridge_trusted_proxies: str | None = Field(
        default=None,
        description="comma-separated addresses of the reverse proxies whose X-Forwarded-For "
        "gives the client's IP (rate limits count per IP); unset: the peer's address",
    )

    # audit store (entsync audit ...): see README "Audit store"
    audit_db_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host/db, or an SQLite file; "
        "default <state_dir>/audit.sqlite3",
    )
    audit_digest_key: SecretStr | None = Field(
        default=None,
        description="keys the digests of attribute values in audit events (32+ chars, the same "
        "for every worker); unset: only the local services' own key (see entsync.audit_key)",
    )
    audit_retention_days: int | None = Field(
        default=None, ge=1, description="prune audit records older than this; unset: keep all"
    )

    # replay (entsync replay): see README "Replay and backfill"
    replay_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="set by 'entsync replay': the run's private topics carry this suffix",
    )

    # metrics and health (/metrics, /healthz, /readyz): see README "Monitoring"
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="port of /metrics, /healthz and /readyz of the worker and the audit "
        "consumer; unset: 9464 when they run continuously, none for batch runs (--until-idle, "
        "run, demo, replay); 0: none (the bridge serves them on its own port)",
    )
    metrics_host: str = Field(default="0.0.0.0", description="address the metrics port binds")

    def metrics_port_for(self, continuous: bool) -> int | None:
        """The metrics port of a worker or audit consumer (None: serve none)."""
        port = self.metrics_port
        if port is None:
            return DEFAULT_METRICS_PORT if continuous else None
        return port or None

    def writer_processes(self) -> int:
        """``ldap_writer_processes``, or its writer's default for this machine."""
        if self.ldap_writer_processes is not None:
            return self.ldap_writer_processes
        return DEFAULT_WRITER_PROCESSES[self.ldap_writer] if (os.cpu_count() or 1) >= 2 else 0

    def topic_name(self, spec: TopicSpec) -> str:
        """The topic this run uses for ``spec``: live, or the replay's private copy."""
        return run_topic_name(spec, self.replay_id)

    def private_topic_names(self) -> tuple[str, ...]:
        """The replay's private topics (none for the live system)."""
        if self.replay_id is None:
            return ()
        return tuple(self.topic_name(spec) for spec in REPLAY_PRIVATE)

    def services_file(self) -> Path:
        return self.state_dir / SERVICES_FILE

    def local_services(self) -> dict[str, Any] | None:
        """What ``entsync services up`` recorded, or None."""
        path = self.services_file()
        if not path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data

    def resolved(self) -> Settings:
        """Fill unset connection settings from the running local services."""
        local = self.local_services() or {}
        update: dict[str, Any] = {}
        if self.kafka_bootstrap is None and local.get("kafka_bootstrap"):
            update["kafka_bootstrap"] = local["kafka_bootstrap"]
        if self.ldap_url is None and local.get("ldap_url"):
            update["ldap_url"] = local["ldap_url"]
            update["ldap_bind_dn"] = self.ldap_bind_dn or local.get("ldap_bind_dn")
            if self.ldap_password is None and local.get("ldap_password"):
                update["ldap_password"] = SecretStr(local["ldap_password"])
            if "ENTSYNC_LDAP_BASE_DN" not in os.environ and local.get("ldap_base_dn"):
                update["ldap_base_dn"] = local["ldap_base_dn"]
        return self.model_copy(update=update) if update else self

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap:
            raise ConfigurationError(
                "no Kafka broker configured: set ENTSYNC_KAFKA_BOOTSTRAP or run "
                "'entsync services up'"
            )
        return self.kafka_bootstrap

    def jointure_sources(self) -> JointureSources:
        return JointureSources(onde=self.jointure_source_onde, staff=self.jointure_source_staff)

    def require_ldap(self) -> tuple[str, str, str]:
        if not (self.ldap_url and self.ldap_bind_dn and self.ldap_password):
            raise ConfigurationError(
                "no LDAP directory configured: set ENTSYNC_LDAP_URL, ENTSYNC_LDAP_BIND_DN and "
                "ENTSYNC_LDAP_PASSWORD, or run 'entsync services up'"
            )
        return self.ldap_url, self.ldap_bind_dn, self.ldap_password.get_secret_value()


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, the optional ``ENTSYNC_CONFIG`` file, then local services."""
    env_file = os.environ.get("ENTSYNC_CONFIG")
    kwargs: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if env_file and not Path(env_file).is_file():
        raise ConfigurationError(f"ENTSYNC_CONFIG names {env_file!r}, which is not a file")
    try:
        settings = Settings(_env_file=env_file, **kwargs) if env_file else Settings(**kwargs)
    except ValidationError as exc:
        raise ConfigurationError(invalid_settings(exc)) from None
    return settings.resolved()


def invalid_settings(exc: ValidationError) -> str:
    """Which settings are wrong and why, naming the variables; never the values (secrets)."""
    problems = [
        f"ENTSYNC_{'_'.join(str(part) for part in err['loc']).upper()}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return "invalid settings: " + "; ".join(problems)
