"""Deployments, ReplicaSets, DaemonSets and StatefulSets of the simulated cluster, seen through
kubectl and the Python client: what `kubectl rollout status`, `helm --wait` and our checks read."""
from __future__ import annotations

import re

from simcluster.controllers.testing import (api_client, apps, condition, core, events_for, new_namespace, pods,
                                            pods_version, wait_for, watch_pods)

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: %(name)s}
spec:
  replicas: %(replicas)d
  strategy: %(strategy)s
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec:
      containers:
      - name: web
        image: %(image)s
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080, name: http}]
"""


def _deployment(name="web", replicas=3, image=AGNHOST, strategy="{type: RollingUpdate}"):
    return DEPLOYMENT % {"name": name, "replicas": replicas, "image": image, "strategy": strategy}


def _apply(kubectl, ns, manifest):
    return kubectl("apply", "-n", ns, "-f", "-", stdin=manifest)


# --------------------------------------------------------------------------------------- Deployment
def test_deployment_rolls_out_with_the_status_clients_wait_for(sim_cluster, kubectl, namespace):
    _apply(kubectl, namespace, _deployment())
    out = kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s").stdout
    assert 'deployment "web" successfully rolled out' in out

    deploy = apps(sim_cluster).read_namespaced_deployment("web", namespace)
    status = deploy.status
    assert (status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3, 3)
    assert status.unavailable_replicas is None          # omitted when zero, as the Go API type does
    assert status.observed_generation == deploy.metadata.generation
    available = condition(deploy, "Available")
    assert (available.status, available.reason, available.message) == (
        "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")

    rs_list = apps(sim_cluster).list_namespaced_replica_set(namespace).items
    assert len(rs_list) == 1
    rs = rs_list[0]
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == "web-" + pod_hash
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": pod_hash}
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert [(o.kind, o.name, o.controller) for o in rs.metadata.owner_references] == [("Deployment", "web", True)]
    assert (rs.status.replicas, rs.status.fully_labeled_replicas, rs.status.ready_replicas,
            rs.status.available_replicas) == (3, 3, 3, 3)
    progressing = condition(deploy, "Progressing")
    assert (progressing.status, progressing.reason, progressing.message) == (
        "True", "NewReplicaSetAvailable", 'ReplicaSet "%s" has successfully progressed.' % rs.metadata.name)

    running = pods(sim_cluster, namespace)
    assert len(running) == 3
    assert all(p.status.phase == "Running" and p.metadata.labels["pod-template-hash"] == pod_hash for p in running)
    assert all(p.metadata.owner_references[0].name == rs.metadata.name for p in running)
    # the GPU nodes are tainted nvidia.com/gpu:NoSchedule and these pods do not tolerate it
    assert {p.spec.node_name for p in running} <= {"cpu-0", "cpu-1"}
    scaling = [e.message for e in events_for(sim_cluster, namespace, "web") if e.reason == "ScalingReplicaSet"]
    assert scaling == ["Scaled up replica set %s from 0 to 3" % rs.metadata.name]


def test_rolling_update_undo_and_revisions(sim_cluster, kubectl, namespace):
    _apply(kubectl, namespace, _deployment(replicas=2))
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    first = apps(sim_cluster).list_namespaced_replica_set(namespace).items[0].metadata.name

    kubectl("set", "image", "deployment/web", "web=%s" % AGNHOST.replace("2.53", "2.52"), "-n", namespace)
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    by_name = {rs.metadata.name: rs for rs in apps(sim_cluster).list_namespaced_replica_set(namespace).items}
    second = [n for n in by_name if n != first][0]
    assert by_name[first].spec.replicas == 0
    assert by_name[second].spec.replicas == 2
    assert by_name[second].metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert {p.spec.containers[0].image for p in pods(sim_cluster, namespace)} == {AGNHOST.replace("2.53", "2.52")}
    history = kubectl("rollout", "history", "deployment/web", "-n", namespace).stdout
    assert re.search(r"^1\s", history, re.M) and re.search(r"^2\s", history, re.M)

    kubectl("rollout", "undo", "deployment/web", "-n", namespace)
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    by_name = {rs.metadata.name: rs for rs in apps(sim_cluster).list_namespaced_replica_set(namespace).items}
    # a rollback re-uses the first ReplicaSet and gives it the next revision number
    assert set(by_name) == {first, second}
    assert by_name[first].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert (by_name[first].spec.replicas, by_name[second].spec.replicas) == (2, 0)
    deploy = apps(sim_cluster).read_namespaced_deployment("web", namespace)
    assert deploy.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    messages = [e.message for e in events_for(sim_cluster, namespace, "web") if e.reason == "ScalingReplicaSet"]
    # 2 replicas: maxSurge 25% rounds up to 1, maxUnavailable 25% down to 0, so one pod at a time
    assert messages[:5] == ["Scaled up replica set %s from 0 to 2" % first,
                            "Scaled up replica set %s from 0 to 1" % second,
                            "Scaled down replica set %s from 2 to 1" % first,
                            "Scaled up replica set %s from 1 to 2" % second,
                            "Scaled down replica set %s from 1 to 0" % first]


def test_recreate_never_runs_old_and_new_pods_together(sim_cluster, kubectl, namespace):
    _apply(kubectl, namespace, _deployment(replicas=2, strategy="{type: Recreate}"))
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    old_hash = pods(sim_cluster, namespace)[0].metadata.labels["pod-template-hash"]
    alive = {p.metadata.name: old_hash for p in pods(sim_cluster, namespace)}
    overlaps = []

    def observe(kind, pod):
        name, pod_hash = pod["metadata"]["name"], pod["metadata"]["labels"]["pod-template-hash"]
        if kind == "DELETED":
            alive.pop(name, None)
        else:
            if pod_hash != old_hash and name not in alive and old_hash in alive.values():
                overlaps.append(name)
            alive[name] = pod_hash
        ready = [n for n, h in alive.items() if h != old_hash]
        return len(ready) == 2 and old_hash not in alive.values()

    since = pods_version(sim_cluster, namespace)
    kubectl("set", "env", "deployment/web", "MODE=b", "-n", namespace)
    watch_pods(sim_cluster, namespace, observe, since)
    assert overlaps == []
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")


def test_scale_subresource_flows_through(sim_cluster, kubectl, namespace):
    _apply(kubectl, namespace, _deployment(replicas=1))
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    api = apps(sim_cluster)
    api.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 4}})
    wait_for(lambda: api.read_namespaced_deployment("web", namespace).status.available_replicas == 4,
             "4 available replicas")
    scale = api.read_namespaced_deployment_scale("web", namespace)
    assert (scale.spec.replicas, scale.status.replicas) == (4, 4)
    assert "app=web" in scale.status.selector

    kubectl("scale", "deployment/web", "--replicas=1", "-n", namespace)
    wait_for(lambda: len([p for p in pods(sim_cluster, namespace) if not p.metadata.deletion_timestamp]) == 1,
             "one pod left")
    wait_for(lambda: api.read_namespaced_deployment("web", namespace).status.replicas == 1, "status.replicas 1")


def test_explicit_null_fields_count_as_unset(sim_cluster, kubectl, namespace):
    # charts write `revisionHistoryLimit: null` (gpu-operator's NFD); the API defaults a null like a gap
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nulls"},
            "spec": {"replicas": None, "revisionHistoryLimit": None, "progressDeadlineSeconds": None,
                     "selector": {"matchLabels": {"app": "nulls"}},
                     "template": {"metadata": {"labels": {"app": "nulls"}},
                                  "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}
    apps(sim_cluster).create_namespaced_deployment(namespace, body)
    kubectl("rollout", "status", "deployment/nulls", "-n", namespace, "--timeout=60s")
    assert apps(sim_cluster).read_namespaced_deployment("nulls", namespace).status.available_replicas == 1


def test_progress_deadline_exceeded_fails_rollout_status(sim_cluster, kubectl, namespace):
    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: 1
  progressDeadlineSeconds: 20
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers: [{name: c, image: "busybox:1.36", command: [sh, -c, "echo cannot start; exit 1"]}]
"""
    _apply(kubectl, namespace, manifest)
    out = kubectl("rollout", "status", "deployment/broken", "-n", namespace, "--timeout=60s", check=False)
    assert out.returncode != 0
    assert 'deployment "broken" exceeded its progress deadline' in out.stderr
    deploy = apps(sim_cluster).read_namespaced_deployment("broken", namespace)
    progressing = condition(deploy, "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    assert condition(deploy, "Available").reason == "MinimumReplicasUnavailable"


# --------------------------------------------------------------------------------------- DaemonSet
DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: %(name)s}
spec:
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec:
      %(extra)s
      containers: [{name: c, image: "registry.k8s.io/pause:3.10"}]
