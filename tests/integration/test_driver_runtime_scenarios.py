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
