"""dra_support: DRA object shapes per API version, and the verdict rules per Kubernetes minor, over real data."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, validate_result)

import accel_fixtures as fx


# --------------------------------------------------------------------------------------------- shapes
def test_best_version_prefers_ga():
    assert dra.best_version(["v1beta1", "v1", "v1beta2"]) == "v1"
    assert dra.best_version(["v1beta1", "v1beta2"]) == "v1beta2"
    assert dra.best_version([]) is None


def test_v1_slice_from_dra_example_driver():
    summary = dra.summarize_slice(fx.readme_resource_slices()[0])
    assert (summary["driver"], summary["node"], summary["pool"]) == (
        "gpu.example.com", "dra-example-driver-cluster-worker", "dra-example-driver-cluster-worker")
    first = summary["devices"][0]
    assert first == {"name": "gpu-0", "capacity": {"memory": "80Gi"}, "attributes": {
        "driverVersion": "1.0.0", "index": 0, "model": "LATEST-GPU-MODEL",
        "uuid": "gpu-18db0e85-99e9-c746-8531-ffeb86328b39"}}


def test_v1beta1_slices_nest_devices_under_basic():
    # v1beta1 wraps attributes/capacity in `basic`; the same devices must summarise identically.
    v1 = fx.readme_resource_slices()[0]
    beta = copy.deepcopy(v1)
    beta["apiVersion"] = "resource.k8s.io/v1beta1"
    beta["spec"]["devices"] = [{"name": d["name"], "basic": {"attributes": d["attributes"], "capacity": d["capacity"]}}
                               for d in v1["spec"]["devices"]]
    assert dra.summarize_slice(beta) == dra.summarize_slice(v1)


def test_qualified_and_bare_attribute_names():
    device = {"attributes": {"productName": "NVIDIA H100", "resource.kubernetes.io/pciBusID": "0000:3b:00.0"}}
    assert dra.device_attribute(device, "gpu.nvidia.com", "productName") == "NVIDIA H100"
    assert dra.device_attribute(device, "resource.kubernetes.io", "pciBusID") == "0000:3b:00.0"
    assert dra.device_attribute(device, "gpu.nvidia.com", "uuid") is None


def _template_request(name):
    template = [d for d in fx.yaml_documents(name) if d["kind"] == "ResourceClaimTemplate"][0]
    return template["apiVersion"].split("/")[1], template["spec"]["spec"]["devices"]["requests"][0]


@pytest.mark.parametrize("fixture", ["k8s-dra-driver-gpu-v1-gpu-test1.yaml.txt", "k8s-dra-driver-gpu-v1beta1-gpu-test1.yaml.txt"])
def test_request_shape_matches_the_nvidia_driver_demo(fixture):
    version, upstream = _template_request(fixture)
    ours = dra.device_request(version, "gpu", "gpu.nvidia.com")
    # ours spells out the defaults the upstream demo leaves to the API server
    if version == "v1":
        assert ours["exactly"].pop("allocationMode") == "ExactCount" and ours["exactly"].pop("count") == 1
    else:
        assert ours.pop("allocationMode") == "ExactCount" and ours.pop("count") == 1
    assert ours == upstream


def test_cel_selector_in_the_documented_form():
    # kubernetes.io's example: device.attributes["driver.example.com"].type == "gpu"
    example = fx.yaml_documents("kubernetes-website-resourceclaimtemplate.yaml.txt")[0]
    expression = example["spec"]["spec"]["devices"]["requests"][0]["exactly"]["selectors"][0]["cel"]["expression"]
    ours = dra.cel_equals("driver.example.com", "type", "gpu")
    assert expression.startswith(ours + " &&")
    assert dra.cel_equals("gpu.nvidia.com", "productName", 'A "quoted" name') == \
        'device.attributes["gpu.nvidia.com"].productName == "A \\"quoted\\" name"'
    assert dra.cel_equals("d", "index", 3) == 'device.attributes["d"].index == 3'


def test_claim_template_and_allocation_results():
    template = dra.claim_template("v1beta2", "t", [dra.device_request("v1beta2", "gpu", "gpu.nvidia.com")])
    assert template["apiVersion"] == "resource.k8s.io/v1beta2"
    assert template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    claim = {"metadata": {"name": "c", "ownerReferences": [{"kind": "Pod", "name": "p"}]},
             "status": {"allocation": {"devices": {"results": [
                 {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-3"}]}}}}
    assert dra.claim_allocations(claim) == [{"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-a",
                                             "device": "gpu-3"}]
    assert dra.claim_owner_pod(claim) == "p"
    assert dra.claim_allocations({"status": {}}) == []


def test_device_class_choice():
    classes = [{"name": "gpu.example.com", "selectors": ["device.driver == 'gpu.example.com'"]}]
    assert dra.class_for_driver(classes, ["gpu.example.com"], "gpu.nvidia.com") == "gpu.example.com"
    assert dra.class_for_driver(classes + [{"name": "gpu.nvidia.com", "selectors": []}], ["x"], "gpu.nvidia.com") == \
        "gpu.nvidia.com"
    assert dra.class_for_driver(classes, ["other.driver"], "gpu.nvidia.com") is None


# --------------------------------------------------------------------------------------------- facts
def dra_facts(minor, served, counts=None, slices=(), classes=()):
    version = dra.best_version(served)
    resources = {r: {"served": bool(version), "listable": bool(version), "count": (counts or {}).get(r, 0), "error": ""}
                 for r in dra.DRA_RESOURCES} if version else {}
    summaries = [dra.summarize_slice(s) for s in slices]
    return {"minor": minor, "git_version": "v1.%d.4" % minor, "vendor": "nvidia", "vendor_reason": "set",
            "accelerator_nodes": [],
            "dra": {"served": list(served), "version": version, "resources": resources,
                    "device_classes": list(classes), "slices": summaries,
                    "drivers": sorted(set(s["driver"] for s in summaries if s["devices"]))}}


def gardener_facts():
    minor, served, counts = fx.gardener_dra_discovery()
    return dra_facts(minor, served, counts)


def kops_facts():
    served, resources = fx.kops_dra_discovery()
    assert resources == list(dra.DRA_RESOURCES)
    return dra_facts(35, served)


def with_driver(facts):
    facts = copy.deepcopy(facts)
    facts["dra"]["slices"] = [dra.summarize_slice(s) for s in fx.readme_resource_slices()]
    facts["dra"]["drivers"] = ["gpu.example.com"]
    facts["dra"]["device_classes"] = [{"name": "gpu.example.com", "selectors": ["device.driver == 'gpu.example.com'"]}]
    return facts


def probe_outcome(allocated=True, complete=True, cel_match=True, cel_none_held=True, window=60):
    plan = {"skipped": None, "device_class": "gpu.example.com", "driver": "gpu.example.com",
            "domain": "gpu.example.com", "attribute": "model", "value": "LATEST-GPU-MODEL"}
    alloc = [{"request": "gpu", "driver": "gpu.example.com", "pool": "worker", "device": "gpu-0"}]
    return {
        "plan": plan, "namespace": "aic-dra-support-x1y2z", "swept": [], "cleanup": "", "timed_out": "",
        "impossible_value": "aic-no-such-product-abc",
        "job": {"complete": complete, "failed": not complete, "pod": "aic-dra-job-abcde", "node": "worker",
                "pod_state": "phase=%s" % ("Succeeded" if complete else "Pending"),
                "log": "GPU 0: LATEST-GPU-MODEL (UUID: GPU-18db0e85-99e9-c746-8531-ffeb86328b39)\n" if complete else "",
                "allocations": alloc if allocated else []},
        "cel_match": {"done": cel_match, "phase": "Succeeded" if cel_match else "Pending", "pod_state": "phase=x",
                      "allocations": [dict(alloc[0], device="gpu-1")] if cel_match else []},
        "cel_none": {"bound": not cel_none_held, "unschedulable": cel_none_held, "phase": "Pending",
                     "pod_state": "phase=Pending", "allocations": [] if cel_none_held else alloc,
                     "failed_scheduling": ["0/2 nodes are available: 2 cannot allocate all claims."],
                     "observed_seconds": window, "window": window},
    }


# --------------------------------------------------------------------------------------------- verdicts
def test_gardener_v133_beta_without_driver_is_partially_as_they_submitted():
    result = dra.judge(gardener_facts(), passive_reason="mode=passive")
    validate_result(result)
    assert result["status"] == PARTIAL
    assert "beta" in result["notes"] and "No DRA driver publishes devices" in result["notes"]
    listable = [f for f in result["findings"] if f["name"].endswith("listable")]
    assert len(listable) == 4 and all(f["passed"] for f in listable)
    assert "0 items" in listable[0]["detail"]


def test_kops_v135_v1_and_four_listable_is_implemented_with_a_no_driver_note():
    result = dra.judge(kops_facts(), passive_reason="mode=passive")
    assert result["status"] == IMPLEMENTED
    assert "allocation was not exercised" in result["notes"]


@pytest.mark.parametrize("minor, served, expected", [
    (34, ["v1beta2", "v1beta1"], NOT_IMPLEMENTED),   # betas only on 1.34+: v1 switched off
    (33, [], NOT_IMPLEMENTED),
    (35, [], NOT_IMPLEMENTED),
])
def test_missing_or_beta_only_apis(minor, served, expected):
    result = dra.judge(dra_facts(minor, served))
    assert result["status"] == expected
    assert "resource.k8s.io" in result["summary"]


def test_v133_beta_with_allocating_driver_is_implemented_with_beta_note():
    facts = with_driver(dra_facts(33, ["v1beta2", "v1beta1"]))
    result = dra.judge(facts, probe_outcome())
    assert result["status"] == IMPLEMENTED
    assert "does not exist yet" in result["notes"]
    names = {f["name"]: f["passed"] for f in result["findings"]}
    assert names["claim from a ResourceClaimTemplate allocates and the workload runs"] is True
    assert names["CEL selector matching no device keeps the pod Pending"] is True


def test_v133_beta_with_driver_but_passive_stays_partial():
    result = dra.judge(with_driver(dra_facts(33, ["v1beta1"])), passive_reason="check mode: nothing created")
    assert result["status"] == PARTIAL
    assert "check mode" in result["notes"]


@pytest.mark.parametrize("outcome, note", [
    (probe_outcome(allocated=False, complete=False, cel_match=False), "did not get a device allocated"),
    (probe_outcome(cel_none_held=False), "CEL selectors"),
    (probe_outcome(cel_match=False), "CEL selectors"),
])
def test_v1_with_driver_that_does_not_allocate_properly_is_partial(outcome, note):
    result = dra.judge(with_driver(dra_facts(34, ["v1"])), outcome)
    assert result["status"] == PARTIAL
    assert note in result["notes"]


def holding(outcome, listing_exit):
    """The probes as they are read now: still running and holding their claims after the listing."""
    listing = "GPU 0: LATEST-GPU-MODEL (UUID: GPU-18db0e85-99e9-c746-8531-ffeb86328b39)\n" if listing_exit == 0 else \
        "sh: 1: nvidia-smi: not found\n"
    log = "RESULT: ACCELERATOR_FOUND\n%sLISTING_EXIT: %d\n" % (listing, listing_exit)
    outcome["job"].update(complete=False, failed=False, pod_state="phase=Running", log=log)
    outcome["cel_match"].update(done=False, phase="Running", log=log)
    return outcome


def test_probes_holding_their_claims_count_as_ran_when_the_listing_succeeded():
    result = dra.judge(with_driver(dra_facts(34, ["v1"])), holding(probe_outcome(), 0))
    assert result["status"] == IMPLEMENTED
    names = {f["name"]: f for f in result["findings"]}
    assert "while holding the claim" in names["claim from a ResourceClaimTemplate allocates and the workload runs"]["detail"]
    assert names["CEL selector on a device attribute allocates"]["passed"] is True


def test_probes_whose_listing_failed_did_not_run_even_with_an_allocation():
    result = dra.judge(with_driver(dra_facts(34, ["v1"])), holding(probe_outcome(), 127))
    assert result["status"] == PARTIAL
    names = {f["name"]: f for f in result["findings"]}
    assert names["claim from a ResourceClaimTemplate allocates and the workload runs"]["passed"] is False
    assert "listing exited 127" in names["claim from a ResourceClaimTemplate allocates and the workload runs"]["detail"]
    assert names["CEL selector on a device attribute allocates"]["passed"] is False


def test_unschedulable_window_must_be_observed_in_full():
    outcome = probe_outcome()
    outcome["cel_none"]["observed_seconds"] = 12.5
    result = dra.judge(with_driver(dra_facts(34, ["v1"])), outcome)
    assert result["status"] == PARTIAL


def test_v1_not_all_listable_is_partial():
    facts = dra_facts(34, ["v1"])
    facts["dra"]["resources"]["resourceslices"] = {"served": False, "listable": False, "count": None, "error": ""}
    result = dra.judge(facts)
    assert result["status"] == PARTIAL
    assert [f["passed"] for f in result["findings"] if f["name"] == "resourceslices listable"] == [False]


def test_v136_is_informational():
    result = dra.judge(dra_facts(36, ["v1"]))
    assert "not part of the 1.36 checklist" in result["notes"]


def test_skipped_probe_is_reported():
    outcome = {"plan": {"skipped": "no DRA driver publishes devices in ResourceSlices, so no claim can be allocated"}}
    result = dra.judge(dra_facts(34, ["v1"]), outcome)
    assert [f["detail"] for f in result["findings"] if f["name"] == "allocation probes"][0].startswith("skipped: no DRA")


def test_evidence_holds_versions_resources_and_slices():
    result = dra.judge(with_driver(dra_facts(34, ["v1"])), probe_outcome())
    titles = [e["title"] for e in result["evidence"]]
    assert titles[0].startswith("resource.k8s.io versions served")
    assert "DRA resources in resource.k8s.io/v1" in titles
    assert any(t.startswith("ResourceSlices (first 1 of 1)") for t in titles)
    assert any(t.startswith("probe claim allocation") for t in titles)
