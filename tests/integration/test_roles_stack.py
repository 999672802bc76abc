"""playbooks/install.yml and playbooks/uninstall.yml on a simulated GPU cluster with nothing installed, with the
real upstream charts: every component Ready, a second run changes nothing, uninstall leaves nothing behind.

One test holds the whole lifecycle because each step starts from the state the previous one left (pytest-xdist
could otherwise split the steps across workers). Readiness is checked here independently of the roles' own
wait, through the kubernetes client.
"""
from __future__ import annotations

import json
import os

import pytest
from kubernetes import config, dynamic
from kubernetes.dynamic.exceptions import NotFoundError, UnprocessibleEntityError

from roles.harness import ROLE_NAMESPACES, ROOT, helm_releases, playbook, start_stack_sim

INSTALL = os.path.join(ROOT, "playbooks", "install.yml")
UNINSTALL = os.path.join(ROOT, "playbooks", "uninstall.yml")
ROLE_CRDS = {
    "gpu_operator": ["clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com", "nodefeaturerules.nfd.k8s-sigs.io"],
    "dra_driver": ["computedomains.resource.nvidia.com"],
    "gateway_api": ["gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
                    "envoyproxies.gateway.envoyproxy.io"],
    "prometheus": ["servicemonitors.monitoring.coreos.com", "prometheuses.monitoring.coreos.com"],
    "kuberay": ["rayclusters.ray.io", "rayjobs.ray.io"],
}
# The same invalid RayCluster the kuberay role dry-runs: schema-valid, worker group names repeated.
INVALID_RAYCLUSTER = {
    "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "dup-groups", "namespace": "default"},
    "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "h", "image": "rayproject/ray:2.46.0"}]}}},
             "workerGroupSpecs": [{"groupName": "w", "replicas": 0, "minReplicas": 0, "maxReplicas": 1, "rayStartParams": {},
                                   "template": {"spec": {"containers": [{"name": "w", "image": "rayproject/ray:2.46.0"}]}}}] * 2},
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_stack_sim(tmp_path_factory.mktemp("stack"))
    yield cluster
    cluster.stop()


def client_for(sim):
    return dynamic.DynamicClient(config.new_client_from_config(sim.kubeconfig))


def not_ready_workloads(client, namespaces):
    """Workloads in `namespaces` whose pods are not all updated and ready (kubectl rollout status rules)."""
    problems = []
    for kind in ("Deployment", "DaemonSet", "StatefulSet"):
        res = client.resources.get(api_version="apps/v1", kind=kind)
        for namespace in namespaces:
            for obj in res.get(namespace=namespace).items:
                status, spec = obj.status or {}, obj.spec
                if kind == "DaemonSet":
                    want, ready = status.desiredNumberScheduled or 0, status.numberReady or 0
                else:
                    want, ready = spec.replicas if spec.replicas is not None else 1, status.readyReplicas or 0
                if ready < want or (status.observedGeneration or 0) < obj.metadata.generation:
                    problems.append("%s %s/%s %d/%d" % (kind, namespace, obj.metadata.name, ready, want))
    return problems


def condition(obj, ctype):
    return next((c.status for c in (obj.status or {}).get("conditions") or [] if c.type == ctype), None)


def crd_names(client):
    return {c.metadata.name for c in client.resources.get(api_version="apiextensions.k8s.io/v1",
                                                          kind="CustomResourceDefinition").get().items}


