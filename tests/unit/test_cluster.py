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
    assert "context nope is not in the kubeconfig (its contexts: none)" in str(err.value)
    assert "K8S_AUTH_CONTEXT" in str(err.value)


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


# ----------------------------------------------------------------------------------------- faults (issue 11)
def test_leftover_of_a_dead_process_on_this_machine_is_swept_at_once():
    now = time.time()
    live = namespace(now + 600)
    live["metadata"]["annotations"][cl.OWNER_ANNOTATION] = cl.owner_id()
    assert cl.owner_id() and not cl.owner_gone(cl.owner_id())                    # this very process
    assert not cl.is_leftover(live, now)
    machine = cl.owner_id().split("/")[0]
    dead = namespace(now + 600)
    # pid 1 runs, but it did not start at tick 1 on this boot: the pid was reused, the owner is gone
    dead["metadata"]["annotations"][cl.OWNER_ANNOTATION] = "%s/1/1" % machine
    assert cl.owner_gone("%s/1/1" % machine) and cl.is_leftover(dead, now)
    foreign = namespace(now + 600)
    foreign["metadata"]["annotations"][cl.OWNER_ANNOTATION] = "0123456789abcdef/1/1"   # another machine: unknown
    assert not cl.is_leftover(foreign, now)


class Err(cl.ApiException):
    """A real kubernetes ApiException with a status and headers, as the client raises it."""

    def __init__(self, status, retry_after=None):
        super(Err, self).__init__(status=status, reason="x")
        self.headers = {"Retry-After": retry_after} if retry_after is not None else {}


POLICY = cl.RetryPolicy(attempts=10, base=0.1, cap=4.0, retry_after_cap=10.0, budget=45.0)


@pytest.mark.parametrize("err, method, retry, retried", [
    (Err(429, "2"), "POST", True, True),            # refused unprocessed: any method
    (Err(503, "1"), "POST", True, True),            # the server asks to come back: client-go retries
    (Err(503), "GET", True, True),                  # idempotent
    (Err(503), "POST", True, False),                # may have been applied: not without "safe"
    (Err(503), "POST", "safe", True),
    (Err(504), "DELETE", True, True),
    (Err(500), "GET", True, False),                 # a real answer (often a webhook's)
    (Err(404), "GET", True, False),
    (Err(503), "GET", "proxy", False),              # the proxied target's own answer
    (Err(429, "1"), "GET", "proxy", True),
    (Err(429, "1"), "GET", False, False),
    (cl.Urllib3HTTPError("Connection aborted"), "GET", True, True),
    (cl.Urllib3HTTPError("Connection aborted"), "POST", True, False),
    (cl.Urllib3SSLError("CERTIFICATE_VERIFY_FAILED"), "GET", True, False),
])
def test_retry_decision(err, method, retry, retried):
    assert (cl.retry_decision(err, method, 1, retry, 0.0, POLICY) is not None) is retried


def test_retry_waits_what_retry_after_asks_within_bounds():
    assert cl.retry_decision(Err(429, "3"), "GET", 1, True, 0.0, POLICY) == 3.0
    assert cl.retry_decision(Err(429, "600"), "GET", 1, True, 0.0, POLICY) == 10.0        # capped
    assert cl.retry_decision(Err(429, "3"), "GET", 1, True, 44.0, POLICY) == pytest.approx(1.0)   # budget left
    assert cl.retry_decision(Err(429, "3"), "GET", 10, True, 0.0, POLICY) is None          # attempts used up
    assert cl.retry_decision(Err(429, "3"), "GET", 2, True, 45.0, POLICY) is None          # budget used up
    delays = [POLICY.backoff(n) for n in range(1, 12)]
    assert all(0.05 <= d <= 4.0 for d in delays) and POLICY.backoff(8) >= 2.0            # grows, capped


@pytest.mark.parametrize("content, message", [
    (b"apiVersion: v1\nusers:\n- name: u\n  user: {token: s3cr3t-t0ken-value, client-key-data: [x\n",
     "not valid YAML (expected ',' or ']', but got '<stream end>' at line 5, column 1)"),   # 4 lines, then the end
    (b"apiVersion: v1\nusers: [{name: u, user: {token: s3cr3t-t0ken-value}}]\n\xff\xfe\n", "not UTF-8 text (byte"),
    (b"s3cr3t-t0ken-value\x00\n", "not valid YAML (special characters are not allowed at character"),
    (b"- s3cr3t-t0ken-value\n", "not a kubeconfig (expected a mapping with clusters, users and contexts)"),
    (b"", "not a kubeconfig"),
])
def test_bad_kubeconfig_files_name_the_fix_and_never_quote_content(tmp_path, content, message):
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    with pytest.raises(cl.ConnectionConfigError) as err:
        cl.Cluster.connect({"kubeconfig": str(path)})
    assert message in str(err.value)
    assert "kubectl config view --raw" in str(err.value) and "s3cr3t" not in str(err.value)


def test_unreadable_kubeconfig_names_the_fix(tmp_path):
    path = tmp_path / "kubeconfig"
    path.mkdir()      # a directory where a file should be: a real OSError without needing root
    with pytest.raises(cl.ConnectionConfigError, match="the kubeconfig file cannot be read .*K8S_AUTH_KUBECONFIG"):
        cl.Cluster.connect({"kubeconfig": str(path)})
