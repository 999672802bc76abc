"""gang_scheduling and cluster_autoscaling against their scenarios: the verdicts docs/scenarios.md promises,
and a cluster left as it was found (no probe namespace, pod, job, and no probe ClusterQueue/ResourceFlavor).

One simulated cluster per scenario for the whole module (the checks clean up, which these tests verify).
"""
from __future__ import annotations

import pytest

from checks_support import FAST, finding, leftovers, probe_namespaces, run_module, start_sim

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED, NA = "Implemented", "Partially Implemented", "Not Implemented", "N/A"

# scenario -> (gang_scheduling, cluster_autoscaling default, cluster_autoscaling scale_test=true or None when
# not defined); docs/scenarios.md has the same table
EXPECTED = {
    "ai-stack": (IMPLEMENTED, PARTIAL, IMPLEMENTED),
    "no-gang-scheduler": (NOT_IMPLEMENTED, NA, None),
    "no-autoscaler": (IMPLEMENTED, NA, NA),
    "autoscaler-ignores-gpu": (NOT_IMPLEMENTED, NOT_IMPLEMENTED, NOT_IMPLEMENTED),
    "karpenter": (NOT_IMPLEMENTED, PARTIAL, None),
    "volcano": (IMPLEMENTED, NA, None),
    "gang-partial": (PARTIAL, NA, None),
}
GANG = {"gang_window": 3}
# 6 s real is 240 simulated seconds at SPEED 40: four times the scenarios' 60 s scale-up delay / unneeded time
SCALE = {"scale_test": True, "scale_up_timeout": 6, "scale_down_timeout": 6, "pending_timeout": 5}
KUEUE_CLUSTER_TYPES = (("kueue.x-k8s.io", "clusterqueues"), ("kueue.x-k8s.io", "resourceflavors"))


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


def check(sim, module, **args):
    params = dict(FAST, kubeconfig=sim.kubeconfig)
    params.update(args)
    out = run_module(module, params)
    assert not out.get("failed"), out.get("msg")
    assert out["changed"] is False
    return out["result"]


def clean(sim):
    extra = [(gr, o["metadata"]["name"]) for gr in KUEUE_CLUSTER_TYPES if gr in sim.store.types
             for o in sim.store.list(gr)[0]]
    nodes = sorted(n["metadata"]["name"] for n in sim.store.list(("", "nodes"))[0])
    return probe_namespaces(sim) == [] and leftovers(sim) == [] and extra == [], nodes


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_gang_scheduling_verdict(clusters, scenario):
    sim = clusters(scenario)
    result = check(sim, "gang_scheduling", **GANG)
    assert (result["id"], result["status"]) == ("gang_scheduling", EXPECTED[scenario][0]), result["notes"]
    assert clean(sim)[0]


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_cluster_autoscaling_default_verdict(clusters, scenario):
    sim = clusters(scenario)
    result = check(sim, "cluster_autoscaling")
    assert (result["id"], result["status"]) == ("cluster_autoscaling", EXPECTED[scenario][1]), result["notes"]
    if result["status"] == NA:
        assert "fixed size" in result["notes"]


@pytest.mark.parametrize("scenario", sorted(s for s, v in EXPECTED.items() if v[2] and s != "autoscaler-ignores-gpu"))
def test_cluster_autoscaling_scale_test_verdict(clusters, scenario):
    sim = clusters(scenario)
    before = clean(sim)[1]
    result = check(sim, "cluster_autoscaling", **SCALE)
    assert result["status"] == EXPECTED[scenario][2], result["notes"]
    assert "billed" in [e for e in result["evidence"] if e["title"] == "scale test"][0]["content"]["cost"]
    ok, after = clean(sim)
    assert ok and after == before          # the added node went away again


def test_ai_stack_kueue_probe_evidence(clusters):
    result = check(clusters("ai-stack"), "gang_scheduling", **GANG)
    pos = finding(result, "Kueue positive")[0]
    assert pos["passed"] and "2 pods created" in pos["detail"] and "Complete" in pos["detail"]
    neg = finding(result, "Kueue negative")[0]
    assert neg["passed"] and "insufficient quota for nvidia.com/gpu" in neg["detail"] and "0 of 3 pods" in neg["detail"]
    assert "waitForPodsReady is off" in result["notes"]
    events = [e["content"] for e in result["evidence"] if e["title"] == "Kueue positive events"][0]
    assert "Admitted by clusterQueue" in events and "QuotaReserved" in events


def test_volcano_holds_back_the_gang_that_cannot_fit(clusters):
    result = check(clusters("volcano"), "gang_scheduling", **GANG)
    neg = finding(result, "Volcano negative")[0]
    assert neg["passed"] and "none of the 2 gang pods got spec.nodeName while only 1 fit" in neg["detail"]
    events = [e["content"] for e in result["evidence"] if e["title"] == "Volcano negative events"][0]
    assert "tasks in gang unschedulable: pod group is not ready" in events and "Insufficient nvidia.com/gpu" in events
    table = [e["content"] for e in result["evidence"] if e["title"] == "Volcano negative probe pods"][0]
    assert table.count("<none>") == 2
    assert finding(result, "Volcano held-back gang binds once room exists")[0]["passed"]


