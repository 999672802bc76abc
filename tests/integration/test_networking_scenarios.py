"""high_performance_networking against the simulated cluster: DRANET's slices, a claimed RDMA NIC inside the pod,
the unsatisfiable claim, ping over the secondary addresses (docs/scenarios.md, "High-performance networking"),
the broken variants, check mode, the shipped RBAC roles, and no probe object left behind."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL)

from checks_support import FAST, ROOT, leftovers, probe_namespaces, run_module, start_sim
from test_checks_rbac import rules_minus_one
from test_conform_playbook import requirements, run_playbook

MODULE = "high_performance_networking"
ARGS = dict(FAST, pending_window=2)
# scenario -> (active, passive)
EXPECTED = {
    "networking-1.36": (IMPLEMENTED, PARTIAL),
    "networking-no-nri": (PARTIAL, PARTIAL),
    "networking-multus-only": (PARTIAL, PARTIAL),
    "cpu-only": (NOT_APPLICABLE, NOT_APPLICABLE),
}
ROLES = {"passive": "k8s-ai-conformance-accelerators-passive", "active": "k8s-ai-conformance-accelerators-active"}


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


@pytest.fixture(scope="module")
def results(clusters):
    """The module's result per (scenario, mode), run once (the verdict test and the detailed tests share it)."""
    done = {}

    def get(scenario, mode="active"):
        if (scenario, mode) not in done:
            sim = clusters(scenario)
            done[(scenario, mode)] = run(sim, mode=mode)
            assert probe_namespaces(sim) == [] and leftovers(sim) == []
        return done[(scenario, mode)]
    return get


def finding(result, name):
    found = [f for f in result["findings"] if f["name"] == name]
    assert found, [f["name"] for f in result["findings"]]
    return found[0]


def evidence(result, title):
    found = [e["content"] for e in result["evidence"] if e["title"] == title]
    assert found, [e["title"] for e in result["evidence"]]
    return found[0]


def run(sim, **extra):
    out = run_module(MODULE, dict(ARGS, kubeconfig=sim.kubeconfig, **extra))
    assert not out.get("failed"), out.get("msg")
    assert out["changed"] is False
    return out["result"]


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_verdicts(results, scenario):
    for mode, want in zip(("active", "passive"), EXPECTED[scenario]):
        result = results(scenario, mode)
        assert (mode, result["status"]) == (mode, want), result["notes"]
        assert result["mode"] == mode


def test_implemented_shows_the_interface_the_pending_pod_and_the_ping(results):
    result = results("networking-1.36")
    slices = evidence(result, "DRANET NICs (ResourceSlices of dra.net)")
    assert "pci-0000-03-00-0  rdma0   True  mlx5_0" in slices and "gpu-1" in slices
    assert "rdma0 192.168.10.1" in finding(result, "pod got a claimed NIC as a secondary interface")["detail"]
    assert "Unschedulable" in finding(result, "unsatisfiable NIC claim stays Pending")["detail"]
    ping = evidence(result, "pod aic-nic-b: ip -o addr; ping")
    assert "3 packets transmitted, 3 packets received, 0% packet loss" in ping and "AIC_PING_EXIT: 0" in ping
    link = evidence(result, "pod aic-nic-a: ip -o link; ip -o addr; ls /dev/infiniband")
    assert "3: rdma0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9000" in link and "uverbs0" in link
    status = evidence(result, "pod aic-nic-a's ResourceClaim status")
    assert status["devices"][0]["networkData"]["interfaceName"] == "rdma0"
    assert status["devices"][0]["conditions"][0]["reason"] == "NetworkDeviceReady"
    nodes = {finding(result, "scheduled onto a node that has the NIC")["detail"].rsplit(" ", 1)[-1],
             finding(result, "pod-to-pod data over secondary addresses")["detail"].split(" ", 1)[0]}
    assert nodes == {"gpu-0", "gpu-1"}


def test_without_nri_the_interface_never_reaches_the_pod(results):
    result = results("networking-no-nri")
    assert finding(result, "scheduled onto a node that has the NIC")["passed"] is True
    assert finding(result, "pod got a claimed NIC as a secondary interface")["passed"] is False
    assert finding(result, "pod-to-pod data over secondary addresses")["passed"] is False
    assert "enable NRI" in result["notes"]
    assert evidence(result, "pod aic-nic-a's ResourceClaim status")["devices"] == []


def test_multus_only_names_the_mechanism(results):
    result = results("networking-multus-only")
    assert finding(result, "Multus NetworkAttachmentDefinitions")["detail"] == "1: default/rdma-net"
    assert "not through DRA" in result["summary"] and "DRANET" in result["notes"]


