"""gpu_sharing: reading the device plugin's sharing config and GPU feature discovery's labels (upstream examples in
tests/unit/fixtures/gpu_sharing), the probes' pure outcomes, and the verdict rules (a strategy shown with pods ->
Implemented; advertised only -> Partially; a shared DRA claim alone -> Partially; nothing -> Not Implemented;
no accelerators -> N/A)."""
from __future__ import annotations

import os

import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import gpu_sharing as gs
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "gpu_sharing")
# nvidia-smi -L in a container given one MIG device (NVIDIA GPU operator docs' format)
MIG_LISTING = ("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-838f60d9-651f-9166-ea42-f9da674a6947)\n"
               "  MIG 1g.5gb      Device  0: (UUID: MIG-ffda444c-c706-57c6-98c9-67c441a0b109)\n")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


GFD = yaml.safe_load(fixture("gfd-labels.yaml"))


def node(name, labels, allocatable, unschedulable=False):
    return {"metadata": {"name": name, "labels": dict(labels, **{"nvidia.com/gpu.present": "true"})},
            "spec": {"unschedulable": unschedulable}, "status": {"allocatable": allocatable, "capacity": allocatable}}


# --------------------------------------------------------------------------------------------- reading
def test_time_slicing_config_from_the_readme():
    assert gs.parse_sharing_config(fixture("time-slicing.yaml.txt")) == {
        "strategy": "time-slicing", "replicas": 10, "resource": "nvidia.com/gpu", "mig_strategy": "none", "error": ""}


def test_renamed_and_mps_configs():
    renamed = gs.parse_sharing_config(fixture("time-slicing-renamed.yaml.txt"))
    assert (renamed["strategy"], renamed["resource"]) == ("time-slicing", "nvidia.com/gpu.shared")
    mps = gs.parse_sharing_config(fixture("mps.yaml.txt"))
    assert (mps["strategy"], mps["replicas"]) == ("mps", 10)


def test_configs_the_plugin_refuses_or_without_sharing():
    one = gs.parse_sharing_config("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 1\n")
    assert one["strategy"] == "none" and "replicas must be >= 2" in one["error"]
    assert gs.parse_sharing_config("version: v1\nflags:\n  migStrategy: mixed\n")["mig_strategy"] == "mixed"
    assert gs.parse_sharing_config("{").get("error").startswith("not valid YAML")


def test_gfd_labels_of_a_time_sliced_node_with_multiplied_capacity():
    summary = gs.node_sharing(node("gpu-0", GFD["time-sliced"], {"nvidia.com/gpu": "2"}))
    assert summary["shared_label"] and summary["multiplied"]
    assert (summary["physical"], summary["replicas"], summary["strategy"]) == (1, 2, "time-slicing")


def test_labels_claiming_sharing_without_multiplied_capacity():
    summary = gs.node_sharing(node("gpu-0", GFD["time-sliced"], {"nvidia.com/gpu": "1"}))
    assert summary["shared_label"] and not summary["multiplied"]
    found = gs.strategies({"nodes": [summary], "dra": {"mig_devices": {}}})
    assert found["claimed"] == ["gpu-0"] and not found["time-slicing"]


def test_unshared_node_and_mps_node():
    assert not gs.node_sharing(node("gpu-0", GFD["unshared"], {"nvidia.com/gpu": "1"}))["shared_label"]
    mps = gs.node_sharing(node("gpu-1", GFD["mps"], {"nvidia.com/gpu": "2"}))
    assert gs.strategies({"nodes": [mps], "dra": {"mig_devices": {}}})["mps"] == ["gpu-1"]


def test_mig_resources_and_non_gpu_nodes():
    summary = gs.node_sharing(node("a100-0", {"nvidia.com/mig.strategy": "mixed", "nvidia.com/mig.config.state": "success"},
                                   {"nvidia.com/mig-1g.5gb": "7", "nvidia.com/mig-2g.10gb": "0", "cpu": "32"}))
    assert summary["mig_resources"] == {"nvidia.com/mig-1g.5gb": 7}
    assert gs.node_sharing({"metadata": {"name": "cpu-0", "labels": {}}, "status": {"allocatable": {"cpu": "8"}}}) is None


