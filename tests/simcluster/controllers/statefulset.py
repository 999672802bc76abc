"""StatefulSet controller: ordered pods `<name>-<ordinal>` with stable identity and claims.

OrderedReady creates ordinal i only when every lower ordinal is Running and Ready and removes surplus
pods from the highest ordinal down, one at a time; Parallel creates and removes them all at once.
Each pod gets hostname `<name>-<i>`, subdomain `spec.serviceName`, the labels
`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and `controller-revision-hash`,
and for every volumeClaimTemplate a PVC `<template>-<name>-<i>` (created Bound right away: there is no
storage provisioning) mounted as a volume. RollingUpdate replaces pods of an old revision from the
highest ordinal down to the partition, one at a time once the rest is Ready; OnDelete waits. PVCs are
kept after scale-down (the default Retain policy). Failed pods are deleted and recreated.

Status: replicas, readyReplicas, currentReplicas, updatedReplicas, availableReplicas, currentRevision,
updateRevision, collisionCount, observedGeneration.
"""
from __future__ import annotations

import copy
import re

from ..errors import ApiError
from . import podutil
from .manager import PODS, Controller
from .revisions import REVISION_LABEL, ensure_revision

STATEFULSETS = ("apps", "statefulsets")
PVCS = ("", "persistentvolumeclaims")


