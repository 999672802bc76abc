"""secure_accelerator_access: reading probe output and the verdict rules, over output from real GPU pods."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils import secure_accelerator_access as sa
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

import accel_fixtures as fx

NVIDIA = acc.vendor("nvidia")
MISSING = ("ls: cannot access '/dev/nvidia*': No such file or directory\nRESULT: ACCELERATOR_MISSING\n"
           "sh: 1: nvidia-smi: not found\nLISTING_EXIT: 127\n")


def granted_output(pod):
    """What our probe script prints in the pod gardener ran on a T4 node: its real device nodes and
    nvidia-smi line, in our script's order."""
    log = fx.gardener_pod_logs("gardener-v1.33-secure_accelerator_access.log")[pod]
    devices = [line for line in log.splitlines() if line.startswith("/dev/nvidia")]
    listing = [line for line in log.splitlines() if line.startswith("GPU ")]
    return "\n".join(devices + ["RESULT: ACCELERATOR_FOUND"] + listing + ["LISTING_EXIT: 0"]) + "\n"


POD_A = "gpu-test-deployment-6ff98584b9-hksjw"
POD_B = "gpu-test-deployment-6ff98584b9-tzsrt"


def check(pod, container, expected, log, node="gpu-0", ran=True):
    return {"pod": pod, "container": container, "expected": expected, "node": node, "state": "phase=Succeeded",
            "ran": ran, "log": log, "seen": pr.parse_probe_output(NVIDIA, log)}


def test_probe_output_of_a_granted_t4():
    seen = pr.parse_probe_output(NVIDIA, granted_output(POD_A))
    assert seen["result"] == pr.RESULT_FOUND
    assert seen["devices"] == ["/dev/nvidia0"]
    assert seen["listed"] == [{"index": "0", "name": "Tesla T4", "uuid": "GPU-960adb66-4b24-7335-74f2-f334f2220a84"}]
    assert (seen["listing_exit"], seen["visible"]) == (0, 1)


def test_probe_output_without_devices():
    seen = pr.parse_probe_output(NVIDIA, MISSING)
    assert (seen["result"], seen["devices"], seen["listed"], seen["listing_exit"], seen["visible"]) == (
        pr.RESULT_MISSING, [], [], 127, 0)


def test_gardener_negative_script_output_is_not_ours_so_it_is_inconclusive():
    # gardener printed "No nvidia devices found" without the upstream RESULT line: no conclusion from it.
    text = "Checking for GPU device files in /dev...\nContents of /dev:\nNo nvidia devices found\n"
    assert sa.evaluate_check(check("aic-none", "probe", 0, text)) == "inconclusive"


@pytest.mark.parametrize("expected, log, outcome", [
    (0, MISSING, "pass"),
    (0, granted_output(POD_A), "leak"),                       # a device without a request
    (0, "RESULT: ACCELERATOR_FOUND\nLISTING_EXIT: 127\n", "leak"),   # only nvidiactl & co, still FOUND
    (1, granted_output(POD_A), "pass"),
    (1, MISSING, "inconclusive"),                             # granted but sees nothing: not shown
    (1, granted_output(POD_A) + "GPU 1: Tesla T4 (UUID: GPU-91690876-62fb-2876-fd2e-1cb3bd27c4f8)\n", "leak"),
])
def test_each_check(expected, log, outcome):
    assert sa.evaluate_check(check("p", "c", expected, log)) == outcome


def test_pod_that_never_ran_is_inconclusive():
    assert sa.evaluate_check(check("p", "c", 0, "", ran=False)) == "inconclusive"


def t3(log_a, log_b):
    return {"id": "T3", "mechanism": "device-plugin", "kind": "distinct",
            "checks": [check("aic-dp-same-a", "probe", 1, log_a), check("aic-dp-same-b", "probe", 1, log_b)]}


def test_same_node_pods_with_gardeners_two_uuids_pass():
    outcome, detail = sa.evaluate_test(t3(granted_output(POD_A), granted_output(POD_B)))
    assert outcome == "pass"
    assert "GPU-960adb66" in detail and "GPU-91690876" in detail


def test_same_node_pods_sharing_one_gpu_leak():
    outcome, detail = sa.evaluate_test(t3(granted_output(POD_A), granted_output(POD_A)))
    assert outcome == "leak"
    assert "same accelerator GPU-960adb66-4b24-7335-74f2-f334f2220a84" in detail


# --------------------------------------------------------------------------------------------- verdicts
def facts(nodes=1, device_plugin=True, dra_ready=False, gpu_operator=None, other=None):
    summaries = [{"name": "gpu-%d" % i, "product": "Tesla-T4", "physical": 2, "allocatable": 2 if device_plugin else None,
                  "unschedulable": False, "shared": False} for i in range(nodes)]
    return {"minor": 33, "vendor": "nvidia", "vendor_reason": "set", "nodes": summaries, "other": other or {},
            "device_plugin": device_plugin and bool(nodes),
            "dra": {"version": "v1beta2" if dra_ready else None, "driver": "gpu.nvidia.com" if dra_ready else None,
                    "device_class": "gpu.nvidia.com" if dra_ready else None, "ready": dra_ready, "devices_by_node": {}},
            "runtime_class": "nvidia", "gpu_operator": gpu_operator}


def passing_tests(mechanism="device-plugin", with_t3=True):
    tests = [
        {"id": "T1a", "mechanism": "none", "kind": "negative", "checks": [check("aic-none", "probe", 0, MISSING)]},
        {"id": "T1b", "mechanism": "none", "kind": "negative", "checks": [check("aic-none-env", "probe", 0, MISSING)]},
        {"id": "T2", "mechanism": mechanism, "kind": "positive", "checks": [check("aic-dp-one", "probe", 1, granted_output(POD_A))]},
        {"id": "T4", "mechanism": mechanism, "kind": "multi-container", "checks": [
            check("aic-dp-multi", "with", 1, granted_output(POD_B)), check("aic-dp-multi", "without", 0, MISSING)]},
    ]
    if with_t3:
        tests.append(t3(granted_output(POD_A), granted_output(POD_B)))
    return tests


