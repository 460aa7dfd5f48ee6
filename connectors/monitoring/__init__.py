"""Prometheus metrics and the health endpoints of the long-running processes (worker, bridge,
audit consumer). Every metric is defined in :mod:`connectors.monitoring.metrics`."""
