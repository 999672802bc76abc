"""virtualized_accelerator: recognising vGPU profiles and hypervisors, the licence metric, and the verdict rules
(vGPU requested like a physical GPU -> Implemented; unlicensed or passive -> Partially; VMs without vGPU ->
Not Implemented; N/A only for bare metal, detected or declared and not contradicted)."""
from __future__ import annotations

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import virtualized_accelerator as va
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

import accel_fixtures

NVIDIA = acc.vendor("nvidia")


@pytest.mark.parametrize("name,expected", [
    ("GRID-A100-40C", True), ("GRID A100-40C", True), ("GRID-A100-4C", True),   # VKS labels / DRA productName
    ("NVIDIA H100-20C", True),                                                   # newer guest drivers' model name
    ("NVIDIA-H100-20C", True), ("GRID-A100-40C-SHARED", True),                  # time-sliced vGPU node
    ("NVIDIA-H100-80GB-HBM3", False), ("NVIDIA H100 80GB HBM3", False), ("NVIDIA A100-SXM4-40GB", False),
    ("Tesla T4", False), ("NVIDIA L40S", False), ("NVIDIA-A40-SHARED", False), ("", False), (None, False),
])
def test_vgpu_profile_names(name, expected):
    assert va.is_vgpu_name(name) is expected


def test_vgpu_node_by_labels():
    assert va.vgpu_node({va.VGPU_PRESENT: "true"})[0] is True
    assert va.vgpu_node({va.PRODUCT_LABEL: "GRID-A100-40C"}) == (True, "nvidia.com/gpu.product=GRID-A100-40C")
    assert va.vgpu_node({va.PRODUCT_LABEL: "NVIDIA-H100-80GB-HBM3", va.VGPU_PRESENT: "false"})[0] is False


@pytest.mark.parametrize("labels,kind", [
    ({va.HYPERVISOR_LABEL: "true", "feature.node.kubernetes.io/cpu-cpuid.AVX512F": "true"}, "vm"),
    ({va.MACHINE_LABEL: "AHV"}, "vm"),                                          # NKP's vGPU workers
    ({va.MACHINE_LABEL: "VMware-Virtual-Platform"}, "vm"),
    ({"feature.node.kubernetes.io/cpu-cpuid.AVX512F": "true", va.MACHINE_LABEL: "PowerEdge-XE9680"}, "bare-metal"),
    ({va.MACHINE_LABEL: "PowerEdge-XE9680"}, "unknown"),                         # no NFD: cannot tell
    ({}, "unknown"),
])
def test_hypervisor_hints(labels, kind):
    assert va.hypervisor_hint(labels)[0] == kind


@pytest.mark.parametrize("doc", ["upcloud-v1.35-accelerator-metrics.md", "ericsson-v1.35-accelerator-metrics.md"])
def test_physical_gpus_report_licence_zero(doc):
    """Real scrapes of physical GPUs (UpCloud L40S, Ericsson's bare-metal T4) carry the licence gauge at 0: the
    metric only means something on vGPU nodes, which is why the check reads it there only."""
    scrape = promtext.parse(accel_fixtures.exposition_from_markdown(doc))
    states = va.license_states(scrape)
    assert states and set(states.values()) == {0.0}
    models = set(s.labels.get("modelName") for s in scrape.find(va.LICENSE_METRIC))
    assert not any(va.is_vgpu_name(m) for m in models)


def test_listing_of_a_vgpu_guest():
    text = "GPU 0: GRID A100-40C (UUID: GPU-4372c763-6892-5629-fc8b-15fa4130cdae)\nLISTING_EXIT: 0\n"
    listed, vgpus = va.listed_vgpus(text, NVIDIA)
    assert len(listed) == 1 and vgpus == listed


# --------------------------------------------------------------------------------------------- verdicts
def vgpu_facts(licensed=1.0, allocatable=1, dra_vgpu=None):
    node = {"name": "vgpu-0", "why": "nvidia.com/vgpu.present=true", "product": "GRID-A100-40C",
            "host_driver": "580.126.08", "host_branch": "r580_00", "allocatable": allocatable,
            "unschedulable": False, "labels": {}}
    states = {} if licensed is None else {"GPU-1": licensed}
    return {"vendor": "nvidia", "node_total": 3, "other": {}, "vgpu_nodes": [node], "vgpu_total": 1,
            "vm_workload": {}, "hints": {"vgpu-0": ("vm", "x")}, "dra_vgpu": dra_vgpu or {}, "dra_version": "v1",
            "dra": {}, "dra_class": None, "vfio_class": False, "justification": None,
            "licenses": {"vgpu-0": {"pod": "nvidia-dcgm-exporter-x", "states": states,
                                    "error": "" if states else "no series"}}}


