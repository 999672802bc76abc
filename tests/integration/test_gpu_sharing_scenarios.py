"""gpu_sharing against its scenarios (docs/scenarios.md, "GPU sharing"): the verdicts per mode, the findings that
explain them, the simulated device plugin's time-slicing (ConfigMap -> capacity, GFD labels, replicas spread over
the GPUs), and a cluster left as it was found. secure_accelerator_access on the time-sliced stack keeps its
same-node isolation test (T3) on an unshared node.

One simulated cluster per scenario for the whole module.
"""
from __future__ import annotations

import pytest

from checks_support import FAST, finding, leftovers, probe_namespaces, run_module, start_sim, writes_since

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED = "Implemented", "Partially Implemented", "Not Implemented"
NODES = ("", "nodes")

# scenario -> (active, passive); docs/scenarios.md has the same table. `ai-stack-1.35` is ai-stack.yaml on v1.35
# without the sharing block (no sharing configured; the DRA driver's shared claim is the only thing shown).
EXPECTED = {
    "gpu-sharing-1.35": (IMPLEMENTED, PARTIAL),
    "gpu-sharing-unapplied": (PARTIAL, NOT_IMPLEMENTED),
    "ai-stack-1.35": (PARTIAL, NOT_IMPLEMENTED),
    "gpu-sharing-mig-1.36": (IMPLEMENTED, PARTIAL),
}
SOURCES = {"ai-stack-1.35": ("ai-stack", {"kubernetesVersion": "v1.35.0"})}


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    started = {}

    def get(name):
        if name not in started:
            scenario, overrides = SOURCES.get(name, (name, {}))
            started[name] = start_sim(scenario, tmp_path_factory.mktemp(name), **overrides)
        return started[name]
    yield get
    for sim in started.values():
        sim.stop()


def check(sim, module="gpu_sharing", **args):
    params = dict(FAST, kubeconfig=sim.kubeconfig)
    params.update(args)
    out = run_module(module, params)
    assert not out.get("failed"), out.get("msg")
    assert out["changed"] is False
    return out["result"]


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
@pytest.mark.parametrize("mode", ("active", "passive"))
def test_verdict_per_scenario(clusters, scenario, mode):
    sim = clusters(scenario)
    result = check(sim, mode=mode)
    assert (result["id"], result["mode"]) == ("gpu_sharing", mode)
    assert result["status"] == EXPECTED[scenario][0 if mode == "active" else 1], (result["summary"], result["notes"])
    assert probe_namespaces(sim) == [] and leftovers(sim) == []