def outcome(tests, shared=False):
    return {"plan": {"target": "gpu-0", "same_node": "gpu-0", "shared": shared}, "namespace": "aic-secure-x",
            "swept": [], "cleanup": "", "timed_out": "", "tests": tests}


def test_all_probes_pass_is_implemented():
    result = sa.judge(facts(), outcome(passing_tests()))
    validate_result(result)
    assert result["status"] == IMPLEMENTED
    assert all(f["passed"] for f in result["findings"] if f["name"].startswith("T"))
    assert any(e["title"].startswith("probe pods") for e in result["evidence"])


def test_no_node_with_two_free_gpus_skips_t3_with_a_note():
    result = sa.judge(facts(), outcome(passing_tests(with_t3=False)))
    assert result["status"] == IMPLEMENTED
    assert "no node has two free accelerators" in result["notes"]
    assert [f["passed"] for f in result["findings"] if f["name"].startswith("T3")] == [None]


@pytest.mark.parametrize("test_id, container, log", [
    ("T1a", "probe", granted_output(POD_A)),
    ("T1b", "probe", granted_output(POD_A)),
    ("T4", "without", granted_output(POD_B)),
])
def test_any_device_visible_without_a_request_is_not_implemented(test_id, container, log):
    tests = passing_tests()
    for test in tests:
        for item in test["checks"]:
            if test["id"] == test_id and item["container"] == container:
                item.update(check(item["pod"], container, item["expected"], log))
    result = sa.judge(facts(), outcome(tests))
    assert result["status"] == NOT_IMPLEMENTED
    assert test_id in result["notes"]
    assert [f["detail"].startswith("LEAK") for f in result["findings"] if f["name"].startswith(test_id)] == [True]


def test_probe_that_did_not_finish_is_partial():
    tests = passing_tests()
    tests[2]["checks"][0] = check("aic-dp-one", "probe", 1, "", ran=False)
    out = outcome(tests)
    out["timed_out"] = "timed out after 5s waiting for the isolation probe pods to finish"
    result = sa.judge(facts(), out)
    assert result["status"] == PARTIAL
    assert "T2" in result["notes"] and "did not finish" in result["notes"]


def test_gpus_without_device_plugin_or_dra_are_not_mediated():
    tests = [t for t in passing_tests() if t["mechanism"] == "none"]
    result = sa.judge(facts(device_plugin=False), outcome(tests))
    assert result["status"] == NOT_IMPLEMENTED
    assert "neither a device plugin resource nor a DRA driver" in result["notes"]


def test_passive_is_at_most_partial():
    result = sa.judge(facts(), passive_reason="mode=passive: only read-only checks ran")
    assert result["status"] == PARTIAL
    assert "Run in active mode" in result["notes"]


def test_passive_sees_the_envvar_switch_leak():
    operator = {"found": True, "name": "cluster-policy", "envvar_when_unprivileged": "true", "cdi_enabled": False}
    result = sa.judge(facts(gpu_operator=operator), passive_reason="mode=passive")
    assert result["status"] == NOT_IMPLEMENTED
    assert sa.ENVVAR_SWITCH + "=false" in result["notes"]
    # and active probes that pass cannot outweigh the switch
    active = sa.judge(facts(gpu_operator=operator), outcome(passing_tests()))
    assert active["status"] == NOT_IMPLEMENTED


def test_no_accelerators_is_na_with_a_justification():
    result = sa.judge(facts(nodes=0, device_plugin=False))
    validate_result(result)
    assert result["status"] == NOT_APPLICABLE
    assert "no accelerator access to isolate" in result["notes"]


def test_unknown_accelerators_need_manual_verification():
    result = sa.judge(facts(nodes=0, device_plugin=False, other={"trn-0": {"aws.amazon.com/neuron": 16}}))
    assert result["status"] == PARTIAL
    assert "aws.amazon.com/neuron" in result["notes"]


def test_time_sliced_nodes_skip_t3_for_the_right_reason():
    result = sa.judge(facts(), outcome(passing_tests(with_t3=False), shared=True))
    assert "time-slicing" in result["notes"]


def test_probe_pods_are_unprivileged_tolerate_and_pin():
    opts = pr.CheckOptions({"node_selector": {"pool": "gpu"}})
    pod = pr.pod_manifest("aic-none", [pr.container("probe", "ubuntu:22.04", pr.probe_script(NVIDIA))], opts, NVIDIA,
                          node="gpu-0")
    spec = pod["spec"]
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"pool": "gpu"} and "nodeName" not in spec
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchFields"] == [{"key": "metadata.name", "operator": "In", "values": ["gpu-0"]}]
    assert spec["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False, "privileged": False}
    assert "ls /dev/nvidia*" in spec["containers"][0]["command"][2]
    custom = pr.CheckOptions({"tolerations": [{"key": "dedicated", "operator": "Exists"}]})
    assert pr.pod_manifest("x", [], custom, NVIDIA)["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]


def test_pod_requests_count_like_the_scheduler():
    pod = {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}},
                                   {"resources": {"requests": {"nvidia.com/gpu": "2"}}}],
                    "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "4"}}}]}}
    assert pr.pod_requests(pod, ("nvidia.com/gpu",)) == 4
    smaller = copy.deepcopy(pod)
    smaller["spec"]["initContainers"] = []
    assert pr.pod_requests(smaller, ("nvidia.com/gpu",)) == 3
