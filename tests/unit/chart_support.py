"""Rendering the Helm chart in tests, without the helm binary: Helm's own Go library through
the ``helm-python-sdk`` wheel (ctypes), offline."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

# Helm's Go library ships as a Linux x86_64 wheel only: elsewhere the chart's tests are skipped.
helm = pytest.importorskip("helm_python", reason="helm-python-sdk: Linux x86_64 only")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "entsync"
VALUE_SETS = ("defaults", "bridge-off", "postgresql", "secured")
RELEASE = "entsync"
NAMESPACE = "ent"

Manifest = dict[str, Any]


@cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def value_set(name: str) -> dict[str, Any]:
    """A copy of ``ci/<name>-values.yaml``, the value sets CI renders the chart with."""
    data: dict[str, Any] = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
    return copy.deepcopy(data)


def with_values(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with dotted-path changes: ``with_values(v, **{"worker.replicas": 5})``."""
    values = copy.deepcopy(base)
    for path, value in changes.items():
        node = values
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return values


def render(values: dict[str, Any]) -> list[Manifest]:
    """Every manifest the chart renders for ``values`` (schema checked by Helm first)."""
    files = chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Manifest] = []
    for path, text in sorted(files.items()):
        if not path.endswith(".yaml"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def rendered_text(values: dict[str, Any]) -> str:
    files = chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return "\n".join(text for path, text in sorted(files.items()) if path.endswith(".yaml"))


def find(docs: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_specs(docs: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every pod template: Deployments, Jobs and CronJobs."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{kind}/{name}", doc["spec"]["template"]["spec"]
        elif kind == "CronJob":
            yield f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def config_data(docs: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap", f"{RELEASE}-config")["data"]
    return data


def container(docs: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    one(docs, kind, name)
    spec = dict(pod_specs(docs))[f"{kind}/{name}"]
    (only,) = spec["containers"]
    result: dict[str, Any] = only
    return result


def env_names(cont: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in cont.get("env", [])}
