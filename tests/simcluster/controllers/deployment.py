"""Deployment controller: ReplicaSets per template revision, rolling updates, status and conditions.

As the real controller: the new ReplicaSet is `<deployment>-<pod-template-hash>` with the hash label in
its selector and template; `deployment.kubernetes.io/revision` counts revisions (a rollback re-uses
the old ReplicaSet with a new revision); RollingUpdate honours maxSurge/maxUnavailable
(reconcileNewReplicaSet / cleanupUnhealthyReplicas / scaleDownOldReplicaSetsForRollingUpdate);
Recreate scales old ReplicaSets to zero and waits for their pods to go before scaling up. Status
sums the ReplicaSets' status; conditions Available (MinimumReplicasAvailable /
MinimumReplicasUnavailable) and Progressing (NewReplicaSetCreated, ReplicaSetUpdated,
NewReplicaSetAvailable, ProgressDeadlineExceeded after progressDeadlineSeconds without progress).
Paused deployments only scale. Old ReplicaSets beyond revisionHistoryLimit are deleted.
"""
from __future__ import annotations

import copy

from ..clock import parse_timestamp
from ..errors import ApiError
from . import podutil
from .manager import PODS, Controller
from .replicaset import REPLICASETS

DEPLOYMENTS = ("apps", "deployments")
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


def _revision(rs):
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _replicas(rs):
    return int(podutil.field(rs.get("spec"), "replicas", 0))


def _status_count(rs, field):
    return int((rs.get("status") or {}).get(field, 0) or 0)


