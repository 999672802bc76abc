"""advanced_inference_ingress against its scenarios: the verdict docs/scenarios.md promises, the findings that explain
it, and a cluster left as it was found (passive and check mode create nothing).

One simulated cluster per scenario for the whole module (the check cleans up after itself, which these tests verify).
"""
from __future__ import annotations

import pytest

from checks_support import FAST, finding, leftovers, probe_namespaces, run_module, start_sim, writes_since

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED = "Implemented", "Partially Implemented", "Not Implemented"
MODULE = "advanced_inference_ingress"
# every kind the probe creates (all inside its namespace); none may outlive the run
PROBE_KINDS = (("", "pods"), ("", "services"), ("", "configmaps"), ("", "serviceaccounts"),
               ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
               ("inference.networking.k8s.io", "inferencepools"), ("gateway.networking.k8s.io", "gateways"),
               ("gateway.networking.k8s.io", "httproutes"))
# bounded waits (real seconds); a route refused with InvalidKind ends its wait at once
EXTRA = {"route_timeout": 20}


def probe_objects(sim):
    out = []
    for gr in PROBE_KINDS:
        if gr in sim.store.types:
            out += ["%s %s/%s" % (gr[1], o["metadata"].get("namespace"), o["metadata"]["name"])
                    for o in sim.store.list(gr)[0] if (o["metadata"].get("namespace") or "").startswith("aic-")]
    proxies = [s["metadata"]["name"] for s in sim.store.list(("", "services"), namespace="envoy-gateway-system")[0]
               if ((s["metadata"].get("labels") or {}).get("gateway.envoyproxy.io/owning-gateway-namespace") or "")
               .startswith("aic-")]
    return out + proxies + leftovers(sim) + probe_namespaces(sim)


def run(sim, **params):
    check_mode = params.pop("check_mode", False)
    out = run_module(MODULE, dict(FAST, kubeconfig=sim.kubeconfig, **dict(EXTRA, **params)), check_mode=check_mode)
    assert not out.get("failed"), out.get("msg")
    return out["result"]


def passed(result, prefix):
    found = finding(result, prefix)
    assert found, (prefix, [f["name"] for f in result["findings"]])
    return found[0]["passed"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    sim = start_sim("inference-extension-1.36", tmp_path_factory.mktemp("gaie"))
    yield sim
    sim.stop()


def test_passive_reads_crds_pools_and_routes(good):
    rv = good.store.rv
    result = run(good, mode="passive")
    assert result["status"] == PARTIAL and result["mode"] == "passive"
    assert passed(result, "InferencePool CRD served") is True
    assert "1 of 1 sampled pools Accepted" in finding(result, "InferencePools accepted")[0]["detail"]
    routes = next(e for e in result["evidence"] if e["title"].startswith("HTTPRoutes with InferencePool"))["content"]
    assert [r["name"] for r in routes] == ["llm-route"] and routes[0]["ready"]
    assert probe_objects(good) == [] and writes_since(good, rv) == []


def test_check_mode_creates_nothing(good):
    result = run(good, check_mode=True)
    assert result["status"] == PARTIAL and "check mode" in finding(result, "OpenAI traffic")[0]["detail"]
    assert probe_objects(good) == []


def test_active_routes_through_the_endpoint_picker(good):
    result = run(good)
    assert result["status"] == IMPLEMENTED, result["notes"]
    assert passed(result, "probe InferencePool Accepted") is True
    assert passed(result, "the endpoint picker chose every serving endpoint") is True
    assert passed(result, "shared-prefix prompts kept on one endpoint") is True
    counts = next(e for e in result["evidence"] if e["title"].startswith("answers"))["content"]
    assert sum(counts["distinct"]["codes"].values()) == 30 and sum(counts["prefix"]["codes"].values()) == 10
    assert len(counts["distinct"]["pods"]) > 1 and len(counts["prefix"]["pods"]) == 1
    assert probe_objects(good) == []


def test_pool_routes_coexist_with_plain_gateway_routing(good):
    out = run_module("ai_inference", dict(FAST, kubeconfig=good.kubeconfig))
    assert out["result"]["status"] == IMPLEMENTED, out["result"]["notes"]


def test_older_pool_version_is_valid_for_its_crd(good):
    """The probe's v1alpha2 pool (clusters with only the x-k8s group) passes the real CRD's schema."""
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
    from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import advanced_inference_ingress as aii

    admin = cl.Cluster.connect({"kubeconfig": good.kubeconfig})
    body = aii.pool_manifest("aic-alpha-pool", "inference-demo", aii.GROUP_X, "v1alpha2", "epp")
    created = admin.create("inference.networking.x-k8s.io/v1alpha2", "inferencepools", body, namespace="inference-demo")
    try:
        assert created["spec"]["extensionRef"]["portNumber"] == aii.EPP_PORT
    finally:
        admin.delete("inference.networking.x-k8s.io/v1alpha2", "inferencepools", "aic-alpha-pool", namespace="inference-demo")


@pytest.mark.parametrize("scenario, finding_name, detail", [
    ("inference-extension-no-picker", "the endpoint picker chose every serving endpoint", "0 picked"),
    ("inference-extension-unsupported", "probe HTTPRoute to the InferencePool Accepted with ResolvedRefs", "InvalidKind"),
])
def test_broken_variants_are_partial(tmp_path, scenario, finding_name, detail):
    sim = start_sim(scenario, tmp_path)
    try:
        assert run(sim, mode="passive")["status"] == PARTIAL
        result = run(sim)
        assert result["status"] == PARTIAL, result["summary"]
        assert passed(result, finding_name) is False
        assert detail in finding(result, finding_name)[0]["detail"]
        assert probe_objects(sim) == []
    finally:
        sim.stop()


def test_no_inference_extension_is_not_implemented(tmp_path):
    sim = start_sim("no-gateway-api", tmp_path)
    try:
        for mode in ("passive", "active"):
            result = run(sim, mode=mode)
            assert result["status"] == NOT_IMPLEMENTED
            assert "not installed" in result["notes"]
        assert probe_objects(sim) == []
    finally:
        sim.stop()


@pytest.mark.parametrize("mode, expected", [("passive", PARTIAL), ("active", IMPLEMENTED)])
def test_each_mode_runs_with_its_serving_clusterrole(good, mode, expected):
    """files/rbac/k8s-ai-conformance-serving-<mode>.yaml is enough (docs/rbac.md), bound as an admin would."""
    import os

    import yaml

    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl

    from checks_support import ROOT

    role = "k8s-ai-conformance-serving-%s" % mode
    admin = cl.Cluster.connect({"kubeconfig": good.kubeconfig})
    with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
        admin.create("rbac.authorization.k8s.io/v1", "clusterroles", yaml.safe_load(handle))
    good.add_user("gaie-%s" % mode, "gaie-%s-token" % mode)
    admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "gaie-%s" % mode}]})
    out = run_module(MODULE, dict(FAST, kubeconfig=good.kubeconfig_for("gaie-%s" % mode), mode=mode, **EXTRA))
    assert not out.get("failed"), out.get("msg")
    assert out["result"]["status"] == expected, out["result"]["notes"]
    assert probe_objects(good) == []
