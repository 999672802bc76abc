"""virtualized_accelerator against the simulated scenarios (docs/scenarios.md, "Accelerator runtime and vGPU"):
verdicts in both modes, the findings that explain them, the bare-metal N/A rules, and nothing left behind.
(The shipped ClusterRoles are exercised for both checks in test_driver_runtime_scenarios.py.)
"""
from __future__ import annotations

import pytest

from checks_support import FAST, leftovers, probe_namespaces, run_module, start_sim

DRM = "driver_runtime_management"
VA = "virtualized_accelerator"


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
def unlicensed(tmp_path_factory):
    sim = start_sim("vgpu-unlicensed", tmp_path_factory.mktemp("unlicensed"))
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def bare_metal(tmp_path_factory):
    sim = start_sim("bare-metal-1.35", tmp_path_factory.mktemp("bare"))
    yield sim
    sim.stop()


# ----------------------------------------------------------------------------------------- accelerator-runtime-1.35
def test_runtime_vgpu_active_is_implemented(runtime):
    result = run(runtime, VA)
    assert result["status"] == "Implemented", result
    seen = finding(result, "vgpu-0: pod requesting one GPU (device plugin) sees the vGPU")
    assert seen["passed"] is True and "GRID A100-40C" in seen["detail"]
    assert finding(result, "vGPU licences (DCGM_FI_DEV_VGPU_LICENSE_STATUS)")["passed"] is True
    assert leftovers(runtime) == [] and probe_namespaces(runtime) == []


def test_runtime_vgpu_passive_is_partial(runtime):
    result = run(runtime, VA, mode="passive")
    assert result["status"] == "Partially Implemented"
    assert "vgpu-0" in finding(result, "vGPU nodes")["detail"]


# ----------------------------------------------------------------------------------------- broken variant
def test_unlicensed_vgpu_is_partial(unlicensed):
    result = run(unlicensed, VA)
    assert result["status"] == "Partially Implemented"
    assert finding(result, "vgpu-0: pod requesting one GPU (device plugin) sees the vGPU")["passed"] is True
    assert finding(result, "vGPU licences (DCGM_FI_DEV_VGPU_LICENSE_STATUS)")["passed"] is False
    assert "License System" in result["notes"]
    assert leftovers(unlicensed) == []


# ----------------------------------------------------------------------------------------- bare metal, no vGPU
def test_bare_metal_is_not_applicable_with_its_evidence(bare_metal):
    result = run(bare_metal, VA)
    assert result["status"] == "N/A"
    assert "bare-metal" in result["notes"] and "hypervisor" in result["notes"]
    assert finding(result, "accelerator nodes are bare metal")["passed"] is True


def test_bare_metal_declared_justification_is_the_note(bare_metal):
    text = "GPU nodes are bare-metal servers without a hypervisor."
    result = run(bare_metal, VA, bare_metal_justification=text)
    assert result["status"] == "N/A" and result["notes"].startswith(text)


def test_bare_metal_driver_management_is_implemented(bare_metal):
    """The scenario's other row: the GPU operator's versions match nvidia-smi there too."""
    result = run(bare_metal, DRM)
    assert result["status"] == "Implemented"
    assert leftovers(bare_metal) == []


def test_bare_metal_check_mode_creates_nothing(bare_metal):
    out = run_module(VA, dict(FAST, kubeconfig=bare_metal.kubeconfig), check_mode=True)
    assert out["result"]["status"] == "N/A" and out["result"]["mode"] == "passive"
    assert probe_namespaces(bare_metal) == []
