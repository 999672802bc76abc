"""cluster.py without a cluster: paths, RBAC rule hints, waits, leftover detection, connection errors.

What needs an API server (401, 403, discovery, paging, proxy, probe namespaces) is tested against the
simulated cluster in tests/integration/test_checks_cluster.py.
"""
from __future__ import annotations

import re
import time

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl


@pytest.mark.parametrize("args, path", [
    (("v1", "pods", "ns"), "/api/v1/namespaces/ns/pods"),
    (("v1", "nodes"), "/api/v1/nodes"),
    (("resource.k8s.io/v1beta2", "resourceslices"), "/apis/resource.k8s.io/v1beta2/resourceslices"),
    (("batch/v1", "jobs", "x"), "/apis/batch/v1/namespaces/x/jobs"),
])
def test_collection_paths(args, path):
    assert cl.collection_path(*args) == path


def test_object_paths_and_rules():
    assert cl.object_path("v1", "pods", "p", "ns", "log") == "/api/v1/namespaces/ns/pods/p/log"
    assert cl.missing_rule("resource.k8s.io/v1", "resourceclaims", "create") == {
        "apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims"], "verbs": ["create"]}
    assert cl.missing_rule("v1", "pods", "get", "proxy") == {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]}


def test_probe_namespace_names_are_dns_labels_and_unique():
    names = {cl.probe_namespace_name("secure_accelerator_access") for _i in range(20)}
    assert len(names) == 20
    for name in names:
        assert re.match(r"^aic-secure-accelerator-access-[a-z0-9]{5}$", name) and len(name) <= 63


def namespace(deadline=None, labelled=True, terminating=False):
    meta = {"name": "aic-x-abcde", "labels": {cl.MANAGED_BY_LABEL: cl.MANAGED_BY_VALUE} if labelled else {},
            "annotations": {cl.DEADLINE_ANNOTATION: cl.rfc3339(deadline)} if deadline is not None else {}}
    if terminating:
        meta["deletionTimestamp"] = cl.rfc3339(time.time())
    return {"metadata": meta}


def test_leftovers_are_only_finished_runs_of_ours():
    now = time.time()
    assert cl.is_leftover(namespace(now - cl.LEFTOVER_GRACE_SECONDS - 60), now)
    assert not cl.is_leftover(namespace(now + 600), now)                          # a live run
    assert not cl.is_leftover(namespace(now - 30), now)                           # just past, maybe cleaning up
    assert not cl.is_leftover(namespace(None), now)                               # no deadline: never ours to judge
    assert not cl.is_leftover(namespace(now - 3600, labelled=False), now)         # someone else's namespace
    assert not cl.is_leftover(namespace(now - 3600, terminating=True), now)       # already going


def test_wait_until_returns_the_object_that_satisfied_the_predicate():
    values = iter([1, 2, 3, 4])
    assert cl.wait_until("three", lambda: next(values), lambda v: v >= 3, timeout=5, sleep=0.01) == 3


def test_wait_until_timeout_names_what_and_last_seen():
    with pytest.raises(cl.WaitTimeout) as err:
        cl.wait_until("pod p to finish", lambda: {"phase": "Pending"}, lambda obj: False, timeout=0.05, sleep=0.01,
                      summarize=lambda obj: "phase=%s" % obj["phase"])
    assert "waiting for pod p to finish; last seen: phase=Pending" in str(err.value)
    assert "Raise wait_timeout" in str(err.value)
    assert err.value.last == {"phase": "Pending"}


def test_deadline_bounds_waits():
    deadline = cl.Deadline(0)
    assert deadline.expired() and deadline.bound(300) == 0
    with pytest.raises(cl.WaitTimeout):
        cl.wait_until("x", lambda: None, lambda obj: False, timeout=300, sleep=1, deadline=deadline)
    assert cl.Deadline(100).bound(5) == 5


def test_missing_kubeconfig_names_the_option():
    with pytest.raises(cl.ConnectionConfigError) as err:
        cl.Cluster.connect({"kubeconfig": "/nonexistent/kubeconfig"})
    assert "kubeconfig file /nonexistent/kubeconfig does not exist" in str(err.value)
    assert "K8S_AUTH_KUBECONFIG" in str(err.value)


def test_unknown_context_is_a_config_error(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                                    "contexts": [], "current-context": ""}))
    with pytest.raises(cl.ConnectionConfigError) as err:
        cl.Cluster.connect({"kubeconfig": str(path), "context": "nope"})
    assert "cannot use the Kubernetes connection settings" in str(err.value)


def test_unreachable_api_names_the_url(tmp_path):
    # Port 9 on 127.0.0.1 refuses connections: a real connection attempt, no mock.
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    with pytest.raises(cl.UnreachableError) as err:
        # connect() may not touch the network (kubernetes.core caches discovery on disk); version() does
        cl.Cluster.connect({"kubeconfig": str(path)}).version()
    assert "https://127.0.0.1:9" in str(err.value)
    assert "cannot reach the Kubernetes API" in str(err.value)
