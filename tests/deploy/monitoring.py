"""Offline checks for the monitoring manifests: the metric names of the shared contract, the
metric names a PromQL expression reads, and the fields of the Prometheus Operator kinds we use.

No Prometheus runs here, so PromQL is not parsed in full: strings, label matchers, ranges,
grouping clauses, numbers and Grafana variables are cut away, and every identifier left that
is not a function call or a keyword is a metric name. That is enough to catch a misspelt or
invented metric, which is what breaks a dashboard or an alert silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# The metrics every process may export (services/common/metrics.py), as the series
# Prometheus stores: a counter's `_total`, a histogram's `_bucket`, `_sum` and `_count`.
COUNTERS = {
    "helpdesk_tickets_created_total",
    "helpdesk_ticket_updates_total",
    "helpdesk_sla_events_total",
    "helpdesk_notify_deliveries_total",
}
GAUGES = {
    "helpdesk_intake_rows",
    "helpdesk_intake_oldest_received_age_seconds",
    "helpdesk_im_updates_pending",
    "helpdesk_worker_polling",
    # Always 1, labelled with the service that answered the scrape.
    "helpdesk_process_info",
}
HISTOGRAMS = {"helpdesk_mail_parse_seconds", "helpdesk_rpc_duration_seconds"}
CONTRACT_SERIES = (
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
# The Temporal SDK's own metrics, appended to the same /metrics output.
TEMPORAL_PREFIX = "temporal_"

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_NUMBER = re.compile(r"(?<![\w.])(?:0x[0-9a-fA-F]+|\d[\w.]*)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
# Grafana's query variable function: label_values(metric selector, label) or (label).
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),)?\s*\w+\s*\)\s*$", re.DOTALL)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana ``label_values`` query) reads."""
    label_values = _LABEL_VALUES.match(expr)
    if label_values is not None:
        expr = label_values.group(1) or ""
    text = _STRING.sub("", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function, or an aggregation with its grouping after the argument
        if match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def unknown_metrics(expr: str) -> set[str]:
    """The names in ``expr`` that no help-desk process exports."""
    return {
        name
        for name in metric_names(expr)
        if name not in CONTRACT_SERIES and not name.startswith(TEMPORAL_PREFIX)
    }


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) matches ``labels``."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# The Prometheus Operator (monitoring.coreos.com/v1) fields these manifests may use.
# kubernetes-validate has no schema for custom resources: an unknown field, which the API
# server would silently drop, fails here instead.
SERVICE_MONITOR_SPEC = {
    "selector",
    "namespaceSelector",
    "endpoints",
    "jobLabel",
    "targetLabels",
    "podTargetLabels",
    "sampleLimit",
}
SERVICE_MONITOR_ENDPOINT = {
    "port",
    "path",
    "scheme",
    "interval",
    "scrapeTimeout",
    "honorLabels",
    "relabelings",
    "metricRelabelings",
}
RULE_GROUP = {"name", "interval", "rules"}
RULE = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


def unknown_fields(doc: Mapping[str, Any]) -> list[str]:
    """The fields of a ServiceMonitor or PrometheusRule that are not in the sets above."""
    spec = doc["spec"]
    found: list[str] = []

    def check(where: str, value: Mapping[str, Any], allowed: Iterable[str]) -> None:
        found.extend(f"{where}.{key}" for key in value if key not in set(allowed))

    if doc["kind"] == "ServiceMonitor":
        check("spec", spec, SERVICE_MONITOR_SPEC)
        for i, endpoint in enumerate(spec.get("endpoints", [])):
            check(f"spec.endpoints[{i}]", endpoint, SERVICE_MONITOR_ENDPOINT)
    elif doc["kind"] == "PrometheusRule":
        check("spec", spec, {"groups"})
        for i, group in enumerate(spec.get("groups", [])):
            check(f"spec.groups[{i}]", group, RULE_GROUP)
            for j, rule in enumerate(group.get("rules", [])):
                check(f"spec.groups[{i}].rules[{j}]", rule, RULE)
    return found
