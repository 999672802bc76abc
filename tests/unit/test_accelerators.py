"""The vendor table: complete for every vendor, and its names match what real exporters and tools print."""
from __future__ import annotations

import re

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext

import accel_fixtures as fx

REQUIRED_KEYS = ("name", "display", "resources", "labels", "taint_key", "dra", "devices", "listing", "exporter",
                 "metrics", "load")


@pytest.mark.parametrize("name", sorted(acc.VENDORS))
def test_every_vendor_has_every_field_the_checks_read(name):
    entry = acc.vendor(name)
    for key in REQUIRED_KEYS:
        assert key in entry, key
    for kind in acc.CORE_METRICS + acc.OPTIONAL_METRICS:
        assert acc.metric_names(entry, kind), "%s has no %s metric names" % (name, kind)
    for key in ("drivers", "device_class", "attribute_domain", "product_attribute"):
        assert entry["dra"][key]
    for pattern in entry["listing"]["patterns"] + (entry["devices"]["pattern"],):
        re.compile(pattern)
    assert entry["exporter"]["selectors"] and entry["exporter"]["port"]
    assert entry["exporter"]["install"] and entry["dra"]["driver_name"]
    assert acc.default_tolerations(entry) == [{"key": entry["taint_key"], "operator": "Exists", "effect": "NoSchedule"}]


def test_nvidia_core_metrics_are_in_dcgm_exporters_default_counters():
    # The exporter only serves what its counters CSV enables; the default set must carry our first choices.
    defaults = set(re.findall(r"^(DCGM_FI_\w+)\s*,", fx.read("dcgm-default-counters.csv"), flags=re.M))
    nvidia = acc.vendor("nvidia")
    for kind in acc.CORE_METRICS + ("temperature", "power", "energy"):
        assert acc.metric_names(nvidia, kind)[0] in defaults, kind
    assert "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" in defaults and \
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" in acc.metric_names(nvidia, "interconnect")


def test_amd_older_exporter_names_are_known():
    scrape = promtext.parse(fx.read("amd-metrics_mini.txt"))
    amd = acc.vendor("amd")
    assert scrape.first_present(acc.metric_names(amd, "utilization")) == "gpu_usage"
    assert scrape.first_present(acc.metric_names(amd, "power")) == "gpu_power_usage"
    assert scrape.first_present(acc.metric_names(amd, "memory_total")) == "gpu_total_memory"
    # the mini set has total VRAM but no used VRAM: memory *usage* is missing there
    assert scrape.first_present(acc.metric_names(amd, "memory_used")) is None
    assert "GPU_UUID" in amd["metrics"]["uuid_labels"]


@pytest.mark.parametrize("metric, otel", [
    ("DCGM_FI_DEV_GPU_UTIL", "hw.gpu.utilization"),
    ("DCGM_FI_DEV_FB_USED", "hw.gpu.memory.usage"),
    ("DCGM_FI_DEV_GPU_TEMP", "hw.temperature"),
    ("DCGM_FI_DEV_POWER_USAGE", "hw.power"),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "hw.energy"),
    ("DCGM_FI_PROF_PCIE_RX_BYTES", "hw.gpu.io"),
    ("DCGM_FI_DEV_SM_CLOCK", ""),
])
def test_otel_names_for_dcgm_metrics(metric, otel):
    assert acc.otel_name(acc.vendor("nvidia"), metric) == otel


def test_utilisation_scale_percent_and_ratio():
    nvidia = acc.vendor("nvidia")
    assert acc.utilization_percent(nvidia, "DCGM_FI_DEV_GPU_UTIL", 91) == 91.0
    # profiling metrics are ratios: ericsson's 0.156205 graphics-engine activity is 15.6 %
    assert round(acc.utilization_percent(nvidia, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.156205), 1) == 15.6


def test_nvidia_listing_lines_from_a_real_run():
    logs = fx.gardener_pod_logs("gardener-v1.33-secure_accelerator_access.log")
    listed = [acc.parse_listing(acc.vendor("nvidia"), text) for _name, text in sorted(logs.items())]
    assert listed == [[{"index": "0", "name": "Tesla T4", "uuid": "GPU-960adb66-4b24-7335-74f2-f334f2220a84"}],
                      [{"index": "0", "name": "Tesla T4", "uuid": "GPU-91690876-62fb-2876-fd2e-1cb3bd27c4f8"}]]


