"""The Kubernetes manifests render, validate against a pinned Kubernetes, and keep the rules
a platform team checks: probes, resources, restricted security context, no secrets in git."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common import events
from services.dev_escalation import app as dev_escalation_app
from services.gateway.agent import presence
from services.notify import consumer
from services.notify import secrets as notify_secrets
from services.tickets import app as tickets_app
from tests.deploy.k8s import (
    ALLOWED_CRDS,
    DEPS,
    K8S,
    OVERLAYS,
    documents,
    render,
    validate,
)
from workflows import worker as workflow_worker
from workflows.contracts import TICKETS_TASK_QUEUE, WORKFLOW_TASK_QUEUE

pytestmark = pytest.mark.unit

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
PROCESSES = {"intake", "tickets", "notify", "dev-escalation", "workflow-worker", "gateway"}
# Processes that serve HTTP instead of gRPC: probed with httpGet on these paths.
HTTP_PROBES = {"gateway": {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}}


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {overlay: render(f"overlays/{overlay}") for overlay in OVERLAYS}


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def test_there_is_a_dev_and_a_prod_overlay() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_validates_strictly(
    overlay: str, rendered: dict[str, str], tmp_path: Path
) -> None:
    result = validate(rendered[overlay], tmp_path)
    assert result.ok, f"{overlay}: {result.errors} unknown kinds: {result.unknown}"


@pytest.mark.parametrize("target", DEPS)
def test_dependency_resources_validate(target: str, tmp_path: Path) -> None:
    text = render(target)
    for doc in documents(text):
        assert (doc["apiVersion"], doc["kind"]) in ALLOWED_CRDS
    result = validate(text, tmp_path)
    assert result.ok, f"{target}: {result.errors} unknown kinds: {result.unknown}"


def _broken_copy(tmp_path: Path, edit: Any) -> Path:
    """deploy/k8s copied, with ``edit`` applied to the tickets Deployment document."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    path = copy / "base" / "tickets.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    edit(next(d for d in docs if d["kind"] == "Deployment"))
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return copy


def test_a_misspelled_field_fails_validation(tmp_path: Path) -> None:
    def misspell(deployment: dict[str, Any]) -> None:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["readinesProbe"] = container.pop("readinessProbe")

    copy = _broken_copy(tmp_path, misspell)
    result = validate(render(copy / "overlays" / "dev"), tmp_path)
    assert not result.ok
    assert any("readinesProbe" in e for e in result.errors), result.output