class DeploymentController(Controller):
    name = "deployment"
    component = "deployment-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {DEPLOYMENTS: self._on_deployment, REPLICASETS: self._on_rs, PODS: self._on_pod}

    def initial_keys(self):
        if not self.served(DEPLOYMENTS):
            return []
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.store.list(DEPLOYMENTS)[0]]

    def _on_deployment(self, event):
        self.enqueue((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_rs(self, event):
        for obj in (event.obj, event.old):
            ref = podutil.controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "Deployment":
                self.enqueue((obj["metadata"]["namespace"], ref.get("name")))

    def _on_pod(self, event):
        """Recreate waits for old pods to disappear: a deleted pod of an old ReplicaSet matters."""
        if event.type != "DELETED":
            return
        ref = podutil.controller_ref(event.obj)
        if ref is not None and ref.get("kind") == "ReplicaSet":
            rs = self.read(REPLICASETS, event.obj["metadata"]["namespace"], ref.get("name"))
            owner = podutil.controller_ref(rs) if rs is not None else None
            if owner is not None and owner.get("kind") == "Deployment":
                self.enqueue((rs["metadata"]["namespace"], owner.get("name")))

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        deploy = self.read(DEPLOYMENTS, *key)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return
        spec = deploy.get("spec") or {}
        rss = sorted(self.owned(deploy, REPLICASETS), key=lambda r: (r["metadata"].get("creationTimestamp", ""),
                                                                     r["metadata"]["name"]))
        new_rs = self._find_new(deploy, rss)
        old = [r for r in rss if new_rs is None or r["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        created = False
        if not spec.get("paused"):
            if new_rs is None:
                new_rs = self._create_rs(deploy, old)
                created = True
            else:
                new_rs = self._sync_revision(deploy, new_rs, old)
            deploy = self._annotate_revision(deploy, new_rs)
            if (spec.get("strategy") or {}).get("type") == "Recreate":
                new_rs = self._recreate(deploy, new_rs, old)
            else:
                new_rs, old = self._rolling(deploy, new_rs, old)
            self._cleanup(deploy, old)
        elif new_rs is not None and _replicas(new_rs) != int(podutil.field(spec, "replicas", 1)):
            new_rs = self._scale(deploy, new_rs, int(podutil.field(spec, "replicas", 1)))
        self._status(deploy, new_rs, old, created)

    def _find_new(self, deploy, rss):
        wanted = podutil.template_for_compare((deploy.get("spec") or {}).get("template"))
        for rs in rss:
            have = podutil.template_for_compare((rs.get("spec") or {}).get("template"), drop_labels=(HASH_LABEL,))
            if have == wanted:
                return rs
        return None

    def _create_rs(self, deploy, old):
        spec = deploy.get("spec") or {}
        collision = (deploy.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = podutil.template_hash(template, collision)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        revision = max([_revision(r) for r in old] + [0]) + 1
        replicas = int(podutil.field(spec, "replicas", 1))
        annotations = {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items()
                       if k != REVISION and not k.startswith("kubectl.kubernetes.io/")}
        annotations.update({REVISION: str(revision), "deployment.kubernetes.io/desired-replicas": str(replicas),
                            "deployment.kubernetes.io/max-replicas": str(replicas + self._max_surge(deploy))})
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "%s-%s" % (deploy["metadata"]["name"], pod_hash),
                           "namespace": deploy["metadata"]["namespace"], "labels": labels,
                           "annotations": annotations,
                           "ownerReferences": [podutil.owner_reference(deploy, "apps/v1", "Deployment")]},
              "spec": {"replicas": 0, "minReadySeconds": podutil.field(spec, "minReadySeconds", 0), "selector": selector,
                       "template": template}}
        try:
            created = self.store.create(REPLICASETS, rs)
        except ApiError as exc:
            if exc.code != 409:
                raise
            fresh = copy.deepcopy(deploy)
            fresh.setdefault("status", {})["collisionCount"] = int(collision or 0) + 1
            self.store.update(DEPLOYMENTS, fresh, subresource="status")
            raise
        return created

    def _sync_revision(self, deploy, new_rs, old):
        """A rollback makes an old template current again: it gets the next revision number."""
        top = max([_revision(r) for r in old] + [0])
        if _revision(new_rs) > top and _revision(new_rs) > 0:
            return new_rs
        fresh = copy.deepcopy(new_rs)
        fresh["metadata"].setdefault("annotations", {})[REVISION] = str(top + 1)
        return self.store.update(REPLICASETS, fresh)

    def _annotate_revision(self, deploy, new_rs):
        """The deployment carries the revision of its current ReplicaSet (what rollout history shows)."""
        revision = str(_revision(new_rs))
        if (deploy["metadata"].get("annotations") or {}).get(REVISION) == revision:
            return deploy
        fresh = copy.deepcopy(deploy)
        fresh["metadata"].setdefault("annotations", {})[REVISION] = revision
        return self.store.update(DEPLOYMENTS, fresh)

    def _max_surge(self, deploy):
        spec = deploy.get("spec") or {}
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            return 0
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        replicas = int(podutil.field(spec, "replicas", 1))
        surge = podutil.int_or_percent(podutil.field(rolling, "maxSurge", "25%"), replicas, True)
        unavailable = podutil.int_or_percent(podutil.field(rolling, "maxUnavailable", "25%"), replicas, False)
        return 1 if surge == 0 and unavailable == 0 else surge

    def _max_unavailable(self, deploy):
        spec = deploy.get("spec") or {}
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            return 0
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        replicas = int(podutil.field(spec, "replicas", 1))
        surge = podutil.int_or_percent(podutil.field(rolling, "maxSurge", "25%"), replicas, True)
        unavailable = podutil.int_or_percent(podutil.field(rolling, "maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            return 0
        return min(unavailable, replicas)

    def _scale(self, deploy, rs, replicas):
        before = _replicas(rs)
        if before == replicas:
            return rs
        fresh = copy.deepcopy(rs)
        fresh["spec"]["replicas"] = replicas
        annotations = fresh["metadata"].setdefault("annotations", {})
        spec = deploy.get("spec") or {}
        annotations["deployment.kubernetes.io/desired-replicas"] = str(int(podutil.field(spec, "replicas", 1)))
        surge = self._max_surge(deploy)
        annotations["deployment.kubernetes.io/max-replicas"] = str(int(podutil.field(spec, "replicas", 1)) + surge)
        updated = self.store.update(REPLICASETS, fresh)
        direction = "up" if replicas > before else "down"
        self.event(deploy, "Normal", "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d" % (
            direction, rs["metadata"]["name"], before, replicas))
        return updated

    def _recreate(self, deploy, new_rs, old):
        for rs in old:
            if _replicas(rs) > 0:
                self._scale(deploy, rs, 0)
        for rs in old:
            if any(podutil.is_active(p) or p["metadata"].get("deletionTimestamp") for p in self.owned(rs, PODS)):
                return new_rs
        return self._scale(deploy, new_rs, int(podutil.field(deploy.get("spec"), "replicas", 1)))

    def _rolling(self, deploy, new_rs, old):
        replicas = int(podutil.field(deploy.get("spec"), "replicas", 1))
        total = sum(_replicas(r) for r in old) + _replicas(new_rs)
        if _replicas(new_rs) > replicas:
            new_rs = self._scale(deploy, new_rs, replicas)
        elif _replicas(new_rs) < replicas:
            room = replicas + self._max_surge(deploy) - total
            if room > 0:
                new_rs = self._scale(deploy, new_rs, _replicas(new_rs) + min(room, replicas - _replicas(new_rs)))
        old = self._scale_down_old(deploy, new_rs, old, replicas)
        return new_rs, old

    def _scale_down_old(self, deploy, new_rs, old, replicas):
        if sum(_replicas(r) for r in old) == 0:
            return old
        min_available = replicas - self._max_unavailable(deploy)
        all_count = sum(_replicas(r) for r in old) + _replicas(new_rs)
        new_unavailable = _replicas(new_rs) - _status_count(new_rs, "availableReplicas")
        budget = all_count - min_available - new_unavailable
        if budget <= 0:
            return old
        result = []
        cleaned = 0
        for rs in old:       # cleanupUnhealthyReplicas: unavailable old pods go first
            unhealthy = _replicas(rs) - _status_count(rs, "availableReplicas")
            if cleaned < budget and _replicas(rs) > 0 and unhealthy > 0:
                down = min(budget - cleaned, unhealthy)
                rs = self._scale(deploy, rs, _replicas(rs) - down)
                cleaned += down
            result.append(rs)
        available = sum(_status_count(r, "availableReplicas") for r in result) + \
            _status_count(new_rs, "availableReplicas")
        allowed = available - min_available
        out = []
        for rs in result:
            if allowed > 0 and _replicas(rs) > 0:
                down = min(_replicas(rs), allowed)
                rs = self._scale(deploy, rs, _replicas(rs) - down)
                allowed -= down
            out.append(rs)
        return out

    def _cleanup(self, deploy, old):
        limit = int(podutil.field(deploy.get("spec"), "revisionHistoryLimit", 10))
        idle = [r for r in old if _replicas(r) == 0 and _status_count(r, "replicas") == 0 and
                not r["metadata"].get("deletionTimestamp")]
        idle.sort(key=_revision)
        for rs in idle[:max(0, len(idle) - limit)]:
            try:
                self.store.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise

    # ----------------------------------------------------------------------------- status
    def _status(self, deploy, new_rs, old, created):
        spec = deploy.get("spec") or {}
        replicas = int(podutil.field(spec, "replicas", 1))
        everything = old + ([new_rs] if new_rs is not None else [])
        current = deploy.get("status") or {}
        available = sum(_status_count(r, "availableReplicas") for r in everything)
        total_spec = sum(_replicas(r) for r in everything)
        status = {"observedGeneration": deploy["metadata"].get("generation", 1),
                  "replicas": sum(_status_count(r, "replicas") for r in everything),
                  "updatedReplicas": _status_count(new_rs, "replicas") if new_rs is not None else 0,
                  "readyReplicas": sum(_status_count(r, "readyReplicas") for r in everything),
                  "availableReplicas": available,
                  "unavailableReplicas": max(total_spec - available, 0)}
        if current.get("collisionCount"):
            status["collisionCount"] = current["collisionCount"]
        podutil.drop_zero(status, ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                   "unavailableReplicas"))
        now = self.clock.now()
        stamp = self.clock.timestamp(now)
        conditions = copy.deepcopy(current.get("conditions") or [])
        if available >= replicas - self._max_unavailable(deploy):
            _set(conditions, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                 stamp)
        else:
            _set(conditions, "Available", "False", "MinimumReplicasUnavailable",
                 "Deployment does not have minimum availability.", stamp)
        wake = self._progressing(deploy, new_rs, status, current, conditions, created, now, stamp)
        status["conditions"] = conditions
        self.write_status(DEPLOYMENTS, deploy, status)
        if wake is not None:
            self.enqueue_after(wake - now, (deploy["metadata"]["namespace"], deploy["metadata"]["name"]))

    def _progressing(self, deploy, new_rs, status, current, conditions, created, now, stamp):
        """Set the Progressing condition; return when to check the progress deadline, if pending."""
        spec = deploy.get("spec") or {}
        replicas = int(podutil.field(spec, "replicas", 1))
        deadline = podutil.field(spec, "progressDeadlineSeconds", 600)
        name = new_rs["metadata"]["name"] if new_rs is not None else ""
        if spec.get("paused"):
            _set(conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", stamp)
            return None
        complete = (status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas and
                    status.get("availableReplicas", 0) == replicas)
        if complete:
            _set(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                 'ReplicaSet "%s" has successfully progressed.' % name, stamp)
            return None
        progressed = created or any(status.get(f, 0) != current.get(f, 0) for f in
                                    ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"))
        existing = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if progressed or existing is None or existing.get("reason") == "NewReplicaSetAvailable":
            if created:
                _set(conditions, "Progressing", "True", "NewReplicaSetCreated", 'Created new replica set "%s"' % name,
                     stamp, force_update=True)
            else:
                _set(conditions, "Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "%s" is progressing.' % name,
                     stamp, force_update=True)
            existing = next(c for c in conditions if c.get("type") == "Progressing")
        if deadline is None or existing.get("reason") == "ProgressDeadlineExceeded":
            return None
        last = parse_timestamp(existing.get("lastUpdateTime")) or now
        if now >= last + float(deadline):
            _set(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                 'ReplicaSet "%s" has timed out progressing.' % name, stamp)
            return None
        return last + float(deadline)


def _set(conditions, ctype, status, reason, message, stamp, force_update=False):
    """Deployment conditions carry lastUpdateTime too (it moves when reason/message change)."""
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = stamp
            if force_update or cond.get("reason") != reason or cond.get("message") != message or \
                    cond.get("status") != status:
                cond["lastUpdateTime"] = stamp
            cond.update({"status": status, "reason": reason, "message": message})
            return
    conditions.append({"type": ctype, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
                       "reason": reason, "message": message})
