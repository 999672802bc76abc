"""disaggregated_inference: reading prefill/decode pods (llm-d labels, SGLang flags), Dynamo graphs, the front of a
deployment and the client's output, and the verdict rules (id in a prefill and a decode pod, distinct, real servers
-> Implemented; request test off, simulators, one role only, failed request -> Partially; no Ready prefill or decode
pod -> Not Implemented)."""
from __future__ import annotations

import copy
import os
import random

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import disaggregated_inference as di
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, validate_result)

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKS = os.path.join(HERE, "..", "simcluster", "scenarios", "disaggregated")
UPSTREAM = os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "upstream")


def objects(name):
    with open(os.path.join(BLOCKS, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["objects"]


def pod_from(deployment, name, ready=True, node="gpu-0"):
    """A Running pod of a Deployment's template, as the kubelet reports it."""
    template = copy.deepcopy(deployment["spec"]["template"])
    return {"metadata": {"name": name, "namespace": deployment["metadata"]["namespace"],
                         "labels": template["metadata"]["labels"]},
            "spec": dict(template["spec"], nodeName=node),
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def llmd_workers(block="decode.yaml", prefill_block="prefill.yaml", prefill_ready=True):
    decode = next(o for o in objects(block) if o["kind"] == "Deployment" and "decode" in o["metadata"]["name"])
    prefill = next(o for o in objects(prefill_block)
                   if o["kind"] == "Deployment" and "prefill" in o["metadata"]["name"])
    return [di.pod_summary(pod_from(decode, "decode-0"), "decode", "llm-d"),
            di.pod_summary(pod_from(prefill, "prefill-0", ready=prefill_ready, node="gpu-1"), "prefill", "llm-d")]


def facts(workers, dynamo=()):
    return {"workers": workers, "dynamo": list(dynamo), "lws": False, "dynamo_served": bool(dynamo),
            "gateway_api": True, "errors": []}


FRONT = ("http://172.18.255.200", "Gateway llm-d/gw (HTTPRoute llm-d/r)")


def probe_out(prefill=("prefill-0",), decode=("decode-0",), status=200):
    line = "[vllm] INFO Received request cmpl-aic-pd-x-0: prompt: 'p'"
    return {"request_id": "aic-pd-x", "url": FRONT[0] + "/v1/completions", "model": "Qwen/Qwen3-0.6B", "status": status,
            "body": "{}", "error": "", "cleanup": "", "prefill_hits": {p: [line] for p in prefill},
            "decode_hits": {d: [line] for d in decode}}


# --------------------------------------------------------------------------------------------- helpers
def test_llmd_pod_summary_from_the_scenario_blocks():
    decode, prefill = llmd_workers()
    assert decode["sidecar"] is True and decode["containers"] == ["vllm"]      # the routing sidecar is not searched
    assert prefill["sidecar"] is False and prefill["containers"] == ["vllm"]
    assert decode["model"] == prefill["model"] == "Qwen/Qwen3-0.6B"            # `vllm serve MODEL`
    assert not decode["simulator"] and decode["ready"]


def test_simulator_images_are_recognised():
    decode, prefill = llmd_workers("simulator.yaml", "simulator.yaml")
    assert decode["simulator"] and prefill["simulator"]
    assert decode["model"] == "Qwen/Qwen3-0.6B"                                # --model=...
    assert di.is_simulator("ghcr.io/llm-d/llm-d-inference-sim:v0.5.1")
    assert not di.is_simulator("ghcr.io/llm-d/llm-d-cuda:v0.3.0")


def test_upstream_lws_vllm_example_is_not_disaggregated():
    with open(os.path.join(UPSTREAM, "objects", "lws", "docs_examples_vllm_GPU_lws.yaml"), encoding="utf-8") as handle:
        lws = next(yaml.safe_load_all(handle))
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    assert di.template_role(leader["spec"]) is None
    assert di.model_of({"spec": leader["spec"]}) == "meta-llama/Llama-3.1-405B-Instruct"   # inside `sh -c`


@pytest.mark.parametrize("args,role", [
    (["python3", "-m", "sglang.launch_server", "--model-path", "m", "--disaggregation-mode", "prefill"], "prefill"),
    (["python3", "-m", "sglang.launch_server", "--disaggregation-mode=decode", "--port", "30000"], "decode"),
    (["python3", "-m", "sglang.launch_server", "--model-path", "m"], None),
    (["python3", "-m", "dynamo.vllm", "--model", "Qwen/Qwen3-0.6B", "--is-prefill-worker"], "prefill"),
    (["vllm", "serve", "m", "--kv-transfer-config", '{"kv_connector":"P2pNcclConnector","kv_role":"kv_producer"}'],
     "prefill"),
    (["vllm", "serve", "m", "--kv-transfer-config", '{"kv_connector": "P2pNcclConnector", "kv_role": "kv_consumer"}'],
     "decode"),
    (["vllm", "serve", "m", "--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'], None),
])
def test_template_role(args, role):
    assert di.template_role({"containers": [{"name": "s", "image": "lmsysorg/sglang:v0.5.2", "command": args}]}) == role


def test_template_framework():
    assert di.template_framework({"containers": [{"image": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.1.1"}]}) == "dynamo"
    assert di.template_framework({"containers": [{"image": "lmsysorg/sglang:v0.5.2"}]}) == "sglang"
    assert di.template_framework({"containers": [{"image": "example/server", "args": ["--disaggregation-mode",
                                                                                      "decode"]}]}) == "P/D flags"


def test_dynamo_summary_reads_worker_flags_without_sub_component_types():
    flags = {"metadata": {"name": "vllm-disagg", "namespace": "dynamo"},
             "spec": {"services": {
                 "Frontend": {"componentType": "frontend"},
                 "VllmDecodeWorker": {"componentType": "worker", "extraPodSpec": {"mainContainer": {
                     "command": ["python3", "-m", "dynamo.vllm"], "args": ["--model", "m", "--disaggregation-mode",
                                                                           "decode"]}}},
                 "VllmPrefillWorker": {"componentType": "worker", "extraPodSpec": {"mainContainer": {
                     "args": ["--model", "m", "--is-prefill-worker"]}}}}}}
    assert sorted(di.dynamo_summary(flags)["roles"]) == ["decode", "prefill"]
    assert not di.dynamo_summary(flags)["ready"]


def test_dynamo_summary_reads_sub_component_types():
    dgd = {"metadata": {"name": "vllm-disagg", "namespace": "dynamo"},
           "spec": {"services": {"Frontend": {"componentType": "frontend", "replicas": 1},
                                 "VllmDecodeWorker": {"componentType": "worker", "subComponentType": "decode"},
                                 "VllmPrefillWorker": {"componentType": "worker", "subComponentType": "prefill",
                                                       "replicas": 2}}},
           "status": {"state": "successful"}}
    out = di.dynamo_summary(dgd)
    assert sorted(out["roles"]) == ["decode", "prefill"] and out["ready"]
    assert out["roles"]["prefill"][0] == {"service": "VllmPrefillWorker", "replicas": 2}


def test_deployments_need_distinct_ready_pods_of_both_roles():
    assert di.deployments(llmd_workers())[0]["healthy"]
    assert not di.deployments(llmd_workers(prefill_ready=False))[0]["healthy"]
    assert not di.deployments(llmd_workers()[:1])[0]["healthy"]


def test_choose_front_needs_a_gateway_with_an_address_and_an_accepted_route():
    front = objects("front.yaml")
    gateway = copy.deepcopy(next(o for o in front if o["kind"] == "Gateway"))
    route = next(o for o in front if o["kind"] == "HTTPRoute")
    assert di.choose_front([route], [gateway])[0] is None                  # not Programmed yet: no address
    gateway["status"] = {"addresses": [{"type": "IPAddress", "value": "172.18.255.200"}]}
    assert di.choose_front([route], [gateway]) == (
        "http://172.18.255.200", "Gateway llm-d/infra-pd-inference-gateway (HTTPRoute llm-d/ms-pd-llm-d-modelservice)")
    gateway["spec"]["listeners"][0]["port"] = 8080
    assert di.choose_front([route], [gateway])[0] == "http://172.18.255.200:8080"
    assert di.choose_front([], [gateway])[0] is None


def test_client_script_and_output():
    script = di.client_script("http://gw/v1/completions", "aic-pd-abc", "Qwen/Qwen3-0.6B", 30)
    assert "-H 'x-request-id: aic-pd-abc'" in script and '"model": "Qwen/Qwen3-0.6B"' in script
    assert di.parse_client('{"id": "cmpl-1"}\nHTTP_STATUS: 200\n') == (200, '{"id": "cmpl-1"}')
    assert di.parse_client("CURL_EXIT: 7\n")[0] is None
    assert di.completion_url("http://gw/") == "http://gw/v1/completions"
    assert di.request_id(random.Random(1)).startswith("aic-pd-")


# --------------------------------------------------------------------------------------------- judge
def test_request_seen_in_both_roles_is_implemented():
    out = validate_result(di.judge(facts(llmd_workers()), None, FRONT, probe_out(), request_test=True))
    assert out["status"] == IMPLEMENTED and out["mode"] == "active"


def test_request_test_off_is_partial_with_how_to_enable():
    out = validate_result(di.judge(facts(llmd_workers())))
    assert out["status"] == PARTIAL and "request_test: true" in out["notes"]
    passive = di.judge(facts(llmd_workers()), passive_reason="mode=passive: ...", request_test=True)
    assert passive["status"] == PARTIAL and "active mode" in passive["notes"]


def test_simulators_cap_at_partial():
    workers = llmd_workers("simulator.yaml", "simulator.yaml")
    out = di.judge(facts(workers), None, FRONT, probe_out(), request_test=True)
    assert out["status"] == PARTIAL and "KV cache transfer" in out["notes"]


@pytest.mark.parametrize("kwargs,words", [
    ({"prefill": ()}, "decode pod alone"),
    ({"prefill": (), "decode": ()}, "--enable-log-requests"),
    ({"status": 404}, "HTTP 404"),
    ({"status": None}, "did not succeed"),
    ({"prefill": ("same-0",), "decode": ("same-0",)}, ""),
])
def test_incomplete_request_evidence_is_partial(kwargs, words):
    out = di.judge(facts(llmd_workers()), None, FRONT, probe_out(**kwargs), request_test=True)
    assert out["status"] == PARTIAL, out
    assert words in out["notes"]


def test_no_front_is_partial():
    out = di.judge(facts(llmd_workers()), None, (None, "no Gateway route or Service"), {}, request_test=True)
    assert out["status"] == PARTIAL and "endpoint" in out["notes"]


def test_missing_or_unready_prefill_is_not_implemented():
    out = di.judge(facts(llmd_workers()[:1]))
    assert out["status"] == NOT_IMPLEMENTED and "no prefill pod" in out["summary"]
    out = di.judge(facts(llmd_workers(prefill_ready=False)))
    assert out["status"] == NOT_IMPLEMENTED and "no Ready prefill pod" in out["summary"]


def test_nothing_found_is_not_implemented_with_how_to_deploy():
    out = validate_result(di.judge(facts([])))
    assert out["status"] == NOT_IMPLEMENTED and "llm-d" in out["notes"] and "Dynamo" in out["notes"]


def test_dynamo_graph_alone_is_at_most_partial():
    ready = {"name": "g", "namespace": "d", "roles": {"prefill": [{}], "decode": [{}]}, "state": "successful",
             "ready": True}
    assert di.judge(facts([], [ready]))["status"] == PARTIAL
    assert di.judge(facts([], [dict(ready, ready=False, state="failed")]))["status"] == NOT_IMPLEMENTED
