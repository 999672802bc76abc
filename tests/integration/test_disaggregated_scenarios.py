"""disaggregated_inference against its scenarios: the verdicts docs/scenarios.md promises, the findings that explain
them, the opt-in request test (a curl pod, one x-request-id found in a prefill and a decode pod's logs), a cluster
left as it was found, and passive/check mode creating nothing.

One simulated cluster per scenario for the whole module (the check cleans up after itself, which these tests verify).
"""
from __future__ import annotations

import pytest

from checks_support import FAST, finding, leftovers, probe_namespaces, run_module, start_sim

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED = "Implemented", "Partially Implemented", "Not Implemented"
MODULE = "disaggregated_inference"
REQUEST = {"request_test": True, "request_timeout": 30}


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    started = {}

    def get(name):
        if name not in started:
            started[name] = start_sim(name, tmp_path_factory.mktemp(name))
        return started[name]
    yield get
    for sim in started.values():
        sim.stop()


def check(sim, check_mode=False, **args):
    params = dict(FAST, kubeconfig=sim.kubeconfig)
    params.update(args)
    out = run_module(MODULE, params, check_mode=check_mode)
    assert "result" in out, out
    return out["result"]


def log_lines(sim, role):
    """Every log line of the serving containers of the llm-d pods of `role`."""
    lines = []
    for pod in sim.store.list(("", "pods"), namespace="llm-d")[0]:
        if (pod["metadata"].get("labels") or {}).get("llm-d.ai/role") != role:
            continue
        for container in pod["spec"]["containers"]:
            if container["name"] != "routing-proxy":
                lines.extend(sim.runtime.logs("llm-d", pod["metadata"]["name"], container["name"]).splitlines())
    return lines


def test_request_test_implemented_on_1_36(clusters):
    sim = clusters("disaggregated-1.36")
    result = check(sim, **REQUEST)
    assert result["status"] == IMPLEMENTED, result
    assert result["mode"] == "active"
    rid = next(e for e in result["evidence"] if e["title"] == "request")["content"]["x-request-id"]
    assert rid.startswith("aic-pd-")
    # the id is really in both roles' vLLM logs (the check's claim, read independently from the runtime)
    assert any("Received request cmpl-%s-0" % rid in line for line in log_lines(sim, "prefill"))
    assert any("Received request cmpl-%s-0" % rid in line for line in log_lines(sim, "decode"))
    assert finding(result, "prefill and decode pods distinct")[0]["passed"] is True
    assert "Gateway llm-d/infra-pd-inference-gateway" in finding(result, "a front for the deployment")[0]["detail"]
    assert leftovers(sim) == [] and probe_namespaces(sim) == []


def test_default_is_partial_with_how_to_enable(clusters):
    sim = clusters("disaggregated-1.36")
    result = check(sim)
    assert result["status"] == PARTIAL, result
    assert "request_test" in result["notes"]
    assert finding(result, "prefill and decode in separate Ready pods")[0]["passed"] is True
    assert finding(result, "decode pods carry the routing sidecar")[0]["passed"] is True
    assert leftovers(sim) == []


def test_passive_and_check_mode_create_nothing(clusters):
    sim = clusters("disaggregated-1.36")
    before = sim.store.list(("", "namespaces"))[0]
    for result in (check(sim, mode="passive", **REQUEST), check(sim, check_mode=True, **REQUEST)):
        assert result["status"] == PARTIAL, result
        assert result["mode"] == "passive"
        assert "active mode" in result["notes"]
    assert len(sim.store.list(("", "namespaces"))[0]) == len(before)


def test_prefill_missing_is_not_implemented(clusters):
    sim = clusters("disaggregated-no-prefill")
    assert check(sim)["status"] == NOT_IMPLEMENTED
    result = check(sim, **REQUEST)
    assert result["status"] == NOT_IMPLEMENTED, result
    assert "no prefill pod" in result["summary"]
    assert finding(result, "prefill and decode in separate Ready pods")[0]["passed"] is False
    assert leftovers(sim) == []


