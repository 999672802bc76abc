"""The NVIDIA GPU operator (nvcr.io/nvidia/gpu-operator, command `gpu-operator`), reconciling its ClusterPolicy.

What the real operator (NVIDIA/gpu-operator, controllers/clusterpolicy_controller.go and state_manager.go)
does that the gpu_operator role and the checks rely on, and how far this app follows it:

* It watches the cluster's ClusterPolicy (nvidia.com/v1, the chart creates `cluster-policy`) and
  deploys the operands it enables into its own namespace (OPERATOR_NAMESPACE), each owned by the
  ClusterPolicy so they go when it goes. Modelled operands: the device plugin (with the `nvidia`
  RuntimeClass) and the DCGM exporter with its Service, as the simulated accelerators model them
  (tests/simcluster/accelerators/stack/*.yaml, read here), and a ServiceMonitor for the exporter when
  `dcgmExporter.serviceMonitor.enabled` and the Prometheus operator's CRD exists. Operand images come
  from the ClusterPolicy (`<repository>/<image>:<version>`), so registry overrides show. The driver,
  toolkit, validator, GFD and MIG manager operands are not modelled: the simulated nodes come with a
  driver and the accelerators package labels nodes the way GFD does.
* Operand DaemonSets run on every GPU node (`nvidia.com/gpu.present=true`) except nodes labelled
  `nvidia.com/gpu.deploy.<operand>=false` (how the operator lets nodes opt out, e.g. to the DRA driver).
* An operand the ClusterPolicy switches off (`<operand>.enabled: false`) is deleted.
* `status.state` is `ready` once every operand DaemonSet has all its scheduled pods updated and ready,
  `notReady` before; `status.namespace` names the operator's namespace, and a `Ready` condition says why.
"""
from __future__ import annotations

import copy
import functools
import os
import posixpath

import yaml

from ..errors import ApiError

IMAGE_PATTERN = "*/nvidia/gpu-operator"
CLUSTERPOLICIES = ("nvidia.com", "clusterpolicies")
DAEMONSETS = ("apps", "daemonsets")
SERVICEMONITORS = ("monitoring.coreos.com", "servicemonitors")
RECONCILE_SECONDS = 5.0
STACK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "accelerators", "stack")
# ClusterPolicy operand (spec key) -> the building block that holds its objects, its main container, and the
# node label the operator uses to keep it off a node (`nvidia.com/gpu.deploy.<operand>=false`).
OPERANDS = {
    "devicePlugin": ("device-plugin.yaml", "nvidia-device-plugin", "nvidia.com/gpu.deploy.device-plugin"),
    "dcgmExporter": ("dcgm-exporter.yaml", "nvidia-dcgm-exporter", "nvidia.com/gpu.deploy.dcgm-exporter"),
}
GROUPS = {"DaemonSet": DAEMONSETS, "Service": ("", "services"), "RuntimeClass": ("node.k8s.io", "runtimeclasses"),
          "ServiceMonitor": SERVICEMONITORS}


@functools.lru_cache(maxsize=None)
def _load_block(filename):
    """The templates of one stack block, parsed once per process (callers copy before changing them)."""
    with open(os.path.join(STACK_DIR, filename), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle) or {}
    return tuple(obj for obj in doc.get("objects") or [] if obj.get("kind") in GROUPS)


def _enabled(spec, operand):
    return (spec.get(operand) or {}).get("enabled", True) is not False


def _image(section, fallback):
    repository, image, version = section.get("repository"), section.get("image"), section.get("version")
    if repository and image and version:
        return "%s/%s:%s" % (repository, image, version)
    return fallback


def _service_monitor(namespace, section):
    monitor = section.get("serviceMonitor") or {}
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "nvidia-dcgm-exporter", "namespace": namespace,
                     "labels": dict({"app": "nvidia-dcgm-exporter"}, **(monitor.get("additionalLabels") or {}))},
        "spec": {"selector": {"matchLabels": {"app": "nvidia-dcgm-exporter"}},
                 "namespaceSelector": {"matchNames": [namespace]},
                 "endpoints": [{"port": "gpu-metrics", "path": "/metrics", "interval": monitor.get("interval", "15s"),
                                "honorLabels": bool(monitor.get("honorLabels", False)),
                                "relabelings": monitor.get("relabelings") or []}]},
    }