class StatefulSetController(Controller):
    name = "statefulset"
    component = "statefulset-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {STATEFULSETS: self._on_sts, PODS: self._on_pod}

    def initial_keys(self):
        if not self.served(STATEFULSETS):
            return []
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.store.list(STATEFULSETS)[0]]

    def _on_sts(self, event):
        self.enqueue((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_pod(self, event):
        for obj in (event.obj, event.old):
            ref = podutil.controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "StatefulSet":
                self.enqueue((obj["metadata"]["namespace"], ref.get("name")))

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        sts = self.read(STATEFULSETS, *key)
        if sts is None:
            return
        spec = sts.get("spec") or {}
        name = sts["metadata"]["name"]
        update_rev = "%s-%s" % (name, ensure_revision(self, sts, "StatefulSet", spec.get("template") or {}))
        status = sts.get("status") or {}
        current_rev = status.get("currentRevision") or update_rev
        start = int(podutil.field(spec.get("ordinals"), "start", 0))
        replicas = int(podutil.field(spec, "replicas", 1))
        pods = {}
        for pod in self.owned(sts, PODS):
            match = re.match(r"^%s-(\d+)$" % re.escape(name), pod["metadata"]["name"])
            if match:
                pods[int(match.group(1))] = pod
        if not sts["metadata"].get("deletionTimestamp"):
            self._sync(sts, pods, range(start, start + replicas), update_rev, current_rev)
        self._status(sts, pods, update_rev, current_rev, replicas)

    def _sync(self, sts, pods, wanted, update_rev, current_rev):
        spec = sts.get("spec") or {}
        parallel = spec.get("podManagementPolicy") == "Parallel"
        for ordinal in wanted:
            pod = pods.get(ordinal)
            if pod is not None and (pod.get("status") or {}).get("phase") == "Failed" and \
                    not pod["metadata"].get("deletionTimestamp"):
                self._delete(sts, pod)
                if not parallel:
                    return
                continue
            if pod is None:
                self._ensure_claims(sts, ordinal)
                revision = current_rev if ordinal < self._partition(sts) else update_rev
                self._create(sts, ordinal, revision)
                if not parallel:
                    return
                continue
            if not parallel and not _running_ready(pod):
                return
        condemned = sorted((o for o in pods if o not in wanted), reverse=True)
        for ordinal in condemned:
            pod = pods[ordinal]
            if pod["metadata"].get("deletionTimestamp"):
                if not parallel:
                    return
                continue
            if not parallel and not all(_running_ready(p) for o, p in pods.items() if o in wanted):
                return
            self._delete(sts, pod)
            if not parallel:
                return
        self._rolling_update(sts, pods, wanted, update_rev)

    def _partition(self, sts):
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        return int(podutil.field(strategy.get("rollingUpdate"), "partition", 0))

    def _rolling_update(self, sts, pods, wanted, update_rev):
        """From the highest ordinal down to the partition: replace the first pod of an old revision,
        then wait for each replaced pod to be Running and Ready before going further down (as the
        real controller; a Parallel set does not wait for the others to be healthy first)."""
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return
        partition = self._partition(sts)
        for ordinal in sorted(wanted, reverse=True):
            if ordinal < partition:
                return
            pod = pods.get(ordinal)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                return
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != update_rev:
                self._delete(sts, pod)
                return
            if not _running_ready(pod):
                return

    def _create(self, sts, ordinal, revision):
        name = "%s-%d" % (sts["metadata"]["name"], ordinal)
        spec = sts.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        pod = podutil.pod_from_template(template, sts, "apps/v1", "StatefulSet", name=name,
                                        labels={REVISION_LABEL: revision,
                                                "statefulset.kubernetes.io/pod-name": name,
                                                "apps.kubernetes.io/pod-index": str(ordinal)})
        pod["spec"]["hostname"] = name
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        volumes = pod["spec"].setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or ():
            claim_name = claim["metadata"]["name"]
            volumes[:] = [v for v in volumes if v.get("name") != claim_name]
            volumes.append({"name": claim_name, "persistentVolumeClaim": {
                "claimName": "%s-%s" % (claim_name, name)}})
        try:
            self.store.create(PODS, pod)
        except ApiError as exc:
            if exc.code == 409:
                return
            self.event(sts, "Warning", "FailedCreate", "create Pod %s in StatefulSet %s failed error: %s" % (
                name, sts["metadata"]["name"], exc.message))
            raise
        self.event(sts, "Normal", "SuccessfulCreate", "create Pod %s in StatefulSet %s successful" % (
            name, sts["metadata"]["name"]))

    def _ensure_claims(self, sts, ordinal):
        if not self.served(PVCS):
            return
        spec = sts.get("spec") or {}
        selector_labels = (spec.get("selector") or {}).get("matchLabels") or {}
        for claim in spec.get("volumeClaimTemplates") or ():
            name = "%s-%s-%d" % (claim["metadata"]["name"], sts["metadata"]["name"], ordinal)
            namespace = sts["metadata"]["namespace"]
            if self.read(PVCS, namespace, name) is not None:
                continue
            pvc = copy.deepcopy(claim)
            pvc["apiVersion"], pvc["kind"] = "v1", "PersistentVolumeClaim"
            meta = pvc.setdefault("metadata", {})
            meta.update({"name": name, "namespace": namespace})
            meta["labels"] = dict(meta.get("labels") or {}, **selector_labels)
            pvc.pop("status", None)
            created = self.store.create(PVCS, pvc)
            requested = ((created.get("spec") or {}).get("resources") or {}).get("requests") or {}
            bound = copy.deepcopy(created)
            bound["status"] = {"phase": "Bound", "accessModes": (created.get("spec") or {}).get("accessModes", []),
                               "capacity": {"storage": requested.get("storage", "1Gi")}}
            self.store.update(PVCS, bound, subresource="status")
            self.event(sts, "Normal", "SuccessfulCreate", "create Claim %s Pod %s-%d in StatefulSet %s success" % (
                name, sts["metadata"]["name"], ordinal, sts["metadata"]["name"]))

    def _delete(self, sts, pod):
        self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                          preconditions={"uid": pod["metadata"]["uid"]})
        self.event(sts, "Normal", "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful" % (
            pod["metadata"]["name"], sts["metadata"]["name"]))

    def _status(self, sts, pods, update_rev, current_rev, replicas):
        spec = sts.get("spec") or {}
        now = self.clock.now()
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        counts = {"replicas": len(live), "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0,
                  "updatedReplicas": 0}
        wake = None
        for pod in live:
            revision = (pod["metadata"].get("labels") or {}).get(REVISION_LABEL)
            counts["currentReplicas"] += int(revision == current_rev)
            counts["updatedReplicas"] += int(revision == update_rev)
            if podutil.is_ready(pod):
                counts["readyReplicas"] += 1
                ok, due = podutil.pod_available(pod, spec.get("minReadySeconds"), now, self.clock)
                if ok:
                    counts["availableReplicas"] += 1
                elif due is not None:
                    wake = due if wake is None else min(wake, due)
        if counts["updatedReplicas"] == replicas == counts["replicas"] and counts["readyReplicas"] == replicas:
            current_rev = update_rev
            counts["currentReplicas"] = counts["updatedReplicas"]
        status = dict(sts.get("status") or {})
        status.update(counts)
        status.update({"currentRevision": current_rev, "updateRevision": update_rev,
                       "collisionCount": status.get("collisionCount", 0),
                       "observedGeneration": sts["metadata"].get("generation", 1)})
        podutil.drop_zero(status, ("readyReplicas", "currentReplicas", "updatedReplicas"))
        self.write_status(STATEFULSETS, sts, status)
        if wake is not None:
            self.enqueue_after(wake - now, (sts["metadata"]["namespace"], sts["metadata"]["name"]))


def _running_ready(pod):
    return (pod.get("status") or {}).get("phase") == "Running" and podutil.is_ready(pod)
