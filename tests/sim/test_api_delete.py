"""DELETE responses, as genericregistry.Store and handlers/delete.go shape them.

An object removed at once comes back whole from the registries that set ReturnDeletedObject (pods,
services, service accounts, PVCs, ...), and as a `Status` from the others (config maps, secrets,
deployments, ...). An object that stays (finalizers, a grace period) comes back as it now is, with its
deletionTimestamp, whatever the registry; 202 instead of 200 when the client sent orphanDependents=false.
The `kubernetes` Python client's delete methods are typed after that (delete_namespaced_service returns
a V1Service), so they prove the shapes.
"""
from __future__ import annotations

import uuid

from kubernetes import client

from conftest import api_client

SERVICE = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}


def test_typed_client_deletes_return_the_deleted_object(sim_cluster, namespace):
    """Item 14: delete_namespaced_service deserialises to a V1Service (it failed on a Status before);
    service accounts, PVCs and config maps follow their registries."""
    core = client.CoreV1Api(api_client(sim_cluster))
    created = core.create_namespaced_service(namespace, SERVICE)
    deleted = core.delete_namespaced_service("web", namespace)
    assert isinstance(deleted, client.V1Service)
    assert (deleted.metadata.name, deleted.metadata.uid, deleted.spec.cluster_ip) == (
        "web", created.metadata.uid, created.spec.cluster_ip)

    core.create_namespaced_service_account(namespace, {"metadata": {"name": "robot"}})
    assert isinstance(core.delete_namespaced_service_account("robot", namespace), client.V1ServiceAccount)
    core.create_namespaced_persistent_volume_claim(namespace, {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    claim = core.delete_namespaced_persistent_volume_claim("data", namespace)
    assert isinstance(claim, client.V1PersistentVolumeClaim) and claim.spec.resources.requests == {"storage": "1Gi"}


def test_registries_without_return_deleted_object_answer_a_status(raw, namespace):
    """A config map removed at once: Status Success whose details name the resource (Kind holds the
    resource, as finalizeDelete sets it) and the uid."""
    status, created = raw.json("POST", "/api/v1/namespaces/%s/configmaps" % namespace,
                               {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    assert status == 201
    status, body = raw.json("DELETE", "/api/v1/namespaces/%s/configmaps/settings" % namespace)
    assert status == 200
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": "settings", "kind": "configmaps", "uid": created["metadata"]["uid"]}}
    status, created = raw.json("POST", "/apis/apps/v1/namespaces/%s/deployments" % namespace, {
        "metadata": {"name": "web"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    status, body = raw.json("DELETE", "/apis/apps/v1/namespaces/%s/deployments/web" % namespace)
    assert (status, body["kind"], body["details"]) == (200, "Status", {
        "name": "web", "group": "apps", "kind": "deployments", "uid": created["metadata"]["uid"]})


def test_an_object_kept_by_a_finalizer_comes_back_with_its_deletion_timestamp(raw, namespace):
    """Deferred deletion answers with the object itself, for any registry; 202 when the client asked for
    orphanDependents=false, 200 otherwise (also for a second DELETE while the finalizer holds it)."""
    path = "/api/v1/namespaces/%s/configmaps" % namespace
    raw.json("POST", path, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    status, body = raw.json("DELETE", path + "/held", {"kind": "DeleteOptions", "apiVersion": "v1",
                                                       "orphanDependents": False})
    assert status == 202
    assert body["kind"] == "ConfigMap" and body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["finalizers"] == ["example.com/hold"]
    status, again = raw.json("DELETE", path + "/held")
    assert (status, again["kind"], again["metadata"]["deletionTimestamp"]) == (
        200, "ConfigMap", body["metadata"]["deletionTimestamp"])
    raw.json("PATCH", path + "/held", {"metadata": {"finalizers": None}},
             headers={"Content-Type": "application/merge-patch+json"})
    assert raw.json("GET", path + "/held")[0] == 404


def test_a_terminating_namespace_refuses_a_second_delete(sim_cluster, raw):
    """The namespace registry answers the first DELETE with the Terminating namespace and a second one, while
    its finalizers run, with 409 Conflict (pkg/registry/core/namespace/storage)."""
    core = client.CoreV1Api(api_client(sim_cluster))
    name = "doomed-" + uuid.uuid4().hex[:6]
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    status, body = raw.json("DELETE", "/api/v1/namespaces/" + name)
    assert (status, body["kind"], body["status"]["phase"]) == (200, "Namespace", "Terminating")
    status, body = raw.json("DELETE", "/api/v1/namespaces/" + name)
    assert (status, body["reason"]) == (409, "Conflict")
    assert body["message"] == ('Operation cannot be fulfilled on namespaces "%s": The system is ensuring all content '
                               'is removed from this namespace.  Upon completion, this namespace will automatically '
                               'be purged by the system.' % name)
    core.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})


def test_kubectl_delete_reads_both_shapes(kubectl, namespace):
    """kubectl reports either answer the same way."""
    kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", namespace)
    kubectl("create", "configmap", "settings", "--from-literal=a=1", "-n", namespace)
    out = kubectl("delete", "service/web", "configmap/settings", "-n", namespace).stdout
    assert out.splitlines() == ['service "web" deleted', 'configmap "settings" deleted']
    proc = kubectl("get", "service/web", "-n", namespace, check=False)
    assert proc.returncode == 1 and 'services "web" not found' in proc.stderr
