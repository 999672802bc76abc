"""ReplicaSet controller: keeps `spec.replicas` active pods and reports their readiness.

Pods are created from the template with a controller ownerReference and `generateName: <rs>-`;
surplus pods are deleted in the real order of preference (unscheduled, pending, not ready, and the
youngest first). Status follows the real controller: replicas counts active pods (not finished, not
terminating), fullyLabeledReplicas those whose labels match the template, readyReplicas the Ready ones,
availableReplicas those Ready for minReadySeconds, observedGeneration. Orphan pods that match the
selector are not adopted.
"""
from __future__ import annotations

from ..clock import parse_timestamp
from . import podutil
from .manager import PODS, Controller

REPLICASETS = ("apps", "replicasets")


def _deletion_rank(pod):
    """Lower sorts first = deleted first (controller.ActivePods ordering, simplified)."""
    spec = pod.get("spec") or {}
    phase = (pod.get("status") or {}).get("phase")
    return (bool(spec.get("nodeName")), {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase, 1),
            podutil.is_ready(pod), -(parse_timestamp(pod["metadata"].get("creationTimestamp")) or 0))


class ReplicaSetController(Controller):
    name = "replicaset"
    component = "replicaset-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {REPLICASETS: self._on_rs, PODS: self._on_pod}

    def initial_keys(self):
        if not self.served(REPLICASETS):
            return []
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.store.list(REPLICASETS)[0]]

    def _on_rs(self, event):
        self.enqueue((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_pod(self, event):
        for obj in (event.obj, event.old):
            ref = podutil.controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "ReplicaSet":
                self.enqueue((obj["metadata"]["namespace"], ref.get("name")))

    def reconcile(self, key):
        rs = self.read(REPLICASETS, *key)
        if rs is None:
            return
        pods = self.owned(rs, PODS)
        active = [p for p in pods if podutil.is_active(p)]
        if not rs["metadata"].get("deletionTimestamp"):
            desired = int(podutil.field(rs.get("spec"), "replicas", 1))
            if len(active) < desired:
                self._create(rs, desired - len(active))
            elif len(active) > desired:
                self._delete(rs, sorted(active, key=_deletion_rank)[:len(active) - desired])
        self._status(rs, active)

    def _create(self, rs, count):
        current = self.read(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
        if current is None or current["metadata"].get("deletionTimestamp") or \
                current["metadata"]["uid"] != rs["metadata"]["uid"]:
            return      # deleted meanwhile (an orphaning delete may have just released our pods)
        template = (rs.get("spec") or {}).get("template") or {}
        for _number in range(count):
            pod = podutil.pod_from_template(template, rs, "apps/v1", "ReplicaSet",
                                            generate_name=rs["metadata"]["name"] + "-")
            created = self.store.create(PODS, pod)
            self.event(rs, "Normal", "SuccessfulCreate", "Created pod: %s" % created["metadata"]["name"])

    def _delete(self, rs, pods):
        for pod in pods:
            self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
            self.event(rs, "Normal", "SuccessfulDelete", "Deleted pod: %s" % pod["metadata"]["name"])

    def _status(self, rs, active):
        spec = rs.get("spec") or {}
        now = self.clock.now()
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = available = labelled = 0
        wake = None
        for pod in active:
            if podutil.label_matches(template_labels, pod["metadata"].get("labels")):
                labelled += 1
            if podutil.is_ready(pod):
                ready += 1
                ok, due = podutil.pod_available(pod, spec.get("minReadySeconds"), now, self.clock)
                if ok:
                    available += 1
                elif due is not None:
                    wake = due if wake is None else min(wake, due)
        status = dict(rs.get("status") or {})
        status.update({"replicas": len(active), "fullyLabeledReplicas": labelled, "readyReplicas": ready,
                       "availableReplicas": available,
                       "observedGeneration": rs["metadata"].get("generation", 1)})
        podutil.drop_zero(status, ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"))
        self.write_status(REPLICASETS, rs, status)
        if wake is not None:
            self.enqueue_after(wake - now, (rs["metadata"]["namespace"], rs["metadata"]["name"]))
