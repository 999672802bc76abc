"""ai_service_metrics: which Prometheus selects a new workload's monitor (the operator's selector semantics, the
kube-prometheus-stack release-label trap), reading targets and query results, and the verdict rules."""
from __future__ import annotations

import copy

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import ai_service_metrics as asm
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, validate_result)

PROBE_NS_LABELS = {"app.kubernetes.io/managed-by": "k8s-ai-conformance", "k8s-ai-conformance/check": "ai-service-metrics"}
# kube-prometheus-stack's Prometheus spec: chart defaults (release label) and the prometheus role's (select all)
CHART_DEFAULT = {"serviceMonitorSelector": {"matchLabels": {"release": "kube-prometheus-stack"}},
                 "serviceMonitorNamespaceSelector": {}}
SELECT_ALL = {"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}


def prom(spec, namespace="monitoring", name="kube-prometheus-stack-prometheus"):
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


def fact(spec, ready=True, probe_owned=False, namespace="monitoring", name="kube-prometheus-stack-prometheus"):
    return {"namespace": namespace, "name": name, "spec": spec, "ready_pods": ["prometheus-%s-0" % name] if ready else [],
            "probe_owned": probe_owned, "port": 9090}


def facts(*proms, operator=True, alternatives=()):
    return {"operator": operator, "alternatives": list(alternatives), "prometheuses": list(proms), "servicemonitors": 1,
            "podmonitors": 0, "annotated": [], "minor": 33}


# --------------------------------------------------------------------------------------------- selection
def test_select_all_needs_no_labels():
    assert asm.plan_monitor_labels(prom(SELECT_ALL), PROBE_NS_LABELS) == ({}, None)


def test_release_label_trap_is_read_from_the_selector():
    labels, why = asm.plan_monitor_labels(prom(CHART_DEFAULT), PROBE_NS_LABELS)
    assert (labels, why) == ({"release": "kube-prometheus-stack"}, None)
    assert "labelled" in asm.how_to_be_selected(prom(CHART_DEFAULT))
    assert "release" in asm.how_to_be_selected(prom(CHART_DEFAULT))


def test_nil_selector_selects_nothing():
    labels, why = asm.plan_monitor_labels(prom({"serviceMonitorNamespaceSelector": {}}), PROBE_NS_LABELS)
    assert labels is None and "selects no ServiceMonitor" in why


def test_nil_namespace_selector_means_own_namespace_only():
    labels, why = asm.plan_monitor_labels(prom({"serviceMonitorSelector": {}}), PROBE_NS_LABELS)
    assert labels is None and "its own namespace monitoring" in why


def test_namespace_selector_the_probe_namespace_lacks():
    spec = {"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {"matchLabels": {"monitoring": "on"}}}
    labels, why = asm.plan_monitor_labels(prom(spec), PROBE_NS_LABELS)
    assert labels is None and '"monitoring": "on"' in why


def test_expressions_are_satisfied_or_refused():
    spec = {"serviceMonitorSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["ml", "ops"]}]},
            "serviceMonitorNamespaceSelector": {}}
    assert asm.plan_monitor_labels(prom(spec), PROBE_NS_LABELS)[0] == {"team": "ml"}
    spec["serviceMonitorSelector"]["matchExpressions"].append({"key": "team", "operator": "NotIn", "values": ["ml"]})
    labels, why = asm.plan_monitor_labels(prom(spec), PROBE_NS_LABELS)
    assert labels is None and "no labels satisfy" in why


def test_probe_owned_and_not_ready_prometheus_never_chosen():
    chosen, labels, reasons = asm.choose_prometheus(
        facts(fact(SELECT_ALL, probe_owned=True, namespace="aic-x-1"), fact(SELECT_ALL, ready=False)), PROBE_NS_LABELS)
    assert chosen is None and labels is None
    assert any("started by a probe" in r for r in reasons) and any("no ready pod" in r for r in reasons)


def test_named_prometheus_is_honoured():
    one, two = fact(SELECT_ALL, name="a"), fact(CHART_DEFAULT, name="b")
    chosen, labels, _reasons = asm.choose_prometheus(facts(one, two), PROBE_NS_LABELS, wanted="monitoring/b")
    assert chosen is two and labels == {"release": "kube-prometheus-stack"}
    chosen, _labels, reasons = asm.choose_prometheus(facts(one), PROBE_NS_LABELS, wanted="nope")
    assert chosen is None and "no Prometheus named nope exists" in reasons


# --------------------------------------------------------------------------------------------- reading Prometheus
TARGETS = {"activeTargets": [
    {"labels": {"namespace": "gpu-operator", "job": "nvidia-dcgm-exporter"}, "health": "up"},
    {"labels": {"namespace": "aic-ai-service-metrics-abcde", "job": "svc"}, "health": "down", "lastError": "connection refused"},
]}


def test_probe_target_by_namespace():
    assert asm.probe_target(TARGETS, "aic-ai-service-metrics-abcde")["health"] == "down"
    assert asm.probe_target(TARGETS, "elsewhere") is None
    assert asm.probe_target(None, "x") is None


def test_counter_value_from_query_data():
    assert asm.counter_value({"resultType": "vector", "result": [{"metric": {}, "value": [1.5, "12"]}]}) == 12.0
    assert asm.counter_value({"resultType": "vector", "result": []}) is None
    assert asm.counter_value(None) is None


# --------------------------------------------------------------------------------------------- verdicts
def probe_out(up=True, counter=10.0, ok=10, skipped=None):
    out = {"plan": {"requests": 10, "prometheus": "monitoring/kube-prometheus-stack-prometheus", "reasons": []},
           "requests_sent": 10, "requests_ok": ok, "counter": counter, "timed_out": "", "cleanup": "", "queries": ["q"],
           "monitor": {"metadata": {"labels": {"release": "kube-prometheus-stack"}}},
           "target": {"health": "up" if up else "down", "labels": {}} if up is not None else None}
    if skipped:
        out["plan"]["skipped"] = skipped
    return out


def test_implemented_needs_target_up_and_counter_at_least_k():
    result = validate_result(asm.judge(facts(fact(CHART_DEFAULT)), probe_out()))
    assert result["status"] == IMPLEMENTED
    assert "release" in result["notes"]          # the label workloads need is said


def test_counter_below_requests_is_partial():
    assert asm.judge(facts(fact(SELECT_ALL)), probe_out(counter=9.0))["status"] == PARTIAL
    assert asm.judge(facts(fact(SELECT_ALL)), probe_out(counter=None))["status"] == PARTIAL


def test_no_requests_answered_is_never_implemented():
    assert asm.judge(facts(fact(SELECT_ALL)), probe_out(ok=0, counter=0.0))["status"] == PARTIAL


def test_target_missing_or_down_is_not_implemented():
    assert asm.judge(facts(fact(SELECT_ALL)), probe_out(up=None, counter=None))["status"] == NOT_IMPLEMENTED
    assert asm.judge(facts(fact(SELECT_ALL)), probe_out(up=False, counter=None))["status"] == NOT_IMPLEMENTED


def test_no_selecting_prometheus_is_not_implemented_with_the_reason():
    out = probe_out(skipped="no platform Prometheus would select a ServiceMonitor in a new namespace")
    out["plan"]["reasons"] = ["Prometheus monitoring/k has no serviceMonitorSelector, so it selects no ServiceMonitor at all"]
    result = asm.judge(facts(fact({})), out)
    assert result["status"] == NOT_IMPLEMENTED and "serviceMonitorSelector" in result["notes"]


def test_passive_is_at_most_partial_and_says_how_workloads_are_selected():
    result = asm.judge(facts(fact(CHART_DEFAULT)), passive_reason="mode=passive: only read-only checks ran")
    assert result["status"] == PARTIAL and result["mode"] == "passive" and "release" in result["notes"]


def test_only_probe_owned_prometheus_counts_as_none():
    result = asm.judge(facts(fact(SELECT_ALL, probe_owned=True, namespace="aic-x-1")), probe_out())
    assert result["status"] == NOT_IMPLEMENTED


def test_no_stack_and_alternatives():
    assert asm.judge(facts(operator=False), None, "mode=passive")["status"] == NOT_IMPLEMENTED
    alt = asm.judge(facts(operator=False, alternatives=["VictoriaMetrics operator (VMServiceScrape / VMPodScrape)"]), None, "p")
    assert alt["status"] == PARTIAL and "VictoriaMetrics" in alt["notes"]


def test_prometheus_without_ready_pod_is_not_implemented():
    assert asm.judge(facts(fact(SELECT_ALL, ready=False)), probe_out())["status"] == NOT_IMPLEMENTED


def test_the_note_says_why_the_prometheus_pods_are_not_ready():
    stuck = dict(fact(SELECT_ALL, ready=False), not_ready=[
        "prometheus-k-0 (phase=Running, prometheus waiting: CrashLoopBackOff back-off 5m0s)"])
    gone = fact(SELECT_ALL, ready=False, namespace="other", name="scaled-down")
    notes = asm.judge(facts(stuck, gone), probe_out())["notes"]
    assert "monitoring/kube-prometheus-stack-prometheus: prometheus-k-0 (phase=Running, prometheus waiting: " \
        "CrashLoopBackOff" in notes
    assert "other/scaled-down has no pods" in notes


def test_judge_does_not_mutate_its_inputs():
    given, out = facts(fact(CHART_DEFAULT)), probe_out()
    before = copy.deepcopy((given, out))
    asm.judge(given, out)
    assert (given, out) == before