def test_partial_gang_placement_is_never_implemented(clusters):
    result = check(clusters("gang-partial"), "gang_scheduling", **GANG)
    assert finding(result, "Volcano positive")[0]["passed"]
    neg = finding(result, "Volcano negative")[0]
    assert neg["passed"] is False and "placed part of the gang" in neg["detail"]
    assert "positive-only evidence is not gang scheduling" in result["notes"]


def test_ai_stack_scale_up_lands_the_pending_pod_on_a_new_node(clusters):
    result = check(clusters("ai-stack"), "cluster_autoscaling", **SCALE)
    up = finding(result, "scale test: accelerator pod pending")[0]
    assert up["passed"]
    scale = [e["content"] for e in result["evidence"] if e["title"] == "scale test"][0]
    assert scale["new_nodes"] and not set(scale["new_nodes"]) & set(scale["accelerator_nodes_before"])
    events = [e["content"] for e in result["evidence"] if e["title"] == "scale test events"][0]
    assert "pod triggered scale-up: [{gpu-as 1->2 (max: 3)}]" in events and "ScaleDown" in events


def test_ignored_gpu_pods_name_the_missing_node(clusters):
    result = check(clusters("autoscaler-ignores-gpu"), "cluster_autoscaling", **SCALE)
    assert result["status"] == EXPECTED["autoscaler-ignores-gpu"][2]
    up = finding(result, "scale test: accelerator pod pending")[0]
    assert up["passed"] is False and "waiting for a new accelerator node" in up["detail"]
    events = [e["content"] for e in result["evidence"] if e["title"] == "scale test events"][0]
    assert "NotTriggerScaleUp" in events and "Insufficient nvidia.com/gpu" in events
    assert clean(clusters("autoscaler-ignores-gpu"))[0]


@pytest.mark.parametrize("how", ["passive", "check_mode"])
def test_passive_and_check_mode_create_nothing(clusters, how):
    sim = clusters("ai-stack")
    counts = {gr: len(sim.store.list(gr)[0]) for gr in KUEUE_CLUSTER_TYPES + (("", "namespaces"), ("", "pods"))}
    for module, extra in (("gang_scheduling", GANG), ("cluster_autoscaling", {"scale_test": True})):
        params = dict(FAST, kubeconfig=sim.kubeconfig, **extra)
        if how == "passive":
            params["mode"] = "passive"
        out = run_module(module, params, check_mode=how == "check_mode")
        assert out["result"]["mode"] == "passive"
        assert out["result"]["status"] == PARTIAL
    assert {gr: len(sim.store.list(gr)[0]) for gr in counts} == counts


def test_scheduling_cluster_roles_are_enough(clusters):
    """files/rbac/k8s-ai-conformance-scheduling-{passive,active}.yaml, applied as an administrator would, let
    each mode run through the simulated cluster's real RBAC (active: probes and the scale test included)."""
    import os
    import yaml
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
    from checks_support import ROOT

    sim = clusters("ai-stack")
    admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    for mode in ("passive", "active"):
        role = "k8s-ai-conformance-scheduling-%s" % mode
        with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
            admin.create("rbac.authorization.k8s.io/v1", "clusterroles", yaml.safe_load(handle))
        sim.add_user("sched-%s" % mode, "sched-%s-token" % mode)
        admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sched-%s" % mode}]})
    for module, extra in (("gang_scheduling", GANG), ("cluster_autoscaling", SCALE)):
        passive = run_module(module, dict(FAST, kubeconfig=sim.kubeconfig_for("sched-passive"), mode="passive", **extra))
        assert not passive.get("failed"), passive.get("msg")
        assert passive["result"]["status"] == PARTIAL
        active = run_module(module, dict(FAST, kubeconfig=sim.kubeconfig_for("sched-active"), **extra))
        assert not active.get("failed"), active.get("msg")
        assert active["result"]["status"] == IMPLEMENTED, active["result"]["notes"]
    denied = run_module("gang_scheduling", dict(FAST, kubeconfig=sim.kubeconfig_for("sched-passive"), **GANG))
    assert denied.get("failed") and "docs/rbac.md" in denied["msg"] and "Traceback" not in denied["msg"]
    assert clean(sim)[0]


def test_gang_timeout_names_what_it_waited_for_and_cleans_up(tmp_path):
    """A hung Kueue (its pod Ready, nothing reconciled): the bounded wait names the ClusterQueue it waited
    for, the verdict is Not Implemented and the probe's namespace, ClusterQueue and ResourceFlavor are gone."""
    sim = start_sim("ai-stack", tmp_path, settings={"kueue": {"stopped": True}})
    try:
        result = check(sim, "gang_scheduling", **dict(GANG, admission_timeout=2))
        assert result["status"] == NOT_IMPLEMENTED
        pos = finding(result, "Kueue positive")[0]
        assert pos["passed"] is False and "waiting for ClusterQueue aic-gang-" in pos["detail"]
        assert "to become Active" in pos["detail"]
        assert clean(sim)[0]
    finally:
        sim.stop()


