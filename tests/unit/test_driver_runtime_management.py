"""driver_runtime_management: numeric version comparison (DRA semver drops leading zeros), what GPU feature
discovery labels and nvidia-smi say, the bounded node sample, and the verdict rules (a mechanism whose versions
match nvidia-smi -> Implemented; mismatch, unhealthy operator or passive -> Partially; none -> Not Implemented)."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import driver_runtime_management as drm
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

import accel_fixtures

# nvidia-smi as the probe runs it: the CSV query line, then the banner (kops' v1.35 evidence: L4, driver
# 580.105.08, CUDA 13.0; requirements.md "Real data").
SMI_OUTPUT = """580.105.08, NVIDIA L4, GPU-0b3c5bd8-4d5e-2c1a-9c1e-8f0e7e1f0a11
QUERY_EXIT: 0
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.105.08             Driver Version: 580.105.08     CUDA Version: 13.0     |
|-----------------------------------------+------------------------+----------------------+
SMI_EXIT: 0
"""


def labels(driver="580.105.08", cuda="13.0", **extra):
    out = {}
    if driver:
        major, minor, rev = driver.split(".")
        out.update({drm.DRIVER_LABEL: driver, "nvidia.com/cuda.driver-version.major": major,
                    "nvidia.com/cuda.driver-version.minor": minor, "nvidia.com/cuda.driver-version.revision": rev})
    if cuda:
        out[drm.CUDA_LABEL] = cuda
    out.update(extra)
    return out


def node(name="gpu-0", **kwargs):
    return {"name": name, "labels": labels(**kwargs), "product": "NVIDIA-L4", "allocatable": 1, "unschedulable": False}


def facts(nodes=None, dra=None, operator="ready", daemonsets_ok=True):
    nodes = nodes if nodes is not None else [node()]
    op = {"crd": True, "namespace": "gpu-operator", "drivers": None,
          "policies": [{"name": "cluster-policy", "state": operator, "namespace": "gpu-operator", "condition": None}],
          "daemonsets": [{"name": "nvidia-device-plugin-daemonset", "operand": "device plugin", "desired": 1,
                          "ready": 1 if daemonsets_ok else 0, "updated": 1, "ok": daemonsets_ok}]}
    if operator is None:
        op = {"crd": False, "policies": [], "drivers": None, "namespace": "gpu-operator", "daemonsets": []}
    return {"vendor": "nvidia", "vendor_reason": "", "node_total": len(nodes), "nodes": nodes, "other": {},
            "operator": op, "runtime_class": {"name": "nvidia", "handler": "nvidia"}, "dra_version": "v1",
            "dra": dra if dra is not None else {}, "dra_class": "gpu.nvidia.com"}


def probed(text=SMI_OUTPUT, name="gpu-0"):
    return {"nodes": {name: {"pod": "aic-driver-0", "state": "phase=Succeeded", "log": text,
                             "seen": drm.parse_smi(text)}},
            "skipped": {}, "namespace": "aic-driver-runtime-management-abcde", "timed_out": "", "cleanup": ""}


# --------------------------------------------------------------------------------------------- versions
@pytest.mark.parametrize("left,right,same", [
    ("580.126.09", "580.126.9", True),      # VKS: GFD label vs DRA attribute (semver drops the leading zero)
    ("580.126.20", "580.126.20", True),     # OpenShift: DRA driverVersion = nvidia-smi
    ("12.8", "12.8.0", True),               # CUDA label vs DRA cudaDriverVersion
    ("570.133.20", "580.126.9", False),
    ("580.126.09", "580.126.90", False),
    ("580.126", None, None),
    ("n/a", "580.126.9", None),
])
def test_versions_compare_numerically(left, right, same):
    assert drm.same_version(left, right) is same


def test_label_version_from_the_full_label_or_its_parts():
    assert drm.label_version(labels(driver="580.126.09"), drm.DRIVER_LABEL, drm.DRIVER_PART_LABELS) == "580.126.09"
    parts = {k: v for k, v in labels(driver="580.126.09").items() if k != drm.DRIVER_LABEL}
    assert drm.label_version(parts, drm.DRIVER_LABEL, drm.DRIVER_PART_LABELS) == "580.126.09"
    assert drm.label_version({}, drm.DRIVER_LABEL, drm.DRIVER_PART_LABELS) is None


def test_dcgm_driver_label_of_real_scrapes_is_a_comparable_version():
    """The DCGM exporter's DCGM_FI_DRIVER_VERSION label (real UpCloud and gardener scrapes) parses like the labels."""
    text = accel_fixtures.exposition_from_markdown("upcloud-v1.35-accelerator-metrics.md")
    assert 'DCGM_FI_DRIVER_VERSION="595.58.03"' in text
    assert drm.version_tuple("595.58.03") == (595, 58, 3)
    assert 'DCGM_FI_DRIVER_VERSION="570.195.03"' in accel_fixtures.read("gardener-v1.33-accelerator_metrics.log")
    assert drm.same_version("570.195.03", "570.195.3") is True


def test_parse_smi_reads_the_query_line_and_the_banner():
    seen = drm.parse_smi(SMI_OUTPUT)
    assert seen == {"driver": "580.105.08", "name": "NVIDIA L4", "uuid": "GPU-0b3c5bd8-4d5e-2c1a-9c1e-8f0e7e1f0a11",
                    "cuda": "13.0", "query_exit": 0, "smi_exit": 0}
    missing = drm.parse_smi("sh: 1: nvidia-smi: not found\nQUERY_EXIT: 127\nsh: 1: nvidia-smi: not found\nSMI_EXIT: 127\n")
    assert missing["driver"] is None and missing["query_exit"] == 127


