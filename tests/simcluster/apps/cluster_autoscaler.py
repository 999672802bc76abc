"""cluster-autoscaler (registry.k8s.io/autoscaling/cluster-autoscaler) with node groups declared in the scenario.

What the real autoscaler (kubernetes/autoscaler, cluster-autoscaler: core/static_autoscaler.go, scale_up,
scale_down, clusterstate/api) does that the cluster_autoscaling check relies on, and how far this follows:

* Every scan interval it looks at pods the scheduler marked PodScheduled=False/Unschedulable. A node group
  can help a pod when a node built from the group's template would fit it (taints tolerated, node
  selector and affinity, resources incl. extended resources such as nvidia.com/gpu) and the group is
  below its max. It then raises the group's target, records `TriggeredScaleUp` on the pod
  ("pod triggered scale-up: [{<group> <from>-><to> (max: <max>)}]") and the new node registers after the
  group's scale-up delay. Pods no group can help get `NotTriggerScaleUp` ("pod didn't trigger scale-up:
  ..." with the per-group reasons).
* A new node starts without accelerators in its allocatable: like any GPU node its device plugin (the
  DaemonSet) advertises them once it runs (the GPUs are added to the simulated inventory).
* A group node with only DaemonSet pods is unneeded; after `scaleDownUnneededTime` it is tainted
  ToBeDeletedByClusterAutoscaler, gets the `ScaleDown` event and is deleted, while the group is above min.
* The status ConfigMap `cluster-autoscaler-status` (kube-system) is written in the YAML format of
  cluster-autoscaler 1.30+ (autoscalerStatus, clusterWide and per-nodeGroups health/scaleUp/scaleDown with
  minSize, maxSize and cloudProviderTarget).

Scenario switch `settings.clusterAutoscaler`: {scanInterval, nodeGroupLabel, ignoreAccelerators,
nodeGroups: [{name, min, max, scaleUpDelay, scaleDownUnneededTime}]}; each group's template is the scenario
node pool of the same name (its nodes are the group's initial nodes). The autoscaler acts only while a
Deployment `cluster-autoscaler` has a ready replica. `ignoreAccelerators: true` models an autoscaler
whose cloud provider cannot see GPU groups (groups with accelerators are never scaled).
"""
from __future__ import annotations

import copy

import yaml

from .. import scenario as scenario_mod
from ..controllers import podutil
from ..controllers.manager import NODES, PODS, Controller

DEPLOYMENTS = ("apps", "deployments")
CONFIGMAPS = ("", "configmaps")
STATUS_CONFIGMAP = "cluster-autoscaler-status"
COMPONENT = "cluster-autoscaler"
TO_BE_DELETED = "ToBeDeletedByClusterAutoscaler"
SCAN = "scan"
DEFAULT_LABEL = "eks.amazonaws.com/nodegroup"


