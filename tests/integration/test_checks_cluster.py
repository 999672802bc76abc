"""module_utils/cluster.py against the simulated cluster: discovery, paging, API errors with their fixes,
pod logs, the API server's pod proxy, bounded waits and the probe namespace's cleanup on every way out."""
from __future__ import annotations

import signal

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext

from checks_support import probe_namespaces, start_sim

DRA = "resource.k8s.io"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_sim("conformant", tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def conn(sim):
    return cl.Cluster.connect({"kubeconfig": sim.kubeconfig})


@pytest.mark.parametrize("aggregated", [True, False])
def test_discovery_in_both_forms(conn, aggregated):
    disc = cl.Discovery(conn, aggregated=aggregated)
    assert disc.aggregated is aggregated
    assert disc.served_versions(DRA) == ["v1beta2", "v1beta1"]      # v1.33: the betas, v1beta2 preferred
    assert disc.resources(DRA, "v1beta2")["resourceslices"]["namespaced"] is False
    assert disc.resources(DRA, "v1beta2")["resourceclaims"]["subresources"] == ["status"]
    assert disc.has("v1", "pods") and not disc.has("%s/v1" % DRA, "resourceslices")
    with pytest.raises(cl.MissingApiError) as err:
        disc.require("nvidia.com/v1", "clusterpolicies", "install the GPU operator")
    assert str(err.value) == "the API server does not serve clusterpolicies in nvidia.com/v1: install the GPU operator"


def test_discovery_is_fetched_once(conn):
    assert conn.discovery() is conn.discovery()
    assert conn.version()["minor_int"] == 33


def test_paging_walks_every_node(conn, sim):
    page, token, _rest = conn.list_page("v1", "nodes", limit=1)
    assert len(page) == 1 and token
    names = [n["metadata"]["name"] for n in conn.list("v1", "nodes", limit=1)]
    assert names == sorted(n["metadata"]["name"] for n in sim.store.list(("", "nodes"))[0])
    gpu = conn.list("v1", "nodes", label_selector="nvidia.com/gpu.present=true", limit=1)
    assert [n["metadata"]["name"] for n in gpu] == ["gpu-0", "gpu-1"]


def test_unserved_collection_and_missing_object(conn):
    with pytest.raises(cl.MissingApiError) as err:
        conn.list("%s/v1" % DRA, "resourceslices")
    assert "does not serve list resource.k8s.io/v1 resourceslices" in str(err.value)
    assert "Install or enable that API" in str(err.value)
    assert conn.get("v1", "namespaces", "does-not-exist") is None
    with pytest.raises(cl.NotFoundError):
        conn.get("v1", "namespaces", "does-not-exist", missing_ok=False)


def test_exporter_through_the_pod_proxy(conn):
    pod = conn.list("v1", "pods", namespace="gpu-operator", label_selector="app=nvidia-dcgm-exporter")[0]
    status, text = conn.proxy_get("pod", "gpu-operator", pod["metadata"]["name"], 9400, "/metrics")
    assert status == 200
    scrape = promtext.parse(text)
    assert len(scrape.find("DCGM_FI_DEV_GPU_UTIL")) == 8
    status, _text = conn.proxy_get("pod", "gpu-operator", pod["metadata"]["name"], 9400, "/nothing-here")
    assert status == 404
    status, _text = conn.proxy_get("service", "gpu-operator", "nvidia-dcgm-exporter", 9400, "/metrics")
    assert status == 200


def test_probe_namespace_pod_logs_and_wait(conn, sim):
    deadline = cl.Deadline(60)
    with cl.ProbeNamespace(conn, "cluster_test", deadline, sleep=0.05, cleanup_timeout=20) as ns:
        meta = conn.get("v1", "namespaces", ns.name)["metadata"]
        assert meta["labels"][cl.MANAGED_BY_LABEL] == cl.MANAGED_BY_VALUE
        assert cl.parse_rfc3339(meta["annotations"][cl.DEADLINE_ANNOTATION]) > cl.parse_rfc3339(
            meta["annotations"][cl.STARTED_ANNOTATION])
        conn.create("v1", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello"}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36",
                                                      "command": ["sh", "-c", "echo hello from $HOSTNAME"]}]}}, ns.name)
        done = conn.wait_for_object("hello to finish", "v1", "pods", "hello", ns.name,
                                    lambda p: (p or {}).get("status", {}).get("phase") == "Succeeded", 20, 0.05)
        assert done["spec"]["nodeName"].startswith("cpu-")
        assert conn.pod_logs(ns.name, "hello", "c") == "hello from hello\n"
        conn.create("v1", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck"}, "spec": {
            "nodeSelector": {"pool": "none"}, "containers": [{"name": "c", "image": "busybox:1.36"}]}}, ns.name)
        with pytest.raises(cl.WaitTimeout) as err:
            conn.wait_for_object("stuck to run", "v1", "pods", "stuck", ns.name,
                                 lambda p: (p or {}).get("status", {}).get("phase") == "Running", 0.5, 0.05,
                                 summarize=lambda p: p["status"]["conditions"][0]["message"][:40])
        assert "timed out after 0.5s waiting for stuck to run; last seen: 0/4 nodes are available" in str(err.value)
        assert conn.pod_logs(ns.name, "stuck", "c") == ""
    assert conn.get("v1", "namespaces", ns.name) is None and ns.cleanup_note == ""


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_probe_namespace_is_deleted_on_errors_and_interrupts(conn, sim, exc):
    with pytest.raises(type(exc)):
        with cl.ProbeNamespace(conn, "cluster_test", cl.Deadline(60), sleep=0.05, cleanup_timeout=20) as ns:
            raise exc
    assert conn.get("v1", "namespaces", ns.name) is None
    assert probe_namespaces(sim) == []


def test_probe_namespace_is_deleted_on_sigterm(conn, sim):
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(cl.ProbeInterrupted):
        with cl.ProbeNamespace(conn, "cluster_test", cl.Deadline(60), sleep=0.05, cleanup_timeout=20) as ns:
            signal.raise_signal(signal.SIGTERM)
    assert conn.get("v1", "namespaces", ns.name) is None
    assert signal.getsignal(signal.SIGTERM) is previous


def test_forbidden_names_verb_resource_and_rule(sim):
    viewer = cl.Cluster.connect({"kubeconfig": sim.kubeconfig_for("viewer")})
    with pytest.raises(cl.ForbiddenError) as err:
        viewer.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    assert err.value.rule == {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}
    assert 'User "viewer" cannot create resource "namespaces"' in str(err.value)
    with pytest.raises(cl.ForbiddenError) as err:
        viewer.proxy_get("pod", "gpu-operator", "x", 9400, "/metrics")
    assert err.value.rule == {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]}
