"""Kueue (registry.k8s.io/kueue/kueue): queueing batch Jobs with all-or-nothing admission against quota.

What the real controller (kubernetes-sigs/kueue v0.19: pkg/controller/jobframework/reconciler.go,
pkg/scheduler/scheduler.go and flavorassigner, pkg/workload, pkg/cache/scheduler/clusterqueue.go) does that
the gang_scheduling check relies on, and how far this model follows it. It is served by the real CRDs
(../shared/fixtures/upstream/crds/kueue: 0.19.2 stores v1beta2 and serves v1beta1 too, 0.13.9 has v1beta1
only; Workloads are written in the storage version) and only acts while a Deployment
`*kueue-controller-manager` has a ready replica, as nothing happens on a cluster whose controller is down.

* A batch/v1 Job labelled `kueue.x-k8s.io/queue-name` gets a Workload named `job-<name>-<hash5>` owned by
  the Job, with one pod set `main` of `parallelism` pods and the Job's pod template. The Job must be
  suspended: the real webhook suspends it on creation; this model has no webhook, so a Job created
  unsuspended runs unmanaged (callers create it with `suspend: true`, which Kueue documents as valid).
* ClusterQueue `Active` is True (reason Ready, "Can admit new workloads") when every flavor it names
  exists, else False (reason FlavorNotFound). LocalQueues are Active when their ClusterQueue is.
* Admission is all or nothing per Workload: pod requests x count must fit the first flavor (in order)
  with enough unused nominalQuota for every covered resource. Then status.admission, QuotaReserved=True
  ("Quota reserved in ClusterQueue <cq>"), Admitted=True ("The workload is admitted"), the QuotaReserved
  and Admitted events on the Workload, and the Job is unsuspended with the "Started" event "Admitted by
  clusterQueue <cq>". Otherwise QuotaReserved=False, reason Pending, with the flavor assigner's message
  ("couldn't assign flavors to pod set main: insufficient quota for <res> in flavor <f>, previously
  considered podsets requests (0) + current podset request (<n>) > maximum capacity (<q>)") and the Job
  stays suspended with no pods. A queue name with no LocalQueue gives reason Misconfigured
  ("LocalQueue <name> doesn't exist").
* waitForPodsReady (the manager ConfigMap's `controller_manager_config.yaml`): when enabled, admitted
  Workloads get PodsReady True ("All pods reached readiness and the workload is running") once all pods
  of the Job run or finished, False ("Not all pods are ready or succeeded") before.
* Scenario switch `settings.kueue.stopped: true`: the controller's pod runs and is Ready but it reconciles
  nothing (a hung controller), so new ClusterQueues never become Active (tests of bounded waits).
* A finished Job sets Finished=True (reason Succeeded "Job finished successfully", or Failed) and frees
  its quota. Cohorts, borrowing, preemption, fair sharing and admission checks are not modelled.
"""
from __future__ import annotations

import base64
import copy
import hashlib

import yaml

from ..controllers import podutil
from ..controllers.manager import PODS, Controller

