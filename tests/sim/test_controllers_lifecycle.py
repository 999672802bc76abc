"""Namespace deletion, garbage collection and the per-namespace defaults of the simulated cluster."""
from __future__ import annotations

import os

from conftest import FIXTURES
from simcluster.controllers.testing import apps, core, custom, new_namespace, pods, wait_for

PODGROUP_CRD = os.path.join(FIXTURES, "crds", "volcano", "v1.12.2", "scheduling.volcano.sh_podgroups.yaml")

CONTENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 2
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: c, image: "registry.k8s.io/pause:3.10"}]
---
apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: app}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {key: value}
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {name: gang}
spec: {minMember: 2}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: held, finalizers: [example.com/hold]}
data: {a: b}
"""


def _namespace_condition(sim, name, ctype):
    ns = core(sim).read_namespace(name)
    for cond in ns.status.conditions or []:
        if cond.type == ctype:
            return cond
    return None


def test_namespace_deletion_removes_every_kind_of_content(make_sim, tools):
    sim = make_sim(speed=50)
    kubectl = tools(sim)[0]
    kubectl("apply", "-f", PODGROUP_CRD)
    kubectl("wait", "--for=condition=Established", "crd/podgroups.scheduling.volcano.sh", "--timeout=60s")
    ns = new_namespace(sim)
    kubectl("apply", "-n", ns, "-f", "-", stdin=CONTENT)
    kubectl("rollout", "status", "deployment/app", "-n", ns, "--timeout=60s")

    kubectl("delete", "namespace", ns, "--wait=false")
    assert core(sim).read_namespace(ns).status.phase == "Terminating"
    remaining = "Some resources are remaining: configmaps. has 1 resource instances"
    wait_for(lambda: (_namespace_condition(sim, ns, "NamespaceContentRemaining") or {}) and
             _namespace_condition(sim, ns, "NamespaceContentRemaining").message == remaining,
             "only the held ConfigMap to remain")
    held = _namespace_condition(sim, ns, "NamespaceFinalizersRemaining")
    assert (held.status, held.reason, held.message) == (
        "True", "SomeFinalizersRemain",
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
    deleted = _namespace_condition(sim, ns, "NamespaceDeletionContentFailure")
    assert (deleted.status, deleted.reason) == ("False", "ContentDeleted")
    # everything else is gone, the custom resource included; the default ServiceAccount and root CA too
    assert pods(sim, ns) == [] and apps(sim).list_namespaced_deployment(ns).items == []
    assert custom(sim).list_namespaced_custom_object("scheduling.volcano.sh", "v1beta1", ns, "podgroups")["items"] == []
    assert [c.metadata.name for c in core(sim).list_namespaced_config_map(ns).items] == ["held"]
    assert core(sim).list_namespaced_service_account(ns).items == []

    kubectl("patch", "configmap", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("wait", "--for=delete", "namespace/%s" % ns, "--timeout=60s")


def _deletions(sim):
    """Record the order in which objects leave the store (the cluster's side of the story)."""
    order = []
    sim.store.subscribe(lambda event: order.append((event.gr[1], event.obj["metadata"]["name"]))
                        if event.type == "DELETED" else None)
    return order


def test_garbage_collector_background_foreground_orphan(make_sim, tools):
    sim = make_sim(speed=50)
    kubectl = tools(sim)[0]
    ns = new_namespace(sim)
    order = _deletions(sim)

    parent = core(sim).create_namespaced_config_map(ns, {"metadata": {"name": "parent"}})
    owner = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": parent.metadata.uid}]
    core(sim).create_namespaced_config_map(ns, {"metadata": {"name": "child", "ownerReferences": owner}})
    kubectl("delete", "configmap", "parent", "-n", ns)           # background propagation (the default)
    kubectl("wait", "--for=delete", "configmap/child", "-n", ns, "--timeout=60s")

    # a dangling owner reference (no object has that uid) makes the dependent garbage
    ghost = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "5c1d7d6e-0000-4000-8000-000000000000"}]
    core(sim).create_namespaced_config_map(ns, {"metadata": {"name": "orphaned", "ownerReferences": ghost}})
    kubectl("wait", "--for=delete", "configmap/orphaned", "-n", ns, "--timeout=60s")

    kubectl("create", "deployment", "fg", "--image=registry.k8s.io/pause:3.10", "--replicas=2", "-n", ns)
    kubectl("rollout", "status", "deployment/fg", "-n", ns, "--timeout=60s")
    rs_name = apps(sim).list_namespaced_replica_set(ns).items[0].metadata.name
    pod_names = {p.metadata.name for p in pods(sim, ns)}
    kubectl("delete", "deployment", "fg", "-n", ns, "--cascade=foreground", "--wait=false")
    kubectl("wait", "--for=delete", "deployment/fg", "-n", ns, "--timeout=60s")
    gone = [name for kind, name in order if name in pod_names | {rs_name, "fg"}]
    # foreground: the pods, then their ReplicaSet, and the Deployment last (background would start
    # with the Deployment)
    assert sorted(gone[:2]) == sorted(pod_names) and gone[2:] == [rs_name, "fg"]

    kubectl("apply", "-n", ns, "-f", "-", stdin="""
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: keep}
spec:
  replicas: 2
  selector: {matchLabels: {app: keep}}
  template:
    metadata: {labels: {app: keep}}
    spec:
      containers: [{name: c, image: "registry.k8s.io/pause:3.10"}]
""")
    wait_for(lambda: apps(sim).read_namespaced_replica_set("keep", ns).status.ready_replicas == 2, "two ready pods")
    originals = sorted(p.metadata.name for p in pods(sim, ns, "app=keep"))
    kubectl("delete", "replicaset", "keep", "-n", ns, "--cascade=orphan")
    kubectl("wait", "--for=delete", "replicaset/keep", "-n", ns, "--timeout=60s")
    # orphaning keeps the ReplicaSet's pods, running, with the owner reference stripped
    kept = [core(sim).read_namespaced_pod(name, ns) for name in originals]
    assert len(kept) == 2 and all(p.status.phase == "Running" and not p.metadata.deletion_timestamp for p in kept)
    assert [p.metadata.owner_references for p in kept] == [None, None]


def test_every_namespace_gets_a_service_account_and_the_root_ca(sim_cluster, kubectl):
    ns = new_namespace(sim_cluster)
    account = wait_for(lambda: [a for a in core(sim_cluster).list_namespaced_service_account(ns).items
                                if a.metadata.name == "default"], "the default ServiceAccount")
    assert account[0].metadata.namespace == ns
    root_ca = wait_for(lambda: [c for c in core(sim_cluster).list_namespaced_config_map(ns).items
                                if c.metadata.name == "kube-root-ca.crt"], "kube-root-ca.crt")[0]
    assert root_ca.data["ca.crt"] == sim_cluster.ca_pem and "BEGIN CERTIFICATE" in root_ca.data["ca.crt"]
    first_uid = root_ca.metadata.uid
    kubectl("delete", "configmap", "kube-root-ca.crt", "-n", ns)
    recreated = wait_for(lambda: [c for c in core(sim_cluster).list_namespaced_config_map(ns).items
                                  if c.metadata.name == "kube-root-ca.crt" and c.metadata.uid != first_uid],
                         "kube-root-ca.crt to be published again")
    assert recreated[0].data["ca.crt"] == sim_cluster.ca_pem