def probe_out(text="GPU 0: GRID A100-40C (UUID: GPU-1)\nLISTING_EXIT: 0\n"):
    listed, vgpus = va.listed_vgpus(text, NVIDIA)
    return {"nodes": {"vgpu-0": {"pod": "aic-vgpu-0", "state": "phase=Succeeded", "log": text, "listed": listed,
                                 "vgpus": vgpus, "mechanism": "device plugin"}},
            "skipped": {}, "namespace": "aic-virtualized-accelerator-x", "timed_out": "", "cleanup": ""}


def test_vgpu_seen_through_the_same_api_is_implemented():
    out = validate_result(va.judge(vgpu_facts(), probe_out()))
    assert out["status"] == IMPLEMENTED and "GRID A100-40C" in out["summary"]
    assert "not published through DRA" in out["notes"]


def test_unlicensed_vgpu_is_partial():
    out = va.judge(vgpu_facts(licensed=0.0), probe_out())
    assert out["status"] == PARTIAL and "License System" in out["notes"]


def test_unknown_licence_is_noted():
    out = va.judge(vgpu_facts(licensed=None), probe_out())
    assert out["status"] == IMPLEMENTED and "could not be read" in out["notes"]


def test_pod_seeing_a_physical_gpu_is_not_enough():
    out = va.judge(vgpu_facts(), probe_out("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-2)\nLISTING_EXIT: 0\n"))
    assert out["status"] == PARTIAL


def test_passive_is_partial():
    assert va.judge(vgpu_facts(), passive_reason="mode=passive")["status"] == PARTIAL


def test_vgpu_not_requestable_is_not_implemented():
    out = va.judge(vgpu_facts(allocatable=0), {})
    assert out["status"] == NOT_IMPLEMENTED and "device plugin" in out["notes"]


def no_vgpu(hints, justification=None, vm_workload=None):
    facts = vgpu_facts()
    facts.update({"vgpu_nodes": [], "vgpu_total": 0, "licenses": {}, "hints": hints,
                  "justification": justification, "vm_workload": vm_workload or {}})
    return facts


BARE = ("bare-metal", "node feature discovery CPU labels without the hypervisor flag")


def test_detected_bare_metal_is_na_with_its_evidence():
    out = validate_result(va.judge(no_vgpu({"gpu-0": BARE, "gpu-1": BARE})))
    assert out["status"] == NOT_APPLICABLE and "bare-metal servers without a hypervisor" in out["notes"]


def test_declared_bare_metal_is_na_with_the_declared_text():
    text = "GPU nodes are bare metal; no hypervisor."
    out = va.judge(no_vgpu({"gpu-0": ("unknown", "no node feature discovery CPU labels")}, text))
    assert out["status"] == NOT_APPLICABLE and out["notes"].startswith(text)


def test_declaration_contradicted_by_a_hypervisor_is_not_implemented():
    out = va.judge(no_vgpu({"gpu-0": BARE, "gpu-1": ("vm", "feature.node.kubernetes.io/cpu-cpuid.HYPERVISOR=true")},
                           "bare metal"))
    assert out["status"] == NOT_IMPLEMENTED and "contradicted" in out["notes"]


def test_unknown_virtualisation_is_not_implemented_with_the_way_to_na():
    out = va.judge(no_vgpu({"gpu-0": ("unknown", "no node feature discovery CPU labels")}))
    assert out["status"] == NOT_IMPLEMENTED and "bare_metal_justification" in out["notes"]


def test_kubevirt_workloads():
    assert va.judge(no_vgpu({}, vm_workload={"gpu-0": "vm-vgpu"}))["status"] == PARTIAL
    assert va.judge(no_vgpu({}, vm_workload={"gpu-0": "vm-passthrough"}))["status"] == NOT_IMPLEMENTED


def test_no_accelerators_is_na():
    facts = no_vgpu({})
    facts["node_total"] = 0
    assert va.judge(facts)["status"] == NOT_APPLICABLE