def test_time_sliced_node_as_the_device_plugin_and_gfd_advertise_it(clusters):
    node = clusters("gpu-sharing-1.35").store.get(NODES, None, "gpu-ts-0")
    labels = node["metadata"]["labels"]
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"          # 2 T4s x 4 replicas (ConfigMap key any)
    assert (labels["nvidia.com/gpu.count"], labels["nvidia.com/gpu.replicas"]) == ("2", "4")
    assert labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
    assert labels["nvidia.com/gpu.product"] == "Tesla-T4-SHARED"
    plain = clusters("gpu-sharing-1.35").store.get(NODES, None, "gpu-0")
    assert plain["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert "nvidia.com/gpu.sharing-strategy" not in plain["metadata"]["labels"]   # no config: the operator's plugin


def test_active_run_shows_three_pods_on_two_gpus(clusters):
    result = check(clusters("gpu-sharing-1.35"))
    shown = finding(result, "time-slicing: physical + 1 pods on gpu-ts-0")
    assert shown and shown[0]["passed"] is True
    assert "3 pods, each with one GPU, ran at once on 2 physical GPU(s) (2 distinct UUIDs)" == shown[0]["detail"]
    table = next(e["content"] for e in result["evidence"] if e["title"] == "probe pods (time-slicing)")
    rows = [line.split() for line in table.splitlines()[1:]]
    assert len(rows) == 3 and set(r[2] for r in rows) == {"gpu-ts-0"} and len(set(r[3] for r in rows)) == 2
    config = finding(result, "device plugin sharing config")[0]
    assert config["detail"] == "gpu-operator/time-slicing-config key any: time-slicing x4"


def test_passive_and_check_mode_create_nothing(clusters):
    sim = clusters("gpu-sharing-1.35")
    before = sim.store.rv
    out = run_module("gpu_sharing", dict(FAST, kubeconfig=sim.kubeconfig), check_mode=True)
    result = out["result"]
    assert result["mode"] == "passive" and result["status"] == PARTIAL
    assert "check mode" in finding(result, "sharing demonstrated with pods")[0]["detail"]
    assert writes_since(sim, before) == []


def test_unapplied_config_is_named_in_the_notes(clusters):
    result = check(clusters("gpu-sharing-unapplied"), mode="passive")
    assert finding(result, "time-slicing/MPS advertised")[0]["passed"] is False
    assert "gpu-operator/time-slicing-config (key any)" in result["notes"]
    assert "no node advertises shared GPUs" in result["notes"]
    policy = next(e["content"] for e in result["evidence"] if e["title"] == "sharing configuration")["clusterPolicy"]
    assert policy["config"] == {"name": "time-slicing-config", "default": "any"}


def test_shared_claim_alone_is_only_partial(clusters):
    result = check(clusters("ai-stack-1.35"))
    shown = finding(result, "DRA: two pods sharing one ResourceClaim see the same GPU")[0]
    assert shown["passed"] is True and shown["detail"].startswith("both pods of the shared claim saw GPU-")
    assert "not counted as a GPU sharing strategy on its own" in result["notes"]
    assert "Configure a GPU sharing strategy" in result["notes"]


def test_forced_time_slicing_strategy_without_shared_nodes_is_skipped(clusters):
    result = check(clusters("ai-stack-1.35"), strategy="time-slicing")
    assert result["status"] == NOT_IMPLEMENTED
    assert finding(result, "sharing demonstrated with pods")[0]["detail"].startswith("skipped: no schedulable node")


def test_isolation_check_keeps_t3_on_an_unshared_node(clusters):
    sim = clusters("gpu-sharing-1.35")
    result = check(sim, "secure_accelerator_access")
    assert result["status"] == IMPLEMENTED, result["notes"]
    t3 = [f for f in result["findings"] if f["name"].startswith("T3")]
    assert t3 and t3[0]["passed"] is True and "gpu-ts-0" not in t3[0]["detail"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == []


ROLES = {"passive": "k8s-ai-conformance-accelerators-passive", "active": "k8s-ai-conformance-accelerators-active"}


def test_shipped_accelerator_roles_are_enough(clusters):
    """files/rbac/: the accelerator roles carry gpu_sharing's rules (DaemonSets, the config ConfigMap, the shared
    claim); a role without the ConfigMap rule gets a failure naming it."""
    import os

    import yaml

    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
    from checks_support import ROOT

    sim = clusters("gpu-sharing-1.35")
    admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    roles = {}
    for mode, role in ROLES.items():
        with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
            roles[mode] = yaml.safe_load(handle)
        admin.create("rbac.authorization.k8s.io/v1", "clusterroles", roles[mode])
    less = dict(roles["passive"], metadata={"name": "sharing-less"},
                rules=[r for r in roles["passive"]["rules"] if r.get("resources") != ["configmaps"]])
    admin.create("rbac.authorization.k8s.io/v1", "clusterroles", less)
    for user, role in (("passive", ROLES["passive"]), ("active", ROLES["active"]), ("less", "sharing-less")):
        sim.add_user("%s-user" % user, "%s-token" % user)
        admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "%s-user" % user}]})

    def run(user, mode):
        return run_module("gpu_sharing", dict(FAST, kubeconfig=sim.kubeconfig_for("%s-user" % user), mode=mode))
    assert run("passive", "passive")["result"]["status"] == PARTIAL
    assert run("active", "active")["result"]["status"] == IMPLEMENTED
    out = run("less", "passive")
    assert out["failed"] and '{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}' in out["msg"]
    assert "Traceback" not in out["msg"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == []


def test_mig_node_as_the_device_plugin_and_gfd_advertise_it(clusters):
    node = clusters("gpu-sharing-mig-1.36").store.get(NODES, None, "gpu-mig-0")
    labels = node["metadata"]["labels"]
    assert node["status"]["allocatable"]["nvidia.com/mig-1g.5gb"] == "14"   # mig-parted all-1g.5gb: 7 per A100-40GB
    assert "nvidia.com/gpu" not in node["status"]["allocatable"]            # mixed: MIG GPUs are not whole GPUs
    assert (labels["nvidia.com/mig.strategy"], labels["nvidia.com/mig.config.state"]) == ("mixed", "success")
    assert labels["nvidia.com/mig-1g.5gb.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"


def test_mig_probe_pods_get_their_own_mig_device(clusters):
    sim = clusters("gpu-sharing-mig-1.36")
    result = check(sim)
    shown = finding(result, "MIG: pods on gpu-mig-0 list MIG devices")[0]
    assert shown["passed"] is True and "each got their own MIG device (1g.5gb)" in shown["detail"]
    assert finding(result, "MIG resources advertised")[0]["detail"] == "gpu-mig-0 (nvidia.com/mig-1g.5gb=14)"
    assert next(e["content"] for e in result["evidence"] if e["title"] == "sharing configuration")["migManager"] == \
        ["gpu-operator/nvidia-mig-manager"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == []


def test_dcgm_exporter_serves_gpu_instance_series_on_the_mig_node(clusters):
    """dcgm-exporter's GPU-instance entities: profiling counters per MIG instance, labelled GPU_I_PROFILE and
    GPU_I_ID, beside the parent GPUs' series."""
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl

    sim = clusters("gpu-sharing-mig-1.36")
    conn = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    pod = next(p for p in conn.list("v1", "pods", namespace="gpu-operator", label_selector="app=nvidia-dcgm-exporter")
               if p["spec"].get("nodeName") == "gpu-mig-0")
    status, text = conn.proxy_get("pod", "gpu-operator", pod["metadata"]["name"], 9400, "/metrics")
    assert status == 200
    instances = [line for line in text.splitlines() if line.startswith("DCGM_FI_PROF_GR_ENGINE_ACTIVE{")
                 and 'GPU_I_PROFILE="1g.5gb"' in line]
    assert len(instances) == 14 and len(set(line.split('GPU_I_ID="')[1].split('"')[0] for line in instances)) == 7
    assert not [line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_GPU_UTIL{") and "GPU_I_" in line]


def test_a_label_naming_a_missing_config_leaves_the_running_plugin_as_it_was(clusters):
    """config-manager's sidecar fails on nvidia.com/device-plugin.config=<missing key>; the plugin keeps its config
    (the device-plugin controller's reconcile of the relabelled node is run here, synchronously)."""
    import copy

    sim = clusters("gpu-sharing-1.35")
    plugin = next(c for c in sim.controllers.controllers if c.name == "accelerators-device-plugin")
    node = copy.deepcopy(sim.store.get(NODES, None, "gpu-ts-0"))
    node["metadata"]["labels"]["nvidia.com/device-plugin.config"] = "tesla-t4"
    sim.store.update(NODES, node)
    try:
        plugin.reconcile("gpu-ts-0")
        current = sim.store.get(NODES, None, "gpu-ts-0")
        assert current["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert current["metadata"]["labels"]["nvidia.com/gpu.replicas"] == "4"
    finally:
        node = copy.deepcopy(sim.store.get(NODES, None, "gpu-ts-0"))
        node["metadata"]["labels"]["nvidia.com/device-plugin.config"] = "any"
        sim.store.update(NODES, node)
