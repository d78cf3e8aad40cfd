"""Monitoring: the PodMonitor finds every pod with agent metrics; the alerts use only the
metric names of the contract (DESIGN §3) and the dashboard only names the agents export, so a
typo cannot hide."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from agents.settings import parse_duration
from tests.manifests.agentcli import container_env, parse
from tests.manifests.kustomize import MANIFESTS, REPO, Obj
from tests.manifests.objects import AGENT_IMAGES, pods, prestop

pytestmark = pytest.mark.integration

Renders = dict[str, list[Obj]]

# DESIGN §3, "Metric names" (histograms also expose _bucket, _sum and _count).
CONTRACT = {
    "srs_build_info", "srs_cpu_percent", "srs_memory", "srs_send_bytes_total",
    "srs_receive_bytes_total", "srs_streams", "srs_clients", "srs_clients_total",
    "srs_clients_errs_total",
    "srs_up", "srs_scrape_duration_seconds", "srs_stream_clients", "srs_stream_send_bytes_total",
    "srs_stream_receive_bytes_total", "srs_stream_kbps", "srs_stream_publish_active",
    "srs_stream_info",
    "srs_agent_reloads_total", "srs_agent_reload_duration_seconds",
    "srs_agent_last_reload_success_timestamp_seconds", "srs_agent_config_info",
    "srs_agent_drain_connections", "srs_agent_drain_duration_seconds",
    "srs_cleanup_files_deleted_total", "srs_cleanup_bytes_freed_total",
    "srs_cleanup_errors_total", "srs_cleanup_last_success_timestamp_seconds",
    "srs_cleanup_run_duration_seconds",
    "srs_controller_reconciles_total", "srs_controller_origins",
}
CONTRACT_PREFIXES = ("srs_vhost_",)
# Not ours, named explicitly: Prometheus's target health and kube-state-metrics' Jobs.
OTHERS = {"up", "kube_job_status_failed", "kube_cronjob_status_last_successful_time"}
METRIC = re.compile(r"\b(up|srs_[a-z0-9_]+|kube_[a-z0-9_]+)\b")
# What a name can end in on the wire beyond its registered name (counters get _total,
# histograms _bucket, _sum and _count).
SUFFIX = re.compile(r"_(total|bucket|sum|count)$")


def registered() -> set[str]:
    """Metric names the agents' code declares (string literals `"srs_..."` under agents/);
    the dashboard may show these as well as the contract's."""
    names: set[str] = set()
    for path in (REPO / "agents").rglob("*.py"):
        names |= set(re.findall(r'"(srs_[a-z0-9_]+)"', path.read_text()))
    return names


def monitoring(renders: Renders) -> dict[str, Obj]:
    return {o["kind"]: o for o in renders["monitoring"]}


def in_contract(name: str) -> bool:
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return name in OTHERS or base in CONTRACT or name.startswith(CONTRACT_PREFIXES)


def exported(name: str, code: set[str]) -> bool:
    return in_contract(name) or name in code or SUFFIX.sub("", name) in code


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    doc = json.loads((MANIFESTS / "monitoring" / "dashboards" / "srs-agents.json").read_text())
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for var in doc["templating"]["list"]:
        if isinstance(var.get("query"), dict):
            yield f"variable {var['name']}", var["query"]["query"]