class ClusterAutoscaler(Controller):
    name = "cluster-autoscaler"
    component = COMPONENT

    def __init__(self, manager, sim):
        super(ClusterAutoscaler, self).__init__(manager)
        self.sim = sim
        self.config = (sim.settings or {}).get("clusterAutoscaler") or {}
        self.routes = {PODS: self._on_pod, NODES: self._kick, DEPLOYMENTS: self._kick}
        self.pools = {p["name"]: p for p in sim.scenario.get("nodePools") or []}
        self.upcoming = {}        # group -> [(due, node name)]
        self.unneeded = {}        # node -> since
        self.triggered = set()    # pod uids already counted in a scale-up
        self.next_index = {}
        self.transitions = {}

    def initial_keys(self):
        return [SCAN] if self.config.get("nodeGroups") else []

    def _kick(self, event):
        if self.config.get("nodeGroups"):
            self.enqueue(SCAN)

    def _on_pod(self, event):
        if self.config.get("nodeGroups") and event.type != "ADDED":
            self.enqueue(SCAN)

    # ----------------------------------------------------------------------------- helpers
    def running(self):
        for dep in self.store.list(DEPLOYMENTS)[0]:
            if dep["metadata"]["name"] == "cluster-autoscaler" and (dep.get("status") or {}).get("readyReplicas", 0) >= 1:
                return dep
        return None

    def label(self):
        return self.config.get("nodeGroupLabel") or DEFAULT_LABEL

    def group_nodes(self, group):
        return [n for n in self.store.list(NODES)[0]
                if (n["metadata"].get("labels") or {}).get(self.label()) == group["name"]]

    def template(self, group, name="template"):
        pool = dict(self.pools[group["name"]], count=1)
        node = scenario_mod.node_objects(pool, self.sim.version["gitVersion"], self.clock.timestamp())[0]
        node["metadata"]["name"] = name
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        node["metadata"]["labels"][self.label()] = group["name"]
        return node

    def has_accelerators(self, group):
        return bool(self.pools.get(group["name"], {}).get("accelerators"))

    def fits(self, pod, node):
        """None when `pod` fits an empty `node`, else the scheduler-style reason."""
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        taint = podutil.untolerated_taint(tolerations, (node.get("spec") or {}).get("taints") or [])
        if taint is not None:
            return "node(s) had untolerated taint {%s: %s}" % (taint.get("key"), taint.get("value") or "")
        if not podutil.matches_node_selector_and_affinity(pod, node):
            return "node(s) didn't match Pod's node affinity/selector"
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        for res, value in sorted(podutil.pod_requests(pod).items()):
            if value > podutil.quantity(allocatable.get(res, "0")):
                return "Insufficient %s" % res
        return None

    # ----------------------------------------------------------------------------- the loop
    def reconcile(self, key):
        if self.running() is None:
            return
        groups = [g for g in self.config.get("nodeGroups") or [] if g.get("name") in self.pools]
        now = self.clock.now()
        self._register_due(groups, now)
        self._scale_up(groups, now)
        self._scale_down(groups, now)
        self._write_status(groups)
        self.enqueue_after(float(self.config.get("scanInterval", 10)), SCAN)

    def _size(self, group):
        return len(self.group_nodes(group)) + len(self.upcoming.get(group["name"], []))

    def _scale_up(self, groups, now):
        pending = [p for p in self.store.list(PODS)[0]
                   if not (p.get("spec") or {}).get("nodeName") and not p["metadata"].get("deletionTimestamp")
                   and not podutil.is_terminal(p) and _unschedulable(p)
                   and p["metadata"]["uid"] not in self.triggered]
        for pod in sorted(pending, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            reasons = []
            chosen = None
            for group in groups:
                if self.config.get("ignoreAccelerators") and self.has_accelerators(group):
                    continue
                reason = self.fits(pod, self.template(group))
                if reason:
                    reasons.append(reason)
                    continue
                if self._size(group) >= int(group.get("max", 1)):
                    reasons.append("max node group size reached")
                    continue
                # room on a node that is already coming up for an earlier pod?
                chosen = group
                break
            if chosen is None:
                self._event_once(pod, "Normal", "NotTriggerScaleUp",
                                 "pod didn't trigger scale-up: %s" % _counted(reasons or ["no node group can help"]))
                continue
            self.triggered.add(pod["metadata"]["uid"])
            if self._room_upcoming(chosen, pod):
                continue
            before = self._size(chosen)
            index = self._next(chosen)
            name = "%s-%d" % (chosen["name"], index)
            self.upcoming.setdefault(chosen["name"], []).append([now + float(chosen.get("scaleUpDelay", 60)), name, [pod]])
            self.manager.recorder.event(pod, "Normal", "TriggeredScaleUp",
                                        "pod triggered scale-up: [{%s %d->%d (max: %d)}]"
                                        % (chosen["name"], before, before + 1, int(chosen.get("max", 1))), COMPONENT)
            self.transitions["scaleUp"] = self.clock.timestamp()
            self.enqueue_after(float(chosen.get("scaleUpDelay", 60)), SCAN)

    def _room_upcoming(self, group, pod):
        """Bin-pack onto a node that is already being created when the pod fits beside what it will hold."""
        template = self.template(group)
        allocatable = (template.get("status") or {}).get("allocatable") or {}
        for entry in self.upcoming.get(group["name"], []):
            total = {}
            for other in entry[2] + [pod]:
                for res, value in podutil.pod_requests(other).items():
                    total[res] = total.get(res, podutil.ZERO) + value
            if all(v <= podutil.quantity(allocatable.get(r, "0")) for r, v in total.items()):
                entry[2].append(pod)
                return True
        return False

    def _next(self, group):
        names = {n["metadata"]["name"] for n in self.group_nodes(group)}
        index = self.next_index.get(group["name"], int(self.pools[group["name"]].get("count", 0)))
        while "%s-%d" % (group["name"], index) in names:
            index += 1
        self.next_index[group["name"]] = index + 1
        return index

    def _register_due(self, groups, now):
        for group in groups:
            keep = []
            for entry in self.upcoming.get(group["name"], []):
                if entry[0] > now:
                    keep.append(entry)
                    continue
                node = self.template(group, entry[1])
                pool = self.pools[group["name"]]
                accel = pool.get("accelerators") or {}
                resource = accel.get("resource") or scenario_mod.ACCELERATOR_RESOURCES.get(accel.get("vendor", "nvidia"))
                if accel and resource:
                    for field in ("capacity", "allocatable"):
                        node["status"][field].pop(resource, None)
                    inventory = getattr(getattr(self.sim, "accelerators", None), "inventory", None)
                    if inventory is not None and accel.get("vendor", "nvidia") == "nvidia":
                        inventory.add_node(entry[1], int(accel.get("count", 1)),
                                           accel.get("product", "NVIDIA-H100-80GB-HBM3"))
                node["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/scale-up-by"] = COMPONENT
                self.store.create(NODES, node)
            self.upcoming[group["name"]] = keep

    def _scale_down(self, groups, now):
        for group in groups:
            nodes = self.group_nodes(group)
            size = len(nodes)
            for node in sorted(nodes, key=lambda n: n["metadata"]["name"], reverse=True):
                name = node["metadata"]["name"]
                if not self._empty(name):
                    self.unneeded.pop(name, None)
                    continue
                since = self.unneeded.setdefault(name, now)
                wait = float(group.get("scaleDownUnneededTime", 600))
                if size <= int(group.get("min", 0)):
                    continue
                if now - since < wait:
                    self.enqueue_after(wait - (now - since), SCAN)
                    continue
                self._remove(node)
                self.unneeded.pop(name, None)
                size -= 1

    def _empty(self, node_name):
        for namespace, name in list(self.manager.index.pods_by_node.get(node_name, ())):
            pod = self.read(PODS, namespace, name)
            if pod is None or podutil.is_terminal(pod):
                continue
            ref = podutil.controller_ref(pod)
            if ref and ref.get("kind") == "DaemonSet":
                continue
            if (pod["metadata"].get("annotations") or {}).get("kubernetes.io/config.mirror"):
                continue
            return False
        return True

    def _remove(self, node):
        fresh = copy.deepcopy(node)
        taints = [t for t in fresh["spec"].get("taints") or [] if t.get("key") != TO_BE_DELETED]
        taints.append({"key": TO_BE_DELETED, "value": str(int(self.clock.now())), "effect": "NoSchedule"})
        fresh["spec"]["taints"] = taints
        stored = self.store.update(NODES, fresh)
        self.manager.recorder.event(stored, "Normal", "ScaleDown", "marked the node as toBeDeleted/unschedulable",
                                    COMPONENT)
        for namespace, name in list(self.manager.index.pods_by_node.get(node["metadata"]["name"], ())):
            try:
                self.store.delete(PODS, namespace, name, grace_period=0)
            except Exception:  # pylint: disable=broad-except
                pass
        self.store.delete(NODES, None, node["metadata"]["name"])
        inventory = getattr(getattr(self.sim, "accelerators", None), "inventory", None)
        if inventory is not None:
            inventory.remove_node(node["metadata"]["name"])
        self.transitions["scaleDown"] = self.clock.timestamp()

    def _event_once(self, pod, etype, reason, message):
        self.manager.recorder.event(pod, etype, reason, message, COMPONENT)

    # ----------------------------------------------------------------------------- status ConfigMap
    def _write_status(self, groups):
        now = self.clock.timestamp()
        nodes = self.store.list(NODES)[0]
        ready = sum(1 for n in nodes if podutil.node_ready(n))
        up = "InProgress" if any(self.upcoming.values()) else "NoActivity"
        down = "CandidatesPresent" if self.unneeded else "NoCandidates"

        def counts(total, ready_count):
            return {"registered": {"total": total, "ready": ready_count, "notStarted": 0},
                    "longUnregistered": 0, "unregistered": 0}
        cluster_wide = {
            "health": {"status": "Healthy", "nodeCounts": counts(len(nodes), ready), "lastProbeTime": now,
                       "lastTransitionTime": self.transitions.setdefault("health", now)},
            "scaleUp": {"status": up, "lastProbeTime": now,
                        "lastTransitionTime": self.transitions.setdefault("scaleUp", now)},
            "scaleDown": {"status": down, "lastProbeTime": now,
                          "lastTransitionTime": self.transitions.setdefault("scaleDown", now)}}
        doc = {"time": now, "autoscalerStatus": "Running", "clusterWide": cluster_wide, "nodeGroups": []}
        for group in groups:
            members = self.group_nodes(group)
            doc["nodeGroups"].append({
                "name": group["name"],
                "health": {"status": "Healthy", "nodeCounts": counts(len(members), sum(1 for n in members if podutil.node_ready(n))),
                           "cloudProviderTarget": self._size(group), "minSize": int(group.get("min", 0)),
                           "maxSize": int(group.get("max", 1)), "lastProbeTime": now,
                           "lastTransitionTime": self.transitions["health"]},
                "scaleUp": {"status": "InProgress" if self.upcoming.get(group["name"]) else "NoActivity",
                            "lastProbeTime": now, "lastTransitionTime": self.transitions["scaleUp"]},
                "scaleDown": {"status": "CandidatesPresent" if any(n["metadata"]["name"] in self.unneeded for n in members)
                              else "NoCandidates", "lastProbeTime": now,
                              "lastTransitionTime": self.transitions["scaleDown"]}})
        namespace = self.config.get("statusNamespace", "kube-system")
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": STATUS_CONFIGMAP, "namespace": namespace,
                             "annotations": {"cluster-autoscaler.kubernetes.io/last-updated": now}},
                "data": {"status": yaml.safe_dump(doc, sort_keys=False)}}
        current = self.read(CONFIGMAPS, namespace, STATUS_CONFIGMAP)
        if current is None:
            self.store.create(CONFIGMAPS, body)
            return
        if (current.get("data") or {}).get("status", "").split("\n", 1)[-1] == body["data"]["status"].split("\n", 1)[-1]:
            return
        fresh = copy.deepcopy(current)
        fresh["data"] = body["data"]
        fresh["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])
        self.store.update(CONFIGMAPS, fresh)


def _unschedulable(pod):
    cond = podutil.get_condition(pod, "PodScheduled")
    return bool(cond) and cond.get("status") == "False" and cond.get("reason") == "Unschedulable"


def _counted(reasons):
    counts = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join("%d %s" % (n, r) for r, n in sorted(counts.items()))


def register(sim):
    """Add the cluster autoscaler when the scenario declares node groups."""
    if ((sim.settings or {}).get("clusterAutoscaler") or {}).get("nodeGroups"):
        sim.controllers.add_controller(ClusterAutoscaler(sim.controllers, sim))
