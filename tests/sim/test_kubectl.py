"""The real kubectl 1.33 against the simulated cluster."""
from __future__ import annotations

import os
import time

import yaml

from conftest import FIXTURES

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %(ns)s, labels: {app: web}}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: %(image)s
        ports: [{containerPort: 80}]
        env: [{name: MODE, value: "a"}]
      - name: sidecar
        image: busybox:1.36
        command: [sleep, "3600"]
"""


def _deployment(ns, replicas=2, image="nginx:1.27"):
    return DEPLOYMENT % {"ns": ns, "replicas": replicas, "image": image}


def test_get_in_every_output(kubectl):
    nodes = kubectl.json("get", "nodes")
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["cpu-0", "cpu-1", "gpu-0", "gpu-1"]
    assert nodes["items"][2]["status"]["capacity"]["nvidia.com/gpu"] == "8"
    as_yaml = yaml.safe_load(kubectl("get", "namespace", "default", "-o", "yaml").stdout)
    assert as_yaml["status"]["phase"] == "Active"
    table = kubectl("get", "nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert table[3].split()[:2] == ["gpu-0", "Ready"] and table[3].split()[-1] == "v1.33.5"


def test_table_columns_for_pods_and_deployments(kubectl, namespace):
    kubectl("run", "p1", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "60")
    header = kubectl("get", "pods", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    kubectl("apply", "-f", "-", stdin=_deployment(namespace))
    lines = kubectl("get", "deployments", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[0] == "web" and lines[1].split()[1].endswith("/2")


def test_client_side_apply_twice_uses_a_strategic_merge(kubectl, namespace):
    assert "created" in kubectl("apply", "-f", "-", stdin=_deployment(namespace)).stdout
    out = kubectl("apply", "-f", "-", "-v=8", stdin=_deployment(namespace, 3, "nginx:1.28"))
    assert "configured" in out.stdout
    assert "application/strategic-merge-patch+json" in out.stderr and "$setElementOrder/containers" in out.stderr
    live = kubectl.json("get", "deployment", "web", "-n", namespace)
    containers = {c["name"]: c for c in live["spec"]["template"]["spec"]["containers"]}
    assert live["spec"]["replicas"] == 3 and containers["nginx"]["image"] == "nginx:1.28"
    assert containers["sidecar"]["command"] == ["sleep", "3600"]       # untouched list entry kept by merge key
    assert containers["nginx"]["env"] == [{"name": "MODE", "value": "a"}]
    assert live["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]
    assert "unchanged" in kubectl("apply", "-f", "-", stdin=_deployment(namespace, 3, "nginx:1.28")).stdout


def test_server_side_apply_conflict_and_force(kubectl, namespace):
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", stdin=_deployment(namespace)).stdout
    kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=5")
    out = kubectl("apply", "--server-side", "-f", "-", stdin=_deployment(namespace, 3), check=False)
    assert out.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1' in out.stderr
    assert out.stderr.splitlines()[0].endswith(": .spec.replicas")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=_deployment(namespace, 3))
    live = kubectl.json("get", "deployment", "web", "-n", namespace, "--show-managed-fields")
    assert live["spec"]["replicas"] == 3
    managers = [(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]]
    assert managers == [("kubectl", "Apply")]
    assert "f:replicas" in live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]


def test_delete_and_wait(kubectl, namespace):
    kubectl("create", "configmap", "gone", "-n", namespace, "--from-literal=a=b")
    assert 'configmap "gone" deleted' in kubectl("delete", "configmap", "gone", "-n", namespace).stdout
    kubectl("wait", "--for=delete", "configmap/gone", "-n", namespace, "--timeout=10s")
    assert kubectl("get", "configmap", "gone", "-n", namespace, check=False).returncode == 1


def test_wait_for_a_crd_condition_and_explain_it(kubectl):
    crd = os.path.join(FIXTURES, "crds", "kueue", "v0.19.2", "kueue.x-k8s.io_resourceflavors.yaml")
    kubectl("apply", "--server-side", "-f", crd)
    out = kubectl("wait", "--for=condition=Established", "crd/resourceflavors.kueue.x-k8s.io", "--timeout=20s")
    assert "condition met" in out.stdout
    explained = kubectl("explain", "resourceflavors.spec.nodeLabels").stdout
    assert "KIND:       ResourceFlavor" in explained and "nodeLabels" in explained


def test_api_resources_and_versions(kubectl):
    resources = kubectl("api-resources").stdout
    assert "resourceclaims" in resources and "resource.k8s.io/v1beta2" in resources
    versions = kubectl("api-versions").stdout.split()
    assert {"v1", "apps/v1", "resource.k8s.io/v1beta1", "resource.k8s.io/v1beta2", "events.k8s.io/v1"} <= set(versions)


def test_auth_can_i_for_each_user(kubectl):
    assert kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    denied = kubectl("auth", "can-i", "create", "pods", user="viewer", check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    assert kubectl("auth", "can-i", "list", "deployments.apps", user="viewer").stdout.strip() == "yes"
    forbidden = kubectl("get", "secrets", "-n", "default", user="nobody", check=False)
    assert 'User "nobody" cannot list resource "secrets" in API group "" in the namespace "default"' \
        in forbidden.stderr


def _started(pod):
    return any((c.get("state") or {}).get("running") or (c.get("state") or {}).get("terminated")
               for c in (pod.get("status") or {}).get("containerStatuses") or [])


def test_logs_return_what_the_runtime_returns(sim_cluster, kubectl, namespace):
    kubectl("run", "talker", "-n", namespace, "--image=busybox:1.36", "--", "sh", "-c", "echo hello; sleep 3600")
    deadline = time.monotonic() + 10
    pod = sim_cluster.store.get(("", "pods"), namespace, "talker")
    while not _started(pod) and time.monotonic() < deadline:
        time.sleep(0.1)
        pod = sim_cluster.store.get(("", "pods"), namespace, "talker")
    if not (pod.get("status") or {}).get("containerStatuses"):
        # no kubelet in this cluster: report the container as started, as a kubelet would
        pod["status"].update({"phase": "Running", "containerStatuses": [{
            "name": "talker", "ready": True, "restartCount": 0, "image": "busybox:1.36", "imageID": "",
            "state": {"running": {"startedAt": pod["metadata"]["creationTimestamp"]}}}]})
        sim_cluster.store.update(("", "pods"), pod, subresource="status")
    expected = sim_cluster.runtime.logs(namespace, "talker", "talker")
    assert kubectl("logs", "talker", "-n", namespace).stdout == expected
    missing = kubectl("logs", "talker", "-n", namespace, "-c", "nope", check=False)
    assert "container nope is not valid for pod talker" in missing.stderr


def test_typed_client_protobuf_bodies(kubectl, namespace):
    """kubectl's typed clients send protobuf; the server reads them (create deployment/secret, token)."""
    kubectl("create", "deployment", "pb", "-n", namespace, "--image=nginx:1.27", "--replicas=2")
    created = kubectl.json("get", "deployment", "pb", "-n", namespace)
    assert created["spec"]["replicas"] == 2
    assert created["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    kubectl("create", "secret", "generic", "pb", "-n", namespace, "--from-literal=key=value")
    assert kubectl.json("get", "secret", "pb", "-n", namespace)["data"] == {"key": "dmFsdWU="}
    kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = kubectl("create", "token", "robot", "-n", namespace).stdout.strip()
    assert token.startswith("sim-sa.")