"""


def _nodes_of(sim, ns, app):
    return sorted(p.spec.node_name for p in pods(sim, ns, "app=%s" % app)
                  if p.spec.node_name and not p.metadata.deletion_timestamp)


def _ds_settled(sim, ns, name, desired):
    ds = apps(sim).read_namespaced_daemon_set(name, ns)
    st = ds.status
    return st.observed_generation == ds.metadata.generation and st.desired_number_scheduled == desired and \
        (st.number_available or 0) == desired and st.current_number_scheduled == desired


def test_daemonset_follows_taints_selectors_and_nodes(make_sim, tools):
    sim = make_sim(speed=50)
    kubectl = tools(sim)[0]
    ns = new_namespace(sim)
    _apply(kubectl, ns, DAEMONSET % {"name": "plain", "extra": ""})
    _apply(kubectl, ns, DAEMONSET % {"name": "gpu", "extra": "nodeSelector: {node.kubernetes.io/pool: gpu}\n"
                                     "      tolerations: [{key: nvidia.com/gpu, operator: Exists}]"})
    _apply(kubectl, ns, DAEMONSET % {"name": "edge", "extra": "affinity: {nodeAffinity: "
                                     "{requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: "
                                     "[{matchExpressions: [{key: example.com/edge, operator: Exists}]}]}}}"})
    assert "successfully rolled out" in kubectl("rollout", "status", "ds/plain", "-n", ns, "--timeout=60s").stdout
    kubectl("rollout", "status", "ds/gpu", "-n", ns, "--timeout=60s")
    wait_for(lambda: _ds_settled(sim, ns, "edge", 0), "edge DaemonSet observed with no matching node")
    # tainted GPU nodes get no pod of the DaemonSet without the toleration; the selector one only GPU nodes
    assert _nodes_of(sim, ns, "plain") == ["cpu-0", "cpu-1"]
    assert _nodes_of(sim, ns, "gpu") == ["gpu-0", "gpu-1"]
    assert _nodes_of(sim, ns, "edge") == []

    one = pods(sim, ns, "app=plain")[0]
    # placed by the scheduler through a node affinity on the node's name, as the real controller does
    fields = one.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution \
        .node_selector_terms[0].match_fields[0]
    assert (fields.key, fields.operator, fields.values) == ("metadata.name", "In", [one.spec.node_name])
    assert "node.kubernetes.io/unschedulable" in {t.key for t in one.spec.tolerations}
    assert any(e.reason == "Scheduled" and e.source.component == "default-scheduler"
               for e in events_for(sim, ns, one.metadata.name))

    kubectl("label", "node", "cpu-1", "example.com/edge=yes")
    wait_for(lambda: _nodes_of(sim, ns, "edge") == ["cpu-1"] and _ds_settled(sim, ns, "edge", 1), "edge pod on cpu-1")
    kubectl("label", "node", "cpu-1", "example.com/edge-")
    wait_for(lambda: _nodes_of(sim, ns, "edge") == [] and _ds_settled(sim, ns, "edge", 0), "edge pod removed")

    template = api_client(sim).sanitize_for_serialization(core(sim).read_node("cpu-0"))
    labels = dict(template["metadata"]["labels"], **{"kubernetes.io/hostname": "cpu-9"})
    core(sim).create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cpu-9", "labels": labels}})
    core(sim).patch_node_status("cpu-9", {"status": template["status"]})
    wait_for(lambda: _nodes_of(sim, ns, "plain") == ["cpu-0", "cpu-1", "cpu-9"] and _ds_settled(sim, ns, "plain", 3),
             "a pod on the new node")
    ds = apps(sim).read_namespaced_daemon_set("plain", ns)
    assert (ds.status.number_ready, ds.status.updated_number_scheduled, ds.status.number_misscheduled) == (3, 3, 0)


# --------------------------------------------------------------------------------------- StatefulSet
STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: %(policy)s
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: c
        image: %(image)s
        args: [netexec]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: %(delay)d}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 2Gi}}}
"""