def test_device_nodes_keep_accelerators_only():
    text = fx.gardener_pod_logs("gardener-v1.33-secure_accelerator_access.log")["gpu-test-deployment-6ff98584b9-hksjw"]
    paths = [line for line in text.splitlines() if line.startswith("/dev/")]
    assert paths == ["/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidiactl"]
    assert acc.device_nodes(acc.vendor("nvidia"), paths) == ["/dev/nvidia0"]


def test_amd_listing_across_lines():
    text = "GPU: 0\n    BDF: 0000:0c:00.0\n    UUID: 6699c0a8-4200-4242-037f-f97e6cae0f09\nGPU: 1\n    UUID: 77aa\n"
    assert acc.parse_listing(acc.vendor("amd"), text) == [
        {"index": "0", "name": "", "uuid": "6699c0a8-4200-4242-037f-f97e6cae0f09"},
        {"index": "1", "name": "", "uuid": "77aa"}]


def node(name, allocatable=None, labels=None, taints=None):
    status = {"allocatable": allocatable or {}, "capacity": allocatable or {}}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}, "status": status}


GFD = {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def test_summaries_from_device_plugin_and_feature_discovery():
    nvidia = acc.vendor("nvidia")
    gpu = acc.summarize_node(node("gpu-0", {"cpu": "32", "nvidia.com/gpu": "8"}, GFD), nvidia)
    assert (gpu["allocatable"], gpu["label_count"], gpu["count"], gpu["physical"], gpu["shared"]) == (8, 8, 8, 8, False)
    # labels but the device plugin is not up yet: still an accelerator node, counted by the label
    starting = acc.summarize_node(node("gpu-1", {"cpu": "32"}, GFD), nvidia)
    assert (starting["allocatable"], starting["count"]) == (None, 8)
    assert acc.summarize_node(node("cpu-0", {"cpu": "16"}), nvidia) is None
    # time-slicing: allocatable = physical x replicas, GFD keeps the physical count
    sliced = dict(GFD, **{"nvidia.com/gpu.sharing-strategy": "time-slicing", "nvidia.com/gpu.replicas": "4"})
    shared = acc.summarize_node(node("gpu-2", {"nvidia.com/gpu": "32"}, sliced), nvidia)
    assert (shared["count"], shared["physical"], shared["shared"]) == (32, 8, True)


def test_vendor_detection_and_other_accelerators():
    nodes = [node("a", {"amd.com/gpu": "4"}), node("b", {"amd.com/gpu": "4"}), node("n", {"nvidia.com/gpu": "1"}),
             node("t", {"google.com/tpu": "4"})]
    assert acc.detect_vendor(nodes) == "amd"
    assert acc.resolve_vendor("auto", nodes) == ("amd", "detected from node resources, labels or DRA drivers")
    assert acc.resolve_vendor("intel", nodes)[0] == "intel"
    assert acc.detect_vendor([node("c")], ["gpu.nvidia.com"]) == "nvidia"
    assert acc.detect_vendor([node("c")]) is None
    assert acc.other_accelerators(nodes) == {"t": {"google.com/tpu": 4}}


def test_every_vendor_present_is_detected():
    nodes = [node("a", {"amd.com/gpu": "4"}), node("n", {"nvidia.com/gpu": "1"}), node("c", {"cpu": "8"}),
             node("t", {"google.com/tpu": "4"})]
    assert acc.detect_vendors(nodes) == ["nvidia", "amd"]
    # an Intel DRA driver publishing devices counts, with no Intel resource on any node
    assert acc.detect_vendors(nodes, ["gpu.intel.com"]) == ["nvidia", "amd", "intel"]
    # labels alone (feature discovery before the device plugin is up) count too
    assert acc.detect_vendors([node("l", {"cpu": "8"}, GFD)]) == ["nvidia"]
    assert acc.detect_vendors([node("c", {"cpu": "8"}), node("t", {"google.com/tpu": "4"})]) == []


def test_fix_hints_belong_to_their_vendor():
    """An AMD cluster is never told to install NVIDIA's exporter or driver."""
    for name in ("amd", "intel"):
        entry = acc.vendor(name)
        assert "dcgm" not in entry["exporter"]["install"].lower() and "nvidia" not in entry["exporter"]["install"].lower()
        assert "nvidia" not in entry["dra"]["driver_name"].lower()
    assert "dcgm" in acc.vendor("nvidia")["exporter"]["install"].lower()


def test_unknown_vendor_names_the_choices():
    with pytest.raises(acc.UnknownVendor) as err:
        acc.vendor("habana")
    assert "auto, nvidia, amd, intel" in str(err.value)
