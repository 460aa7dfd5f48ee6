"""The Helm chart (deploy/helm/entsync): rendered for several value sets, linted strictly, every
manifest validated strictly against the Kubernetes JSON schemas; the values schema refuses bad
values. No helm binary: Helm's Go library through ``helm-python-sdk``."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.unit.chart_support import (
    CHART,
    NAMESPACE,
    VALUE_SETS,
    chart,
    config_data,
    container,
    find,
    helm,
    one,
    render,
    value_set,
    with_values,
)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: CronJob timeZone is GA in
# 1.27) and the newest the bundled schemas know.
KUBE_VERSIONS = ("1.27.0", kubernetes_validate.latest_version() + ".0")
# Prometheus Operator kinds: not in the Kubernetes schemas, checked structurally below.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_each_value_set_meets_the_values_schema(name: str) -> None:
    chart().validate_schema(chart().merge_values(value_set(name)))


@pytest.mark.parametrize("name", VALUE_SETS)
def test_each_value_set_lints_strictly_without_a_warning(name: str) -> None:
    report = helm.lint(CHART, value_set(name), strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    # severity 1 is information ("icon is recommended"); 2 warning, 3 error
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("name", VALUE_SETS)
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(
    name: str, version: str
) -> None:
    docs = render(value_set(name))
    assert docs
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "entsync"


def test_the_chart_creates_no_secret_in_any_value_set() -> None:
    for name in VALUE_SETS:
        assert find(render(value_set(name)), "Secret") == []


def test_defaults_render_worker_bridge_audit_consumer_and_no_optional_extra() -> None:
    docs = render(value_set("defaults"))
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        "ConfigMap/entsync-config",
        "Deployment/entsync-audit",
        "Deployment/entsync-bridge",
        "Deployment/entsync-worker",
        "Job/entsync-topics",
        "NetworkPolicy/entsync",
        "NetworkPolicy/entsync-bridge",
        "PersistentVolumeClaim/entsync-audit",
        "PersistentVolumeClaim/entsync-bridge",
        "PodDisruptionBudget/entsync-bridge",
        "PodDisruptionBudget/entsync-worker",
        "Service/entsync-audit",
        "Service/entsync-bridge",
        "Service/entsync-worker",
        "ServiceAccount/entsync",
    ]


def test_the_topics_job_runs_the_command_after_install_and_upgrade() -> None:
    job = one(render(value_set("defaults")), "Job", "entsync-topics")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"  # after the ConfigMap
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["topics", "ensure"]


def test_bridge_off_renders_no_bridge_object() -> None:
    docs = render(value_set("bridge-off"))
    names = {d["metadata"]["name"] for d in docs}
    assert not any("bridge" in n or "educonnect" in n for n in names)
    assert not any(k.startswith("ENTSYNC_BRIDGE_") for k in config_data(docs))
    assert one(docs, "Deployment", "entsync-worker")["spec"]["replicas"] == 4


@pytest.mark.parametrize("name", VALUE_SETS)
def test_probes_use_the_health_endpoints_on_the_named_ports(name: str) -> None:
    docs = render(value_set(name))
    ports = {"Deployment/entsync-worker": "metrics", "Deployment/entsync-audit": "metrics"}
    if find(docs, "Deployment", "entsync-bridge"):
        ports["Deployment/entsync-bridge"] = "http"
    for ref, port in ports.items():
        kind, deployment = ref.split("/")
        cont = container(docs, kind, deployment)
        assert port in {p["name"] for p in cont["ports"]}
        paths = {
            probe: (cont[probe]["httpGet"]["path"], cont[probe]["httpGet"]["port"])
            for probe in ("startupProbe", "readinessProbe", "livenessProbe")
        }
        assert paths == {
            "startupProbe": ("/healthz", port),
            "readinessProbe": ("/readyz", port),
            "livenessProbe": ("/healthz", port),
        }, ref


def test_the_metrics_port_is_the_setting_the_processes_read() -> None:
    docs = render(with_values(value_set("defaults"), **{"metrics.port": 9555}))
    assert config_data(docs)["ENTSYNC_METRICS_PORT"] == "9555"
    for deployment in ("entsync-worker", "entsync-audit"):
        (port,) = container(docs, "Deployment", deployment)["ports"]
        assert (port["name"], port["containerPort"]) == ("metrics", 9555)


def test_sqlite_bridge_runs_the_j1_sync_itself_on_its_volume() -> None:
    docs = render(value_set("defaults"))
    config = config_data(docs)
    assert config["ENTSYNC_BRIDGE_SYNC_ENABLED"] == "true"
    assert config["ENTSYNC_BRIDGE_STORE"].startswith(config["ENTSYNC_STATE_DIR"])
    bridge = one(docs, "Deployment", "entsync-bridge")
    assert bridge["spec"]["replicas"] == 1
    assert bridge["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in bridge["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "entsync-bridge"
    assert find(docs, "CronJob") == []


def test_postgresql_bridge_replicas_run_the_j1_sync_themselves_unless_a_cronjob_does() -> None:
    values = with_values(value_set("postgresql"), **{"bridge.educonnectSync.cronJob": False})
    docs = render(values)
    # each replica wakes up for the night's run; the first to claim it in the store makes it
    assert config_data(docs)["ENTSYNC_BRIDGE_SYNC_ENABLED"] == "true"
    assert find(docs, "CronJob", "entsync-educonnect-sync") == []


def test_postgresql_stores_scale_the_bridge_and_may_move_the_j1_sync_to_a_cronjob() -> None:
    docs = render(value_set("postgresql"))
    config = config_data(docs)
    assert config["ENTSYNC_BRIDGE_SYNC_ENABLED"] == "false"
    # ENTSYNC_BRIDGE_STORE and ENTSYNC_BRIDGE_STORE_URL together are refused at start
    assert "ENTSYNC_BRIDGE_STORE" not in config
    assert one(docs, "Deployment", "entsync-bridge")["spec"]["replicas"] == 3
    assert find(docs, "PersistentVolumeClaim") == []
    sync = one(docs, "CronJob", "entsync-educonnect-sync")
    assert sync["spec"]["timeZone"] == "Europe/Paris"
    assert sync["spec"]["concurrencyPolicy"] == "Forbid"
    assert container(docs, "CronJob", "entsync-educonnect-sync")["args"] == [
        "educonnect",
        "sync-now",
    ]
    env = {e["name"]: e for e in container(docs, "Deployment", "entsync-bridge")["env"]}
    assert env["ENTSYNC_BRIDGE_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == (
        "entsync-bridge-db"
    )
    audit_env = {e["name"]: e for e in container(docs, "Deployment", "entsync-audit")["env"]}
    assert audit_env["ENTSYNC_AUDIT_DB_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "entsync-audit-db",
        "key": "dsn",
    }


def test_audit_consumer_is_a_single_replica_recreated() -> None:
    for name in VALUE_SETS:
        audit = one(render(value_set(name)), "Deployment", "entsync-audit")
        assert audit["spec"]["replicas"] == 1
        assert audit["spec"]["strategy"] == {"type": "Recreate"}
        assert container([audit], "Deployment", "entsync-audit")["args"] == ["audit", "consume"]


def test_workers_roll_without_surge_and_keep_a_disruption_budget() -> None:
    docs = render(value_set("defaults"))
    worker = one(docs, "Deployment", "entsync-worker")
    assert worker["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    pdb = one(docs, "PodDisruptionBudget", "entsync-worker")
    assert pdb["spec"]["selector"] == worker["spec"]["selector"]
    # the metrics Service also lists workers still waiting for partitions
    assert one(docs, "Service", "entsync-worker")["spec"]["publishNotReadyAddresses"] is True


def test_the_workers_state_dir_is_an_empty_dir_by_default() -> None:
    """The tables' databases (RocksDB) in the state dir: an emptyDir, kept across container
    restarts, sized by worker.stateVolume.sizeLimit."""
    docs = render(value_set("defaults"))
    assert not find(docs, "StatefulSet") and not find(docs, "PersistentVolumeClaim", "state")
    spec = one(docs, "Deployment", "entsync-worker")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {"sizeLimit": "4Gi"}}
    (cont,) = spec["containers"]
    state_dir = config_data(docs)["ENTSYNC_STATE_DIR"]
    assert {"name": "state", "mountPath": state_dir} in cont["volumeMounts"]


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_a_persistent_state_dir_makes_the_workers_a_statefulset_with_a_claim_each(
    version: str,
) -> None:
    values = with_values(
        value_set("secured"),
        **{
            "worker.stateVolume.persistent": True,
            "worker.stateVolume.sizeLimit": "20Gi",
            "worker.stateVolume.storageClassName": "fast-ssd",
        },
    )
    chart().validate_schema(chart().merge_values(values))
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    docs = render(values)
    assert not find(docs, "Deployment", "entsync-worker")
    worker = one(docs, "StatefulSet", "entsync-worker")
    kubernetes_validate.validate(worker, version, strict=True)
    spec = worker["spec"]
    assert spec["serviceName"] == "entsync-worker"  # the headless metrics Service
    assert one(docs, "Service", "entsync-worker")["spec"]["clusterIP"] == "None"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "20Gi"}},
    }
    pod = spec["template"]["spec"]
    assert "state" not in {v["name"] for v in pod["volumes"]}  # the claim is the volume
    (cont,) = pod["containers"]
    assert {"name": "state", "mountPath": "/var/lib/entsync"} in cont["volumeMounts"]
    assert cont["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["fsGroup"] == 10001  # the claim is writable by the worker
    pdb = one(docs, "PodDisruptionBudget", "entsync-worker")
    assert pdb["spec"]["selector"] == spec["selector"]


def test_the_state_volume_values_are_checked_by_the_schema() -> None:
    for bad in ({"persistent": "yes"}, {"sizeLimit": "lots"}, {"storageClass": "x"}):
        values = with_values(value_set("defaults"), **{"worker.stateVolume": bad})
        with pytest.raises(helm.HelmValuesError):
            chart().validate_schema(chart().merge_values(values))


def test_ingest_cronjob_reads_the_feed_volume_read_only() -> None:
    docs = render(value_set("postgresql"))
    ingest = one(docs, "CronJob", "entsync-ingest")
    spec = ingest["spec"]["jobTemplate"]["spec"]
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    feeds = next(v for v in pod["volumes"] if v["name"] == "feeds")
    assert feeds["persistentVolumeClaim"] == {"claimName": "aaf-drop", "readOnly": True}
    (script,) = container(docs, "CronJob", "entsync-ingest")["args"]
    assert "exec entsync ingest" in script and "/feeds/*.xml" in script


def test_ingress_publishes_the_bridge_pages_but_not_its_metrics() -> None:
    docs = render(value_set("postgresql"))
    ingress = one(docs, "Ingress", "entsync-bridge")
    (rule,) = ingress["spec"]["rules"]
    paths = {p["path"] for p in rule["http"]["paths"]}
    assert "/retour" in paths and "/rattachement" in paths
    assert not paths & {"/metrics", "/healthz", "/readyz"}
    assert not any(p["path"] == "/" and p["pathType"] == "Prefix" for p in rule["http"]["paths"])


def test_service_monitor_scrapes_the_metrics_ports() -> None:
    docs = render(value_set("secured"))
    monitor = one(docs, "ServiceMonitor", "entsync")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    endpoints = {(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]}
    assert endpoints == {("metrics", "/metrics"), ("http", "/metrics")}
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        s for s in find(docs, "Service") if selector.items() <= s["metadata"]["labels"].items()
    ]
    scraped_ports = {p["name"] for s in scraped for p in s["spec"]["ports"]}
    assert scraped_ports == {"metrics", "http"}
    assert len(scraped) == 3


def _rules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in doc["spec"]["groups"] for r in g["rules"]}


def test_prometheus_rule_alerts_on_holds_refusals_stale_snapshots_and_lag() -> None:
    docs = render(
        with_values(value_set("secured"), **{"metrics.prometheusRule.snapshotMaxAgeDays": 2})
    )
    rule = one(docs, "PrometheusRule", "entsync")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = _rules(rule)
    assert set(rules) == {
        "EntsyncHeldSnapshotPending",
        "EntsyncDirectoryWritesRefused",
        "EntsyncNoCompleteSnapshot",
        "EntsyncConsumerLag",
        "EntsyncEduconnectSyncStale",
        "EntsyncTargetDown",
    }
    for alert in rules.values():
        assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}
        assert f'namespace="{NAMESPACE}"' in alert["expr"]
        assert alert["labels"]["severity"]
        assert alert["annotations"]["summary"]
    # the metric names of connectors/monitoring/metrics.py (counters with prometheus_client's
    # _total suffix)
    expressions = {name: alert["expr"] for name, alert in rules.items()}
    assert (
        'entsync_holds_pending{namespace="ent", kind="snapshot"}'
        in expressions["EntsyncHeldSnapshotPending"]
    )
    assert (
        'entsync_directory_writes_total{namespace="ent", outcome="refused"}'
        in expressions["EntsyncDirectoryWritesRefused"]
    )
    assert (
        "entsync_snapshot_last_success_timestamp_seconds"
        in expressions["EntsyncNoCompleteSnapshot"]
    )
    assert "> 172800" in expressions["EntsyncNoCompleteSnapshot"]
    assert "entsync_consumer_lag_messages" in expressions["EntsyncConsumerLag"]
    assert (
        "entsync_bridge_sync_last_success_timestamp_seconds"
        in expressions["EntsyncEduconnectSyncStale"]
    )
    # Prometheus' own template markers reach the rule unrendered by Helm
    assert "{{ $labels.topic }}" in rules["EntsyncConsumerLag"]["annotations"]["description"]


def test_network_policy_admits_scrapes_and_the_ingress_controller_only() -> None:
    docs = render(value_set("secured"))
    common = one(docs, "NetworkPolicy", "entsync")
    assert common["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = common["spec"]["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert {"port": 53, "protocol": "UDP"} in common["spec"]["egress"][0]["ports"]
    bridge = one(docs, "NetworkPolicy", "entsync-bridge")
    (web,) = bridge["spec"]["ingress"]
    assert web["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(web["from"]) == 2
    # without egress rules, egress is left alone
    assert one(render(value_set("defaults")), "NetworkPolicy", "entsync")["spec"][
        "policyTypes"
    ] == ["Ingress"]
