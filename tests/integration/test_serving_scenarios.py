"""robust_controller against the serving scenarios: the verdict docs/scenarios.md promises, the findings
that explain it, a cluster left as it was found, and passive/check mode creating nothing.

One simulated cluster per scenario for the whole module (the checks clean up after themselves, which these
tests verify).
"""
from __future__ import annotations

import time

import pytest

from checks_support import FAST, SPEED, finding, leftovers, probe_namespaces, run_module

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED = "Implemented", "Partially Implemented", "Not Implemented"

# scenario -> robust_controller; docs/scenarios.md (serving section) has the same table
EXPECTED = {
    "ai-stack": IMPLEMENTED,
    "no-gateway-api": IMPLEMENTED,
    "kuberay-no-webhook": PARTIAL,
    "operator-crashloop": NOT_IMPLEMENTED,
}
CRASHING = {"operator-crashloop": ("kuberay-system", "kuberay-operator")}
RAY_TYPES = (("ray.io", "rayclusters"), ("", "pods"), ("", "services"))


def start(name, directory):
    """A started cluster whose workloads are up (or, for the crash-loop scenario, crashing for real)."""
    import os

    from simcluster.cluster import SimCluster

    sim = SimCluster(name, speed=SPEED, kubeconfig=os.path.join(str(directory), "kubeconfig"))
    sim.start()
    try:
        if name in CRASHING:
            namespace, prefix = CRASHING[name]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                pods = [p for p in sim.store.list(("", "pods"), namespace=namespace)[0]
                        if p["metadata"]["name"].startswith(prefix)]
                restarts = [cs.get("restartCount", 0) for p in pods for cs in (p.get("status") or {}).get("containerStatuses") or ()]
                if restarts and max(restarts) >= 2:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the %s pod never restarted twice in %s" % (prefix, name))
        else:
            sim.wait_settled(30)
    except BaseException:
        sim.stop()
        raise
    return sim


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    started = {}

    def get(name):
        if name not in started:
            started[name] = start(name, tmp_path_factory.mktemp(name))
        return started[name]
    yield get
    for sim in started.values():
        sim.stop()


def check(sim, module, **args):
    params = dict(FAST, kubeconfig=sim.kubeconfig)
    params.update(args)
    out = run_module(module, params)
    assert not out.get("failed"), out.get("msg")
    assert out["changed"] is False
    return out["result"]


def ray_objects(sim):
    """RayClusters anywhere, and pods/services of any RayCluster (labelled ray.io/cluster)."""
    found = []
    for gr in RAY_TYPES:
        for obj in sim.store.list(gr)[0]:
            if gr[0] == "ray.io" or "ray.io/cluster" in (obj["metadata"].get("labels") or {}):
                found.append("%s %s/%s" % (gr[1], obj["metadata"].get("namespace"), obj["metadata"]["name"]))
    return found


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_robust_controller_verdict_per_scenario(clusters, scenario):
    sim = clusters(scenario)
    result = check(sim, "robust_controller")
    assert (result["id"], result["status"]) == ("robust_controller", EXPECTED[scenario]), result["notes"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == [] and ray_objects(sim) == []


def test_ai_stack_denial_comes_from_kuberays_own_webhook(clusters):
    result = check(clusters("ai-stack"), "robust_controller")
    denial = finding(result, "dry run of a schema-valid, invalid RayCluster")[0]
    assert denial["passed"] is True
    assert denial["detail"].startswith('admission webhook "vraycluster.kb.io" denied the request: RayCluster.ray.io')
    assert denial["detail"].endswith("worker group names must be unique")
    reconcile = finding(result, "small CPU RayCluster reconciled")[0]
    assert reconcile["passed"] is True and "head pods 1, worker pods 1" in reconcile["detail"]


def test_without_webhook_the_invalid_object_is_accepted_and_the_fix_is_named(clusters):
    result = check(clusters("kuberay-no-webhook"), "robust_controller")
    denial = finding(result, "dry run of a schema-valid, invalid RayCluster")[0]
    assert denial["passed"] is False and "accepted" in denial["detail"]
    assert finding(result, "small CPU RayCluster reconciled")[0]["passed"] is True
    assert "kuberay_webhook_enabled" in result["notes"]


def test_crashloop_names_the_operator_and_its_empty_webhook_service(clusters):
    result = check(clusters("operator-crashloop"), "robust_controller")
    assert "CrashLoopBackOff" in result["notes"]
    assert "no ready endpoints behind Service kuberay-system/kuberay-operator-webhook" in result["notes"]
    # An unhealthy operator is not probed: nothing was created.
    assert not finding(result, "dry run")


@pytest.mark.parametrize("how", ["passive", "check_mode"])
def test_passive_and_check_mode_create_nothing(clusters, how):
    sim = clusters("no-gateway-api")
    before = int(sim.store.list(("", "namespaces"))[1])
    if how == "passive":
        result = check(sim, "robust_controller", mode="passive")
    else:
        out = run_module("robust_controller", dict(FAST, kubeconfig=sim.kubeconfig), check_mode=True)
        result = out["result"]
    assert result["status"] == PARTIAL and result["mode"] == "passive"
    created = [e for e in sim.store.events_since(before) if e.type == "ADDED"
               and e.gr in (("", "namespaces"), ("ray.io", "rayclusters"))]
    assert created == [] and probe_namespaces(sim) == []
