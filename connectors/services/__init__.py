"""Local development services: an OpenLDAP server and a Kafka-compatible broker.

``up`` starts them detached (they outlive the CLI), ``down`` stops exactly what ``up`` started,
``status`` reports. Everything lives in a state directory (default ``./.entsync``). The slapd
database survives ``down``/``up``; the broker is in-memory, so topics are lost when it stops.
"""

from connectors.services.errors import ServiceError, ServiceNotInstalledError, ServiceStartError
from connectors.services.manager import (
    SERVICE_NAMES,
    DownResult,
    ServicesConfig,
    ServicesStatus,
    UpResult,
    down,
    read_info,
    status,
    up,
)

__all__ = [
    "SERVICE_NAMES",
    "DownResult",
    "ServiceError",
    "ServiceNotInstalledError",
    "ServiceStartError",
    "ServicesConfig",
    "ServicesStatus",
    "UpResult",
    "down",
    "read_info",
    "status",
    "up",
]
