"""Every process exposes /metrics where Prometheus can scrape it, and the monitoring component
(ServiceMonitors, alerts, Grafana dashboard) reads only metrics the processes export."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from tests.deploy.k8s import K8S, OVERLAYS, documents, render, validate
from tests.deploy.monitoring import (
    CONTRACT_SERIES,
    metric_names,
    selects,
    unknown_fields,
    unknown_metrics,
)

pytestmark = pytest.mark.unit

PROCESSES = {"intake", "tickets", "notify", "dev-escalation", "workflow-worker", "gateway"}
METRICS_PORT = 9464
COMPONENT = K8S / "components" / "monitoring"
# The metrics an operator must see on the dashboard: tickets per channel, SLA events, the
# intake backlog (rows and oldest age), notify deliveries, RPC latency, worker polling.
DASHBOARD_METRICS = {
    "helpdesk_tickets_created_total",
    "helpdesk_sla_events_total",
    "helpdesk_intake_rows",
    "helpdesk_intake_oldest_received_age_seconds",
    "helpdesk_notify_deliveries_total",
    "helpdesk_rpc_duration_seconds_bucket",
    "helpdesk_worker_polling",
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: documents(render(f"overlays/{overlay}")) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def prod(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["prod"]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        rule
        for doc in of_kind(docs, "PrometheusRule").values()
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
    ]


def dashboards(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Grafana dashboards the sidecar loads: ConfigMaps labelled grafana_dashboard=1."""
    found = {}
    for config in of_kind(docs, "ConfigMap").values():
        if config["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            for key, text in config["data"].items():
                found[key] = json.loads(text)
    return found


def panel_queries(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Each panel's PromQL (rows nest their panels), and the template variables' queries."""
    queries: dict[str, list[str]] = {}
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        if panel.get("type") != "row":
            queries[panel["title"]] = [t["expr"] for t in panel.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            query = variable["query"]
            queries[f"${variable['name']}"] = [query["query"] if isinstance(query, dict) else query]
    return queries


def env_of(container: dict[str, Any], configmaps: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The plain values a container's environment gets, from envFrom ConfigMaps and env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref is not None:
            env.update(configmaps[ref["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    return env


# The processes' own side ------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_serves_metrics_on_a_named_port(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered[overlay]
    deployments = of_kind(docs, "Deployment")
    assert set(deployments) == PROCESSES
    configmaps = of_kind(docs, "ConfigMap")
    for name, deployment in deployments.items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            where = f"{overlay}/{name}/{container['name']}"
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            assert ports.get("metrics") == METRICS_PORT, f"{where}: no metrics port"
            addr = env_of(container, configmaps).get("HELPDESK_METRICS_ADDR")
            assert addr == f"0.0.0.0:{METRICS_PORT}", f"{where}: HELPDESK_METRICS_ADDR={addr}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_has_a_service_with_a_metrics_port(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered[overlay]
    services = of_kind(docs, "Service")
    for name, deployment in of_kind(docs, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        behind = [
            s for s in services.values() if selects({"matchLabels": s["spec"]["selector"]}, labels)
        ]
        assert behind, f"{overlay}/{name}: no Service selects its pods"
        for service in behind:
            ports = {p["name"]: p for p in service["spec"]["ports"]}
            assert "metrics" in ports, f"{overlay}/{service['metadata']['name']}: no metrics port"
            assert ports["metrics"]["targetPort"] == "metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_in_monitoring_may_scrape_the_metrics_port_and_nothing_else(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered[overlay]
    policies = of_kind(docs, "NetworkPolicy").values()

    def from_monitoring(peer: dict[str, Any]) -> bool:
        namespace = peer.get("namespaceSelector")
        return namespace is not None and selects(
            namespace, {"kubernetes.io/metadata.name": "monitoring"}
        )

    for name, deployment in of_kind(docs, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        allowed = set()
        for policy in policies:
            if not selects(policy["spec"]["podSelector"], labels):
                continue
            for rule in policy["spec"].get("ingress", []):
                peers = rule.get("from")
                # A rule without `from` admits every namespace, monitoring included.
                if peers is None or any(from_monitoring(p) for p in peers):
                    allowed |= {p["port"] for p in rule.get("ports", [])}
                if peers and any(from_monitoring(p) for p in peers):
                    assert {p["port"] for p in rule["ports"]} == {METRICS_PORT}, (
                        f"{overlay}/{policy['metadata']['name']} admits more than metrics"
                    )
        assert METRICS_PORT in allowed, f"{overlay}/{name}: Prometheus cannot scrape it"


# The component ----------------------------------------------------------------------------


def test_the_component_also_builds_on_the_dev_overlay(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: helpdesk-dev\n"
        f"resources:\n  - {os.path.relpath(K8S / 'overlays' / 'dev', tmp_path)}\n"
        f"components:\n  - {os.path.relpath(COMPONENT, tmp_path)}\n"
    )
    text = render(tmp_path)
    result = validate(text, tmp_path)
    assert result.ok, f"{result.errors} unknown kinds: {result.unknown}"
    docs = documents(text)
    monitors = of_kind(docs, "ServiceMonitor")
    assert set(monitors) == PROCESSES
    assert {d["metadata"]["namespace"] for d in monitors.values()} == {"helpdesk-dev"}
    assert dashboards(docs)


def test_prod_includes_the_component(prod: list[dict[str, Any]]) -> None:
    assert set(of_kind(prod, "ServiceMonitor")) == PROCESSES
    assert of_kind(prod, "PrometheusRule") and dashboards(prod)


def test_the_operator_kinds_use_only_known_fields(prod: list[dict[str, Any]]) -> None:
    for doc in prod:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            assert not unknown_fields(doc), f"{doc['kind']}/{doc['metadata']['name']}"


def test_a_misspelt_operator_field_is_caught() -> None:
    doc = {"kind": "ServiceMonitor", "spec": {"selector": {}, "endpoints": [{"prot": "x"}]}}
    assert unknown_fields(doc) == ["spec.endpoints[0].prot"]


def test_every_service_monitor_scrapes_a_metrics_port_that_exists(
    prod: list[dict[str, Any]],
) -> None:
    services = of_kind(prod, "Service")
    deployments = of_kind(prod, "Deployment")
    for name, monitor in of_kind(prod, "ServiceMonitor").items():
        spec = monitor["spec"]
        assert not spec.get("namespaceSelector"), f"{name}: scrapes its own namespace only"
        (endpoint,) = spec["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics"), name
        chosen = [
            s for s in services.values() if selects(spec["selector"], s["metadata"]["labels"])
        ]
        assert len(chosen) == 1, f"{name}: selects {[s['metadata']['name'] for s in chosen]}"
        (service,) = chosen
        # The job label is the Service's name: the alerts below name these jobs.
        assert service["metadata"]["name"] == name
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        target = ports[endpoint["port"]]["targetPort"]
        pods = [
            d
            for d in deployments.values()
            if selects(
                {"matchLabels": service["spec"]["selector"]},
                d["spec"]["template"]["metadata"]["labels"],
            )
        ]
        assert pods, f"{name}: its Service selects no Deployment"
        for deployment in pods:
            container_ports = {
                p["name"]
                for c in deployment["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
            }
            assert target in container_ports, f"{name}: no container port {target}"


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, method) (rate(helpdesk_rpc_duration_seconds_bucket"
        '{code!="OK", method=~"/helpdesk.*"}[5m]))) > on(job) group_left helpdesk_typo_total'
        ' offset 1h and absent(helpdesk_worker_polling{job="tickets"}) * 1e3'
    )
    assert metric_names(expr) == {
        "helpdesk_rpc_duration_seconds_bucket",
        "helpdesk_typo_total",
        "helpdesk_worker_polling",
    }
    assert unknown_metrics(expr) == {"helpdesk_typo_total"}
    assert metric_names("label_values(helpdesk_worker_polling, namespace)") == {
        "helpdesk_worker_polling"
    }
    assert metric_names('max(helpdesk_intake_rows{namespace="$namespace"}[$__rate_interval])') == {
        "helpdesk_intake_rows"
    }


def test_alerts_read_contract_metrics_and_tell_the_operator_what_happened(
    prod: list[dict[str, Any]],
) -> None:
    alerts = [r for r in rules(prod) if "alert" in r]
    assert alerts
    for rule in rules(prod):
        name = rule.get("alert") or rule.get("record")
        assert not unknown_metrics(rule["expr"]), f"{name}: {unknown_metrics(rule['expr'])}"
        assert metric_names(rule["expr"]), f"{name}: reads no metric"
    for alert in alerts:
        name = alert["alert"]
        assert alert.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        annotations = alert.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert annotations.get("description", "").strip(), f"{name}: no description"


def test_the_alerts_cover_backlog_deliveries_breaches_and_workers(
    prod: list[dict[str, Any]],
) -> None:
    alerts = [r for r in rules(prod) if "alert" in r]

    def on(metric: str) -> list[dict[str, Any]]:
        return [a for a in alerts if metric in metric_names(a["expr"])]

    (backlog,) = on("helpdesk_intake_oldest_received_age_seconds")
    assert "> 300" in backlog["expr"] and backlog["for"] == "5m"
    (failed,) = on("helpdesk_notify_deliveries_total")
    assert 'outcome="failed"' in failed["expr"] and "[15m]" in failed["expr"]
    (breaches,) = on("helpdesk_sla_events_total")
    assert 'kind="breach"' in breaches["expr"] and "[1h]" in breaches["expr"]
    polling = on("helpdesk_worker_polling")
    assert any(
        a["expr"].strip() == "helpdesk_worker_polling == 0" and a["for"] == "5m" for a in polling
    )
    # absent() for every job that runs a Temporal worker (those with a worker health port).
    worker_jobs = {
        name
        for name, d in of_kind(prod, "Deployment").items()
        if any(
            e["name"] == "HELPDESK_WORKER_HEALTH_ADDR"
            for c in d["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", [])
        )
    }
    assert worker_jobs == {"workflow-worker", "tickets", "dev-escalation"}
    absent = {a["expr"].strip() for a in polling if a["expr"].strip().startswith("absent(")}
    assert absent == {f'absent(helpdesk_worker_polling{{job="{job}"}})' for job in worker_jobs}
    assert worker_jobs <= set(of_kind(prod, "ServiceMonitor")), "every such job is scraped"


def test_the_dashboard_ships_as_the_file_in_the_component(prod: list[dict[str, Any]]) -> None:
    shipped = dashboards(prod)
    files = {p.name: json.loads(p.read_text()) for p in (COMPONENT / "dashboards").glob("*.json")}
    assert shipped == files and files
    for dashboard in files.values():
        assert dashboard["uid"] and dashboard["title"]


def test_every_dashboard_query_reads_contract_metrics(prod: list[dict[str, Any]]) -> None:
    for dashboard in dashboards(prod).values():
        queries = panel_queries(dashboard)
        seen: set[str] = set()
        for title, exprs in queries.items():
            assert exprs, f"panel {title!r} has no query"
            for expr in exprs:
                assert not unknown_metrics(expr), f"{title}: {unknown_metrics(expr)}"
                assert metric_names(expr), f"{title}: reads no metric"
                seen |= metric_names(expr)
        assert seen >= DASHBOARD_METRICS, f"no panel for {DASHBOARD_METRICS - seen}"


def test_the_contract_list_matches_services_common_metrics() -> None:
    """The names these tests accept are the ones services/common/metrics.py registers."""
    module = pytest.importorskip("services.common.metrics")
    registries = [v for v in vars(module).values() if isinstance(v, CollectorRegistry)]
    registry = registries[0] if registries else REGISTRY
    series: set[str] = set()
    for family in registry.collect():
        if not family.name.startswith("helpdesk_"):
            continue
        if family.type == "counter":
            series.add(f"{family.name}_total")
        elif family.type == "histogram":
            series |= {f"{family.name}{s}" for s in ("_bucket", "_sum", "_count")}
        else:
            series.add(family.name)
    assert series == CONTRACT_SERIES