def test_slice_versions_read_the_nvidia_driver_only():
    gpu = {"spec": {"driver": "gpu.nvidia.com", "nodeName": "gpu-1", "devices": [
        {"name": "gpu-0", "attributes": {"driverVersion": {"version": "580.126.9"},
                                         "cudaDriverVersion": {"version": "13.0.0"},
                                         "productName": {"string": "NVIDIA H100 80GB HBM3"}}}]}}
    other = {"spec": {"driver": "gpu.example.com", "nodeName": "gpu-2", "devices": [
        {"name": "gpu-0", "attributes": {"driverVersion": {"version": "1.0.0"}}}]}}
    assert drm.slice_versions([gpu, other]) == {"gpu-1": {"driver": ["580.126.9"], "cuda": ["13.0.0"],
                                                          "products": ["NVIDIA H100 80GB HBM3"]}}


def test_sample_covers_each_driver_version_first():
    nodes = [dict(node("gpu-%d" % i), product="NVIDIA-H100") for i in range(6)]
    nodes.append(dict(node("gpu-9", driver="580.126.09"), product="NVIDIA-H100"))
    chosen = [n["name"] for n in drm.sample_nodes(nodes, 2)]
    assert chosen == ["gpu-0", "gpu-9"]
    assert len(drm.sample_nodes(nodes, 50)) == 7


def test_daemonset_state():
    ds = {"metadata": {"name": "nvidia-driver-daemonset-5.15", "generation": 2},
          "status": {"desiredNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "observedGeneration": 2}}
    assert drm.daemonset_state(ds)["ok"] is False
    ds["status"]["numberReady"] = 3
    assert drm.daemonset_state(ds)["ok"] is True
    assert drm.operand_of("nvidia-driver-daemonset-5.15") == "driver" and drm.operand_of("kube-proxy") is None


# --------------------------------------------------------------------------------------------- verdicts
def test_matching_versions_are_implemented():
    out = validate_result(drm.judge(facts(), probed()))
    assert out["status"] == IMPLEMENTED and "580.105.08" in out["summary"]
    assert any(f["name"] == "gpu-0: driver label = nvidia-smi" and f["passed"] for f in out["findings"])
    assert "not exposed through DRA" in out["notes"]


def test_dra_semver_attribute_matches_the_zero_padded_label():
    dra = {"gpu-0": {"driver": ["580.126.9"], "cuda": ["13.0.0"], "products": []}}
    text = SMI_OUTPUT.replace("580.105.08", "580.126.09")
    out = drm.judge(facts([node(driver="580.126.09")], dra), probed(text))
    assert out["status"] == IMPLEMENTED
    assert "also exposed through DRA" in out["notes"]


def test_stale_label_is_partial_and_says_how_to_fix():
    text = SMI_OUTPUT.replace("580.105.08", "580.126.09")
    out = drm.judge(facts([node(driver="570.133.20")]), probed(text))
    assert out["status"] == PARTIAL
    assert "label 570.133.20 vs nvidia-smi 580.126.09" in out["notes"] and "feature discovery" in out["notes"]


def test_label_and_dra_disagree_even_passively():
    dra = {"gpu-0": {"driver": ["580.126.9"], "cuda": [], "products": []}}
    out = drm.judge(facts([node(driver="570.133.20")], dra), passive_reason="mode=passive")
    assert out["status"] == PARTIAL and out["summary"] == "reported driver/CUDA versions do not match the nodes"


def test_passive_is_partial():
    out = drm.judge(facts(), passive_reason="mode=passive: only read-only checks ran")
    assert out["status"] == PARTIAL and out["mode"] == "passive"


@pytest.mark.parametrize("kwargs", [{"operator": "notReady"}, {"daemonsets_ok": False}])
def test_unhealthy_operator_is_partial(kwargs):
    out = drm.judge(facts(**kwargs), probed())
    assert out["status"] == PARTIAL


def test_upgrade_failed_is_partial():
    out = drm.judge(facts([node(**{"nvidia.com/gpu-driver-upgrade-state": "upgrade-failed"})]), probed())
    assert out["status"] == PARTIAL and "upgrade failed" in out["notes"]


def test_no_mechanism_is_not_implemented():
    bare = node(driver=None, cuda=None)
    out = drm.judge(facts([bare], operator=None), probed())
    assert out["status"] == NOT_IMPLEMENTED and "gpu_operator" in out["notes"]


def test_probe_without_output_is_never_implemented():
    out = drm.judge(facts(), probed("sh: 1: nvidia-smi: not found\nQUERY_EXIT: 127\n"))
    assert out["status"] == PARTIAL


def test_skipped_nodes_are_not_verified():
    result = probed()
    result["skipped"] = {"gpu-1": "node is cordoned"}
    out = drm.judge(facts([node(), node("gpu-1")]), result)
    assert out["status"] == PARTIAL and "gpu-1" in out["notes"]


def test_no_accelerators_is_na_and_other_vendors_need_manual_checks():
    empty = facts([])
    assert drm.judge(empty)["status"] == NOT_APPLICABLE
    other = copy.deepcopy(empty)
    other["other"] = {"trn-0": {"aws.amazon.com/neuron": 16}}
    assert drm.judge(other)["status"] == PARTIAL
    amd = facts()
    amd["vendor"] = "amd"
    assert drm.judge(amd)["status"] == PARTIAL