def test_config_source_of_the_chart_daemonset():
    ds = {"metadata": {"name": "nvidia-device-plugin", "namespace": "gpu-operator"}, "spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "command": ["config-manager"],
                            "env": [{"name": "DEFAULT_CONFIG", "value": "any"}],
                            "volumeMounts": [{"name": "available-configs", "mountPath": "/available-configs"}]}],
        "containers": [{"name": "ctr", "command": ["nvidia-device-plugin"]}],
        "volumes": [{"name": "available-configs", "configMap": {"name": "time-slicing-config"}}]}}}}
    assert gs.config_source(ds) == {"configmap": "time-slicing-config", "namespace": "gpu-operator",
                                    "label": "nvidia.com/device-plugin.config", "default": "any"}
    ds["spec"]["template"]["spec"]["initContainers"] = []
    assert gs.config_source(ds) is None


def test_mig_listing_and_gate_stages():
    assert gs.parse_mig_listing(MIG_LISTING) == [
        {"profile": "1g.5gb", "index": "0", "uuid": "MIG-ffda444c-c706-57c6-98c9-67c441a0b109"}]
    assert gs.gate_stage(35)[0] == "alpha" and gs.gate_stage(36)[0] == "beta" and gs.gate_stage(32)[0] is None


def test_mig_devices_in_dra_slices():
    slices = [{"spec": {"driver": "gpu.nvidia.com", "nodeName": "a100-0", "devices": [
        {"name": "gpu-0", "attributes": {"type": {"string": "gpu"}}},
        {"name": "gpu-0-mig-1g5gb-0", "attributes": {"type": {"string": "mig"}}}]}},
        {"spec": {"driver": "gpu.example.com", "nodeName": "x", "devices": [{"name": "m", "attributes": {"type": {"string": "mig"}}}]}}]
    assert gs.slice_mig_devices(slices) == {"a100-0": ["gpu-0-mig-1g5gb-0"]}


# --------------------------------------------------------------------------------------------- probe outcomes
def pods(*uuid_lists, phases=None):
    return [{"name": "aic-share-%d" % i, "phase": (phases or {}).get(i, "Running"), "uuids": list(u), "detail": "x",
             "node": "gpu-ts-0"}
            for i, u in enumerate(uuid_lists)]


def test_timeslice_outcome_needs_all_running_one_gpu_each_and_a_shared_uuid():
    assert gs.timeslice_outcome(pods(["A"], ["B"], ["A"]), 2)[0]
    passed, detail = gs.timeslice_outcome(pods(["A"], ["B"], ["C"]), 2)
    assert not passed and "no GPU was shared" in detail
    passed, detail = gs.timeslice_outcome(pods(["A"], ["B"], [], phases={2: "Pending"}), 2)
    assert not passed and "2 of 3 pods ran" in detail
    assert not gs.timeslice_outcome(pods(["A", "B"], ["A"], ["B"]), 2)[0]


def test_mig_outcome_needs_one_own_mig_device_per_pod():
    mig = gs.parse_mig_listing(MIG_LISTING)
    other = [dict(mig[0], uuid="MIG-fe9bc608-60f5-5479-8cc4-1827021d27a9")]
    parent = ["GPU-838f60d9-651f-9166-ea42-f9da674a6947"]
    good = [{"name": "a", "phase": "Running", "uuids": parent, "mig": mig},
            {"name": "b", "phase": "Running", "uuids": parent, "mig": other}]
    passed, detail = gs.mig_outcome(good, "nvidia.com/mig-1g.5gb")
    assert passed and detail == "2 pods on nvidia.com/mig-1g.5gb each got their own MIG device (1g.5gb) on 1 parent GPU(s)"
    assert not gs.mig_outcome([good[0], dict(good[1], mig=mig)], "r")[0]
    assert not gs.mig_outcome([good[0], dict(good[1], mig=[], phase="Pending")], "r")[0]


# --------------------------------------------------------------------------------------------- verdicts
def facts(nodes=(), configs=(), dra_slices=0, mig_devices=None, vendor="nvidia", other=None, minor=35):
    return {"vendor": vendor, "vendor_reason": "set", "node_count": len(nodes), "nodes": list(nodes), "other": other or {},
            "minor": minor, "cluster_policy": None, "plugins": [], "configs": list(configs), "mig_manager": [],
            "dra": {"version": "v1" if dra_slices else None, "mig_class": bool(dra_slices), "classes": [],
                    "mig_devices": mig_devices or {}, "gpu_slices": dra_slices},
            "accelerator_nodes": len(nodes)}


