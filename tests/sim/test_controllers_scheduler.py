"""The simulated kube-scheduler: placement, the real FitError messages, retries and its plugin hook."""
from __future__ import annotations

import decimal

from simcluster.controllers import podutil
from simcluster.controllers.testing import (api_client, condition, core, events_for, new_namespace, pods, wait_for)

POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: %(app)s}}
spec:
  %(extra)s
  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
    resources: %(resources)s
"""


def _pod(kubectl, ns, name, extra="", resources="{}", app="x"):
    manifest = POD % {"name": name, "extra": extra, "resources": resources, "app": app}
    kubectl("apply", "-n", ns, "-f", "-", stdin=manifest)


def _unschedulable(sim, ns, name):
    pod = core(sim).read_namespaced_pod(name, ns)
    cond = condition(pod, "PodScheduled")
    if cond is not None and cond.status == "False" and cond.reason == "Unschedulable":
        return cond.message
    return None


def _scheduled_to(sim, ns, name):
    return core(sim).read_namespaced_pod(name, ns).spec.node_name


def test_fit_error_names_every_reason(sim_cluster, kubectl, namespace):
    # 2 CPU nodes have no nvidia.com/gpu; the 2 GPU nodes have a taint the pod does not tolerate
    _pod(kubectl, namespace, "wants-gpu", resources="{limits: {nvidia.com/gpu: \"1\"}}")
    message = wait_for(lambda: _unschedulable(sim_cluster, namespace, "wants-gpu"), "an Unschedulable condition")
    expected = ("0/4 nodes are available: 2 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint "
                "{nvidia.com/gpu: present}. preemption: 0/4 nodes are available: 2 No preemption victims found "
                "for incoming pod, 2 Preemption is not helpful for scheduling.")
    assert message == expected
    failed = [e for e in events_for(sim_cluster, namespace, "wants-gpu") if e.reason == "FailedScheduling"]
    assert failed and failed[0].type == "Warning" and failed[0].message == expected
    assert failed[0].source.component == "default-scheduler"
    pod = core(sim_cluster).read_namespaced_pod("wants-gpu", namespace)
    assert pod.status.phase == "Pending" and pod.spec.node_name is None

    _pod(kubectl, namespace, "picky", extra="nodeSelector: {example.com/none: x}",
         resources="{requests: {cpu: 100m}}")
    message = wait_for(lambda: _unschedulable(sim_cluster, namespace, "picky"), "an Unschedulable condition")
    assert message == ("0/4 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, 2 node(s) had "
                       "untolerated taint {nvidia.com/gpu: present}. preemption: 0/4 nodes are available: "
                       "4 Preemption is not helpful for scheduling.")

    _pod(kubectl, namespace, "huge", resources="{requests: {cpu: '64', memory: 1Ti}}")
    message = wait_for(lambda: _unschedulable(sim_cluster, namespace, "huge"), "an Unschedulable condition")
    # one node can fail for several resources: every reason is counted
    assert message.startswith("0/4 nodes are available: 2 Insufficient cpu, 2 Insufficient memory, 2 node(s) had "
                              "untolerated taint {nvidia.com/gpu: present}.")


def test_pods_for_another_scheduler_stay_pending(sim_cluster, kubectl, namespace):
    _pod(kubectl, namespace, "volcano-pod", extra="schedulerName: volcano")
    _pod(kubectl, namespace, "normal-pod")
    # the default scheduler takes pods in order: once the later one is bound, the earlier was seen
    wait_for(lambda: _scheduled_to(sim_cluster, namespace, "normal-pod"), "the default-scheduler pod to be bound")
    pod = core(sim_cluster).read_namespaced_pod("volcano-pod", namespace)
    assert pod.spec.node_name is None and pod.status.phase == "Pending"
    assert condition(pod, "PodScheduled") is None
    assert events_for(sim_cluster, namespace, "volcano-pod") == []


def test_scheduling_gates_hold_a_pod(sim_cluster, kubectl, namespace):
    _pod(kubectl, namespace, "gated", extra="schedulingGates: [{name: example.com/wait}]")
    cond = wait_for(lambda: condition(core(sim_cluster).read_namespaced_pod("gated", namespace), "PodScheduled"),
                    "the SchedulingGated condition")
    assert (cond.status, cond.reason) == ("False", "SchedulingGated")
    kubectl("patch", "pod/gated", "-n", namespace, "--type=json",
            "-p", '[{"op": "remove", "path": "/spec/schedulingGates"}]')
    wait_for(lambda: _scheduled_to(sim_cluster, namespace, "gated"), "the pod to be bound once ungated")


def test_required_hostname_anti_affinity(sim_cluster, kubectl, namespace):
    anti = ("affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
            "[{labelSelector: {matchLabels: {app: spread}}, topologyKey: kubernetes.io/hostname}]}}")
    for name in ("spread-a", "spread-b", "spread-c"):
        _pod(kubectl, namespace, name, extra=anti, app="spread")
    wait_for(lambda: len([p for p in pods(sim_cluster, namespace) if p.spec.node_name]) == 2, "two pods bound")
    placed = sorted(p.spec.node_name for p in pods(sim_cluster, namespace) if p.spec.node_name)
    assert placed == ["cpu-0", "cpu-1"]          # one per node, never two on one
    pending = [p.metadata.name for p in pods(sim_cluster, namespace) if not p.spec.node_name]
    message = wait_for(lambda: _unschedulable(sim_cluster, namespace, pending[0]), "an Unschedulable condition")
    assert message == ("0/4 nodes are available: 2 node(s) didn't match pod anti-affinity rules, 2 node(s) had "
                       "untolerated taint {nvidia.com/gpu: present}. preemption: 0/4 nodes are available: 2 No "
                       "preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.")
    # deleting one of the placed pods frees its node: the pending pod is retried and lands there
    freed = [p for p in pods(sim_cluster, namespace) if p.spec.node_name][0]
    core(sim_cluster).delete_namespaced_pod(freed.metadata.name, namespace)
    wait_for(lambda: _scheduled_to(sim_cluster, namespace, pending[0]) == freed.spec.node_name,
             "the pending pod to take the freed node")


def _add_gpu_node(sim, name, gpus):
    template = api_client(sim).sanitize_for_serialization(core(sim).read_node("cpu-0"))
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "example.com/test-node": name}
    core(sim).create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
    status = template["status"]
    for field in ("capacity", "allocatable"):
        status[field] = dict(status[field], **{"nvidia.com/gpu": str(gpus)})
    core(sim).patch_node_status(name, {"status": status})


def test_gpu_capacity_fit_and_retry_when_freed(make_sim, tools):
    sim = make_sim(speed=50)
    kubectl = tools(sim)[0]
    ns = new_namespace(sim)
    _add_gpu_node(sim, "gpu-test", 4)
    select = "nodeSelector: {example.com/test-node: gpu-test}"
    _pod(kubectl, ns, "first", extra=select, resources="{limits: {nvidia.com/gpu: \"3\"}}")
    assert wait_for(lambda: _scheduled_to(sim, ns, "first"), "first to be bound") == "gpu-test"
    _pod(kubectl, ns, "second", extra=select, resources="{limits: {nvidia.com/gpu: \"2\"}}")
    message = wait_for(lambda: _unschedulable(sim, ns, "second"), "second to be unschedulable")
    # filters run in the real plugin order: the tainted GPU nodes fail on the taint before the selector
    assert message == ("0/5 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's node "
                       "affinity/selector, 2 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: "
                       "0/5 nodes are available: 1 No preemption victims found for incoming pod, 4 Preemption is not "
                       "helpful for scheduling.")
    # 3 + 1 fits exactly the 4 GPUs
    _pod(kubectl, ns, "third", extra=select, resources="{limits: {nvidia.com/gpu: \"1\"}}")
    assert wait_for(lambda: _scheduled_to(sim, ns, "third"), "third to be bound") == "gpu-test"
    core(sim).delete_namespaced_pod("first", ns)
    assert wait_for(lambda: _scheduled_to(sim, ns, "second"), "second to be retried") == "gpu-test"
    used = sim.controllers.scheduler.node_usage("gpu-test")
    assert used["nvidia.com/gpu"] == 3 and used["pods"] == 2


def test_cordoned_and_not_ready_nodes(make_sim, tools):
    sim = make_sim(speed=50)
    kubectl = tools(sim)[0]
    ns = new_namespace(sim)
    kubectl("cordon", "cpu-0")
    status = api_client(sim).sanitize_for_serialization(core(sim).read_node("cpu-1"))["status"]
    for cond in status["conditions"]:
        if cond["type"] == "Ready":
            cond.update({"status": "False", "reason": "KubeletNotReady", "message": "container runtime is down"})
    core(sim).patch_node_status("cpu-1", {"status": {"conditions": status["conditions"]}})
    _pod(kubectl, ns, "waiting")
    message = wait_for(lambda: _unschedulable(sim, ns, "waiting"), "an Unschedulable condition")
    # a node that is not Ready carries the not-ready taint the node lifecycle controller adds
    assert message == ("0/4 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                       "1 node(s) were unschedulable, 2 node(s) had untolerated taint {nvidia.com/gpu: present}. "
                       "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.")
    kubectl("uncordon", "cpu-0")
    assert wait_for(lambda: _scheduled_to(sim, ns, "waiting"), "the pod to be bound after uncordon") == "cpu-0"


class _LabelPlugin(object):
    """A scheduler plugin as a later issue would register one (DRA claim allocation)."""

    def __init__(self):
        self.reserved = []

    def filter(self, pod, node):
        if "example.com/ok" not in (node["metadata"].get("labels") or {}):
            return "node(s) lack example.com/ok"
        return None

    def reserve(self, pod, node):
        self.reserved.append((pod["metadata"]["name"], node["metadata"]["name"]))


def test_plugins_filter_and_reserve(make_sim, tools):
    sim = make_sim(speed=50)
    kubectl = tools(sim)[0]
    ns = new_namespace(sim)
    plugin = _LabelPlugin()
    sim.controllers.scheduler.register_plugin(plugin)
    _pod(kubectl, ns, "plugged")
    message = wait_for(lambda: _unschedulable(sim, ns, "plugged"), "an Unschedulable condition")
    assert message == ("0/4 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, "
                       "2 node(s) lack example.com/ok. preemption: 0/4 nodes are available: 4 Preemption is not "
                       "helpful for scheduling.")
    assert plugin.reserved == []
    kubectl("label", "node", "cpu-1", "example.com/ok=yes")
    assert wait_for(lambda: _scheduled_to(sim, ns, "plugged"), "the pod to be bound") == "cpu-1"
    assert plugin.reserved == [("plugged", "cpu-1")]


def test_effective_requests_count_init_containers_sidecars_and_overhead():
    pod = {"spec": {
        "overhead": {"cpu": "100m"},
        "initContainers": [
            {"name": "setup", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
            {"name": "late-init", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}],
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "512Mi"}}},
                       {"name": "b", "resources": {"limits": {"memory": "256Mi"}}}]}}
    requests = podutil.pod_requests(pod)
    dec = decimal.Decimal
    # cpu: containers 1 + sidecar 0.5 = 1.5; init steps: setup 2, late-init 1 + running sidecar 0.5 = 1.5
    # -> max(1.5, 2) = 2, plus 0.1 overhead
    assert requests["cpu"] == dec("2.1")
    # memory: containers 768Mi < setup's 1Gi
    assert requests["memory"] == dec(1024 ** 3)
    # an extended resource only an init container asks for still has to fit
    assert requests["nvidia.com/gpu"] == dec(1)
