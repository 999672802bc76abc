"""accelerator_metrics: per-accelerator analysis of real exporter scrapes and the verdict rules."""
from __future__ import annotations

import re

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerator_metrics as am
from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

import accel_fixtures as fx

NVIDIA = acc.vendor("nvidia")
UPCLOUD = fx.exposition_from_markdown("upcloud-v1.35-accelerator-metrics.md")
UPCLOUD_UUID = "GPU-5b4e07f6-3a86-4340-039d-25f2a83cdc43"


def analysis_of(text, vendor="nvidia"):
    return am.analyze_scrape(acc.vendor(vendor), promtext.parse(text))


def without(text, metric):
    return "\n".join(line for line in text.splitlines() if metric not in line) + "\n"


def test_upcloud_l40s_has_core_and_optional_metrics():
    analysis = analysis_of(UPCLOUD)
    kinds = analysis["kinds"]
    assert kinds["utilization"]["metric"] == "DCGM_FI_DEV_GPU_UTIL"
    assert kinds["utilization"]["also"] == ["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]
    assert kinds["memory_used"]["by_uuid"] == {UPCLOUD_UUID: 0}
    assert kinds["memory_free"]["by_uuid"] == {UPCLOUD_UUID: 45459}
    assert (kinds["temperature"]["metric"], kinds["power"]["metric"], kinds["energy"]["metric"]) == (
        "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
    assert kinds["interconnect"]["metric"] == "DCGM_FI_PROF_PCIE_TX_BYTES"
    assert kinds["energy"]["otel"] == "hw.energy"
    assert analysis["accelerators"] == {UPCLOUD_UUID: {"index": "0", "model": "NVIDIA L40S", "pods": []}}
    assert am.node_verdict(analysis, 1) == (True, [])


def test_one_gpu_scrape_cannot_cover_a_two_gpu_node():
    ok, problems = am.node_verdict(analysis_of(UPCLOUD), 2)
    assert not ok
    assert problems == ["utilisation (DCGM_FI_DEV_GPU_UTIL) for 1 of 2 accelerators",
                        "memory usage (DCGM_FI_DEV_FB_USED) for 1 of 2 accelerators"]


def test_profiling_ratio_is_read_as_percent_when_gpu_util_is_absent():
    ericsson = fx.exposition_from_markdown("ericsson-v1.35-accelerator-metrics.md")
    analysis = analysis_of(without(ericsson, "DCGM_FI_DEV_GPU_UTIL"))
    item = analysis["kinds"]["utilization"]
    assert item["metric"] == "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    assert round(list(item["by_uuid"].values())[0], 1) == 15.6
    assert analysis_of(ericsson)["kinds"]["utilization"]["by_uuid"] == {"GPU-6d5c0ac5-74d7-3130-46f1-e93ed57f469a": 91}


def test_exporter_without_memory_usage():
    ok, problems = am.node_verdict(analysis_of(without(UPCLOUD, "DCGM_FI_DEV_FB_USED")), 1)
    assert not ok and problems == ["no memory usage metric"]


def test_aggregate_only_series_do_not_count_per_accelerator():
    stripped = re.sub(r'UUID="[^"]*",?', "", UPCLOUD)
    ok, problems = am.node_verdict(analysis_of(stripped), 1)
    assert not ok
    assert problems[0] == "utilisation (DCGM_FI_DEV_GPU_UTIL) only as an aggregate without accelerator UUID labels"


def test_amd_mini_exporter_has_utilisation_but_no_memory_usage():
    analysis = analysis_of(fx.read("amd-metrics_mini.txt"), "amd")
    assert analysis["kinds"]["utilization"]["by_uuid"] == {"6699c0a8-4200-4242-037f-f97e6cae0f09": 0}
    assert analysis["kinds"]["memory_total"]["metric"] == "gpu_total_memory"
    assert am.node_verdict(analysis, 1) == (False, ["no memory usage metric"])


def test_gardeners_sample_lines_lack_the_core_metrics():
    # gardener showed three sample lines (clocks, memory temperature) as per-GPU proof: not utilisation or memory.
    lines = "\n".join(line for line in fx.read("gardener-v1.33-accelerator_metrics.log").splitlines()
                      if line.startswith("DCGM_FI_DEV_") and "{" in line)
    ok, problems = am.node_verdict(analysis_of(lines), 1)
    assert not ok and problems == ["no utilisation metric", "no memory usage metric"]


def test_pod_attribution_labels_are_collected():
    text = UPCLOUD.replace('DCGM_FI_DRIVER_VERSION="595.58.03"}',
                           'DCGM_FI_DRIVER_VERSION="595.58.03",pod="aic-load",namespace="aic-x",container="load"}')
    analysis = analysis_of(text)
    assert analysis["accelerators"][UPCLOUD_UUID]["pods"] == ["aic-load"]
    assert am._probe_uuid(analysis, []) == (UPCLOUD_UUID, "pod attribution label")  # pylint: disable=protected-access


# --------------------------------------------------------------------------------------------- verdicts
def node_scrape(text=UPCLOUD, error=""):
    return {"pod": "nvidia-dcgm-exporter-x", "namespace": "gpu-operator", "port": 9400, "status": 200 if not error else 503,
            "error": error, "analysis": None if error else analysis_of(text), "raw_excerpt": text[:200]}


def facts(nodes=None, pods=True, other=None):
    nodes = {"gpu-0": {"expected": 1, "scrape": node_scrape()}} if nodes is None else nodes
    return {"vendor": "nvidia", "vendor_reason": "set", "expected": {n: v["expected"] for n, v in nodes.items()},
            "other": other or {}, "selectors": ["app=nvidia-dcgm-exporter"], "unscraped": 0,
            "exporter_pods": [{"name": "nvidia-dcgm-exporter-x", "namespace": "gpu-operator", "node": n, "ready": True}
                              for n in nodes] if pods else [],
            "nodes": nodes, "device_plugin_nodes": list(nodes), "dra": {"ready": False}}


def load(before=0, during=87, uuid=UPCLOUD_UUID):
    return {"node": "gpu-0", "mechanism": "device-plugin", "namespace": "aic-accelerator-metrics-x", "cleanup": "",
            "timed_out": "", "uuid": uuid, "identified_by": "pod attribution label", "listed": [],
            "before": {"utilization_percent": before, "memory_used": 0},
            "during": {"utilization_percent": during, "memory_used": 4096}, "rise": during - before}


def test_per_gpu_metrics_reacting_to_load_is_implemented():
    result = am.judge(facts(), load())
    validate_result(result)
    assert result["status"] == IMPLEMENTED
    findings = {f["name"]: f for f in result["findings"]}
    assert findings["metrics react to load"]["passed"] is True
    assert findings["optional power metrics"]["detail"] == "DCGM_FI_DEV_POWER_USAGE -> hw.power"
    tables = [e["content"] for e in result["evidence"] if e["title"] == "per-accelerator values"]
    assert UPCLOUD_UUID in tables[0] and "NVIDIA L40S" in tables[0]


def test_passive_run_cannot_show_the_reaction_to_load():
    result = am.judge(facts(), passive_reason="mode=passive: only read-only checks ran")
    assert result["status"] == PARTIAL
    assert "run in active mode" in result["notes"]


def test_no_rise_under_load_is_partial():
    result = am.judge(facts(), load(during=3))
    assert result["status"] == PARTIAL
    assert "did not rise" in result["notes"]


def test_no_exporter_is_not_implemented():
    result = am.judge(facts(pods=False))
    assert result["status"] == NOT_IMPLEMENTED
    assert "exporter_selector" in result["notes"]


def test_exporter_that_serves_garbage_is_not_implemented():
    error = "malformed metrics exposition: not Prometheus text exposition format: line 1 '<html>'"
    nodes = {"gpu-0": {"expected": 1, "scrape": node_scrape(error=error)}}
    result = am.judge(facts(nodes), load())
    assert result["status"] == NOT_IMPLEMENTED
    assert "malformed" in result["notes"]


def test_exporter_missing_on_one_of_two_nodes_is_partial():
    nodes = {"gpu-0": {"expected": 1, "scrape": node_scrape()}, "gpu-1": {"expected": 1, "scrape": None}}
    result = am.judge(facts(nodes), load())
    assert result["status"] == PARTIAL
    assert "gpu-1: no exporter pod on the node" in result["notes"]


def test_memory_missing_is_partial():
    nodes = {"gpu-0": {"expected": 1, "scrape": node_scrape(without(UPCLOUD, "DCGM_FI_DEV_FB_USED"))}}
    result = am.judge(facts(nodes), load())
    assert result["status"] == PARTIAL
    assert "no memory usage metric" in result["notes"]


def test_no_accelerators_is_na():
    result = am.judge(facts(nodes={}))
    validate_result(result)
    assert result["status"] == NOT_APPLICABLE
    assert "no accelerator metrics to expose" in result["notes"]


@pytest.mark.parametrize("probe_out, text", [
    ({"skipped": "no accelerator node with a scrapeable exporter to load"}, "scrapeable exporter"),
    (dict(load(), timed_out="timed out after 5s waiting for the load pod to start", pod_state="phase=Pending"),
     "did not start"),
])
def test_load_probe_that_could_not_run_is_partial(probe_out, text):
    result = am.judge(facts(), probe_out)
    assert result["status"] == PARTIAL
    assert text in result["notes"]


def test_summary_follows_the_verdict_it_explains():
    passive = am.judge(facts(), passive_reason="mode=passive")
    assert passive["summary"].endswith("reaction to load was not shown (read-only run)")
    # an earlier, more specific problem keeps its summary when the load part is also missing
    nodes = {"gpu-0": {"expected": 2, "scrape": node_scrape()}}
    partial = am.judge(facts(nodes), passive_reason="mode=passive")
    assert partial["summary"] == "not every accelerator node serves per-accelerator utilisation and memory metrics"
    assert "run in active mode" in partial["notes"]


def sampled(ready, desired):
    out = facts()
    out.update(exporter_pods_sampled=True,
               exporter_daemonsets=[{"name": "gpu-operator/nvidia-dcgm-exporter", "desired": desired, "ready": ready}])
    return out


def test_beyond_the_pod_sample_the_exporter_daemonset_stands_for_the_unscraped_nodes():
    whole = am.judge(sampled(ready=2500, desired=2500), load())
    assert whole["status"] == IMPLEMENTED
    assert "a sample of them was read" in whole["notes"]
    # exporters missing on nodes no scrape looked at: the DaemonSet's counts give it away
    missing = am.judge(sampled(ready=2400, desired=2500), load())
    assert missing["status"] == PARTIAL
    finding = {f["name"]: f for f in missing["findings"]}[
        "exporter DaemonSet gpu-operator/nvidia-dcgm-exporter ready on every node it targets"]
    assert finding["passed"] is False and finding["detail"] == "2400 of 2500 pods ready"
    assert "2400 of 2500 exporter pods ready" in missing["notes"]


def exporter_pod(name, node, phase="Running", ready=True, waiting=None, restarts=0, unschedulable=False):
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name}, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "exporter", "ready": ready, "restartCount": restarts,
                                              "state": state}]}}


def test_exporter_pods_still_starting_are_told_from_steady_failures():
    expected = {"gpu-0": 8, "gpu-new": 2, "gpu-broken": 8, "gpu-full": 8}
    pods = [exporter_pod("ready", "gpu-0"),
            exporter_pod("creating", "gpu-new", phase="Pending", ready=False, waiting="ContainerCreating"),
            exporter_pod("crashing", "gpu-broken", ready=False, waiting="CrashLoopBackOff", restarts=4),
            exporter_pod("unschedulable", "gpu-full", phase="Pending", ready=False, unschedulable=True),
            exporter_pod("cpu-node", "cpu-0", phase="Pending", ready=False, waiting="ContainerCreating")]
    # only the pod on its way to Ready on an accelerator node is waited for
    assert am._starting(pods, expected) == ["creating"]
