"""The monitoring pipeline on the simulated cluster: the real Prometheus binary an operator-managed `Prometheus`
runs, and ai_service_metrics against each monitoring scenario (the table in docs/scenarios.md).

One simulated cluster per scenario for the whole module; every check cleans up, which these tests verify.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from checks_support import FAST, ROOT, finding, leftovers, probe_namespaces, run_module, start_sim

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED = "Implemented", "Partially Implemented", "Not Implemented"
KUBECTL = os.path.join(ROOT, ".tools", "bin", "kubectl")
PROM_SVC = "/api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:http-web/proxy"

# scenario -> (ai_service_metrics active, ai_service_metrics passive)
EXPECTED = {
    "ai-stack": (IMPLEMENTED, PARTIAL),
    "monitor-not-selected": (IMPLEMENTED, PARTIAL),
    "no-prometheus": (NOT_IMPLEMENTED, NOT_IMPLEMENTED),
}


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    started = {}

    def get(name):
        if name not in started:
            started[name] = start_sim(name, tmp_path_factory.mktemp(name))
        return started[name]
    yield get
    for sim in started.values():
        sim.stop()


def api_get(sim, path):
    """GET through the API server (the real HTTPS server and its service proxy) with the real kubectl."""
    out = subprocess.run([KUBECTL, "--kubeconfig", sim.kubeconfig, "get", "--raw", path], capture_output=True, text=True,
                         timeout=60, check=True)
    return json.loads(out.stdout)


def query(sim, promql):
    from urllib.parse import quote  # pylint: disable=import-outside-toplevel

    doc = api_get(sim, PROM_SVC + "/api/v1/query?query=" + quote(promql))
    assert doc["status"] == "success"
    return doc["data"]["result"]


def wait_for(fn, timeout=30.0):
    import time  # pylint: disable=import-outside-toplevel

    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.25)


def test_real_prometheus_scrapes_every_dcgm_exporter_pod(clusters):
    sim = clusters("ai-stack")
    exporters = sorted(p["metadata"]["name"] for p in sim.store.list(("", "pods"), namespace="gpu-operator")[0]
                       if p["metadata"]["name"].startswith("nvidia-dcgm-exporter"))
    assert len(exporters) == 2           # one per GPU node of the scenario
    up = wait_for(lambda: [r for r in query(sim, 'up{job="nvidia-dcgm-exporter"}') if r["value"][1] == "1"])
    assert sorted(r["metric"]["pod"] for r in up) == exporters
    # the operator's relabelings: namespace/service/endpoint labels, jobLabel=app
    assert {(r["metric"]["namespace"], r["metric"]["service"], r["metric"]["endpoint"]) for r in up} == {
        ("gpu-operator", "nvidia-dcgm-exporter", "gpu-metrics")}
    # 8 GPUs per node, one GPU_UTIL series each, stored by Prometheus
    count = wait_for(lambda: query(sim, 'count(DCGM_FI_DEV_GPU_UTIL{job="nvidia-dcgm-exporter"})'))
    assert count[0]["value"][1] == "16"
    # the running binary is Debian's 2.42 (the real server, not a stand-in)
    info = api_get(sim, PROM_SVC + "/api/v1/status/buildinfo")
    assert info["data"]["version"].startswith("2.42")
    # the PrometheusRule was loaded as real recording rules
    rules = api_get(sim, PROM_SVC + "/api/v1/rules")["data"]["groups"]
    assert [r["name"] for g in rules for r in g["rules"]] == ["pod_gpu_utilization", "pod_gpu_memory_used_mib"]


def test_release_label_trap_leaves_the_exporter_unscraped(clusters):
    sim = clusters("monitor-not-selected")
    # the recording rules carry release=kube-prometheus-stack (as the chart's additionalPrometheusRulesMap
    # labels them) and are loaded: the configuration is in place ...
    groups = wait_for(lambda: api_get(sim, PROM_SVC + "/api/v1/rules")["data"]["groups"])
    assert [g["name"] for g in groups] == ["k8s-ai-conformance-gpu-pod-metrics"]
    # ... yet the GPU operator's ServiceMonitor (no release label) is not selected: no exporter target, no series
    targets = api_get(sim, PROM_SVC + "/api/v1/targets")["data"]["activeTargets"]
    assert [t for t in targets if t["labels"].get("namespace") == "gpu-operator"] == []
    assert query(sim, "count(DCGM_FI_DEV_GPU_UTIL)") == []


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_ai_service_metrics_verdicts(clusters, scenario):
    sim = clusters(scenario)
    for mode, want in zip(("active", "passive"), EXPECTED[scenario]):
        out = run_module("ai_service_metrics", dict(FAST, kubeconfig=sim.kubeconfig, mode=mode))
        assert not out.get("failed"), out.get("msg")
        result = out["result"]
        assert (mode, result["status"]) == (mode, want), result["notes"]
        assert probe_namespaces(sim) == [] and leftovers(sim) == []
        if scenario == "monitor-not-selected":
            assert "release" in result["notes"]
        if mode == "active" and want == IMPLEMENTED:
            assert finding(result, "request counter reflects traffic")[0]["passed"]
            assert "= 10.0 after 10 requests" in finding(result, "request counter reflects traffic")[0]["detail"]


def test_check_mode_creates_nothing(clusters):
    sim = clusters("ai-stack")
    before = sim.store.list(("monitoring.coreos.com", "servicemonitors"))[0]
    out = run_module("ai_service_metrics", dict(FAST, kubeconfig=sim.kubeconfig), check_mode=True)
    assert out["result"]["mode"] == "passive"
    assert sim.store.list(("monitoring.coreos.com", "servicemonitors"))[0] == before
    assert probe_namespaces(sim) == []


def test_prometheus_process_stops_with_the_cluster(tmp_path):
    sim = start_sim("monitor-not-selected", tmp_path)
    try:
        assert wait_for(lambda: api_get(sim, PROM_SVC + "/api/v1/status/buildinfo")["status"] == "success")
        procs = list(sim.prometheus_supervisor.procs)
        assert procs and all(p.poll() is None for p in procs)
    finally:
        sim.stop()
    assert all(p.poll() is not None for p in procs)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and int(pid) in {p.pid for p in procs}]