def test_simulator_images_are_partial_even_when_wired(clusters):
    sim = clusters("disaggregated-simulator")
    result = check(sim, **REQUEST)
    assert result["status"] == PARTIAL, result
    # the wiring is shown: the id reached a prefill and a decode pod
    assert finding(result, "prefill and decode pods distinct")[0]["passed"] is True
    assert finding(result, "real model servers")[0]["passed"] is False
    assert "KV cache transfer" in result["notes"]
    assert leftovers(sim) == []


def test_wrong_model_fails_the_request(clusters):
    sim = clusters("disaggregated-1.36")
    result = check(sim, model="no-such-model", **REQUEST)
    assert result["status"] == PARTIAL, result
    assert finding(result, "completion through the front answered 2xx")[0]["passed"] is False
    assert "HTTP 404" in finding(result, "completion through the front answered 2xx")[0]["detail"]
    assert leftovers(sim) == []


def bind_role(sim, mode):
    """files/rbac/k8s-ai-conformance-serving-<mode>.yaml applied and bound to a new user, as an admin would."""
    import os

    import yaml
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
    from checks_support import ROOT

    role = "k8s-ai-conformance-serving-%s" % mode
    admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    if admin.get("rbac.authorization.k8s.io/v1", "clusterroles", role) is None:
        with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
            admin.create("rbac.authorization.k8s.io/v1", "clusterroles", yaml.safe_load(handle))
        sim.add_user("disagg-%s" % mode, "disagg-%s-token" % mode)
        admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "disagg-%s" % mode}]})
    return sim.kubeconfig_for("disagg-%s" % mode)


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_each_mode_runs_with_its_serving_clusterrole_only(clusters, mode):
    sim = clusters("disaggregated-simulator")
    args = dict(FAST, kubeconfig=bind_role(sim, mode), mode=mode, **REQUEST)
    out = run_module(MODULE, args)
    assert "result" in out, out
    assert out["result"]["mode"] == mode
    assert finding(out["result"], "prefill and decode in separate Ready pods")[0]["passed"] is True
    if mode == "active":
        assert finding(out["result"], "prefill and decode pods distinct")[0]["passed"] is True
    assert leftovers(sim) == []


def test_conform_role_reports_it_on_a_1_36_cluster(clusters, tmp_path):
    """The conform playbook with the role's disaggregated_inference options: the verdict lands in PRODUCT.yaml."""
    import yaml
    from test_conform_playbook import requirements, run_playbook

    sim = clusters("disaggregated-1.36")
    run = run_playbook(sim.kubeconfig, str(tmp_path), "conform_checks=disaggregated_inference",
                       "conform_disaggregated_request_test=true", "conform_disaggregated_request_timeout=30",
                       "conform_wait_timeout=20", "conform_wait_sleep=0.1")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    product = yaml.safe_load((tmp_path / "v1.36" / "simulated-ai-cluster" / "PRODUCT.yaml").read_text())
    req = requirements(product)["disaggregated_inference"]
    assert req["level"] == "SHOULD" and req["status"] == IMPLEMENTED, req
    assert req["evidence"]
    assert leftovers(sim) == []


def test_sglang_workers_are_found_from_their_pod_templates(clusters):
    sim = clusters("disaggregated-sglang")
    result = check(sim)
    assert result["status"] == PARTIAL, result
    ready = finding(result, "prefill and decode in separate Ready pods")[0]
    assert ready["passed"] is True and "sglang in sglang: prefill 1/1 Ready, decode 1/1 Ready" in ready["detail"]
    assert "served" in finding(result, "LeaderWorkerSet served")[0]["detail"]
    # the router's pods run no --disaggregation-mode: not counted as a role
    table = next(e for e in result["evidence"] if e["title"] == "prefill/decode pods")["content"]
    assert "sglang-router" not in table


def test_sglang_request_test_without_a_gateway_asks_for_the_endpoint(clusters):
    sim = clusters("disaggregated-sglang")
    result = check(sim, **REQUEST)
    assert result["status"] == PARTIAL, result
    assert finding(result, "a front for the deployment")[0]["passed"] is False
    assert "set endpoint" in result["notes"]
    # through the router (the simulator's SGLang pods log no request ids): never Implemented
    result = check(sim, endpoint="http://sglang-router.sglang.svc.cluster.local:8000", **REQUEST)
    assert result["status"] == PARTIAL, result
    assert not finding(result, "prefill and decode pods distinct")
    assert leftovers(sim) == []
