"""The ClusterRoles in files/rbac/ are enough for the accelerator checks, and a user without them gets a
failure that names the missing permission (docs/rbac.md).

The roles and bindings are created through the API as an administrator would (kubectl apply -f ...),
and the checks run with each user's own kubeconfig against the simulated cluster's real RBAC.
"""
from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl

from checks_support import FAST, ROOT, leftovers, run_module, start_sim
from fault_matrix import settle_leftovers

MODULES = ("dra_support", "secure_accelerator_access", "accelerator_metrics")
EXTRA = {"dra_support": {"unschedulable_window": 2}, "accelerator_metrics": {"load_seconds": 60}}
ROLES = {"passive": "k8s-ai-conformance-accelerators-passive", "active": "k8s-ai-conformance-accelerators-active"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_sim("conformant", tmp_path_factory.mktemp("rbac"))
    admin = cl.Cluster.connect({"kubeconfig": cluster.kubeconfig})
    for mode, role in ROLES.items():
        with open(os.path.join(ROOT, "files", "rbac", role + ".yaml"), encoding="utf-8") as handle:
            admin.create("rbac.authorization.k8s.io/v1", "clusterroles", yaml.safe_load(handle))
        cluster.add_user("%s-user" % mode, "%s-token" % mode)
        admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "%s-user" % mode}]})
    yield cluster
    cluster.stop()


def run_as(sim, user, module, **extra):
    params = dict(FAST, kubeconfig=sim.kubeconfig_for(user), **EXTRA.get(module, {}))
    params.update(extra)
    return run_module(module, params)


@pytest.mark.parametrize("module", MODULES)
def test_passive_role_runs_passive_checks(sim, module):
    out = run_as(sim, "passive-user", module, mode="passive")
    assert not out.get("failed"), out.get("msg")
    assert out["result"]["status"] == "Partially Implemented"


@pytest.mark.parametrize("module", MODULES)
def test_active_role_runs_active_checks(sim, module):
    out = run_as(sim, "active-user", module)
    assert not out.get("failed"), out.get("msg")
    assert out["result"]["status"] == "Implemented"
    assert leftovers(sim) == []


def test_passive_role_is_not_enough_for_probes(sim):
    out = run_as(sim, "passive-user", "secure_accelerator_access")
    assert out["failed"]
    # the passive role can neither list nor delete namespaces: whichever the probe needs first is named
    # (the sweep of earlier runs' leftovers lists them; the rights check before creating asks for delete)
    named = [verb for verb in ("list", "delete")
             if '{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["%s"]}' % verb in out["msg"]]
    assert named, out["msg"]
    assert "docs/rbac.md" in out["msg"] and "Traceback" not in out["msg"]
    assert leftovers(sim) == []


def test_user_without_the_roles_gets_a_forbidden_naming_the_rule(sim):
    out = run_as(sim, "nobody", "accelerator_metrics", mode="passive")
    assert out["failed"]
    assert 'cannot list resource "nodes"' in out["msg"]
    assert '{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}' in out["msg"]


def test_accelerator_info_runs_with_the_passive_role_and_names_the_rule_without_it(sim):
    """The conform role runs accelerator_info before the checks, with the same user: the passive role is enough,
    and a user without it learns which rule to grant."""
    out = run_module("accelerator_info", {"kubeconfig": sim.kubeconfig_for("passive-user")})
    assert not out.get("failed"), out.get("msg")
    assert out["vendors"] == ["nvidia"]
    out = run_module("accelerator_info", {"kubeconfig": sim.kubeconfig_for("nobody")})
    assert out["failed"] and "Traceback" not in out["msg"]
    assert out["msg"].startswith("accelerator_info: ") and 'cannot list resource "nodes"' in out["msg"]
    assert '{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}' in out["msg"]


# ----------------------------------------------------------------------------------------- one rule less (issue 11)
def rules_minus_one(role_file):
    """(group, resource, verb, rules of the role without that one permission) for every permission it grants
    on a resource (its nonResourceURLs rule is discovery, exercised by every other test)."""
    with open(os.path.join(ROOT, "files", "rbac", role_file + ".yaml"), encoding="utf-8") as handle:
        rules = yaml.safe_load(handle)["rules"]
    for index, rule in enumerate(rules):
        for resource in rule.get("resources") or []:
            for verb in rule["verbs"]:
                rest = [r for i, r in enumerate(rules) if i != index]
                others = [r for r in rule["resources"] if r != resource]
                if others:
                    rest.append(dict(rule, resources=others))
                verbs = [v for v in rule["verbs"] if v != verb]
                if verbs:
                    rest.append(dict(rule, resources=[resource], verbs=verbs))
                yield rule["apiGroups"][0], resource, verb, rest


@pytest.fixture(scope="module")
def minus(sim):
    """A user bound to the ClusterRole `minus`, whose rules each test case sets."""
    admin = cl.Cluster.connect({"kubeconfig": sim.kubeconfig})
    sim.add_user("minus-user", "minus-token")
    admin.create("rbac.authorization.k8s.io/v1", "clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "minus"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "minus"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "minus-user"}]})

    def set_rules(rules):
        admin.delete("rbac.authorization.k8s.io/v1", "clusterroles", "minus")
        admin.create("rbac.authorization.k8s.io/v1", "clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "minus"},
            "rules": rules})
    return set_rules


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_each_rule_of_the_shipped_role_is_needed_or_unused_never_silently_dropped(sim, minus, mode):
    """With one permission less, each check fails with a message naming exactly that rule, or (when it does
    not use the permission on this cluster) gives the verdict the full role gives; it never leaves objects
    behind (a user who may not delete or get namespaces gets nothing created)."""
    expected = "Implemented" if mode == "active" else "Partially Implemented"
    needed = {module: [] for module in MODULES}
    problems = []
    for group, resource, verb, rules in rules_minus_one(ROLES[mode]):
        minus(rules)
        rule = json.dumps({"apiGroups": [group], "resources": [resource], "verbs": [verb]}, sort_keys=True)
        for module in MODULES:
            out = run_as(sim, "minus-user", module, mode=mode)
            if out.get("failed"):
                if rule in out["msg"] and "docs/rbac.md" in out["msg"] and "Traceback" not in out["msg"]:
                    needed[module].append("%s %s" % (verb, resource))
                else:
                    problems.append("without %s, %s failed naming something else: %s" % (rule, module, out["msg"]))
            elif out["result"]["status"] != expected:
                problems.append("without %s, %s said %s" % (rule, module, out["result"]["status"]))
            left = settle_leftovers(sim, 10)
            if left:
                problems.append("without %s, %s left %s" % (rule, module, left))
    assert not problems, "\n".join(problems)
    # each check really depends on the role: these permissions are used on every cluster
    for module in MODULES:
        assert "list nodes" in needed[module], needed
        if mode == "active":
            assert {"create namespaces", "delete namespaces", "get namespaces", "create pods"} <= set(needed[module])
    assert "get pods/proxy" in needed["accelerator_metrics"] and "create jobs" in needed["dra_support"] or \
        mode == "passive"