GROUP = "kueue.x-k8s.io"
WORKLOADS = (GROUP, "workloads")
CLUSTERQUEUES = (GROUP, "clusterqueues")
LOCALQUEUES = (GROUP, "localqueues")
FLAVORS = (GROUP, "resourceflavors")
JOBS = ("batch", "jobs")
DEPLOYMENTS = ("apps", "deployments")
CONFIGMAPS = ("", "configmaps")
WEBHOOK_CONFIGS = (("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
                   ("admissionregistration.k8s.io", "validatingwebhookconfigurations"))
# the configurations Kueue's internal certificate management (open-policy-agent/cert-controller, on by default:
# internalCertManagement.enable) fills with its CA, as kueue's pkg/util/cert names them
WEBHOOK_CONFIG_NAMES = ("kueue-mutating-webhook-configuration", "kueue-validating-webhook-configuration")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
COMPONENT = "kueue-admission"
JOB_COMPONENT = "batch/job-kueue-controller"
SYNC = "sync"
RESYNC_SECONDS = 10.0


def workload_name(job):
    """job-<name>-<hash5>: Kueue's GetWorkloadNameForOwnerWithGVK (sha1 over kind, group, name, uid)."""
    meta = job["metadata"]
    digest = hashlib.sha1("\n".join(["Job", "batch", meta["name"], meta.get("uid", ""), ""]).encode()).hexdigest()
    return "%s-%s" % (("job-" + meta["name"])[:57], digest[:5])


def _condition(obj, ctype):
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond
    return None


def _true(obj, ctype):
    cond = _condition(obj, ctype)
    return bool(cond) and cond.get("status") == "True"


def _set(conditions, ctype, status, reason, message, now, generation=None):
    out = [c for c in conditions or [] if c.get("type") != ctype]
    old = next((c for c in conditions or [] if c.get("type") == ctype), None)
    cond = {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": old["lastTransitionTime"] if old and old.get("status") == status else now}
    if generation is not None:
        cond["observedGeneration"] = generation
    out.append(cond)
    return out


def _fmt(value):
    """A Decimal quantity as Kueue prints it (whole numbers plain, CPU fractions in milli)."""
    if value == value.to_integral_value():
        return str(int(value))
    return "%dm" % int(value * 1000)


class KueueController(Controller):
    name = "kueue"
    component = COMPONENT

    def __init__(self, manager, settings=None):
        super(KueueController, self).__init__(manager)
        self.stopped = bool((settings or {}).get("stopped"))
        handler = self._any
        self.routes = {JOBS: handler, WORKLOADS: handler, CLUSTERQUEUES: handler, LOCALQUEUES: handler,
                       FLAVORS: handler, DEPLOYMENTS: handler, PODS: self._on_pod, CONFIGMAPS: handler,
                       WEBHOOK_CONFIGS[0]: handler, WEBHOOK_CONFIGS[1]: handler}

    def initial_keys(self):
        return [SYNC]

    def _any(self, event):
        self.enqueue(SYNC)

    def _on_pod(self, event):
        labels = event.obj["metadata"].get("labels") or {}
        if "batch.kubernetes.io/job-name" in labels or "job-name" in labels:
            self.enqueue(SYNC)

    # ----------------------------------------------------------------------------- state
    def running(self):
        for dep in self.store.list(DEPLOYMENTS)[0]:
            if dep["metadata"]["name"].endswith("kueue-controller-manager") and \
                    (dep.get("status") or {}).get("readyReplicas", 0) >= 1:
                return dep
        return None

    def manager_config(self, deployment):
        cm = self.read(CONFIGMAPS, deployment["metadata"]["namespace"], "kueue-manager-config")
        text = ((cm or {}).get("data") or {}).get("controller_manager_config.yaml") or ""
        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError:
            return {}

    def inject_ca_bundles(self, config):
        """Kueue's internal certificate management: while the manager runs it puts its CA into every webhook of
        its own webhook configurations (which the chart ships without a caBundle)."""
        if not (config.get("internalCertManagement") or {}).get("enable", True):
            return
        ca_pem = getattr(self.manager.sim, "ca_pem", None)
        if not ca_pem:
            return
        bundle = base64.b64encode(ca_pem.encode()).decode()
        for gr in WEBHOOK_CONFIGS:
            for name in WEBHOOK_CONFIG_NAMES:
                obj = self.read(gr, None, name)
                if obj is None or all((w.get("clientConfig") or {}).get("caBundle") for w in obj.get("webhooks") or ()):
                    continue
                fresh = copy.deepcopy(obj)
                for hook in fresh.get("webhooks") or ():
                    hook.setdefault("clientConfig", {})["caBundle"] = bundle
                self.store.update(gr, fresh)

    def reconcile(self, key):
        if self.stopped:
            return
        deployment = self.running()
        if deployment is None:
            return
        config = self.manager_config(deployment)
        self.inject_ca_bundles(config)
        if not all(gr in self.store.types for gr in (WORKLOADS, CLUSTERQUEUES, LOCALQUEUES, FLAVORS)):
            return
        wait_ready = bool((config.get("waitForPodsReady") or {}).get("enable", bool(config.get("waitForPodsReady"))))
        now = self.clock.timestamp()
        flavors = {f["metadata"]["name"] for f in self.store.list(FLAVORS)[0]}
        queues = {}
        for cq in self.store.list(CLUSTERQUEUES)[0]:
            missing = sorted({f.get("name") for g in (cq.get("spec") or {}).get("resourceGroups") or ()
                              for f in g.get("flavors") or ()} - flavors)
            queues[cq["metadata"]["name"]] = (cq, not missing, missing)
        self._sync_jobs()
        usage, pending = self._admit(queues, now, wait_ready)
        for name, (cq, active, missing) in queues.items():
            self._cq_status(cq, active, missing, usage.get(name, {}), pending.get(name, 0), now)
        for lq in self.store.list(LOCALQUEUES)[0]:
            target = queues.get((lq.get("spec") or {}).get("clusterQueue"))
            status = dict(lq.get("status") or {})
            if target and target[1]:
                conds = _set(status.get("conditions"), "Active", "True", "Ready", "Can submit new workloads to localQueue", now)
            else:
                conds = _set(status.get("conditions"), "Active", "False", "ClusterQueueDoesNotExist" if not target
                             else "ClusterQueueIsInactive", "Can't submit new workloads to clusterQueue", now)
            status["conditions"] = conds
            self.write_status(LOCALQUEUES, lq, status)
        self.enqueue_after(RESYNC_SECONDS, SYNC)

    def _sync_jobs(self):
        for job in self.store.list(JOBS)[0]:
            labels = job["metadata"].get("labels") or {}
            if QUEUE_LABEL not in labels or job["metadata"].get("deletionTimestamp"):
                continue
            name = workload_name(job)
            if self.read(WORKLOADS, job["metadata"]["namespace"], name) is not None:
                continue
            spec = job.get("spec") or {}
            count = int(spec.get("parallelism", 1) or 0)
            completions = spec.get("completions")
            if completions is not None:
                count = min(count, int(completions))
            template = copy.deepcopy(spec.get("template") or {})
            template.setdefault("metadata", {})
            self.store.create(WORKLOADS, {
                "apiVersion": "%s/%s" % (GROUP, self.store.types[WORKLOADS].storage_version), "kind": "Workload",
                "metadata": {"name": name, "namespace": job["metadata"]["namespace"],
                             "labels": {"kueue.x-k8s.io/job-uid": job["metadata"]["uid"]},
                             "ownerReferences": [podutil.owner_reference(job, "batch/v1", "Job")]},
                "spec": {"queueName": labels[QUEUE_LABEL], "active": True,
                         "podSets": [{"name": "main", "count": count, "template": template}]},
            })

    def _admit(self, queues, now, wait_ready):
        """Admit what fits, FIFO by creation; returns ({cq: {(flavor, res): used}}, {cq: pending count})."""
        workloads = sorted(self.store.list(WORKLOADS)[0],
                           key=lambda w: (w["metadata"].get("creationTimestamp", ""), w["metadata"]["name"]))
        usage, pending = {}, {}
        for wl in workloads:
            job = self._job(wl)
            if _true(wl, "Admitted") and not _true(wl, "Finished"):
                if job is None or self._job_finished(wl, job, now):
                    continue
                adm = (wl.get("status") or {}).get("admission") or {}
                table = usage.setdefault(adm.get("clusterQueue"), {})
                for psa in adm.get("podSetAssignments") or ():
                    for res, flavor in (psa.get("flavors") or {}).items():
                        table[(flavor, res)] = table.get((flavor, res), podutil.ZERO) + \
                            podutil.quantity((psa.get("resourceUsage") or {}).get(res, "0"))
                self._start_job(wl, job, now, wait_ready)
        for wl in workloads:
            if _true(wl, "Admitted") or _true(wl, "Finished") or not (wl.get("spec") or {}).get("active", True):
                continue
            job = self._job(wl)
            if job is None:
                continue
            self._try_admit(wl, job, queues, usage, pending, now)
        return usage, pending

    def _job(self, wl):
        for ref in wl["metadata"].get("ownerReferences") or ():
            if ref.get("kind") == "Job":
                job = self.read(JOBS, wl["metadata"]["namespace"], ref.get("name"))
                if job is not None and job["metadata"].get("uid") == ref.get("uid"):
                    return job
        return None

    def _try_admit(self, wl, job, queues, usage, pending, now):
        namespace = wl["metadata"]["namespace"]
        queue_name = (wl.get("spec") or {}).get("queueName") or ""
        lq = self.read(LOCALQUEUES, namespace, queue_name)
        status = dict(wl.get("status") or {})
        if lq is None:
            status["conditions"] = _set(status.get("conditions"), "QuotaReserved", "False", "Misconfigured",
                                        "LocalQueue %s doesn't exist" % queue_name, now,
                                        wl["metadata"].get("generation"))
            self.write_status(WORKLOADS, wl, status)
            return
        cq_name = (lq.get("spec") or {}).get("clusterQueue")
        target = queues.get(cq_name)
        if target is None or not target[1]:
            message = ("ClusterQueue %s doesn't exist" % cq_name) if target is None else \
                "ClusterQueue %s is inactive" % cq_name
            status["conditions"] = _set(status.get("conditions"), "QuotaReserved", "False",
                                        "Misconfigured" if target is None else "Inadmissible", message, now,
                                        wl["metadata"].get("generation"))
            self.write_status(WORKLOADS, wl, status)
            pending[cq_name] = pending.get(cq_name, 0) + 1
            return
        cq = target[0]
        podset = ((wl.get("spec") or {}).get("podSets") or [{}])[0]
        count = int(podset.get("count", 1))
        per_pod = podutil.pod_requests({"spec": (podset.get("template") or {}).get("spec") or {}})
        total = {res: value * count for res, value in per_pod.items() if value > 0}
        table = usage.setdefault(cq_name, {})
        assignment, message = self._assign(cq, total, table)
        if assignment is None:
            status["conditions"] = _set(status.get("conditions"), "QuotaReserved", "False", "Pending",
                                        "couldn't assign flavors to pod set %s: %s" % (podset.get("name", "main"), message),
                                        now, wl["metadata"].get("generation"))
            status["resourceRequests"] = [{"name": podset.get("name", "main"),
                                           "resources": {r: _fmt(v / count) for r, v in total.items()}}]
            self.write_status(WORKLOADS, wl, status)
            pending[cq_name] = pending.get(cq_name, 0) + 1
            return
        for (flavor, res), value in assignment.items():
            table[(flavor, res)] = table.get((flavor, res), podutil.ZERO) + value
        gen = wl["metadata"].get("generation")
        status["admission"] = {"clusterQueue": cq_name, "podSetAssignments": [{
            "name": podset.get("name", "main"), "count": count,
            "flavors": {res: flavor for (flavor, res) in assignment},
            "resourceUsage": {res: _fmt(value) for (flavor, res), value in assignment.items()}}]}
        conds = _set(status.get("conditions"), "QuotaReserved", "True", "QuotaReserved",
                     "Quota reserved in ClusterQueue %s" % cq_name, now, gen)
        status["conditions"] = _set(conds, "Admitted", "True", "Admitted", "The workload is admitted", now, gen)
        stored = self.write_status(WORKLOADS, wl, status)
        self.event(stored, "Normal", "QuotaReserved",
                   "Quota reserved in ClusterQueue %s, wait time since queued was 0s" % cq_name)
        self.event(stored, "Normal", "Admitted",
                   "Admitted by ClusterQueue %s, wait time since reservation was 0s" % cq_name)
        self._start_job(stored, job, now, False)

    def _assign(self, cq, total, table):
        """({(flavor, resource): amount}, None) for the first flavor that fits, else (None, message)."""
        messages = []
        for group in (cq.get("spec") or {}).get("resourceGroups") or ():
            covered = set(group.get("coveredResources") or ())
            wanted = {r: v for r, v in total.items() if r in covered}
            if not wanted:
                continue
            for flavor in group.get("flavors") or ():
                quota = {r.get("name"): podutil.quantity(r.get("nominalQuota", "0")) for r in flavor.get("resources") or ()}
                problems = []
                for res, value in sorted(wanted.items()):
                    used = table.get((flavor["name"], res), podutil.ZERO)
                    if used + value > quota.get(res, podutil.ZERO):
                        problems.append("insufficient quota for %s in flavor %s, previously considered podsets requests "
                                        "(%s) + current podset request (%s) > maximum capacity (%s)"
                                        % (res, flavor["name"], _fmt(used), _fmt(value), _fmt(quota.get(res, podutil.ZERO))))
                if not problems:
                    return {(flavor["name"], res): value for res, value in wanted.items()}, None
                messages.extend(problems)
        uncovered = sorted(r for r in total if not any(r in (g.get("coveredResources") or ())
                                                       for g in (cq.get("spec") or {}).get("resourceGroups") or ()))
        if uncovered and not messages:
            messages.append("resource %s unavailable in ClusterQueue" % uncovered[0])
        return None, ", ".join(messages) or "no flavor fits"

    def _start_job(self, wl, job, now, wait_ready):
        if (job.get("spec") or {}).get("suspend"):
            fresh = copy.deepcopy(job)
            fresh["spec"]["suspend"] = False
            stored = self.store.update(JOBS, fresh)
            cq = ((wl.get("status") or {}).get("admission") or {}).get("clusterQueue")
            self.manager.recorder.event(stored, "Normal", "Started", "Admitted by clusterQueue %s" % cq, JOB_COMPONENT)
        if wait_ready:
            pods = [p for p in self.store.list(PODS, namespace=job["metadata"]["namespace"])[0]
                    if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/controller-uid") == job["metadata"]["uid"]]
            want = ((wl.get("spec") or {}).get("podSets") or [{}])[0].get("count", 1)
            ready = sum(1 for p in pods if podutil.is_ready(p) or (p.get("status") or {}).get("phase") == "Succeeded")
            status = dict(wl.get("status") or {})
            if ready >= want:
                status["conditions"] = _set(status.get("conditions"), "PodsReady", "True", "PodsReady",
                                            "All pods reached readiness and the workload is running", now)
            else:
                status["conditions"] = _set(status.get("conditions"), "PodsReady", "False", "PodsReady",
                                            "Not all pods are ready or succeeded", now)
            self.write_status(WORKLOADS, wl, status)

    def _job_finished(self, wl, job, now):
        for ctype, reason, message in (("Complete", "Succeeded", "Job finished successfully"),
                                       ("Failed", "Failed", None)):
            cond = _condition(job, ctype)
            if cond and cond.get("status") == "True":
                status = dict(wl.get("status") or {})
                status["conditions"] = _set(status.get("conditions"), "Finished", "True", reason,
                                            message or cond.get("message") or "Job failed", now,
                                            wl["metadata"].get("generation"))
                self.write_status(WORKLOADS, wl, status)
                return True
        return False

    def _cq_status(self, cq, active, missing, used, pending, now):
        status = dict(cq.get("status") or {})
        if active:
            status["conditions"] = _set(status.get("conditions"), "Active", "True", "Ready", "Can admit new workloads", now)
        else:
            status["conditions"] = _set(status.get("conditions"), "Active", "False", "FlavorNotFound",
                                        "Can't admit new workloads: references missing ResourceFlavor(s): %s"
                                        % ", ".join(missing), now)
        reservation = []
        for group in (cq.get("spec") or {}).get("resourceGroups") or ():
            for flavor in group.get("flavors") or ():
                reservation.append({"name": flavor["name"], "resources": [
                    {"name": r["name"], "total": _fmt(used.get((flavor["name"], r["name"]), podutil.ZERO)), "borrowed": "0"}
                    for r in flavor.get("resources") or ()]})
        status["flavorsReservation"] = reservation
        status["flavorsUsage"] = copy.deepcopy(reservation)
        status["pendingWorkloads"] = pending
        status["reservingWorkloads"] = status["admittedWorkloads"] = self._count_admitted(cq)
        self.write_status(CLUSTERQUEUES, cq, status)

    def _count_admitted(self, cq):
        name = cq["metadata"]["name"]
        return sum(1 for wl in self.store.list(WORKLOADS)[0]
                   if ((wl.get("status") or {}).get("admission") or {}).get("clusterQueue") == name
                   and _true(wl, "Admitted") and not _true(wl, "Finished"))


def register(sim):
    """Add the Kueue controller to the simulated cluster (it idles until Kueue's CRDs and Deployment exist)."""
    sim.controllers.add_controller(KueueController(sim.controllers, (sim.settings or {}).get("kueue")))