def test_no_hardware_is_na_unless_expected(clusters, results):
    assert results("cpu-only")["notes"].startswith("N/A:")
    assert run(clusters("cpu-only"), expect_hardware=True)["status"] == NOT_IMPLEMENTED


def test_impossible_device_class_option_skips_the_probe(clusters):
    sim = clusters("networking-1.36")
    result = run(sim, device_class="no-such-class")
    assert result["status"] == PARTIAL and "no-such-class" in result["summary"]
    assert probe_namespaces(sim) == []


def test_check_mode_creates_nothing(clusters):
    sim = clusters("networking-1.36")
    rv = sim.store.rv
    out = run_module(MODULE, dict(ARGS, kubeconfig=sim.kubeconfig), check_mode=True)
    assert out["result"]["mode"] == "passive" and out["result"]["status"] == PARTIAL
    assert not [e for e in sim.store.events_since(rv)
                if e.type == "ADDED" and e.gr in (("", "namespaces"), ("", "pods"), ("resource.k8s.io", "resourceclaimtemplates"))]


def test_shipped_roles_are_enough(clusters):
    """files/rbac/: the accelerator roles run this check, passive (Multus NADs listed too) and active."""
    for scenario, cases in (("networking-1.36", (("passive", PARTIAL), ("active", IMPLEMENTED))),
                            ("networking-multus-only", (("passive", PARTIAL),))):
        sim = clusters(scenario)
        admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
        for mode, want in cases:
            role, user = ROLES[mode], "hpn-%s" % mode
            with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
                admin.create("rbac.authorization.k8s.io/v1", "clusterroles", yaml.safe_load(handle))
            sim.add_user(user, user + "-token")
            admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
            out = run_module(MODULE, dict(ARGS, kubeconfig=sim.kubeconfig_for(user), mode=mode))
            assert not out.get("failed"), out.get("msg")
            assert out["result"]["status"] == want, out["result"]["notes"]
            assert leftovers(sim) == []
    out = run_module(MODULE, dict(ARGS, kubeconfig=clusters("networking-1.36").kubeconfig_for("nobody"), mode="passive"))
    assert out["failed"] and "docs/rbac.md" in out["msg"] and "Traceback" not in out["msg"]


@pytest.mark.slow(seconds=18)
def test_conform_role_writes_the_verdict_into_the_1_36_submission(clusters, tmp_path):
    """playbooks/conform.yml with conform_checks=high_performance_networking: the role's task passes its options,
    and the 1.36 PRODUCT.yaml carries the verdict with its evidence file."""
    sim = clusters("networking-1.36")
    run = run_playbook(sim.kubeconfig, str(tmp_path), "conform_checks=high_performance_networking",
                       "conform_network_pending_window=2", "conform_wait_sleep=0.2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    product = yaml.safe_load((tmp_path / "v1.36" / "simulated-ai-cluster" / "PRODUCT.yaml").read_text())
    req = requirements(product)["high_performance_networking"]
    assert (req["level"], req["status"]) == ("SHOULD", IMPLEMENTED)
    assert req["evidence"] and all((tmp_path / "v1.36" / "simulated-ai-cluster" / e).is_file() for e in req["evidence"])
    assert leftovers(sim) == [] and probe_namespaces(sim) == []


def test_each_passive_rule_is_needed_or_unused(clusters):
    """With one permission of the passive accelerator role less, the passive check on the Multus cluster fails
    naming exactly that rule, or gives the full role's verdict; the rules it reads are needed."""
    sim = clusters("networking-multus-only")
    admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    sim.add_user("hpn-minus", "hpn-minus-token")
    admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "hpn-minus"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "hpn-minus"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "hpn-minus"}]})
    needed, problems = [], []
    for group, resource, verb, rules in rules_minus_one(ROLES["passive"]):
        admin.delete("rbac.authorization.k8s.io/v1", "clusterroles", "hpn-minus")
        admin.create("rbac.authorization.k8s.io/v1", "clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "hpn-minus"},
            "rules": rules})
        rule = json.dumps({"apiGroups": [group], "resources": [resource], "verbs": [verb]}, sort_keys=True)
        out = run_module(MODULE, dict(ARGS, kubeconfig=sim.kubeconfig_for("hpn-minus"), mode="passive"))
        if out.get("failed"):
            if rule in out["msg"] and "docs/rbac.md" in out["msg"] and "Traceback" not in out["msg"]:
                needed.append("%s %s" % (verb, resource))
            else:
                problems.append("without %s: %s" % (rule, out["msg"]))
        elif out["result"]["status"] != PARTIAL:
            problems.append("without %s: %s" % (rule, out["result"]["status"]))
    assert problems == []
    assert sorted(needed) == ["list deviceclasses", "list network-attachment-definitions", "list nodes",
                              "list resourceslices"]
