"""Volcano's scheduler (volcanosh/vc-scheduler): a second scheduler that binds a PodGroup's pods all or nothing.

What the real scheduler (volcano-sh/volcano: pkg/scheduler/plugins/gang/gang.go, pkg/scheduler/cache/cache.go
RecordJobStatusEvent, pkg/scheduler/api/job_info.go FitError) does that the gang_scheduling check relies on,
and how far this model follows it. Served by the real CRDs (../shared/fixtures/upstream/crds/volcano), it
acts while a Deployment `volcano-scheduler` has a ready replica, on pods with `schedulerName: volcano`.

* Pods join a PodGroup (scheduling.volcano.sh/v1beta1) through the annotation
  `scheduling.k8s.io/group-name`. Each scheduling session (every second) places the group's pending pods
  on feasible nodes (taints, node selector and affinity, unschedulable nodes, resources left by the pods
  already bound, the default scheduler's included) and binds them only when, with the pods already
  running, at least `minMember` are placed: the gang plugin's job readiness.
* A gang that does not fit binds nothing. The PodGroup stays `Pending` with the condition
  Unschedulable/NotEnoughResources, the scheduler records the Warning event `Unschedulable` on the
  PodGroup ("<n>/<m> tasks in gang unschedulable: pod group is not ready, <m> Pending, <k> minAvailable;
  Pending: ... . Origin reason is <pod>: <fit error>") and the pods get PodScheduled=False/Unschedulable.
* A gang that binds gets the PodGroup phase `Running`, the Scheduled condition and the Normal event
  `Scheduled` ("pod group is ready"); each pod gets the `Scheduled` event from `volcano`.
* Scenario switch `settings.volcano.partialGangs: true` models a broken gang scheduler that binds
  whatever fits (the gang-partial scenario): never acceptable as gang scheduling.
Queues, preemption, reclaim, proportion and Volcano Jobs (batch.volcano.sh) are not modelled.
"""
from __future__ import annotations

import copy

from ..controllers import podutil
from ..controllers.manager import NODES, PODS, Controller

PODGROUPS = ("scheduling.volcano.sh", "podgroups")
DEPLOYMENTS = ("apps", "deployments")
SCHEDULER_NAME = "volcano"
GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
SESSION = "session"
PERIOD = 1.0