def test_statefulset_orders_pods_and_binds_claims(sim_cluster, kubectl, namespace):
    order, ready_when_next_created = [], []
    state = {}

    def observe(kind, pod):
        name = pod["metadata"]["name"]
        is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
        if kind == "ADDED" and name not in state:
            order.append(name)
            ready_when_next_created.append(sorted(n for n, r in state.items() if r))
        state[name] = is_ready
        return len(state) == 3 and all(state.values())

    since = pods_version(sim_cluster, namespace)
    _apply(kubectl, namespace, STATEFULSET % {"policy": "OrderedReady", "image": AGNHOST, "delay": 2})
    watch_pods(sim_cluster, namespace, observe, since)
    assert order == ["db-0", "db-1", "db-2"]
    # OrderedReady: each pod is created only once every lower ordinal is Running and Ready
    assert ready_when_next_created == [[], ["db-0"], ["db-0", "db-1"]]

    kubectl("rollout", "status", "statefulset/db", "-n", namespace, "--timeout=60s")
    sts = apps(sim_cluster).read_namespaced_stateful_set("db", namespace)
    assert (sts.status.replicas, sts.status.ready_replicas, sts.status.current_replicas,
            sts.status.updated_replicas, sts.status.available_replicas) == (3, 3, 3, 3, 3)
    assert sts.status.current_revision == sts.status.update_revision
    assert sts.status.update_revision.startswith("db-")
    pod = core(sim_cluster).read_namespaced_pod("db-1", namespace)
    assert (pod.spec.hostname, pod.spec.subdomain) == ("db-1", "db")
    assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == "1"
    assert pod.metadata.labels["controller-revision-hash"] == sts.status.update_revision
    assert [v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim] == \
        ["data-db-1"]
    claims = {c.metadata.name: c for c in core(sim_cluster).list_namespaced_persistent_volume_claim(namespace).items}
    assert sorted(claims) == ["data-db-0", "data-db-1", "data-db-2"]
    assert all(c.status.phase == "Bound" and c.status.capacity == {"storage": "2Gi"} for c in claims.values())

    deleted = []

    def gone(kind, pod):
        if kind == "DELETED":
            deleted.append(pod["metadata"]["name"])
        return len(deleted) == 2

    since = pods_version(sim_cluster, namespace)
    kubectl("scale", "statefulset/db", "--replicas=1", "-n", namespace)
    watch_pods(sim_cluster, namespace, gone, since)
    assert deleted == ["db-2", "db-1"]          # highest ordinal first
    # claims stay after scale-down (the default Retain policy)
    assert len(core(sim_cluster).list_namespaced_persistent_volume_claim(namespace).items) == 3


