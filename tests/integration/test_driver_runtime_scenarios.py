"""driver_runtime_management against the simulated scenarios (docs/scenarios.md, "Accelerator runtime and
vGPU"): verdicts in both modes, the findings that explain them, the shipped accelerator ClusterRoles (with
virtualized_accelerator, on the same cluster), and nothing left behind.
"""
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl

from checks_support import FAST, ROOT, leftovers, probe_namespaces, run_module, start_sim

DRM = "driver_runtime_management"
VA = "virtualized_accelerator"
ROLES = {"passive": "k8s-ai-conformance-accelerators-passive", "active": "k8s-ai-conformance-accelerators-active"}


def run(sim, module, **extra):
    out = run_module(module, dict(FAST, kubeconfig=sim.kubeconfig, **extra))
    assert not out.get("failed"), out.get("msg")
    return out["result"]


def finding(result, name):
    found = [f for f in result["findings"] if f["name"] == name]
    assert found, [f["name"] for f in result["findings"]]
    return found[0]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    sim = start_sim("accelerator-runtime-1.35", tmp_path_factory.mktemp("runtime"))
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def stale(tmp_path_factory):
    sim = start_sim("driver-labels-stale", tmp_path_factory.mktemp("stale"))
    yield sim
    sim.stop()


# ----------------------------------------------------------------------------------------- accelerator-runtime-1.35
def test_runtime_driver_management_active_is_implemented(runtime):
    result = run(runtime, DRM)
    assert result["status"] == "Implemented", result
    assert finding(result, "ClusterPolicy cluster-policy state ready")["passed"] is True
    # the DRA node: label, DRA attribute and nvidia-smi agree; the vGPU node runs the newer guest driver
    assert finding(result, "gpu-1: DRA driverVersion = nvidia-smi")["passed"] is True
    assert "580.126.09" in finding(result, "vgpu-0: driver label = nvidia-smi")["detail"]
    assert "DRA" in result["notes"]
    assert leftovers(runtime) == [] and probe_namespaces(runtime) == []


def test_runtime_driver_management_passive_is_partial(runtime):
    result = run(runtime, DRM, mode="passive")
    assert result["status"] == "Partially Implemented"
    assert finding(result, "versions match nvidia-smi on the nodes")["passed"] is None
    assert probe_namespaces(runtime) == []


def test_check_mode_creates_nothing(runtime):
    for module in (DRM, VA):
        out = run_module(module, dict(FAST, kubeconfig=runtime.kubeconfig), check_mode=True)
        assert out["result"]["mode"] == "passive"
    assert probe_namespaces(runtime) == []


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_shipped_accelerator_roles_are_enough(runtime, mode):
    admin = cl.Cluster.connect({"kubeconfig": runtime.kubeconfig})
    role = ROLES[mode]
    with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
        admin.create("rbac.authorization.k8s.io/v1", "clusterroles", yaml.safe_load(handle))
    runtime.add_user("%s-user" % mode, "%s-token" % mode)
    admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "%s-user" % mode}]})
    expected = "Implemented" if mode == "active" else "Partially Implemented"
    for module in (DRM, VA):
        out = run_module(module, dict(FAST, kubeconfig=runtime.kubeconfig_for("%s-user" % mode), mode=mode))
        assert not out.get("failed"), out.get("msg")
        assert out["result"]["status"] == expected, (module, out["result"]["summary"])
    assert leftovers(runtime) == []


def test_user_without_rights_gets_a_forbidden_naming_the_rule(runtime):
    out = run_module(DRM, dict(FAST, kubeconfig=runtime.kubeconfig_for("nobody"), mode="passive"))
    assert out["failed"] and "Traceback" not in out["msg"]
    assert '{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}' in out["msg"]


# ----------------------------------------------------------------------------------------- broken variant
@pytest.mark.parametrize("mode", ["active", "passive"])
def test_stale_driver_labels_are_partial(stale, mode):
    result = run(stale, DRM, mode=mode)
    assert result["status"] == "Partially Implemented"
    assert result["summary"] == "reported driver/CUDA versions do not match the nodes"
    # the DRA attribute (semver, leading zero dropped) follows the running driver, the label does not
    assert finding(result, "gpu-1: driver label = DRA driverVersion")["detail"] == "label 570.133.20 vs DRA 580.126.9"
    if mode == "active":
        assert finding(result, "gpu-1: DRA driverVersion = nvidia-smi")["passed"] is True
        assert finding(result, "gpu-0: driver label = nvidia-smi")["passed"] is False
    assert "feature discovery" in result["notes"]
    assert leftovers(stale) == []


# ----------------------------------------------------------------------------------------- a node that just joined
def test_operand_pods_still_starting_on_a_new_node_are_waited_for(tmp_path):
    """An autoscaler adds a GPU node while the checks run: the operator's DaemonSets are not ready until their pods
    on it start. That rollout is not an unhealthy operator, so the check waits for it (bounded) before judging; a
    pod that crash-loops is not waited for (test_stale_* and the scenarios with broken operands)."""
    sim = start_sim("accelerator-runtime-1.35", tmp_path / "sim")
    try:
        # from here on a real-time clock: the new node's pods take real seconds to start, longer than the check
        # needs to read the operator's state
        sim.clock.set_speed(1)
        gpu = [n for n in sim.store.list(("", "nodes"))[0]
               if (n["metadata"].get("labels") or {}).get("nvidia.com/gpu.present") == "true"][0]
        node = {"apiVersion": "v1", "kind": "Node", "spec": gpu.get("spec") or {}, "status": gpu["status"],
                "metadata": {"name": gpu["metadata"]["name"] + "-joined", "labels": dict(gpu["metadata"]["labels"],
                             **{"kubernetes.io/hostname": gpu["metadata"]["name"] + "-joined"})}}
        sim.restore(node)
        result = run(sim, DRM, mode="passive", wait_timeout=120)
        operands = finding(result, "operand DaemonSets ready (namespace gpu-operator)")
        assert operands["passed"] is True, operands
        daemonsets = sim.store.list(("apps", "daemonsets"), "gpu-operator")[0]
        assert daemonsets and all(d["status"]["desiredNumberScheduled"] == d["status"]["numberReady"]
                                  for d in daemonsets), [(d["metadata"]["name"], d["status"]) for d in daemonsets]
        # the new node was counted: one more GPU node than the scenario has
        assert any(d["status"]["desiredNumberScheduled"] > 0 for d in daemonsets)
    finally:
        sim.stop()
