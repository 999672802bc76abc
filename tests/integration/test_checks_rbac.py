"""The ClusterRoles in files/rbac/ are enough for the accelerator checks, and a user without them gets a
failure that names the missing permission (docs/rbac.md).

The roles and bindings are created through the API as an administrator would (kubectl apply -f ...),
and the checks run with each user's own kubeconfig against the simulated cluster's real RBAC.
"""
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl

from checks_support import FAST, ROOT, leftovers, run_module, start_sim

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
    assert 'cannot list resource "namespaces"' in out["msg"]
    assert '{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}' in out["msg"]
    assert "docs/rbac.md" in out["msg"] and "Traceback" not in out["msg"]


def test_user_without_the_roles_gets_a_forbidden_naming_the_rule(sim):
    out = run_as(sim, "nobody", "accelerator_metrics", mode="passive")
    assert out["failed"]
    assert 'cannot list resource "nodes"' in out["msg"]
    assert '{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}' in out["msg"]