def test_an_unknown_kind_or_removed_api_version_fails(tmp_path: Path) -> None:
    removed = (
        "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\n"
        "metadata: {name: x}\nspec: {maxUnavailable: 1}\n"
        "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: y}\n"
    )
    result = validate(removed, tmp_path)
    assert ("policy/v1beta1", "PodDisruptionBudget") in result.unknown
    assert ("example.com/v1", "Widget") in result.unknown


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_follows_the_pod_rules(overlay: str, rendered: dict[str, str]) -> None:
    docs = documents(rendered[overlay])
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    assert {d["metadata"]["name"] for d in workloads} >= PROCESSES | {
        "helpdesk-migrate",
        "helpdesk-register-search-attributes",
    }
    for doc in workloads:
        name = f"{overlay}/{doc['kind']}/{doc['metadata']['name']}"
        spec = pod_spec(doc)
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec.get("serviceAccountName") == "helpdesk", name
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("runAsUser", 0) != 0, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("topologySpreadConstraints"), f"{name}: no topology spread"
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        for container in spec["containers"] + spec.get("initContainers", []):
            cname = f"{name}/{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, cname
            assert sc.get("readOnlyRootFilesystem") is True, cname
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], cname
            assert not sc.get("capabilities", {}).get("add"), cname
            assert not sc.get("privileged"), cname
            assert sc.get("runAsUser", 1) != 0, cname
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{cname}: /tmp is not an emptyDir"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), cname
            assert "memory" in resources.get("limits", {}), cname
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), cname
            for env in container.get("env", []):
                assert not (
                    "value" in env
                    and any(w in env["name"] for w in ("TOKEN", "PASSWORD", "KEY", "DATABASE_URL"))
                ), f"{cname}: {env['name']} must come from a secretKeyRef"
            if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet"} and (
                doc["metadata"]["name"] in HTTP_PROBES
            ):
                for probe, path in HTTP_PROBES[doc["metadata"]["name"]].items():
                    assert container.get(probe, {}).get("httpGet", {}).get("path") == path, (
                        f"{cname}: {probe} is not GET {path}"
                    )
                assert container["startupProbe"]["httpGet"]["path"] == "/healthz", cname
            elif doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}:
                for probe in ("readinessProbe", "livenessProbe"):
                    assert "grpc" in container.get(probe, {}), f"{cname}: no gRPC {probe}"
                assert container["livenessProbe"]["grpc"].get("service") == "liveness", cname
                assert not container["readinessProbe"]["grpc"].get("service"), cname


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_point_at_the_ports_the_processes_listen_on(
    overlay: str, rendered: dict[str, str]
) -> None:
    deployments = by_kind(documents(rendered[overlay]), "Deployment")
    expected = {
        "intake": 50051,
        "tickets": 50052,
        "dev-escalation": 50053,
        "notify": 50054,
        "workflow-worker": 8081,
        "gateway": 8080,
    }
    assert set(expected) == PROCESSES
    for name, port in expected.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [name]
        env = {e["name"]: e for e in container.get("env", [])}
        listen = {
            "intake": "HELPDESK_INTAKE_ADDR",
            "tickets": "HELPDESK_TICKETS_ADDR",
            "dev-escalation": "HELPDESK_DEV_ESCALATION_ADDR",
            "notify": "HELPDESK_NOTIFY_ADDR",
            "workflow-worker": "HELPDESK_WORKER_HEALTH_ADDR",
            "gateway": "HELPDESK_GATEWAY_LISTEN",
        }[name]
        assert env[listen]["value"].endswith(f":{port}"), name
        if name in HTTP_PROBES:
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                assert ports[container[probe]["httpGet"]["port"]] == port, (name, probe)
        else:
            assert container["readinessProbe"]["grpc"]["port"] == port, name
    for name in ("tickets", "dev-escalation"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert {e["name"]: e.get("value") for e in container["env"]}[
            "HELPDESK_WORKER_HEALTH_ADDR"
        ].endswith(":8081"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_periods_exceed_the_worker_shutdown_timeouts(
    overlay: str, rendered: dict[str, str]
) -> None:
    deployments = by_kind(documents(rendered[overlay]), "Deployment")
    timeouts = {
        "tickets": tickets_app.GRACEFUL_SHUTDOWN_TIMEOUT.total_seconds(),
        "dev-escalation": dev_escalation_app.GRACEFUL_SHUTDOWN_TIMEOUT.total_seconds(),
        "workflow-worker": workflow_worker.GRACEFUL_SHUTDOWN_TIMEOUT.total_seconds(),
        # uvicorn's timeout_graceful_shutdown in services/gateway/server.py.
        "gateway": 10,
    }
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        pre_stop = (
            spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("sleep", {})
        ).get("seconds", 0)
        # preStop, then the worker's graceful shutdown, then 5 s for gRPC calls in flight.
        needed = pre_stop + timeouts.get(name, 0) + 5
        assert spec["terminationGracePeriodSeconds"] > needed, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaling_budgets_and_services(overlay: str, rendered: dict[str, str]) -> None:
    docs = documents(rendered[overlay])
    deployments = by_kind(docs, "Deployment")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert set(pdbs) >= set(deployments), "a PDB for each Deployment"
    autoscalers = [
        *by_kind(docs, "HorizontalPodAutoscaler").values(),
        *by_kind(docs, "ScaledObject").values(),
    ]
    hpa_targets = [d["spec"]["scaleTargetRef"]["name"] for d in autoscalers]
    scaled = set(hpa_targets)
    assert {"intake", "tickets", "dev-escalation", "gateway"} <= scaled, (
        "the stateless services autoscale"
    )
    assert "notify" not in scaled, "notify consumes in stream order: not autoscaled"
    assert len(hpa_targets) == len(set(hpa_targets)), "one autoscaler per Deployment"
    services = by_kind(docs, "Service")
    # Every process; workflow-worker's (headless) only names its metrics port.
    assert set(services) == PROCESSES
    assert services["workflow-worker"]["spec"]["clusterIP"] == "None"
    assert [p["name"] for p in services["workflow-worker"]["spec"]["ports"]] == ["metrics"]
    gateway = services["gateway"]["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in gateway if p["name"] != "metrics"] == [
        (80, "http")
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_is_the_one_public_http_entry(overlay: str, rendered: dict[str, str]) -> None:
    docs = documents(rendered[overlay])
    ingresses = by_kind(docs, "Ingress")
    assert set(ingresses) == {"gateway"}
    spec = ingresses["gateway"]["spec"]
    (rule,) = spec["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
    (tls,) = spec["tls"]
    assert tls["hosts"] == [rule["host"]] and tls["secretName"]
    # The links we email point at the host the Ingress serves, over TLS.
    (config,) = [
        c for c in by_kind(docs, "ConfigMap").values() if "HELPDESK_PORTAL_URL" in c["data"]
    ]
    assert config["data"]["HELPDESK_PORTAL_URL"] == f"https://{rule['host']}"
    policy = by_kind(docs, "NetworkPolicy")["gateway"]["spec"]
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    egress = {
        (
            peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name"),
            port["port"],
        )
        for rule in policy["egress"]
        for peer in rule.get("to", [{}])
        for port in rule["ports"]
    }
    assert {("tickets", 50052), ("intake", 50051)} <= egress


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_dns(
    overlay: str, rendered: dict[str, str]
) -> None:
    docs = documents(rendered[overlay])
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny.get("ingress") and not deny.get("egress")
    dns = policies["allow-dns-egress"]["spec"]
    assert {p["port"] for rule in dns["egress"] for p in rule["ports"]} == {53}
    selected = {
        p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        for p in policies.values()
    }
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    for doc in workloads:
        assert doc["metadata"]["name"] in selected, f"no allow policy for {doc['metadata']['name']}"
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "helpdesk"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_only_by_reference(overlay: str, rendered: dict[str, str]) -> None:
    docs = documents(rendered[overlay])
    assert not by_kind(docs, "Secret"), "no Secret objects in git"
    configmaps = by_kind(docs, "ConfigMap")
    # helpdesk-config, and in prod the Grafana dashboard (components/monitoring).
    (config,) = [c for n, c in configmaps.items() if n.startswith("helpdesk-config-")]
    assert set(configmaps) - {config["metadata"]["name"]} <= {"helpdesk-dashboard"}
    assert all(key.startswith(("HELPDESK_", "OTEL_")) for key in config["data"])
    for key in config["data"]:
        assert not any(w in key for w in ("TOKEN", "PASSWORD", "SIGNING_KEY", "DATABASE_URL"))
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1 and None not in namespaces


# The processes that check bearer tokens or sign tokens: each needs the three secrets, and
# none may start without one (a process refuses to sign with a key from the source).
TOKEN_SECRETS = {
    "HELPDESK_ADMIN_TOKEN": "admin-token",
    "HELPDESK_SERVICE_TOKEN": "service-token",
    "HELPDESK_SIGNING_KEY": "signing-key",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_token_checking_processes_require_every_token_secret(
    overlay: str, rendered: dict[str, str]
) -> None:
    deployments = by_kind(documents(rendered[overlay]), "Deployment")
    for name in ("intake", "tickets", "notify", "dev-escalation"):
        (container,) = [c for c in pod_spec(deployments[name])["containers"] if c["name"] == name]
        env = {e["name"]: e for e in container.get("env", [])}
        for variable, key in TOKEN_SECRETS.items():
            ref = env.get(variable, {}).get("valueFrom", {}).get("secretKeyRef")
            assert ref == {"name": "helpdesk-tokens", "key": key}, f"{name}: {variable}: {ref}"
    external = by_kind(documents(rendered[overlay]), "ExternalSecret")
    for doc in external.values():
        assert {d["secretKey"] for d in doc["spec"]["data"]} >= set(TOKEN_SECRETS.values())


def test_overlays_differ_in_namespace_tag_and_size(rendered: dict[str, str]) -> None:
    dev, prod = documents(rendered["dev"]), documents(rendered["prod"])
    assert dev[0]["metadata"]["namespace"] != prod[0]["metadata"]["namespace"]

    def images(docs: list[dict[str, Any]]) -> set[str]:
        workloads = [d for d in docs if d["kind"] in WORKLOADS]
        return {c["image"] for d in workloads for c in pod_spec(d)["containers"]}

    assert len(images(dev)) == 1 and len(images(prod)) == 1 and images(dev) != images(prod)
    dev_replicas = {n: d["spec"]["replicas"] for n, d in by_kind(dev, "Deployment").items()}
    prod_replicas = {n: d["spec"]["replicas"] for n, d in by_kind(prod, "Deployment").items()}
    assert all(prod_replicas[n] >= dev_replicas[n] for n in dev_replicas)
    assert by_kind(prod, "ScaledObject") and by_kind(prod, "ExternalSecret")


def test_no_secret_values_anywhere_under_deploy() -> None:
    for path in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            assert doc.get("kind") != "Secret", path
            text = yaml.safe_dump(doc)
            assert "password:" not in text.replace("existingSecret", ""), path


def test_nack_declarations_match_the_code() -> None:
    docs = documents(render("deps/nats"))
    streams = {d["spec"]["name"]: d["spec"] for d in docs if d["kind"] == "Stream"}
    helpdesk = streams[events.STREAM]
    code_subjects = getattr(events, "TICKET_STREAM_SUBJECTS", events.SUBJECTS)
    assert helpdesk["subjects"] == code_subjects
    assert helpdesk["storage"] == "file" and helpdesk["replicas"] == 3
    assert helpdesk["duplicateWindow"] == f"{events.DUPLICATE_WINDOW_SECONDS // 3600}h"
    secrets = streams[events.SECRETS_STREAM]
    assert secrets["subjects"] == events.SECRET_SUBJECTS
    assert secrets["storage"] == "memory"
    assert secrets["maxAge"] == f"{events.SECRETS_MAX_AGE_SECONDS // 3600}h"
    assert secrets["duplicateWindow"] == f"{events.SECRETS_DUPLICATE_WINDOW_SECONDS // 60}m"
    consumers = {d["spec"]["durableName"]: d["spec"] for d in docs if d["kind"] == "Consumer"}
    # Every durable consumer notify binds to, on the stream and subjects it uses.
    expected = {
        consumer.DURABLE: consumer.EventConsumer,
        notify_secrets.DURABLE: notify_secrets.SecretConsumer,
    }
    assert set(consumers) == set(expected)
    for durable, cls in expected.items():
        spec = consumers[durable]
        assert spec["streamName"] == cls.stream and spec["streamName"] in streams
        assert spec["filterSubject"] == cls.filter_subject
        assert spec["description"] == cls.description
        assert spec["ackWait"] == f"{int(consumer.ACK_WAIT_SECONDS)}s"
        assert spec["ackPolicy"] == "explicit" and spec["maxDeliver"] == -1


def test_the_console_presence_bucket_matches_the_code() -> None:
    """The gateway keeps presence in this bucket (and creates it the same when missing)."""
    docs = documents(render("deps/nats"))
    (bucket,) = [d["spec"] for d in docs if d["kind"] == "KeyValue"]
    assert bucket["bucket"] == presence.BUCKET
    assert bucket["ttl"] == f"{int(presence.TTL_SECONDS)}s"
    assert bucket["history"] == 1 and bucket["storage"] == "memory"
    # The gateway reaches NATS (live feed, presence) through its network policy.
    policy = by_kind(documents(render("overlays/prod")), "NetworkPolicy")["gateway"]["spec"]
    assert any(
        peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "nats"
        and {"protocol": "TCP", "port": 4222} in rule["ports"]
        for rule in policy["egress"]
        for peer in rule.get("to", [])
    )


def test_keda_scales_the_worker_task_queues() -> None:
    docs = documents(render("overlays/prod"))
    queues = {
        so["metadata"]["name"]: trigger["metadata"]["taskQueue"]
        for so in by_kind(docs, "ScaledObject").values()
        for trigger in so["spec"]["triggers"]
        if trigger["type"] == "temporal"
    }
    assert queues == {"workflow-worker": WORKFLOW_TASK_QUEUE, "tickets": TICKETS_TASK_QUEUE}


def test_helm_values_for_the_dependencies() -> None:
    temporal = yaml.safe_load((K8S / "deps/temporal/values.yaml").read_text())
    config = temporal["server"]["config"]
    assert isinstance(config["numHistoryShards"], int)
    for store in ("default", "visibility"):
        sql = config["persistence"][store]["sql"]
        assert sql["driver"].startswith("postgres")
        assert sql["existingSecret"] and "password" not in sql
    assert not temporal["cassandra"]["enabled"] and not temporal["elasticsearch"]["enabled"]
    nats = yaml.safe_load((K8S / "deps/nats/values.yaml").read_text())
    assert nats["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert nats["config"]["jetstream"]["fileStore"]["enabled"] is True
    readme = (K8S / "README.md").read_text()
    for pinned in ("--version", "temporal/temporal", "nats/nats", "nats/nack", "cloudnative-pg"):
        assert pinned in readme
