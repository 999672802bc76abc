"""DaemonSet controller: one pod per node that should run it.

A node should run the daemon pod when the pod's nodeSelector and required node affinity match it and
every NoSchedule/NoExecute taint (including the not-ready/unreachable taints of nodes that are not
Ready) is tolerated, counting the tolerations the real controller adds to every daemon pod
(not-ready/unreachable NoExecute, disk/memory/pid-pressure and unschedulable NoSchedule,
network-unavailable for hostNetwork pods). Like the real controller, pods are not bound directly:
each gets a required node affinity on `metadata.name` of its node and the scheduler places it
(resource fit applies). Pods on nodes that stop matching are deleted, failed pods are replaced,
RollingUpdate replaces pods of an old template maxUnavailable at a time (OnDelete waits).

Status: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled, numberReady,
updatedNumberScheduled, numberAvailable, numberUnavailable, observedGeneration.
"""
from __future__ import annotations

import copy

from . import podutil
from .manager import NODES, PODS, Controller
from .revisions import REVISION_LABEL, ensure_revision

DAEMONSETS = ("apps", "daemonsets")
DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


def daemon_pod_spec(template_spec, node_name=None):
    """The template's pod spec with the daemon tolerations (and, for a node, its name affinity)."""
    spec = copy.deepcopy(template_spec or {})
    tolerations = spec.setdefault("tolerations", [])
    wanted = DEFAULT_TOLERATIONS + ([NETWORK_TOLERATION] if spec.get("hostNetwork") else [])
    for tol in wanted:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"] for t in tolerations):
            tolerations.append(dict(tol))
    if node_name is not None:
        affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    return spec


def target_node(pod):
    """The node a daemon pod is for: its nodeName, or the name in its metadata.name affinity."""
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return node
    required = podutil.required_node_affinity(pod) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for field in term.get("matchFields") or ():
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and field.get("values"):
                return field["values"][0]
    return None


class DaemonSetController(Controller):
    name = "daemonset"
    component = "daemonset-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {DAEMONSETS: self._on_ds, PODS: self._on_pod, NODES: self._on_node}

    def _all_keys(self):
        if not self.served(DAEMONSETS):
            return []
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.store.list(DAEMONSETS)[0]]

    def initial_keys(self):
        return self._all_keys()

    def _on_ds(self, event):
        self.enqueue((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_pod(self, event):
        for obj in (event.obj, event.old):
            ref = podutil.controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "DaemonSet":
                self.enqueue((obj["metadata"]["namespace"], ref.get("name")))

    def _on_node(self, event):
        old, new = event.old, event.obj
        if old is not None and event.type != "DELETED" and old["metadata"].get("labels") == \
                new["metadata"].get("labels") and (old.get("spec") or {}).get("taints") == \
                (new.get("spec") or {}).get("taints") and podutil.node_ready(old) == podutil.node_ready(new):
            return
        for key in self._all_keys():
            self.enqueue(key)

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        ds = self.read(DAEMONSETS, *key)
        if ds is None:
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        pod_hash = ensure_revision(self, ds, "DaemonSet", template)
        nodes = self.store.list(NODES)[0]
        probe = {"metadata": {}, "spec": daemon_pod_spec(template.get("spec"))}
        by_node = {}
        for pod in self.owned(ds, PODS):
            by_node.setdefault(target_node(pod), []).append(pod)
        active = not ds["metadata"].get("deletionTimestamp")
        counts = {"desired": 0, "current": 0, "mis": 0, "ready": 0, "updated": 0, "available": 0}
        now = self.clock.now()
        wake = None
        unavailable = []
        outdated = []
        for node in nodes:
            name = node["metadata"]["name"]
            should = self._should_run(probe, node)
            pods = [p for p in by_node.pop(name, []) if not p["metadata"].get("deletionTimestamp")]
            failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
            pods = [p for p in pods if p not in failed]
            if active:
                self._delete(ds, failed)
            if not should:
                if pods:
                    counts["mis"] += 1
                    if active:
                        self._delete(ds, pods)
                continue
            counts["desired"] += 1
            if not pods:
                if active:
                    self._create(ds, template, name, pod_hash)
                unavailable.append(name)
                continue
            if active and len(pods) > 1:
                self._delete(ds, sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))[1:])
            pod = pods[0]
            counts["current"] += 1
            current = (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == pod_hash
            if current:
                counts["updated"] += 1
            else:
                outdated.append(pod)
            if podutil.is_ready(pod):
                counts["ready"] += 1
                ok, due = podutil.pod_available(pod, spec.get("minReadySeconds"), now, self.clock)
                if ok:
                    counts["available"] += 1
                    continue
                if due is not None:
                    wake = due if wake is None else min(wake, due)
            unavailable.append(name)
        if active:
            for pods in by_node.values():       # pods for nodes that no longer exist
                self._delete(ds, [p for p in pods if not p["metadata"].get("deletionTimestamp")])
            self._roll(ds, outdated, unavailable, counts["desired"])
        self._status(ds, counts)
        if wake is not None:
            self.enqueue_after(wake - now, key)

    def _should_run(self, probe, node):
        if not podutil.matches_node_selector_and_affinity(probe, node):
            return False
        return podutil.untolerated_taint(probe["spec"].get("tolerations"), podutil.effective_taints(node)) is None

    def _create(self, ds, template, node_name, pod_hash):
        pod = podutil.pod_from_template(template, ds, "apps/v1", "DaemonSet",
                                        generate_name=ds["metadata"]["name"] + "-",
                                        labels={REVISION_LABEL: pod_hash, "pod-template-generation":
                                                str(ds["metadata"].get("generation", 1))})
        pod["spec"] = daemon_pod_spec(pod["spec"], node_name)
        created = self.store.create(PODS, pod)
        self.event(ds, "Normal", "SuccessfulCreate", "Created pod: %s" % created["metadata"]["name"])

    def _delete(self, ds, pods):
        for pod in pods:
            self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
            self.event(ds, "Normal", "SuccessfulDelete", "Deleted pod: %s" % pod["metadata"]["name"])

    def _roll(self, ds, outdated, unavailable, desired):
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete" or not outdated:
            return
        rolling = strategy.get("rollingUpdate") or {}
        budget = podutil.int_or_percent(podutil.field(rolling, "maxUnavailable", 1), desired, True) or 1
        budget -= len(unavailable)
        for pod in sorted(outdated, key=lambda p: not podutil.is_ready(p)):
            if budget <= 0 and podutil.is_ready(pod):
                break
            self._delete(ds, [pod])
            if podutil.is_ready(pod):
                budget -= 1

    def _status(self, ds, counts):
        status = dict(ds.get("status") or {})
        status.update({"desiredNumberScheduled": counts["desired"], "currentNumberScheduled": counts["current"],
                       "numberMisscheduled": counts["mis"], "numberReady": counts["ready"],
                       "updatedNumberScheduled": counts["updated"], "numberAvailable": counts["available"],
                       "numberUnavailable": counts["desired"] - counts["available"],
                       "observedGeneration": ds["metadata"].get("generation", 1)})
        podutil.drop_zero(status, ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"))
        self.write_status(DAEMONSETS, ds, status)