def test_statefulset_parallel_and_rolling_update(sim_cluster, kubectl, namespace):
    # a readiness delay of an hour: no pod becomes Ready, yet Parallel creates all three
    _apply(kubectl, namespace, STATEFULSET % {"policy": "Parallel", "image": AGNHOST, "delay": 3600})
    wait_for(lambda: sorted(p.metadata.name for p in pods(sim_cluster, namespace)) == ["db-0", "db-1", "db-2"],
             "three pods without waiting for readiness")
    assert not any(condition(p, "Ready").status == "True" for p in pods(sim_cluster, namespace)
                   if condition(p, "Ready") is not None)

    _apply(kubectl, namespace, STATEFULSET % {"policy": "Parallel", "image": AGNHOST, "delay": 1})
    kubectl("rollout", "status", "statefulset/db", "-n", namespace, "--timeout=60s")
    sts = apps(sim_cluster).read_namespaced_stateful_set("db", namespace)
    revision = sts.status.update_revision
    deleted = []

    def replaced(kind, pod):
        if kind == "DELETED":
            deleted.append(pod["metadata"]["name"])
        return len(deleted) == 3

    since = pods_version(sim_cluster, namespace)
    kubectl("set", "image", "statefulset/db", "c=" + AGNHOST.replace("2.53", "2.52"), "-n", namespace)
    watch_pods(sim_cluster, namespace, replaced, since)
    assert deleted == ["db-2", "db-1", "db-0"]  # rolling update from the highest ordinal down
    kubectl("rollout", "status", "statefulset/db", "-n", namespace, "--timeout=60s")
    sts = apps(sim_cluster).read_namespaced_stateful_set("db", namespace)
    assert sts.status.update_revision != revision
    assert sts.status.current_revision == sts.status.update_revision
    assert {p.spec.containers[0].image for p in pods(sim_cluster, namespace)} == {AGNHOST.replace("2.53", "2.52")}
