"""The simulated accelerators' pure parts: the CEL subset over the real chart's DeviceClass selectors, the
DCGM exporter's exposition (parsed by prometheus_client, checked against the upstream counters file) and the
GPU inventory."""
from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext
from simcluster.accelerators import cel, dcgm, dra
from simcluster.accelerators.inventory import Inventory

import accel_fixtures as fx

SCENARIO = {"name": "unit", "nodePools": [
    {"name": "gpu", "count": 2, "accelerators": {"vendor": "nvidia", "count": 4, "product": "Tesla-T4"}},
    {"name": "cpu", "count": 1},
]}


def chart_device_classes():
    with open(dra.CLASSES_FILE, encoding="utf-8") as handle:
        return {d["metadata"]["name"]: d for d in yaml.safe_load_all(handle) if d}


def device(kind="gpu", driver="gpu.nvidia.com", **attrs):
    attributes = {"type": {"string": kind}}
    attributes.update({k: {"string": v} for k, v in attrs.items()})
    return {"driver": driver, "name": "gpu-0", "attributes": attributes}


def test_chart_device_classes_select_by_driver_and_type():
    classes = chart_device_classes()
    assert set(classes) == {"gpu.nvidia.com", "mig.nvidia.com", "vfio.gpu.nvidia.com"}
    gpu = cel.compile_expression(classes["gpu.nvidia.com"]["spec"]["selectors"][0]["cel"]["expression"])
    mig = cel.compile_expression(classes["mig.nvidia.com"]["spec"]["selectors"][0]["cel"]["expression"])
    assert gpu(device()) and not mig(device())
    assert mig(device("mig")) and not gpu(device(driver="gpu.example.com"))


@pytest.mark.parametrize("expression, matches", [
    ('device.attributes["gpu.nvidia.com"].productName == "Tesla T4"', True),
    ("device.attributes['gpu.nvidia.com'].productName != 'Tesla T4'", False),
    ('device.attributes["gpu.nvidia.com"].productName == "aic-no-such-product"', False),
    ('device.attributes["resource.kubernetes.io"].pciBusID == "0000:18:00.0"', True),
])
def test_attribute_comparisons(expression, matches):
    dev = device(productName="Tesla T4")
    dev["attributes"]["resource.kubernetes.io/pciBusID"] = {"string": "0000:18:00.0"}
    assert cel.compile_expression(expression)(dev) is matches


def test_expressions_outside_the_subset_are_refused():
    example = yaml.safe_load(fx.read("dra-example-driver-cel-selector.yaml.txt").split("---")[2])
    selectors = example["spec"]["spec"]["devices"]["requests"][0]["exactly"]["selectors"]
    cel.compile_expression(selectors[0]["cel"]["expression"])            # attribute equality: supported
    with pytest.raises(cel.CelUnsupported):
        cel.compile_expression(selectors[1]["cel"]["expression"])        # capacity compareTo(quantity(...))
    with pytest.raises(cel.CelUnsupported):
        cel.compile_expression('device.driver == "a" || device.driver == "b"')


def test_inventory_is_stable_and_unique():
    first, second = Inventory(SCENARIO), Inventory(SCENARIO)
    assert first.nodes() == ["gpu-0", "gpu-1"]
    uuids = [g.uuid for n in first.nodes() for g in first.gpus(n)]
    assert uuids == [g.uuid for n in second.nodes() for g in second.gpus(n)]
    assert len(set(uuids)) == 8 and all(re.match(r"^GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", u) for u in uuids)
    buses = ["00000000:18:00.0", "00000000:2A:00.0", "00000000:3A:00.0", "00000000:5D:00.0"]
    assert [g.pci_bus_id for g in first.gpus("gpu-0")] == buses
    assert first.gpus("cpu-0") == []


def test_slice_devices_carry_the_driver_attributes():
    gpus = Inventory(SCENARIO).gpus("gpu-0")
    devices = dra.slice_devices(gpus)
    assert [d["name"] for d in devices] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    attrs = devices[0]["attributes"]
    assert attrs["productName"] == {"string": "Tesla T4"} and attrs["cudaComputeCapability"] == {"version": "7.5.0"}
    assert attrs["uuid"] == {"string": gpus[0].uuid} and devices[0]["capacity"] == {"memory": {"value": "15360Mi"}}