def test_kueue_0_13_serving_only_v1beta1(tmp_path):
    """Kueue <= 0.14 serves kueue.x-k8s.io/v1beta1 only (real 0.13.9 CRDs): the probe builds its objects in
    that version and still gets the all-or-nothing verdict."""
    import os
    import yaml
    from checks_support import ROOT

    scenarios = os.path.join(ROOT, "tests", "simcluster", "scenarios")
    path = tmp_path / "kueue-0.13.yaml"
    path.write_text(yaml.safe_dump({
        "name": "kueue-0.13",
        "include": [os.path.join(scenarios, "conformant.yaml"), os.path.join(scenarios, "blocks", "kueue-controller.yaml")],
        "manifests": [os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "upstream", "crds", "kueue", "v0.13.9")]}))
    sim = start_sim(str(path), tmp_path)
    try:
        result = check(sim, "gang_scheduling", **GANG)
        assert result["status"] == IMPLEMENTED, result["notes"]
        assert finding(result, "Kueue API served")[0]["detail"].startswith("kueue.x-k8s.io/v1beta1:")
        setup = [e["content"] for e in result["evidence"] if e["title"] == "Kueue gang probe setup"][0]
        assert setup["probe objects"]["ClusterQueue"]["apiVersion"] == "kueue.x-k8s.io/v1beta1"
        assert clean(sim)[0]
    finally:
        sim.stop()


def test_kueue_installed_from_its_real_chart(tmp_path):
    """The kueue role's chart (0.19.2, ../shared/fixtures/upstream/charts/kueue) installed with the real helm:
    its templated CRDs, Deployment and manager ConfigMap are what the check recognises and probes."""
    import os
    import subprocess
    from checks_support import ROOT

    sim = start_sim("conformant", tmp_path)
    try:
        chart = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "upstream", "charts", "kueue")
        out = subprocess.run([os.path.join(ROOT, ".tools", "bin", "helm"), "install", "kueue", chart, "-n", "kueue-system",
                              "--create-namespace", "--kubeconfig", sim.kubeconfig, "--wait", "--timeout", "120s"],
                             capture_output=True, text=True, timeout=180, check=False)
        assert out.returncode == 0, out.stderr
        result = check(sim, "gang_scheduling", **GANG)
        assert result["status"] == IMPLEMENTED, result["notes"]
        config = finding(result, "Kueue manager configuration")[0]["detail"]
        assert "waitForPodsReady off" in config and "trainer.kubeflow.org/trainjob" in config
        assert clean(sim)[0]
    finally:
        sim.stop()


def test_wait_for_pods_ready_is_reported_and_modelled(tmp_path):
    """kueue_manager_config {waitForPodsReady: {timeout: 5m, blockAdmission: true}} (as the role's defaults
    document): the notes say physical co-scheduling is on, and the admitted Workload carries PodsReady."""
    import copy
    sim = start_sim("ai-stack", tmp_path)
    try:
        cm = copy.deepcopy(sim.store.get(("", "configmaps"), "kueue-system", "kueue-manager-config"))
        cm["data"]["controller_manager_config.yaml"] += "waitForPodsReady:\n  timeout: 5m\n  blockAdmission: true\n"
        sim.store.update(("", "configmaps"), cm)
        result = check(sim, "gang_scheduling", **GANG)
        assert result["status"] == IMPLEMENTED and "waitForPodsReady is enabled" in result["notes"]
        workload = [e["content"] for e in result["evidence"] if e["title"] == "Kueue positive Workload status"][0]
        ready = [c for c in workload["conditions"] if c["type"] == "PodsReady"]
        assert ready and ready[0]["status"] == "True", workload
        assert clean(sim)[0]
    finally:
        sim.stop()


def test_kueue_on_a_cluster_without_accelerators_uses_cpu_quota(tmp_path):
    """cpu-only plus Kueue: the probe's ClusterQueue covers cpu (100m per pod) and the verdict still rests on
    a gang that fits and one that does not."""
    import os
    import yaml
    from checks_support import ROOT

    scenarios = os.path.join(ROOT, "tests", "simcluster", "scenarios")
    path = tmp_path / "cpu-kueue.yaml"
    path.write_text(yaml.safe_dump({"name": "cpu-kueue", "include": [os.path.join(scenarios, "cpu-only.yaml"),
                                                                     os.path.join(scenarios, "blocks", "kueue.yaml")]}))
    sim = start_sim(str(path), tmp_path)
    try:
        result = check(sim, "gang_scheduling", **GANG)
        assert result["status"] == IMPLEMENTED, result["notes"]
        neg = finding(result, "Kueue negative")[0]
        assert "insufficient quota for cpu" in neg["detail"] and "(300m) > maximum capacity (200m)" in neg["detail"]
        assert clean(sim)[0]
    finally:
        sim.stop()