class VolcanoScheduler(Controller):
    name = "volcano-scheduler"
    component = SCHEDULER_NAME

    def __init__(self, manager, sim):
        super(VolcanoScheduler, self).__init__(manager)
        self.partial = bool(((sim.settings or {}).get("volcano") or {}).get("partialGangs"))
        self.routes = {PODS: self._on_pod, PODGROUPS: self._kick, NODES: self._kick, DEPLOYMENTS: self._kick}

    def initial_keys(self):
        return [SESSION]

    def _kick(self, event):
        self.enqueue(SESSION)

    def _on_pod(self, event):
        self.enqueue(SESSION)

    def running(self):
        return any(d["metadata"]["name"] == "volcano-scheduler" and (d.get("status") or {}).get("readyReplicas", 0) >= 1
                   for d in self.store.list(DEPLOYMENTS)[0])

    def reconcile(self, key):
        if PODGROUPS not in self.store.types or not self.running():
            return
        groups = {}
        for pod in self.store.list(PODS)[0]:
            spec = pod.get("spec") or {}
            if spec.get("schedulerName") != SCHEDULER_NAME or pod["metadata"].get("deletionTimestamp"):
                continue
            name = (pod["metadata"].get("annotations") or {}).get(GROUP_ANNOTATION)
            if name:
                groups.setdefault((pod["metadata"]["namespace"], name), []).append(pod)
        waiting = False
        tentative = {}
        for (namespace, name), pods in sorted(groups.items()):
            pg = self.read(PODGROUPS, namespace, name)
            if pg is None:
                continue
            pending = [p for p in pods if not (p.get("spec") or {}).get("nodeName") and not podutil.is_terminal(p)]
            if not pending:
                continue
            waiting = self._session(pg, pods, pending, tentative) or waiting
        if waiting:
            self.enqueue_after(PERIOD, SESSION)

    def _free(self, node, tentative):
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        used = self.manager.scheduler.node_usage(node["metadata"]["name"])
        extra = tentative.get(node["metadata"]["name"], {})
        return {res: podutil.quantity(value) - used.get(res, podutil.ZERO) - extra.get(res, podutil.ZERO)
                for res, value in allocatable.items()}

    def _fit(self, pod, node, tentative):
        if (node.get("spec") or {}).get("unschedulable"):
            return "node(s) were unschedulable"
        taint = podutil.untolerated_taint((pod.get("spec") or {}).get("tolerations"), podutil.effective_taints(node))
        if taint is not None:
            return "node(s) had untolerated taint {%s: %s}" % (taint.get("key"), taint.get("value") or "")
        if not podutil.matches_node_selector_and_affinity(pod, node):
            return "node(s) didn't match Pod's node affinity/selector"
        free = self._free(node, tentative)
        requests = dict(podutil.pod_requests(pod), pods=podutil.quantity(1))
        for res, value in sorted(requests.items()):
            if value > 0 and value > free.get(res, podutil.ZERO):
                return "Insufficient %s" % res
        return None

    def _session(self, pg, pods, pending, tentative):
        """One scheduling session for one PodGroup; True when pods are still waiting."""
        min_member = int((pg.get("spec") or {}).get("minMember", 1) or 1)
        running = len([p for p in pods if (p.get("spec") or {}).get("nodeName") and
                       (p.get("status") or {}).get("phase") != "Failed"])
        nodes = self.store.list(NODES)[0]
        plan, errors = [], {}
        trial = copy.deepcopy(tentative)
        for pod in sorted(pending, key=lambda p: p["metadata"]["name"]):
            reasons = {}
            chosen = None
            for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
                reason = self._fit(pod, node, trial)
                if reason:
                    reasons[reason] = reasons.get(reason, 0) + 1
                    continue
                chosen = node
                break
            if chosen is None:
                errors[pod["metadata"]["name"]] = "0/%d nodes are available: %s." % (
                    len(nodes), ", ".join("%d %s" % (n, r) for r, n in sorted(reasons.items())))
                continue
            usage = trial.setdefault(chosen["metadata"]["name"], {})
            for res, value in dict(podutil.pod_requests(pod), pods=podutil.quantity(1)).items():
                usage[res] = usage.get(res, podutil.ZERO) + value
            plan.append((pod, chosen["metadata"]["name"]))
        if running + len(plan) >= min_member or (self.partial and plan):
            tentative.clear()
            tentative.update(trial)
            for pod, node in plan:
                self._bind(pod, node)
            self._pg_status(pg, "Running", "Scheduled", "True", "tasks in gang are ready to be scheduled", "")
            if (pg.get("status") or {}).get("phase") != "Running":
                self.event(pg, "Normal", "Scheduled", "pod group is ready")
            return len(plan) < len(pending)
        first = next(iter(sorted(errors.items())), None)
        counts = {"Unschedulable": len(errors), "Schedulable": len(pending) - len(errors)}
        pending_reasons = ", ".join("%d %s" % (n, r) for r, n in sorted(counts.items()) if n)
        message = "%d/%d tasks in gang unschedulable: pod group is not ready, %d Pending, %d minAvailable; Pending: %s" % (
            min_member - running, len(pods), len(pending), min_member, pending_reasons)
        if first:
            message += ". Origin reason is %s: %s" % first
        self._pg_status(pg, "Pending", "Unschedulable", "True", "NotEnoughResources", message)
        self.event(pg, "Warning", "Unschedulable", message)
        for pod in pending:
            self._unschedulable(pod, errors.get(pod["metadata"]["name"]) or message)
        return True

    def _pg_status(self, pg, phase, ctype, status, reason, message):
        current = self.read(PODGROUPS, pg["metadata"]["namespace"], pg["metadata"]["name"]) or pg
        new = copy.deepcopy(current.get("status") or {})
        new["phase"] = phase
        conds = [c for c in new.get("conditions") or [] if c.get("type") not in ("Unschedulable", "Scheduled")]
        conds.append({"type": ctype, "status": status, "reason": reason, "message": message,
                      "lastTransitionTime": self.clock.timestamp(), "transitionID": "sim"})
        new["conditions"] = conds
        if new != (current.get("status") or {}):
            self.write_status(PODGROUPS, current, new)

    def _bind(self, pod, node_name):
        fresh = self.read(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        if fresh is None or (fresh.get("spec") or {}).get("nodeName"):
            return
        bound = self.store.update(PODS, dict(fresh, spec=dict(fresh["spec"], nodeName=node_name)))
        status = bound.setdefault("status", {})
        status["conditions"] = podutil.set_condition(status.get("conditions"), "PodScheduled", "True",
                                                     now=self.clock.timestamp())
        try:
            bound = self.store.update(PODS, bound, subresource="status")
        except Exception:  # pylint: disable=broad-except
            pass
        self.manager.recorder.event(bound, "Normal", "Scheduled", "Successfully assigned %s/%s to %s" % (
            pod["metadata"]["namespace"], pod["metadata"]["name"], node_name), SCHEDULER_NAME, action="Binding")

    def _unschedulable(self, pod, message):
        status = copy.deepcopy(pod.get("status") or {})
        status.setdefault("phase", "Pending")
        before = copy.deepcopy(status.get("conditions"))
        status["conditions"] = podutil.set_condition(status.get("conditions"), "PodScheduled", "False",
                                                     "Unschedulable", message, now=self.clock.timestamp())
        if status["conditions"] != before:
            self.store.update(PODS, dict(pod, status=status), subresource="status")


def register(sim):
    """Add Volcano's scheduler (it idles until Volcano's CRDs and its Deployment exist)."""
    sim.controllers.add_controller(VolcanoScheduler(sim.controllers, sim))
