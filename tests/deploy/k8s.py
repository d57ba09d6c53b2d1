"""Rendering and validating the Kubernetes manifests offline (kubectl kustomize,
kubernetes-validate), shared by the deploy tests."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")
KUBERNETES_VALIDATE = str(BIN / "kubernetes-validate")
# The Kubernetes version the manifests are validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.37.0"

OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
# Kustomizations applied on their own (README.md): operator resources, validated too.
DEPS = ["deps/postgres", "deps/temporal", "deps/nats"]

# Custom resources the manifests may use: (apiVersion, kind). Anything else without a
# schema (a typo, or an API version Kubernetes removed) fails validation.
ALLOWED_CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("external-secrets.io/v1", "ExternalSecret"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("jetstream.nats.io/v1beta2", "Stream"),
    ("jetstream.nats.io/v1beta2", "Consumer"),
    ("jetstream.nats.io/v1beta2", "KeyValue"),
    # components/monitoring (their fields: tests/deploy/monitoring.py).
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}

NO_SCHEMA = re.compile(r"Couldn't find schema for kind (\S+) with api version (\S+)")


def render(target: str | Path) -> str:
    """``kubectl kustomize`` of a directory under deploy/k8s (or any path)."""
    path = K8S / target if isinstance(target, str) else target
    done = subprocess.run(
        [KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return done.stdout


def documents(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


@dataclass
class Validation:
    errors: list[str]
    unknown: list[tuple[str, str]]  # (apiVersion, kind) without a schema, not allowed
    output: str

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unknown


def validate(rendered: str, tmp: Path, name: str = "rendered.yaml") -> Validation:
    """``kubernetes-validate --strict`` against ``KUBERNETES_VERSION``.

    It only warns about a kind it has no schema for; here that is an error unless the kind
    is an allowed custom resource (this is also how a removed API version fails).
    """
    path = tmp / name
    path.write_text(rendered)
    done = subprocess.run(
        [KUBERNETES_VALIDATE, "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    unknown: list[tuple[str, str]] = []
    for line in output.splitlines():
        if not line.startswith("WARN"):
            continue
        match = NO_SCHEMA.search(line)
        if match is None:
            errors.append(line)  # any other warning is a failure too
            continue
        kind, api_version = match.groups()
        if (api_version, kind) not in ALLOWED_CRDS:
            unknown.append((api_version, kind))
    if done.returncode != 0 and not errors:
        errors.append(f"kubernetes-validate exited {done.returncode}: {output}")
    return Validation(errors, unknown, output)