def exposition(counters, load=None, users=None):
    inventory = Inventory(SCENARIO)
    gpus = inventory.gpus("gpu-0")
    if load:
        inventory.add_load(gpus[0].uuid, 1000.0, 60)
    return dcgm.exposition(counters, gpus, "gpu-0", 1030.0, inventory, users or {}, 0.0), gpus


def default_counters():
    with open(dcgm.DEFAULT_COUNTERS, encoding="utf-8") as handle:
        return dcgm.parse_counters(handle.read())


def test_exporter_serves_every_default_counter_per_gpu():
    counters = default_counters()
    text, gpus = exposition(counters)
    scrape = promtext.parse(text)
    declared = {field: kind for field, kind, _h in counters if kind != "label"}
    assert set(scrape.names()) == set(declared)
    for field, kind in declared.items():
        assert scrape.families[field]["type"] == kind
        assert sorted(s.labels["UUID"] for s in scrape.find(field)) == sorted(g.uuid for g in gpus)
    sample = scrape.find("DCGM_FI_DEV_GPU_UTIL")[0]
    assert list(sample.labels) == ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"]
    assert sample.labels["modelName"] == "Tesla T4" and sample.labels["Hostname"] == "gpu-0"
    # the upstream default counters file is what the exporter reads
    assert os.path.basename(dcgm.DEFAULT_COUNTERS) == "default-counters.csv"
    with open(dcgm.DEFAULT_COUNTERS, encoding="utf-8") as handle:
        assert handle.read() == fx.read("dcgm-default-counters.csv")


def test_load_and_attribution_show_on_the_loaded_gpu():
    text, gpus = exposition(default_counters(), load=True, users={0: ("ns", "aic-load", "load")})
    scrape = promtext.parse(text)
    util = {s.labels["UUID"]: s.value for s in scrape.find("DCGM_FI_DEV_GPU_UTIL")}
    used = {s.labels["UUID"]: s.value for s in scrape.find("DCGM_FI_DEV_FB_USED")}
    assert util[gpus[0].uuid] >= 90 and all(util[g.uuid] < 5 for g in gpus[1:])
    assert used[gpus[0].uuid] > 0 and all(used[g.uuid] == 0 for g in gpus[1:])
    loaded = [s for s in scrape.find("DCGM_FI_DEV_GPU_UTIL") if s.labels["UUID"] == gpus[0].uuid][0]
    assert (loaded.labels["pod"], loaded.labels["namespace"], loaded.labels["container"]) == ("aic-load", "ns", "load")


def test_custom_counters_without_memory():
    with open(os.path.join(os.path.dirname(dcgm.DEFAULT_COUNTERS), "..", "stack", "dcgm-exporter-no-memory.yaml"),
              encoding="utf-8") as handle:
        config_map = yaml.safe_load(handle)["objects"][0]
    counters = dcgm.parse_counters(config_map["data"]["dcgm-metrics.csv"])
    scrape = promtext.parse(exposition(counters)[0])
    assert not [n for n in scrape.names() if n.startswith("DCGM_FI_DEV_FB_")]
    assert scrape.find("DCGM_FI_DEV_GPU_UTIL")


def test_chart_device_classes_render_for_the_served_dra_version():
    """As the chart's resourceApiVersion helper: the newest served version wins; extendedResourceName is
    written only for resource.k8s.io/v1 (deviceclass-gpu.yaml's `if eq $resourceApiVersion ...`)."""
    gpu = chart_device_classes()["gpu.nvidia.com"]
    on_v1 = dra.render_chart_object(gpu, ["v1beta1", "v1beta2", "v1"])
    assert on_v1["apiVersion"] == "resource.k8s.io/v1"
    assert on_v1["spec"]["extendedResourceName"] == "nvidia.com/gpu"
    on_133 = dra.render_chart_object(gpu, ["v1beta1", "v1beta2"])
    assert on_133["apiVersion"] == "resource.k8s.io/v1beta2"
    assert "extendedResourceName" not in on_133["spec"]
    assert on_133["spec"]["selectors"] == gpu["spec"]["selectors"]
    assert "extendedResourceName" in gpu["spec"], "the chart file itself must stay as rendered"
    assert dra.render_chart_object(gpu, []) is None
