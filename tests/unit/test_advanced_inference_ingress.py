"""advanced_inference_ingress: reading InferencePools and routes (upstream GAIE objects), the client and EPP log
parsers, the picks-vs-answers accounting and the verdict rules (statuses and 200s alone never make Implemented);
and the simulated endpoint picker's scheduling (tests/simcluster/apps/inference_extension.py)."""
from __future__ import annotations

import json
import os
import random

import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import advanced_inference_ingress as aii
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, validate_result)
from simcluster.apps import inference_extension as gaie

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "gaie")


def upstream(name, kind=None):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    return [d for d in docs if kind is None or d.get("kind") == kind]


def upstream_pool():
    pool = upstream("inferencepool-resources.yaml.txt", "InferencePool")[0]
    pool["metadata"].setdefault("namespace", "default")
    return pool


ALPHA_POOL = {"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
              "metadata": {"name": "old-pool", "namespace": "ml"},
              "spec": {"selector": {"app": "vllm"}, "targetPortNumber": 8000,
                       "extensionRef": {"name": "old-pool-epp", "portNumber": 9002, "failureMode": "FailOpen"}},
              "status": {"parent": [{"parentRef": {"name": "gw", "namespace": "ml"}, "conditions": [
                  {"type": "Accepted", "status": "True", "reason": "Accepted"},
                  {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"}]}]}}
PODS = {"aic-model-0": "10.244.1.7", "aic-model-1": "10.244.1.8", "aic-model-2": "10.244.1.9"}


# --------------------------------------------------------------------------------------------- readers
def test_pool_summary_reads_the_upstream_v1_pool():
    summary = aii.pool_summary(upstream_pool(), aii.GROUP_V1)
    assert summary["selector"] == {"app": "vllm-llama3-8b-instruct"}
    assert summary["target_ports"] == [8000]
    assert summary["endpoint_picker"] == {"name": "vllm-llama3-8b-instruct-epp", "kind": "Service", "port": 9002,
                                          "failureMode": "FailClose"}
    assert summary["parents"] == [] and summary["ready"] is False


def test_pool_summary_reads_v1alpha2_and_its_parent_status():
    summary = aii.pool_summary(ALPHA_POOL, aii.GROUP_X)
    assert summary["selector"] == {"app": "vllm"} and summary["target_ports"] == [8000]
    assert summary["endpoint_picker"]["port"] == 9002 and summary["endpoint_picker"]["failureMode"] == "FailOpen"
    assert summary["ready"] is True
    assert summary["parents"][0]["gateway"] == "ml/gw"


def test_parents_ready_needs_both_conditions_on_one_parent():
    accepted_only = [{"conditions": [{"type": "Accepted", "status": "True"},
                                     {"type": "ResolvedRefs", "status": "False", "reason": "InvalidExtensionRef"}]}]
    assert not aii.parents_ready(accepted_only)
    assert not aii.parents_ready([])
    assert aii.parents_ready(ALPHA_POOL["status"]["parent"])


def test_kind_refused_is_invalid_kind_for_the_current_generation():
    def route(reason, observed=3):
        return {"metadata": {"generation": 3}, "status": {"parents": [{"conditions": [
            {"type": "Accepted", "status": "True", "reason": "Accepted"},
            {"type": "ResolvedRefs", "status": "False", "reason": reason, "observedGeneration": observed}]}]}}
    assert aii.kind_refused(route("InvalidKind"))
    assert not aii.kind_refused(route("InvalidKind", observed=2))
    assert not aii.kind_refused(route("BackendNotFound"))
    assert not aii.kind_refused({"metadata": {"name": "r"}})


def test_pool_refs_of_upstream_routes():
    weighted = upstream("gateway_weighted_two_pools.yaml.txt")[0]
    assert aii.pool_refs(weighted) == [
        (aii.GROUP_V1, "inference-conformance-app-backend", "primary-inference-pool"),
        (aii.GROUP_V1, "inference-conformance-app-backend", "secondary-inference-pool")]
    istio = upstream("istio-httproute.yaml.txt")[0]
    assert aii.pool_refs(istio) == [(aii.GROUP_X, None, "vllm-llama3-8b-instruct")]
    plain = {"metadata": {"name": "r", "namespace": "n"}, "spec": {"rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}}
    assert aii.pool_refs(plain) == []


def test_pool_group_prefers_v1():
    assert aii.pool_group({"pool_versions": {aii.GROUP_V1: ["v1"], aii.GROUP_X: ["v1alpha2"]}}) == (aii.GROUP_V1, "v1")
    assert aii.pool_group({"pool_versions": {aii.GROUP_X: ["v1alpha2"]}}) == (aii.GROUP_X, "v1alpha2")
    assert aii.pool_group({"pool_versions": {}}) is None


# --------------------------------------------------------------------------------------------- manifests
def test_epp_args_follow_the_upstream_deployment():
    deployment = upstream("inferencepool-resources.yaml.txt", "Deployment")[0]
    upstream_flags = {a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("--")}
    opts = pr.CheckOptions({"mode": "active"})
    _sa, role, _rb, config, pod, service = aii.epp_objects("epp", "ns", "pool", aii.GROUP_V1, opts)
    args = pod["spec"]["containers"][0]["args"]
    ours = {a for a in args if a.startswith("--")}
    assert upstream_flags <= ours and ours - upstream_flags == {"--pool-group"}
    assert args[args.index("--pool-name") + 1] == "pool" and args[args.index("--v") + 1] == "4"
    assert yaml.safe_load(config["data"]["default-plugins.yaml"]) == yaml.safe_load(
        upstream("inferencepool-resources.yaml.txt", "ConfigMap")[0]["data"]["default-plugins.yaml"])
    assert service["spec"]["ports"][0]["port"] == aii.EPP_PORT
    assert role["rules"] == upstream("inferencepool-resources.yaml.txt", "Role")[0]["rules"]


def test_pool_manifests_per_api_version():
    v1 = aii.pool_manifest("p", "ns", aii.GROUP_V1, "v1", "epp")
    assert v1["spec"]["endpointPickerRef"]["port"] == {"number": aii.EPP_PORT}
    assert aii.pool_summary(v1, aii.GROUP_V1)["selector"] == {"app": aii.MODEL_LABEL}
    alpha = aii.pool_manifest("p", "ns", aii.GROUP_X, "v1alpha2", "epp")
    assert alpha["apiVersion"] == "inference.networking.x-k8s.io/v1alpha2"
    assert aii.pool_summary(alpha, aii.GROUP_X)["endpoint_picker"]["port"] == aii.EPP_PORT


def test_client_script_brackets_ipv6_and_counts_requests():
    script = aii.client_script("fd00::1", "m", 7, 3)
    assert "http://[fd00::1]/v1/completions" in script
    assert "seq 7" in script and "seq 3" in script and "%header{x-inference-pod}" in script
    assert script.count(aii.SHARED_PREFIX) == 1


# --------------------------------------------------------------------------------------------- parsers
def test_tally_counts_codes_pods_and_errors():
    log = "\n".join(["distinct 200 aic-model-0", "distinct 200 aic-model-1", "distinct 503 ", "distinct error-7",
                     "distinct 000 error-28", "prefix 200 aic-model-2", "prefix 200", "noise", "done"])
    counts = aii.tally(log)
    assert counts["distinct"]["codes"] == {"200": 2, "503": 1, "error": 2}
    assert counts["distinct"]["pods"] == {"aic-model-0": 1, "aic-model-1": 1}
    assert counts["prefix"]["pods"] == {"aic-model-2": 1, "(no x-inference-pod header)": 1}


def test_epp_picks_reads_request_handled_lines_only():
    lines = [json.dumps({"level": "info", "msg": "Starting ext-proc gRPC server"}),
             json.dumps({"level": "Level(-3)", "msg": "Request handled", "endpoint": "10.244.1.7:8000"}),
             json.dumps({"level": "Level(-3)", "msg": "Request handled", "endpoint": "10.244.1.8:8000,10.244.1.9:8000"}),
             json.dumps({"msg": "Request handled"}), "{not json", "plain text line"]
    assert aii.epp_picks("\n".join(lines)) == ["10.244.1.7:8000", "10.244.1.8:8000"]


def test_picks_must_account_for_every_answer():
    ok, _detail = aii.picks_account_for(["10.244.1.7:8000"] * 2 + ["10.244.1.8:8000"], {"aic-model-0": 2, "aic-model-1": 1},
                                        PODS)
    assert ok
    short, detail = aii.picks_account_for(["10.244.1.7:8000"], {"aic-model-0": 2}, PODS)
    assert not short and "2 answered, 1 picked" in detail
    outside, detail = aii.picks_account_for(["10.0.0.1:8000", "10.244.1.7:8000"], {"aic-model-0": 1}, PODS)
    assert not outside and "10.0.0.1" in detail
    assert not aii.picks_account_for([], {}, PODS)[0]


# --------------------------------------------------------------------------------------------- judge
def crds(v1=True, alpha=True):
    out = []
    if v1:
        out.append({"name": "inferencepools.inference.networking.k8s.io", "group": aii.GROUP_V1, "plural": "inferencepools",
                    "served": ["v1"], "established": True, "bundle_version": "v1.0.0"})
    if alpha:
        out.append({"name": "inferencepools.inference.networking.x-k8s.io", "group": aii.GROUP_X,
                    "plural": "inferencepools", "served": ["v1alpha2"], "established": True, "bundle_version": "v1.0.0"})
    return out


def facts(v1=True, alpha=True, classes=True):
    gaie_crds = crds(v1, alpha)
    return {"crds": [{"plural": p, "served": ["v1"]} for p in ("gatewayclasses", "gateways", "httproutes")],
            "classes": [{"name": "envoy-gateway", "controller": "gateway.envoyproxy.io/gatewayclass-controller",
                         "implementation": "Envoy Gateway", "accepted": True}] if classes else [],
            "gaie_crds": gaie_crds, "pool_versions": {c["group"]: c["served"] for c in gaie_crds},
            "pools": [aii.pool_summary(ALPHA_POOL, aii.GROUP_X)], "routes": [], "objectives": {"inferenceobjectives": 3}}


READY_ROUTE = {"ready": True, "parents": [{"controller": "c", "conditions": [
    {"type": "Accepted", "status": "True", "reason": "Accepted"}, {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"}]}]}


def probes(distinct=None, prefix=None, picks=None, route=None, pool_ready=True, tally=True):
    distinct = distinct if distinct is not None else {"aic-model-0": 10, "aic-model-1": 10, "aic-model-2": 10}
    prefix = prefix if prefix is not None else {"aic-model-1": 10}
    counts = {"distinct": {"codes": {"200": sum(distinct.values())}, "pods": distinct},
              "prefix": {"codes": {"200": sum(prefix.values())}, "pods": prefix}}
    if picks is None:
        picks = []
        for pods in (distinct, prefix):
            for pod, count in pods.items():
                picks += ["%s:8000" % PODS[pod]] * count
    pool = aii.pool_summary(ALPHA_POOL, aii.GROUP_X)
    pool["ready"] = pool_ready
    return {"gateway": {"accepted": True, "programmed": True, "addresses": ["172.18.255.200"], "conditions": []},
            "route": route or READY_ROUTE, "pool": pool, "tally": counts if tally else None, "picks": picks,
            "pod_ips": dict(PODS), "cleanup_note": "", "error": ""}


def status(result):
    return validate_result(result)["status"]


def test_no_crds_is_not_implemented():
    result = aii.judge(facts(v1=False, alpha=False), probes())
    assert status(result) == NOT_IMPLEMENTED and "not installed" in result["notes"]


def test_passive_is_partial_even_with_accepted_pools():
    result = aii.judge(facts(), passive_reason="mode=passive")
    assert status(result) == PARTIAL and "mode=active" in result["notes"]


def test_crds_without_an_accepted_class_are_partial():
    assert status(aii.judge(facts(classes=False), None)) == PARTIAL


def test_everything_observed_is_implemented():
    result = aii.judge(facts(), probes())
    assert status(result) == IMPLEMENTED
    assert all(f["passed"] is not False for f in result["findings"])


def test_alpha_only_gets_an_upgrade_note():
    result = aii.judge(facts(v1=False), probes())
    assert status(result) == IMPLEMENTED and "v1alpha2" in result["notes"]


def test_route_refused_by_the_implementation_is_partial():
    route = {"ready": False, "parents": [{"controller": "c", "conditions": [
        {"type": "Accepted", "status": "True", "reason": "Accepted"},
        {"type": "ResolvedRefs", "status": "False", "reason": "InvalidKind", "message": "InferencePool is not supported"}]}]}
    result = aii.judge(facts(), probes(route=route, tally=False, pool_ready=False))
    assert status(result) == PARTIAL and "does not support the Inference Extension" in result["notes"]


def test_answers_without_epp_picks_are_partial():
    """An implementation that forwards to the pool's pods without asking the picker: 200s, no picks."""
    result = aii.judge(facts(), probes(picks=[], prefix={"aic-model-0": 4, "aic-model-1": 3, "aic-model-2": 3}))
    assert status(result) == PARTIAL and "without asking its endpoint picker" in result["notes"]


def test_picks_without_prefix_affinity_are_partial():
    result = aii.judge(facts(), probes(prefix={"aic-model-0": 4, "aic-model-1": 3, "aic-model-2": 3}))
    assert status(result) == PARTIAL and "prefix" in result["notes"]


def test_answers_from_outside_the_pool_are_partial():
    base = probes()
    base["tally"]["distinct"]["pods"] = {"aic-model-0": 29, "(no x-inference-pod header)": 1}
    assert status(aii.judge(facts(), base)) == PARTIAL


def test_one_endpoint_for_everything_is_partial():
    assert status(aii.judge(facts(), probes(distinct={"aic-model-0": 30}, prefix={"aic-model-0": 10}))) == PARTIAL


def test_failed_requests_are_partial():
    base = probes()
    base["tally"]["distinct"]["codes"] = {"200": 30, "503": 5}
    result = aii.judge(facts(), base)
    assert status(result) == PARTIAL and "failed" in result["notes"]


def test_pool_not_accepted_is_partial():
    assert status(aii.judge(facts(), probes(pool_ready=False))) == PARTIAL


# --------------------------------------------------------------------------------------------- simulated EPP
def test_sim_pool_spec_reads_both_versions():
    spec = gaie.pool_spec(upstream_pool())
    assert spec == {"selector": {"app": "vllm-llama3-8b-instruct"}, "ports": [8000],
                    "picker": {"name": "vllm-llama3-8b-instruct-epp", "kind": "Service", "port": 9002,
                               "failureMode": "FailClose"}}
    alpha = gaie.pool_spec(ALPHA_POOL)
    assert alpha["selector"] == {"app": "vllm"} and alpha["picker"]["failureMode"] == "FailOpen"


def test_sim_picker_keeps_a_shared_prefix_together_and_spreads_the_rest():
    picker = gaie.Picker(random.Random(7))
    endpoints = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"]
    distinct = [picker.pick(endpoints, gaie.prompt_blocks("%d %s" % (i, "x" * 200), "m")) for i in range(30)]
    assert {distinct.count(e) for e in endpoints} == {10}      # idle servers: the queue score evens the load
    shared = [picker.pick(endpoints, gaie.prompt_blocks("y" * 300 + str(i), "m")) for i in range(10)]
    assert len(set(shared)) == 1
    assert gaie.prompt_blocks("short", "m") == []
    assert gaie.prompt_blocks("z" * 128, "a") != gaie.prompt_blocks("z" * 128, "b")


def test_sim_is_pool_ref():
    assert gaie.is_pool_ref({"group": aii.GROUP_V1, "kind": "InferencePool", "name": "p"})
    assert gaie.is_pool_ref({"group": aii.GROUP_X, "kind": "InferencePool", "name": "p"})
    assert not gaie.is_pool_ref({"kind": "Service", "name": "p"})