def prometheus_scrapes_all_exporters(sim, timeout=60.0):
    """(running dcgm-exporter pods, pods with `up == 1` in the role-installed Prometheus' query API), polled until
    the second covers the first or `timeout` real seconds pass."""
    import subprocess  # pylint: disable=import-outside-toplevel
    import time  # pylint: disable=import-outside-toplevel
    import urllib.parse  # pylint: disable=import-outside-toplevel

    exporters = sorted(p["metadata"]["name"] for p in sim.store.list(("", "pods"))[0]
                       if ((p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "dcgm-exporter"  # the role's
                           or (p["metadata"].get("labels") or {}).get("app") == "nvidia-dcgm-exporter")     # the GPU operator's
                       and (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))
    path = ("/api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:http-web/proxy/api/v1/query?query="
            + urllib.parse.quote("up == 1"))
    end, up = time.monotonic() + timeout, []
    while exporters and time.monotonic() < end:
        out = subprocess.run([os.path.join(ROOT, ".tools", "bin", "kubectl"), "--kubeconfig", sim.kubeconfig, "get", "--raw",
                              path], capture_output=True, text=True, timeout=60, check=False)
        result = (json.loads(out.stdout).get("data") or {}).get("result") or [] if out.returncode == 0 else []
        up = sorted({r["metric"].get("pod") for r in result if r["metric"].get("pod")})
        if set(exporters) <= set(up):
            break
        time.sleep(0.5)
    return exporters, up


@pytest.mark.slow(seconds=144)
def test_stack_installs_ready_reruns_unchanged_and_uninstalls_clean(sim):
    client = client_for(sim)

    # 1. Install the whole stack from the local upstream charts.
    first = playbook(sim, INSTALL)
    assert first.rc == 0 and first.failed == 0, first.tail()

    # Every component is Ready, seen from the API rather than from the roles' own wait.
    assert not_ready_workloads(client, ROLE_NAMESPACES) == []
    policy = client.resources.get(api_version="nvidia.com/v1", kind="ClusterPolicy").get(name="cluster-policy")
    assert policy.status.state == "ready"
    gpu_nodes = [n for n in client.resources.get(api_version="v1", kind="Node").get().items
                 if (n.metadata.labels or {}).get("node.kubernetes.io/pool") == "gpu"]
    # The GPU operator's device plugin makes the GPUs allocatable; the DRA driver publishes them as slices.
    assert [n.status.allocatable["nvidia.com/gpu"] for n in gpu_nodes] == ["8", "8"]
    slices = client.resources.get(api_version="resource.k8s.io/v1beta1", kind="ResourceSlice").get().items
    assert {s.spec.nodeName for s in slices if s.spec.driver == "gpu.nvidia.com"} == {n.metadata.name for n in gpu_nodes}
    gatewayclass = client.resources.get(api_version="gateway.networking.k8s.io/v1", kind="GatewayClass").get(name="envoy-gateway")
    assert condition(gatewayclass, "Accepted") == "True"
    channels = {c.metadata.annotations["gateway.networking.k8s.io/channel"]
                for c in client.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition").get().items
                if c.spec.group == "gateway.networking.k8s.io"}
    assert channels == {"standard"}
    apiservice = client.resources.get(api_version="apiregistration.k8s.io/v1", kind="APIService").get(
        name="v1beta1.custom.metrics.k8s.io")
    assert condition(apiservice, "Available") == "True"
    # kube-prometheus-stack's Prometheus is the real prometheus binary (tests/simcluster/apps/prometheus_server.py):
    # through the API server's service proxy, `up` is 1 for every DCGM exporter pod (install.yml runs the GPU
    # operator's exporter and its ServiceMonitor, selected because the prometheus role selects every monitor).
    exporters, up = prometheus_scrapes_all_exporters(sim)
    assert exporters and set(exporters) <= set(up), (exporters, up)
    # The KubeRay operator's own webhook refuses what the CRD schema accepts.
    rayclusters = client.resources.get(api_version="ray.io/v1", kind="RayCluster")
    with pytest.raises(UnprocessibleEntityError) as denied:
        rayclusters.create(body=INVALID_RAYCLUSTER, namespace="default", dry_run="All")
    message = json.loads(denied.value.body)["message"]
    assert message.startswith('admission webhook "vraycluster.kb.io" denied the request: RayCluster.ray.io "dup-groups" is invalid')
    assert message.endswith("worker group names must be unique")

    # 2. A second run changes nothing.
    second = playbook(sim, INSTALL)
    assert second.rc == 0, second.tail()
    assert (second.changed, second.changed_tasks()) == (0, [])

    # 3. Uninstall: no release, no namespace the roles created; CRDs stay unless asked (Kueue's go with its
    # release: the chart ships them as templates).
    gone = playbook(sim, UNINSTALL)
    assert gone.rc == 0, gone.tail()
    assert helm_releases(sim) == []
    namespaces = {n.metadata.name for n in client.resources.get(api_version="v1", kind="Namespace").get().items}
    assert namespaces.isdisjoint(ROLE_NAMESPACES), namespaces
    crds = crd_names(client)
    assert all(name in crds for names in ROLE_CRDS.values() for name in names)
    assert "clusterqueues.kueue.x-k8s.io" not in crds
    leftovers = [(kind, o.metadata.name) for api_version, kind in (
        ("rbac.authorization.k8s.io/v1", "ClusterRole"), ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"))
        for o in client.resources.get(api_version=api_version, kind=kind).get().items
        if (o.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "Helm"
        or o.metadata.name == "kuberay-operator-validating-webhook"]
    assert leftovers == []
    with pytest.raises(NotFoundError):
        client.resources.get(api_version="gateway.networking.k8s.io/v1", kind="GatewayClass").get(name="envoy-gateway")

    # ... and with remove_crds=true the roles' CRDs go too.
    purge = playbook(sim, UNINSTALL, "remove_crds=true")
    assert purge.rc == 0, purge.tail()
    crds = crd_names(client)
    assert [name for names in ROLE_CRDS.values() for name in names if name in crds] == []