def desired_operands(policy, namespace, monitors_served):
    """[(group-resource, object)] the operator deploys for `policy` into `namespace`."""
    spec = policy.get("spec") or {}
    owner = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "name": policy["metadata"]["name"],
             "uid": policy["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    out = []
    for operand, (filename, container, deploy_label) in OPERANDS.items():
        if not _enabled(spec, operand):
            continue
        for template in _load_block(filename):
            obj = copy.deepcopy(template)
            meta = obj["metadata"]
            if obj["kind"] != "RuntimeClass":
                meta["namespace"] = namespace
            meta["ownerReferences"] = [owner]
            if obj["kind"] == "DaemonSet":
                pod_spec = obj["spec"]["template"]["spec"]
                for cont in pod_spec["containers"]:
                    if cont["name"] == container:
                        cont["image"] = _image(spec.get(operand) or {}, cont["image"])
                # Placement as the operator does it: every GPU node (nodeSelector of the block) unless the node
                # opts out with the operand's deploy label; the blocks' own pinning to scenario nodes is dropped.
                pod_spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": deploy_label, "operator": "NotIn", "values": ["false"]}]}]}}}
            out.append((GROUPS[obj["kind"]], obj))
        if operand == "dcgmExporter" and monitors_served and \
                ((spec.get(operand) or {}).get("serviceMonitor") or {}).get("enabled"):
            monitor = _service_monitor(namespace, spec.get(operand) or {})
            monitor["metadata"]["ownerReferences"] = [owner]
            out.append((SERVICEMONITORS, monitor))
    return out


def daemonset_ready(ds):
    status = ds.get("status") or {}
    want = status.get("desiredNumberScheduled")
    observed = status.get("observedGeneration", 0) >= (ds["metadata"].get("generation") or 0)
    return want is not None and observed and status.get("numberReady", 0) >= want and \
        status.get("updatedNumberScheduled", 0) >= want


class Reconciler(object):
    """One reconcile pass of the operator, against the simulator's store."""

    def __init__(self, sim, namespace):
        self.store = sim.store
        self.namespace = namespace

    def policy(self):
        if CLUSTERPOLICIES not in self.store.types:
            return None
        items = self.store.list(CLUSTERPOLICIES)[0]
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return copy.deepcopy(sorted(live, key=lambda p: p["metadata"]["creationTimestamp"])[0]) if live else None

    def run(self):
        policy = self.policy()
        if policy is None:
            return
        desired = desired_operands(policy, self.namespace, SERVICEMONITORS in self.store.types)
        wanted = set()
        for gr, obj in desired:
            wanted.add((gr, obj["metadata"]["name"]))
            if self.store.try_get(gr, obj["metadata"].get("namespace"), obj["metadata"]["name"]) is None:
                try:
                    self.store.create(gr, obj)
                except ApiError:
                    pass  # created meanwhile, or the namespace is going away: the next pass sees it
        self._delete_unwanted(policy, wanted)
        self._write_status(policy, [obj for gr, obj in desired if gr == DAEMONSETS])

    def _delete_unwanted(self, policy, wanted):
        """Operands the policy no longer enables (owned by it, not in `wanted`) are removed."""
        for gr in (DAEMONSETS, ("", "services"), SERVICEMONITORS):
            if gr not in self.store.types:
                continue
            for obj in list(self.store.list(gr, namespace=self.namespace)[0]):
                owners = obj["metadata"].get("ownerReferences") or []
                if any(o.get("uid") == policy["metadata"]["uid"] for o in owners) and (gr, obj["metadata"]["name"]) not in wanted:
                    try:
                        self.store.delete(gr, self.namespace, obj["metadata"]["name"])
                    except ApiError:
                        pass

    def _write_status(self, policy, daemonsets):
        not_ready = []
        for ds in daemonsets:
            live = self.store.try_get(DAEMONSETS, self.namespace, ds["metadata"]["name"])
            if live is None or not daemonset_ready(live):
                not_ready.append(ds["metadata"]["name"])
        state = "notReady" if not_ready else "ready"
        condition = {"type": "Ready", "status": "False" if not_ready else "True",
                     "reason": "OperandNotReady" if not_ready else "Reconciled",
                     "message": ("ClusterPolicy is not ready, states not ready: " + ", ".join(sorted(not_ready)))
                     if not_ready else "ClusterPolicy is ready as all resources have been successfully reconciled"}
        status = policy.get("status") or {}
        old = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        if status.get("state") == state and status.get("namespace") == self.namespace and old and \
                all(old[0].get(k) == v for k, v in condition.items()):
            return
        condition["lastTransitionTime"] = self.store.clock.timestamp()
        policy["status"] = {"state": state, "namespace": self.namespace, "conditions": [condition]}
        try:
            self.store.update(CLUSTERPOLICIES, policy, subresource="status")
        except ApiError:
            pass  # changed meanwhile: the next pass writes again


def operator_app(proc):
    if not proc.argv or posixpath.basename(proc.argv[0]) != "gpu-operator" or proc.init:
        return None
    return _operator(proc)


def _operator(proc):
    namespace = proc.env.get("OPERATOR_NAMESPACE") or proc.pod["metadata"]["namespace"]
    reconciler = Reconciler(proc.runtime.sim, namespace)
    proc.write('{"level":"info","msg":"Starting EventSource","controller":"clusterpolicy-controller"}\n')
    for port in [int(p["containerPort"]) for p in proc.container.get("ports") or () if p.get("containerPort")]:
        proc.listen(port, lambda req: (200, {"Content-Type": "text/plain"}, "ok"))
    while True:  # like the real operator: runs until the pod stops
        reconciler.run()
        yield RECONCILE_SECONDS


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, operator_app)