def test_podmonitor_finds_every_pod_with_agent_metrics(renders: Renders) -> None:
    monitor = monitoring(renders)["PodMonitor"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    port = monitor["spec"]["podMetricsEndpoints"][0]["port"]
    problems = []
    scraped = 0
    for pod in pods(renders):
        labels = pod.meta.get("labels", {})
        has_port = any(p.get("name") == port for c in pod.containers(init=False)
                       for p in c.get("ports", []) if AGENT_IMAGES.search(c["image"]))
        labelled = all(labels.get(k) == v for k, v in selector.items())
        if has_port != labelled:
            problems.append(f"{pod.where}: metrics port {has_port}, PodMonitor label {labelled}")
        if has_port:
            scraped += 1
            notes = pod.annotations()
            if (notes.get("prometheus.io/scrape"), notes.get("prometheus.io/port")) != (
                    "true", "9973"):
                problems.append(f"{pod.where}: no prometheus.io scrape annotations for :9973")
    assert scraped, "no pod with agent metrics"
    assert not problems, "\n".join(problems)


def test_alerts_use_contract_metric_names(renders: Renders) -> None:
    rule = monitoring(renders)["PrometheusRule"]
    unknown = [f"{r['alert']}: {name}" for g in rule["spec"]["groups"] for r in g["rules"]
               for name in METRIC.findall(r["expr"]) if not in_contract(name)]
    assert not unknown, "\n".join(unknown)


def test_alerts_cover_the_failure_modes(renders: Renders) -> None:
    """SRS down, reload invalid and failing, drain at the deadline, cleanup stale and
    failing, controller not reconciling: each has an alert on the metric that shows it."""
    exprs = " ".join(r["expr"] for g in monitoring(renders)["PrometheusRule"]["spec"]["groups"]
                     for r in g["rules"])
    for needle in ("srs_up", 'srs_agent_reloads_total{result="invalid"}',
                   'srs_agent_reloads_total{result="failure"}', "srs_agent_drain_connections",
                   "srs_cleanup_last_success_timestamp_seconds", "srs_cleanup_errors_total",
                   "srs_controller_reconciles_total"):
        assert needle in exprs, f"no alert on {needle}"


def test_dashboard_uses_exported_metric_names() -> None:
    """Every name on the dashboard is the contract's or one the agents' code declares."""
    code = registered()
    unknown = [f"{title}: {name}" for title, expr in dashboard_exprs()
               for name in METRIC.findall(expr) if not exported(name, code)]
    assert not unknown, "\n".join(unknown)


def test_dashboard_configmap_carries_the_file(renders: Renders) -> None:
    text = (MANIFESTS / "monitoring" / "dashboards" / "srs-agents.json").read_text()
    cm = monitoring(renders)["ConfigMap"]
    assert cm["metadata"]["labels"].get("grafana_dashboard") == "1"
    assert cm["data"] == {"srs-agents.json": text}
    doc = json.loads(text)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert all(p.get("datasource", {}).get("uid") == "${datasource}"
               for p in doc["panels"] if p["type"] != "row")


def test_drain_alert_fires_before_the_deadline(renders: Renders) -> None:
    """SrsDrainNearDeadline's threshold lies between the end of the pre-stop delay and the
    soft deadline of the component's drain (an alert after the deadline could never fire)."""
    rule = next(r for g in monitoring(renders)["PrometheusRule"]["spec"]["groups"]
                for r in g["rules"] if r.get("alert") == "SrsDrainNearDeadline")
    found = re.search(r"srs_agent_drain_duration_seconds > (\d+(?:\.\d+)?)", rule["expr"])
    assert found, rule["expr"]
    threshold = float(found[1])
    checked = 0
    for pod in pods({"scenarios/srs-with-nginx": renders["scenarios/srs-with-nginx"]}):
        sidecar = pod.container("srs-agent")
        if sidecar is None:
            continue
        _, drain = parse(prestop(sidecar)[1:], {})
        deadline = drain.deadline or drain.grace_period - drain.deadline_margin
        assert drain.pre_stop_delay < threshold < deadline, (threshold, deadline)
        checked += 1
    assert checked


def test_a_scrape_comes_within_the_sidecars_final_wait(renders: Renders) -> None:
    """After a drain the sidecar waits --final-scrape-wait for one scrape of the outcome before
    it exits: the PodMonitor must scrape at least that often."""
    interval = parse_duration(
        monitoring(renders)["PodMonitor"]["spec"]["podMetricsEndpoints"][0]["interval"])
    waits = set()
    for pod in pods(renders):
        sidecar = pod.container("srs-agent")
        if sidecar is not None and sidecar.get("args", [])[:1] == ["sidecar"]:
            _, settings = parse(sidecar["args"], container_env(pod, sidecar))
            waits.add(settings.final_scrape_wait)
    assert waits, "no sidecar in any render"
    assert interval <= min(waits), (interval, waits)
