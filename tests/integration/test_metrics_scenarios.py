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

# scenario -> (ai_service_metrics active, ai_service_metrics passive); docs/scenarios.md has the same table
EXPECTED = {
    "ai-stack": (IMPLEMENTED, PARTIAL),
    "monitor-not-selected": (IMPLEMENTED, PARTIAL),
    "no-prometheus": (NOT_IMPLEMENTED, NOT_IMPLEMENTED),
    "hpa-cpu-only": (NOT_IMPLEMENTED, NOT_IMPLEMENTED),
    "no-custom-metrics": (IMPLEMENTED, PARTIAL),
    "adapter-no-accelerator-rules": (IMPLEMENTED, PARTIAL),
}
# The load must outlast a few of Prometheus' scrape and evaluation rounds, which run in real time (at least 5 s
# apart, tests/simcluster/apps/prometheus_server.py): 600 simulated seconds are 15 s at the tests' speed 40.
AUTOSCALING_ARGS = {"load_seconds": 600}   # (the default, 300, is 7.5 s here: too close to two rounds)
# scenario -> (pod_autoscaling active, pod_autoscaling passive)
AUTOSCALING = {
    "ai-stack": (IMPLEMENTED, PARTIAL),
    "adapter-no-accelerator-rules": (PARTIAL, PARTIAL),
    "hpa-cpu-only": (PARTIAL, PARTIAL),
    "no-custom-metrics": (NOT_IMPLEMENTED, NOT_IMPLEMENTED),
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


def _custom_metrics(sim):
    try:
        return api_get(sim, "/apis/custom.metrics.k8s.io/v1beta1")
    except subprocess.CalledProcessError:
        return None


def api_get(sim, path):
    """GET through the API server (the real HTTPS server and its service proxy) with the real kubectl."""
    out = subprocess.run([KUBECTL, "--kubeconfig", sim.kubeconfig, "get", "--raw", path], capture_output=True, text=True,
                         timeout=60, check=True)
    return json.loads(out.stdout)


def try_get(sim, path, key):
    """api_get(...)["data"][key], or None while the Prometheus pod is not serving yet (503 from the proxy)."""
    try:
        return api_get(sim, path)["data"][key]
    except subprocess.CalledProcessError:
        return None


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
    gpu_nodes = [n for n in sim.store.list(("", "nodes"))[0]
                 if (n["metadata"].get("labels") or {}).get("nvidia.com/gpu.present") == "true"]
    # one exporter per GPU node: the two of the GPU pool and the autoscaled group's minimum of one
    assert len(gpu_nodes) == 3 and len(exporters) == len(gpu_nodes)

    def all_up():
        found = [r for r in query(sim, 'up{job="nvidia-dcgm-exporter"}') if r["value"][1] == "1"]
        return found if len(found) == len(exporters) else None
    up = wait_for(all_up) or query(sim, 'up{job="nvidia-dcgm-exporter"}')
    assert sorted(r["metric"]["pod"] for r in up) == exporters
    # the operator's relabelings: namespace/service/endpoint labels, jobLabel=app
    assert {(r["metric"]["namespace"], r["metric"]["service"], r["metric"]["endpoint"]) for r in up} == {
        ("gpu-operator", "nvidia-dcgm-exporter", "gpu-metrics")}
    # one GPU_UTIL series per GPU (8 per node of the GPU pool, fewer on the autoscaled group's), stored by Prometheus
    count = query(sim, 'count(DCGM_FI_DEV_GPU_UTIL{job="nvidia-dcgm-exporter"})')
    assert count[0]["value"][1] == str(sum(int(n["metadata"]["labels"]["nvidia.com/gpu.count"]) for n in gpu_nodes))
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
    groups = wait_for(lambda: try_get(sim, PROM_SVC + "/api/v1/rules", "groups"))
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


@pytest.mark.parametrize("scenario", sorted(AUTOSCALING))
def test_pod_autoscaling_verdicts(clusters, scenario):
    sim = clusters(scenario)
    if scenario == "adapter-no-accelerator-rules":
        # The scenario's premise: the adapter already lists the exporter's series for pods, which it does once the
        # real Prometheus has scraped the exporter (tests before this one on the same cluster gave it that time; run
        # alone, the check came too early and this test failed).
        assert wait_for(lambda: "pods/DCGM_FI_DEV_GPU_UTIL" in json.dumps(_custom_metrics(sim)), timeout=60), \
            "the adapter never listed DCGM_FI_DEV_GPU_UTIL for pods: %s" % _custom_metrics(sim)
    for mode, want in zip(("active", "passive"), AUTOSCALING[scenario]):
        out = run_module("pod_autoscaling", dict(FAST, kubeconfig=sim.kubeconfig, mode=mode, wait_sleep=0.5, **AUTOSCALING_ARGS))
        assert not out.get("failed"), out.get("msg")
        result = out["result"]
        assert (mode, result["status"]) == (mode, want), result["notes"]
        assert probe_namespaces(sim) == [] and leftovers(sim) == []
        if mode == "active" and scenario == "ai-stack":
            assert finding(result, "scaled up to 2 replicas")[0]["passed"]
            assert finding(result, "scaled back down to 1 replica")[0]["passed"]
            events = [e["content"] for e in result["evidence"] if e["title"] == "HPA events"][0]
            assert "SuccessfulRescale: New size: 2; reason: pods metric pod_gpu_utilization above target" in events
            assert "SuccessfulRescale: New size: 1; reason: All metrics below target" in events
        if mode == "active" and scenario == "adapter-no-accelerator-rules":
            # the adapter lists DCGM_FI_DEV_GPU_UTIL for pods, but for the exporter's pods: none for the workload
            assert "DCGM_FI_DEV_GPU_UTIL" in finding(result, "accelerator pod metric listed")[0]["detail"]
            assert finding(result, "accelerator metric served for the probe pod")[0]["passed"] is False
            assert "exported_pod" in result["notes"] and "label_replace" in result["notes"]


def test_hpa_controller_on_resource_metrics_and_a_missing_custom_metrics_api(clusters):
    """The simulated HPA controller: CPU utilisation from metrics-server; a Pods metric without any
    custom.metrics.k8s.io APIService fails with the real controller's condition and event."""
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl  # pylint: disable=import-outside-toplevel

    sim = clusters("hpa-cpu-only")
    admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    admin.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hpa-test"}})
    try:
        admin.create("apps/v1", "deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "resources": {"requests": {"cpu": "200m"}}}]}}}},
            namespace="hpa-test")
        for name, metric in (("cpu", {"type": "Resource", "resource": {"name": "cpu", "target": {
                              "type": "Utilization", "averageUtilization": 50}}}),
                             ("custom", {"type": "Pods", "pods": {"metric": {"name": "pod_gpu_utilization"},
                                                                  "target": {"type": "AverageValue", "averageValue": "50"}}})):
            admin.create("autoscaling/v2", "horizontalpodautoscalers", {
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                         "minReplicas": 1, "maxReplicas": 3, "metrics": [metric]}}, namespace="hpa-test")

        def active(name):
            hpa = admin.get("autoscaling/v2", "horizontalpodautoscalers", name, "hpa-test")
            conds = {c["type"]: c for c in (hpa.get("status") or {}).get("conditions") or ()}
            return hpa if "ScalingActive" in conds else None
        cpu = wait_for(lambda: active("cpu") if (active("cpu") or {}).get("status", {}).get("currentMetrics") else None)
        conds = {c["type"]: c for c in cpu["status"]["conditions"]}
        assert (conds["ScalingActive"]["status"], conds["ScalingActive"]["reason"]) == ("True", "ValidMetricFound")
        # 10% of the 200m request in use (metrics-server's synthetic usage), target 50%: stays at 1 replica
        assert cpu["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 10
        assert cpu["status"]["desiredReplicas"] == 1
        custom = wait_for(lambda: active("custom"))
        conds = {c["type"]: c for c in custom["status"]["conditions"]}
        assert (conds["ScalingActive"]["status"], conds["ScalingActive"]["reason"]) == ("False", "FailedGetPodsMetric")
        assert conds["ScalingActive"]["message"].startswith(
            "the HPA was unable to compute the replica count: unable to get metric pod_gpu_utilization")
        events = admin.events_for("HorizontalPodAutoscaler", "custom", "hpa-test")
        assert any(e["reason"] == "FailedGetPodsMetric" and e["type"] == "Warning" for e in events)
    finally:
        admin.delete("v1", "namespaces", "hpa-test")


# scenario -> accelerator_metrics (active): the exporters alone decide without a Prometheus; with one, it must store them
ACCELERATOR_METRICS = {"ai-stack": IMPLEMENTED, "monitor-not-selected": PARTIAL, "no-prometheus": IMPLEMENTED}


@pytest.mark.parametrize("scenario", sorted(ACCELERATOR_METRICS))
def test_accelerator_metrics_needs_the_platform_prometheus_to_store_the_series(clusters, scenario):
    sim = clusters(scenario)
    out = run_module("accelerator_metrics", dict(FAST, kubeconfig=sim.kubeconfig, load_seconds=60))
    assert not out.get("failed"), out.get("msg")
    result = out["result"]
    assert result["status"] == ACCELERATOR_METRICS[scenario], result["notes"]
    stored = finding(result, "platform Prometheus stores the accelerator series")
    if scenario == "no-prometheus":
        assert stored == []
    else:
        assert stored[0]["passed"] is (scenario == "ai-stack")
    if scenario == "monitor-not-selected":
        assert "release=<release>" in result["notes"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == []


def test_check_mode_creates_nothing(clusters):
    sim = clusters("ai-stack")
    rv = sim.store.rv
    for module in ("ai_service_metrics", "pod_autoscaling"):
        before = [sim.store.list(gr)[0] for gr in (("monitoring.coreos.com", "servicemonitors"), ("autoscaling", "horizontalpodautoscalers"),
                                                   ("apps", "deployments"))]
        out = run_module(module, dict(FAST, kubeconfig=sim.kubeconfig), check_mode=True)
        assert out["result"]["mode"] == "passive" and out["result"]["status"] == PARTIAL
        assert [sim.store.list(gr)[0] for gr in (("monitoring.coreos.com", "servicemonitors"),
                                                 ("autoscaling", "horizontalpodautoscalers"), ("apps", "deployments"))] == before
        assert probe_namespaces(sim) == []
    # nothing the checks wrote: no namespace was ever created since (the store's history has no such event)
    assert not [e for e in sim.store.events_since(rv) if e.gr == ("", "namespaces") and e.type == "ADDED"]


def test_prometheus_process_stops_with_the_cluster(tmp_path):
    sim = start_sim("monitor-not-selected", tmp_path)
    try:
        assert wait_for(lambda: try_get(sim, PROM_SVC + "/api/v1/status/buildinfo", "version"))
        procs = list(sim.prometheus_supervisor.procs)
        assert procs and all(p.poll() is None for p in procs)
    finally:
        sim.stop()
    assert all(p.poll() is not None for p in procs)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and int(pid) in {p.pid for p in procs}]


def test_rbac_roles_are_enough(clusters):
    """files/rbac/: the monitoring roles run ai_service_metrics and pod_autoscaling, the accelerator roles the extended
    accelerator_metrics, each as a user bound to nothing else, on the cluster with a Prometheus."""
    import yaml  # pylint: disable=import-outside-toplevel
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl  # pylint: disable=import-outside-toplevel

    sim = clusters("ai-stack")
    admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    cases = [("ai_service_metrics", "monitoring", "passive", PARTIAL), ("ai_service_metrics", "monitoring", "active", IMPLEMENTED),
             ("pod_autoscaling", "monitoring", "passive", PARTIAL), ("pod_autoscaling", "monitoring", "active", IMPLEMENTED),
             ("accelerator_metrics", "accelerators", "passive", PARTIAL)]
    for module, family, mode, want in cases:
        role = "k8s-ai-conformance-%s-%s" % (family, mode)
        user = "%s-%s" % (family, mode)
        if admin.get("rbac.authorization.k8s.io/v1", "clusterroles", role) is None:
            with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
                admin.create("rbac.authorization.k8s.io/v1", "clusterroles", yaml.safe_load(handle))
            sim.add_user(user, user + "-token")
            admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
        extra = AUTOSCALING_ARGS if module == "pod_autoscaling" else {}
        out = run_module(module, dict(FAST, kubeconfig=sim.kubeconfig_for(user), mode=mode, wait_sleep=0.5, **extra))
        assert not out.get("failed"), out.get("msg")
        assert out["result"]["status"] == want, out["result"]["notes"]
        if module == "accelerator_metrics":
            assert finding(out["result"], "platform Prometheus stores the accelerator series")[0]["passed"]
        assert probe_namespaces(sim) == [] and leftovers(sim) == []


def test_a_prometheus_scaled_to_no_pods_is_named_in_the_note(tmp_path):
    """A cluster of its own: the Prometheus' replicas go to 0, the operator's StatefulSet follows and its pod goes;
    the check says which Prometheus has no pods and where to look."""
    sim = start_sim("no-custom-metrics", tmp_path)
    try:
        subprocess.run([KUBECTL, "--kubeconfig", sim.kubeconfig, "-n", "monitoring", "patch", "prometheus",
                        "kube-prometheus-stack-prometheus", "--type=merge", "-p", '{"spec": {"replicas": 0}}'],
                       check=True, capture_output=True, timeout=60)
        assert wait_for(lambda: not [p for p in sim.store.list(("", "pods"), namespace="monitoring")[0]
                                     if p["metadata"]["name"].startswith("prometheus-kube-prometheus-stack")], 60)
        out = run_module("ai_service_metrics", dict(FAST, kubeconfig=sim.kubeconfig, mode="passive"))
        assert not out.get("failed"), out.get("msg")
        assert out["result"]["status"] == NOT_IMPLEMENTED
        assert "monitoring/kube-prometheus-stack-prometheus has no pods" in out["result"]["notes"]
    finally:
        sim.stop()
