"""ai_inference and robust_controller against the serving scenarios: the verdict docs/scenarios.md promises, the findings
that explain it, a cluster left as it was found, and passive/check mode creating nothing.

One simulated cluster per scenario for the whole module (the checks clean up after themselves, which these
tests verify).
"""
from __future__ import annotations

import time

import pytest

from checks_support import FAST, SPEED, finding, leftovers, probe_namespaces, run_module

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED = "Implemented", "Partially Implemented", "Not Implemented"

# scenario -> (ai_inference, robust_controller); docs/scenarios.md (serving section) has the same table
EXPECTED = {
    "ai-stack": (IMPLEMENTED, IMPLEMENTED),
    "no-gateway-api": (NOT_IMPLEMENTED, IMPLEMENTED),
    "gateway-not-programmed": (PARTIAL, IMPLEMENTED),
    "route-ignores-weights": (PARTIAL, IMPLEMENTED),
    "route-ignores-headers": (PARTIAL, IMPLEMENTED),
    "kuberay-no-webhook": (IMPLEMENTED, PARTIAL),
    "operator-crashloop": (IMPLEMENTED, NOT_IMPLEMENTED),
}
MODULES = ("ai_inference", "robust_controller")
# A Gateway that never gets an address is waited for this long (real seconds) before the verdict.
EXTRA = {"ai_inference": {"gateway_timeout": 8}}
CRASHING = {"operator-crashloop": ("kuberay-system", "kuberay-operator")}
RAY_TYPES = (("ray.io", "rayclusters"), ("", "pods"), ("", "services"))
GATEWAY_TYPES = (("gateway.networking.k8s.io", "gateways"), ("gateway.networking.k8s.io", "httproutes"))


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
    params = dict(FAST, kubeconfig=sim.kubeconfig, **EXTRA.get(module, {}))
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


def gateway_leftovers(sim):
    """Gateways, routes, and Envoy proxy Services (the holders of Gateway addresses) still present."""
    found = []
    for gr in GATEWAY_TYPES:
        if gr in sim.store.types:
            found.extend("%s %s/%s" % (gr[1], o["metadata"]["namespace"], o["metadata"]["name"]) for o in sim.store.list(gr)[0])
    for svc in sim.store.list(("", "services"))[0]:
        if ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            found.append("service %s/%s holds %s" % (svc["metadata"]["namespace"], svc["metadata"]["name"],
                                                     svc["status"]["loadBalancer"]["ingress"]))
    return found


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
@pytest.mark.parametrize("module", MODULES)
def test_verdict_per_scenario(clusters, scenario, module):
    sim = clusters(scenario)
    result = check(sim, module)
    assert (result["id"], result["status"]) == (module, EXPECTED[scenario][MODULES.index(module)]), result["notes"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == [] and ray_objects(sim) == []
    assert gateway_leftovers(sim) == []


def test_ai_stack_traffic_tallies_and_released_address(clusters):
    result = check(clusters("ai-stack"), "ai_inference")
    split = finding(result, "80/20 weighted split observed")[0]
    assert split["passed"] is True and "of 200" in split["detail"] and "+- 9.3 pp" in split["detail"]
    assert finding(result, "header x-model: model-b routed to v2")[0]["detail"].startswith("20 of 20 to v2")
    assert finding(result, "probe Gateway's address released at cleanup")[0]["passed"] is True
    crds = next(e for e in result["evidence"] if e["title"] == "Gateway API CRDs")["content"]
    assert {(c["bundle_version"], c["channel"]) for c in crds} == {("v1.6.1", "standard")}


@pytest.mark.parametrize("scenario, failed", [("route-ignores-weights", "80/20 weighted split observed"),
                                              ("route-ignores-headers", "header x-model: model-b routed to v2"),
                                              ("gateway-not-programmed", "probe Gateway Accepted and Programmed")])
def test_broken_data_planes_name_what_failed(clusters, scenario, failed):
    result = check(clusters(scenario), "ai_inference")
    assert finding(result, failed)[0]["passed"] is False
    # Statuses alone looked fine in each case: the class is Accepted and the route Accepted.
    assert finding(result, "an Accepted GatewayClass")[0]["passed"] is True
    assert finding(result, "probe HTTPRoute Accepted with ResolvedRefs")[0]["passed"] is True
    if scenario == "gateway-not-programmed":
        assert "AddressNotAssigned: No addresses have been assigned to the Gateway" in finding(result, failed)[0]["detail"]


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
@pytest.mark.parametrize("module", MODULES)
def test_passive_and_check_mode_create_nothing(clusters, how, module):
    sim = clusters("kuberay-no-webhook")
    before = int(sim.store.list(("", "namespaces"))[1])
    if how == "passive":
        result = check(sim, module, mode="passive")
    else:
        out = run_module(module, dict(FAST, kubeconfig=sim.kubeconfig), check_mode=True)
        result = out["result"]
    assert result["status"] == PARTIAL and result["mode"] == "passive"
    created = ["%s %s" % (e.gr, e.obj["metadata"]["name"]) for e in sim.store.events_since(before)
               if e.type == "ADDED" and e.gr not in (("", "events"), ("events.k8s.io", "events"))]
    assert created == [] and probe_namespaces(sim) == []


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
        sim.add_user("serving-%s" % mode, "serving-%s-token" % mode)
        admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "serving-%s" % mode}]})
    return sim.kubeconfig_for("serving-%s" % mode)


