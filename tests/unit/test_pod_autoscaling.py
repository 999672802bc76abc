"""pod_autoscaling: reading APIServices and the custom metrics listing, choosing the accelerator metric, and
the verdict rules (custom-metric scale up and down -> Implemented; CPU/memory only or up only -> Partially)."""
from __future__ import annotations

import copy

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import pod_autoscaling as pa
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

# What prometheus-adapter 0.12 lists with the role's rule and the chart's default rules (DCGM series scraped
# without honorLabels are listed too, attributed to the exporter's own pods).
CUSTOM_DISCOVERY = {"kind": "APIResourceList", "groupVersion": "custom.metrics.k8s.io/v1beta1", "resources": [
    {"name": "namespaces/pod_gpu_utilization", "namespaced": False, "kind": "MetricValueList", "verbs": ["get"]},
    {"name": "pods/pod_gpu_utilization", "namespaced": True, "kind": "MetricValueList", "verbs": ["get"]},
    {"name": "pods/DCGM_FI_DEV_GPU_UTIL", "namespaced": True, "kind": "MetricValueList", "verbs": ["get"]},
    {"name": "pods/scrape_duration_seconds", "namespaced": True, "kind": "MetricValueList", "verbs": ["get"]},
]}


def api(available, name="x", detail=""):
    return {"name": name, "available": available, "detail": detail}


def facts(resource=True, custom=True, external=False, v2=True, accelerators=16, metrics=("pod_gpu_utilization",)):
    return {"v2": v2, "apis": {"resource": api(resource, "v1beta1.metrics.k8s.io"),
                               "custom": api(custom, "v1beta1.custom.metrics.k8s.io"),
                               "external": api(external, "v1beta1.external.metrics.k8s.io")},
            "pod_metrics": list(metrics), "external_metrics": [], "hpas": [], "accelerators": accelerators,
            "free": {"gpu-0": 8, "gpu-1": 8}, "vendor": "nvidia"}


def outcome(up=True, down=True, metric="pod_gpu_utilization"):
    return {"metric": metric, "metric_values": [{"value": "97"}] if metric else None, "scaled_up": up, "scaled_down": down,
            "timeline": ["  1.0s load pod Running"] + (["  4.0s scaled up: 2 pods Running"] if up else []) +
            (["  9.0s scaled down: 1 replica"] if down else []), "events": ["Normal SuccessfulRescale: New size: 2"],
            "hpa": {"status": {"currentReplicas": 1}}, "timed_out": "", "cleanup": "", "plan": {}}


# --------------------------------------------------------------------------------------------- reading
def test_apiservice_state_reads_available_condition():
    obj = {"status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints",
                                      "message": "endpoints for service/prometheus-adapter in \"monitoring\" have no addresses"}]}}
    available, detail = pa.apiservice_state(obj)
    assert not available and "MissingEndpoints" in detail
    assert pa.apiservice_state(None) == (False, "not registered")
    assert pa.apiservice_state({"status": {"conditions": [{"type": "Available", "status": "True"}]}})[0]


def test_pod_metrics_and_accelerator_candidates():
    names = pa.pod_metrics(CUSTOM_DISCOVERY)
    assert names == ["DCGM_FI_DEV_GPU_UTIL", "pod_gpu_utilization", "scrape_duration_seconds"]
    assert pa.accelerator_metrics(names) == ["DCGM_FI_DEV_GPU_UTIL", "pod_gpu_utilization"]


def test_choose_metric_prefers_the_relabelled_recording_rule():
    assert pa.choose_metric(["DCGM_FI_DEV_GPU_UTIL", "pod_gpu_utilization"]) == "pod_gpu_utilization"
    assert pa.choose_metric(["DCGM_FI_DEV_GPU_UTIL", "up"]) == "DCGM_FI_DEV_GPU_UTIL"
    assert pa.choose_metric(["neuroncore_utilization_ratio", "neuron_memory_used"]) == "neuroncore_utilization_ratio"
    assert pa.choose_metric(["up", "http_requests"]) is None
    assert pa.choose_metric(["pod_gpu_utilization"], wanted="my_metric") is None
    assert pa.choose_metric(["my_metric"], wanted="my_metric") == "my_metric"


# --------------------------------------------------------------------------------------------- verdicts
def test_scaled_up_and_down_on_custom_metric_is_implemented():
    result = validate_result(pa.judge(facts(), outcome()))
    assert result["status"] == IMPLEMENTED and "pod_gpu_utilization" in result["summary"]


def test_up_only_is_partial():
    assert pa.judge(facts(), outcome(down=False))["status"] == PARTIAL


def test_no_metric_for_the_workload_with_metrics_server_is_partial_and_explains_exported_pod():
    result = pa.judge(facts(), outcome(up=False, down=False, metric=None))
    assert result["status"] == PARTIAL and "exported_pod" in result["notes"] and "label_replace" in result["notes"]


def test_no_metric_without_metrics_server_is_not_implemented():
    assert pa.judge(facts(resource=False), outcome(up=False, down=False, metric=None))["status"] == NOT_IMPLEMENTED


def test_metric_but_no_scaling_is_never_implemented():
    assert pa.judge(facts(), outcome(up=False, down=False))["status"] == PARTIAL
    assert pa.judge(facts(resource=False), outcome(up=False, down=False))["status"] == NOT_IMPLEMENTED


def test_cpu_memory_only_is_partial():
    result = pa.judge(facts(custom=False), {})
    assert result["status"] == PARTIAL and "CPU/memory" in result["summary"]


def test_no_metrics_api_is_not_implemented():
    assert pa.judge(facts(resource=False, custom=False), {})["status"] == NOT_IMPLEMENTED


def test_autoscaling_v2_missing_is_not_implemented():
    assert pa.judge(facts(v2=False), outcome())["status"] == NOT_IMPLEMENTED


def test_no_accelerators_is_na_with_justification():
    result = pa.judge(facts(accelerators=0), {})
    assert result["status"] == NOT_APPLICABLE and "no accelerators" in result["summary"] and result["notes"]


def test_external_only_is_partial_until_verified():
    result = pa.judge(facts(custom=False, external=True), {"skipped": "custom.metrics.k8s.io is not Available"})
    assert result["status"] == PARTIAL and "external" in result["notes"]


def test_passive_is_partial_and_flags_raw_dcgm_metrics():
    result = pa.judge(facts(metrics=("DCGM_FI_DEV_GPU_UTIL",)), passive_reason="mode=passive: read only")
    assert result["status"] == PARTIAL and result["mode"] == "passive" and "exported_pod" in result["notes"]


def test_hpa_manifest_is_autoscaling_v2_pods_average_value():
    class Opts(object):
        @staticmethod
        def get(key, default=None):
            return {"target_value": "50", "scale_down_window": 60}.get(key, default)
    hpa = pa.hpa_manifest("ns", "pod_gpu_utilization", Opts())
    assert hpa["apiVersion"] == "autoscaling/v2" and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)
    pods = {"metric": {"name": "pod_gpu_utilization"}, "target": {"type": "AverageValue", "averageValue": "50"}}
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": pods}]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60


def test_judge_does_not_mutate_inputs():
    given, out = facts(), outcome()
    before = copy.deepcopy((given, out))
    pa.judge(given, out)
    assert (given, out) == before