TIME_SLICED_T4S = dict(GFD["time-sliced"], **{"nvidia.com/gpu.count": "2", "nvidia.com/gpu.replicas": "4"})
SHARED = gs.node_sharing(node("gpu-ts-0", TIME_SLICED_T4S, {"nvidia.com/gpu": "8"}))
PLAIN = gs.node_sharing(node("gpu-0", GFD["unshared"], {"nvidia.com/gpu": "1"}))
CONFIG = {"namespace": "gpu-operator", "name": "time-slicing-config", "referrer": "ClusterPolicy cluster-policy",
          "default": "any", "found": True, "keys": {"any": gs.parse_sharing_config(fixture("time-slicing.yaml.txt"))}}


def probe_out(strategy="time-slicing", passed=True, node="gpu-ts-0"):
    return {"strategy": strategy, "node": node, "pods": pods(["A"], ["B"], ["A"]), "timed_out": "", "cleanup": "",
            "passed": passed, "detail": "detail", "namespace": "aic-gpu-sharing-x"}


def test_time_slicing_shown_is_implemented():
    result = validate_result(gs.judge(facts([SHARED, PLAIN], [CONFIG]), probe_out()))
    assert result["status"] == IMPLEMENTED and "time-slicing" in result["summary"]
    assert any(e["title"] == "probe pods (time-slicing)" for e in result["evidence"])


def test_passive_advertised_is_partial_and_nothing_is_not_implemented():
    assert gs.judge(facts([SHARED]), passive_reason="mode=passive")["status"] == PARTIAL
    result = gs.judge(facts([PLAIN]), passive_reason="mode=passive")
    assert result["status"] == NOT_IMPLEMENTED and "Configure a GPU sharing strategy" in result["notes"]


def test_configured_but_not_advertised_says_so():
    result = gs.judge(facts([PLAIN], [CONFIG]), passive_reason="mode=passive")
    assert result["status"] == NOT_IMPLEMENTED
    assert "gpu-operator/time-slicing-config (key any)" in result["notes"] and "no node advertises" in result["notes"]


def test_shared_claim_alone_is_partial():
    result = gs.judge(facts([PLAIN], dra_slices=1), probe_out("dra", node=None))
    assert result["status"] == PARTIAL and "not counted as a GPU sharing strategy" in result["notes"]


def test_failed_time_slicing_probe_is_partial_when_advertised():
    result = gs.judge(facts([SHARED]), probe_out(passed=False))
    assert result["status"] == PARTIAL and "did not show GPU sharing" in result["summary"]


def test_mig_shown_is_implemented():
    mig = gs.node_sharing(node("a100-0", {}, {"nvidia.com/mig-1g.5gb": "7"}))
    assert gs.judge(facts([mig]), probe_out("mig", node="a100-0"))["status"] == IMPLEMENTED


def test_dra_only_gpus_are_not_na():
    result = gs.judge(facts([], dra_slices=2), passive_reason="mode=passive")
    assert result["status"] == NOT_IMPLEMENTED


def test_no_accelerators_is_na_and_other_vendors_need_manual_verification():
    result = validate_result(gs.judge(facts([])))
    assert result["status"] == NOT_APPLICABLE and "no accelerator" in result["notes"]
    assert gs.judge(facts([], other={"trn-0": {"aws.amazon.com/neuron": 16}}))["status"] == NOT_IMPLEMENTED
    amd = gs.judge(facts([], vendor="amd"))
    assert amd["status"] == NOT_IMPLEMENTED and "by hand" in amd["notes"]


class Opts(dict):
    def get(self, key, default=None):
        return dict.get(self, key, default)


def test_probe_choice_prefers_the_smallest_time_sliced_node_then_mig_then_dra():
    big = dict(SHARED, name="gpu-ts-big", physical=8)
    assert gs.choose_probe(facts([big, SHARED]), Opts())[1]["name"] == "gpu-ts-0"
    assert gs.choose_probe(facts([dict(SHARED, physical=9)]), Opts(strategy="time-slicing"))[0] is None
    busy = dict(SHARED, name="gpu-ts-1")
    assert gs.choose_probe(facts([SHARED, busy]), Opts(), free={"gpu-ts-0": 1, "gpu-ts-1": 5})[1]["name"] == "gpu-ts-1"
    with_class = facts([PLAIN], dra_slices=1)
    assert gs.choose_probe(with_class, Opts())[0] is None          # no gpu.nvidia.com DeviceClass
    with_class["dra"]["classes"] = ["gpu.nvidia.com"]
    assert gs.choose_probe(with_class, Opts()) == ("dra", None)
    assert gs.choose_probe(facts([PLAIN]), Opts())[0] is None