@pytest.mark.parametrize("mode", ["passive", "active"])
@pytest.mark.parametrize("module", MODULES)
def test_each_mode_runs_with_its_clusterrole_only(clusters, mode, module):
    sim = clusters("kuberay-no-webhook")
    kubeconfig = bind_role(sim, mode)
    out = run_module(module, dict(FAST, kubeconfig=kubeconfig, mode=mode, **EXTRA.get(module, {})))
    assert not out.get("failed"), out.get("msg")
    expected = EXPECTED["kuberay-no-webhook"][MODULES.index(module)] if mode == "active" else PARTIAL
    assert out["result"]["status"] == expected, out["result"]["notes"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == [] and gateway_leftovers(sim) == []


def test_active_run_with_the_passive_role_names_the_missing_rule(clusters):
    sim = clusters("kuberay-no-webhook")
    out = run_module("robust_controller", dict(FAST, kubeconfig=bind_role(sim, "passive")))
    assert out.get("failed") and "lacks the RBAC rule" in out["msg"] and "files/rbac" in out["msg"]


def test_kuberay_sample_rayjob_completes_and_cascades(clusters):
    """KubeRay's own ray-job.sample.yaml: a RayCluster for the job, the submitter Job, Complete/SUCCEEDED;
    deleting the RayJob removes its RayCluster and their pods."""
    import os

    import yaml
    from kubernetes import config, dynamic

    from checks_support import ROOT

    sim = clusters("no-gateway-api")
    client = dynamic.DynamicClient(config.new_client_from_config(sim.kubeconfig))
    path = os.path.join(ROOT, "..", "shared", "fixtures", "upstream", "objects", "kuberay", "v1.4.2", "samples", "ray-job.sample.yaml")
    with open(path, encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    client.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": "rayjob-sample"}})
    for doc in docs:
        client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"]).create(body=doc, namespace="rayjob-sample")
    rayjobs = client.resources.get(api_version="ray.io/v1", kind="RayJob")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = rayjobs.get(name="rayjob-sample", namespace="rayjob-sample").status or {}
        if status.get("jobDeploymentStatus") in ("Complete", "Failed"):
            break
        time.sleep(0.1)
    assert (status.get("jobDeploymentStatus"), status.get("jobStatus")) == ("Complete", "SUCCEEDED"), status
    cluster_name = status["rayClusterName"]
    raycluster = sim.store.get(("ray.io", "rayclusters"), "rayjob-sample", cluster_name)
    assert raycluster["status"]["state"] == "ready"
    assert raycluster["metadata"]["ownerReferences"][0]["kind"] == "RayJob"
    submitter = sim.store.get(("batch", "jobs"), "rayjob-sample", "rayjob-sample")
    assert submitter["spec"]["template"]["spec"]["containers"][0]["command"][:3] == ["ray", "job", "submit"]
    rayjobs.delete(name="rayjob-sample", namespace="rayjob-sample")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (sim.store.list(("ray.io", "rayclusters"), namespace="rayjob-sample")[0] or
                                           [p for p in sim.store.list(("", "pods"), namespace="rayjob-sample")[0]
                                            if "ray.io/cluster" in (p["metadata"].get("labels") or {})]):
        time.sleep(0.1)
    assert ray_objects(sim) == []
    client.resources.get(api_version="v1", kind="Namespace").delete(name="rayjob-sample")
