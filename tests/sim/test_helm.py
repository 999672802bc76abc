"""helm 4 installs, upgrades and uninstalls the real upstream charts on the simulated cluster.

The charts go into one fresh cluster, in an order that works on a real cluster too: Kueue last, since its
webhooks (failurePolicy Fail) reject Deployments and Jobs elsewhere while its own pod is not serving.
"""
from __future__ import annotations

import json
import os

import pytest

from upstream_charts import chart as chart_path

CHARTS = [
    ("kube-prometheus-stack", "monitoring", []),
    ("dcgm-exporter", "gpu-monitoring", []),          # needs the ServiceMonitor CRD from the stack above
    ("kuberay-operator", "kuberay", []),
    ("gateway-helm", "envoy-gateway-system", []),
    ("prometheus-adapter", "monitoring", []),
    ("gpu-operator", "gpu-operator", []),
    ("nvidia-dra-driver-gpu", "nvidia-dra-driver", ["--set", "gpuResourcesEnabledOverride=true"]),
    ("kueue", "kueue-system", []),
]


@pytest.mark.slow
def test_install_upgrade_uninstall_upstream_charts(make_sim, tools):
    sim = make_sim(speed=50)
    kubectl, helm = tools(sim)
    for chart, namespace, values in CHARTS:
        out = helm("install", chart, chart_path(chart), "-n", namespace, "--create-namespace",
                   *values, timeout=300)
        assert "STATUS: deployed" in out.stdout, (chart, out.stdout, out.stderr)
    releases = {r["name"]: r for r in json.loads(helm("list", "-A", "-o", "json").stdout)}
    assert {name for name, _unused, _unused in CHARTS} <= set(releases)
    assert all(r["status"] == "deployed" for r in releases.values())
    # what the charts created is really there (CRDs established, workloads stored)
    crd = kubectl.json("get", "crd", "prometheuses.monitoring.coreos.com")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
    assert kubectl.json("get", "deployment", "kueue-controller-manager", "-n", "kueue-system")["spec"]["replicas"] >= 1
    assert kubectl.json("get", "servicemonitor", "dcgm-exporter", "-n", "gpu-monitoring")["kind"] == "ServiceMonitor"
    # the release record is a helm.sh/release.v1 Secret, written by helm's typed (protobuf) client
    secrets = kubectl.json("get", "secrets", "-n", "kuberay", "-l", "owner=helm")["items"]
    assert [s["type"] for s in secrets] == ["helm.sh/release.v1"]

    out = helm("upgrade", "kuberay-operator", chart_path("kuberay-operator"), "-n", "kuberay",
               "--set", "replicas=2", timeout=300)
    assert "STATUS: deployed" in out.stdout and "REVISION: 2" in out.stdout
    operator = kubectl.json("get", "deployment", "-n", "kuberay", "-l", "app.kubernetes.io/name=kuberay-operator")
    assert [d["spec"]["replicas"] for d in operator["items"]] == [2]

    assert "uninstalled" in helm("uninstall", "prometheus-adapter", "-n", "monitoring", timeout=300).stdout
    remaining = kubectl.json("get", "deployments", "-n", "monitoring",
                             "-l", "app.kubernetes.io/instance=prometheus-adapter")
    assert remaining["items"] == []


def test_install_with_wait_returns_once_the_workloads_are_ready(make_sim, tools):
    """helm 4's --wait watches the release's objects (kstatus) until the controllers report them ready."""
    sim = make_sim(speed=50)
    kubectl, helm = tools(sim)
    out = helm("install", "kuberay-operator", chart_path("kuberay-operator"), "-n", "kuberay",
               "--create-namespace", "--wait", "--timeout", "120s", timeout=200)
    assert "STATUS: deployed" in out.stdout
    deployments = kubectl.json("get", "deployments", "-n", "kuberay")["items"]
    assert [(d["status"].get("readyReplicas"), d["status"].get("observedGeneration")) for d in deployments] == [(1, 1)]


# On a cluster like the GPU clouds' (no visible control-plane node, GPU nodes tainted nvidia.com/gpu) the DRA
# driver's compute-domain controller, pinned to control-plane nodes, could never schedule, and its kubelet
# plugin must tolerate the GPU taint: the dra_driver role sets the same.
WAIT_VALUES = {
    "nvidia-dra-driver-gpu": ["--set", "resources.computeDomains.enabled=false",
                              "--set", "kubeletPlugin.tolerations[0].key=nvidia.com/gpu",
                              "--set", "kubeletPlugin.tolerations[0].operator=Exists",
                              "--set", "kubeletPlugin.tolerations[0].effect=NoSchedule"],
}
STACKLESS_GPU = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "integration", "roles", "stackless-gpu.yaml")


@pytest.mark.slow
def test_every_chart_installs_with_wait_and_its_workloads_are_ready(make_sim, tools):
    """helm install --wait of each real chart on a cluster with GPU and CPU nodes and nothing installed:
    helm returns only once kstatus finds the release's objects ready, and every Deployment and DaemonSet the
    charts made reports all its pods ready (DaemonSets on the nodes they select, at least one)."""
    sim = make_sim(STACKLESS_GPU, speed=50)
    kubectl, helm = tools(sim)
    namespaces = set()
    for chart, namespace, values in CHARTS:
        out = helm("install", chart, chart_path(chart), "-n", namespace, "--create-namespace",
                   "--wait", "--timeout", "180s", *(values + WAIT_VALUES.get(chart, [])), timeout=300)
        assert "STATUS: deployed" in out.stdout, (chart, out.stdout, out.stderr)
        namespaces.add(namespace)
    not_ready = []
    for namespace in sorted(namespaces):
        for deploy in kubectl.json("get", "deployments", "-n", namespace)["items"]:
            status = deploy.get("status") or {}
            if status.get("readyReplicas", 0) < deploy["spec"]["replicas"] or \
                    status.get("observedGeneration") != deploy["metadata"]["generation"]:
                not_ready.append("deployment %s/%s: %s" % (namespace, deploy["metadata"]["name"], status))
        for ds in kubectl.json("get", "daemonsets", "-n", namespace)["items"]:
            status = ds.get("status") or {}
            if not status.get("desiredNumberScheduled") or \
                    status.get("numberReady") != status["desiredNumberScheduled"]:
                not_ready.append("daemonset %s/%s: %s" % (namespace, ds["metadata"]["name"], status))
    assert not_ready == []
    gpu_nodes = [n["metadata"]["name"] for n in kubectl.json("get", "nodes", "-l", "nvidia.com/gpu.present=true")["items"]]
    assert gpu_nodes, "the scenario has GPU nodes"
    exporter = kubectl.json("get", "daemonset", "dcgm-exporter", "-n", "gpu-monitoring")
    assert exporter["status"]["numberReady"] >= 1
