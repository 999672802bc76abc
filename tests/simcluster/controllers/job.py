"""Job controller (batch/v1): pods to completion with parallelism, back-off, deadlines and suspension.

Modelled on the 1.33 controller:
* NonIndexed jobs keep min(parallelism, completions - succeeded) pods active; without `completions`
  the job is done when one pod succeeded and none is active. Indexed jobs run one pod per pending
  index (`<job>-<index>-xxxxx`, hostname `<job>-<index>`, annotation and label
  `batch.kubernetes.io/job-completion-index`, env JOB_COMPLETION_INDEX) and report completedIndexes.
* Failed pods are replaced after the pod failure back-off (10 s doubling, at most 6 min); the job
  fails once failures exceed backoffLimit (for restartPolicy OnFailure container restarts count);
  activeDeadlineSeconds fails it after that long since startTime; podFailurePolicy rules on container
  exit codes (FailJob, Ignore, Count) and pod conditions are honoured.
* `suspend: true` deletes active pods, clears startTime, sets Suspended=True; resuming starts pods.
* Success sets SuccessCriteriaMet then Complete (reason CompletionsReached) with completionTime;
  failure sets FailureTarget then Failed (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy)
  once no pod is left running. Finished pods stay; ttlSecondsAfterFinished deletes the job later.
* ttlSecondsAfterFinished is a grace period for clients, and clients run in real time: the job stays
  at least that many real seconds after the controller saw it finish, however fast the clock runs.
  (At speed 50 the 30 s TTL of Envoy Gateway's certgen hook was 0.6 real seconds, and helm, which
  starts watching the hook Job only after creating it, sometimes never saw it: "status: Unknown".)
Pods are labelled `batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`,
`controller-uid` and `job-name`. The job-tracking finalizer is not used: counted pods are remembered
in memory (seeded from status when the controller starts).
"""
from __future__ import annotations

import copy
import time

from ..clock import parse_timestamp
from ..errors import ApiError
from . import podutil
from .manager import PODS, Controller

JOBS = ("batch", "jobs")
INDEX = "batch.kubernetes.io/job-completion-index"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0
SUCCESS_MESSAGE = "Reached expected number of succeeded pods"
FAILURES = {"BackoffLimitExceeded": "Job has reached the specified backoff limit",
            "DeadlineExceeded": "Job was active longer than specified deadline"}


def _index_of(pod):
    try:
        return int((pod["metadata"].get("annotations") or {}).get(INDEX))
    except (TypeError, ValueError):
        return None


def format_indexes(indexes):
    """[0, 1, 2, 4] -> "0-2,4" (status.completedIndexes)."""
    out = []
    items = sorted(set(indexes))
    start = prev = None
    for item in items + [None]:
        if item is not None and prev is not None and item == prev + 1:
            prev = item
            continue
        if start is not None:
            out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = item
    return ",".join(out)


def _finished(job):
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond
    return None


class _Tracking(object):
    """Pods the controller has counted as succeeded or failed (by uid)."""

    def __init__(self, job, pods):
        status = job.get("status") or {}
        done = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        self.base_succeeded = max(0, int(status.get("succeeded", 0) or 0) - len(done))
        self.base_failed = max(0, int(status.get("failed", 0) or 0) - len(failed))
        self.succeeded = {}       # uid -> index or None
        self.failed = set()
        self.ignored = set()
        self.last_failure = None
        self.evaluated = set()


class JobController(Controller):
    name = "job"
    component = "job-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {JOBS: self._on_job, PODS: self._on_pod}
        self._tracking = {}
        self._finished_seen = {}   # job uid -> time.monotonic() when this controller first saw it finished

    def initial_keys(self):
        if not self.served(JOBS):
            return []
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.store.list(JOBS)[0]]

    def _on_job(self, event):
        if event.type == "DELETED":
            self._tracking.pop(event.obj["metadata"]["uid"], None)
            self._finished_seen.pop(event.obj["metadata"]["uid"], None)
        self.enqueue((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_pod(self, event):
        for obj in (event.obj, event.old):
            ref = podutil.controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "Job":
                self.enqueue((obj["metadata"]["namespace"], ref.get("name")))

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        job = self.read(JOBS, *key)
        if job is None:
            return
        finished = _finished(job)
        if finished is not None:
            self._ttl(job, finished)
            return
        pods = self.owned(job, PODS)
        track = self._tracking.get(job["metadata"]["uid"])
        if track is None:
            track = self._tracking[job["metadata"]["uid"]] = _Tracking(job, pods)
        now = self.clock.now()
        newly_failed = self._count(job, pods, track, now)
        ctx = _JobContext(self, job, pods, track, now)
        if ctx.suspended:
            self._suspend(ctx)
        else:
            self._run(ctx, newly_failed)
        self._write(ctx)

    def _count(self, job, pods, track, now):
        newly = []
        for pod in pods:
            phase = (pod.get("status") or {}).get("phase")
            uid = pod["metadata"]["uid"]
            if phase == "Succeeded" and uid not in track.succeeded:
                track.succeeded[uid] = _index_of(pod)
            elif phase == "Failed" and uid not in track.failed and uid not in track.ignored:
                track.failed.add(uid)
                track.last_failure = now
                newly.append(pod)
        return newly

    def _suspend(self, ctx):
        for pod in ctx.active:
            self._delete(ctx, pod)
        ctx.active = []
        ctx.status.pop("startTime", None)
        if ctx.set_condition("Suspended", "True", "JobSuspended", "Job suspended"):
            self.event(ctx.job, "Normal", "Suspended", "Job suspended")

    def _run(self, ctx, newly_failed):
        job, spec, status = ctx.job, ctx.spec, ctx.status
        if ctx.condition("Suspended") is not None and ctx.condition("Suspended").get("status") == "True":
            ctx.set_condition("Suspended", "False", "JobResumed", "Job resumed")
            self.event(job, "Normal", "Resumed", "Job resumed")
        if not status.get("startTime"):
            status["startTime"] = self.clock.timestamp(ctx.now)
        failure = ctx.failure_target() or self._pod_failure_policy(ctx, newly_failed) or self._failure(ctx)
        if failure is not None:
            self._fail(ctx, *failure)
            return
        if ctx.success_target() or ctx.complete():
            self._succeed(ctx)
            return
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            start = parse_timestamp(status["startTime"]) or ctx.now
            self.enqueue_after(start + float(deadline) - ctx.now, ctx.key)
        self._scale(ctx)

    def _failure(self, ctx):
        spec = ctx.spec
        failed = ctx.failed_count()
        if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            failed += sum(int(s.get("restartCount") or 0) for p in ctx.active
                          for s in (p.get("status") or {}).get("containerStatuses") or ())
        if failed > int(podutil.field(spec, "backoffLimit", 6)):
            return "BackoffLimitExceeded", FAILURES["BackoffLimitExceeded"]
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_timestamp(ctx.status.get("startTime"))
        if deadline is not None and start is not None and ctx.now - start >= float(deadline):
            return "DeadlineExceeded", FAILURES["DeadlineExceeded"]
        return None

    def _pod_failure_policy(self, ctx, newly_failed):
        rules = (ctx.spec.get("podFailurePolicy") or {}).get("rules") or []
        if not rules:
            return None
        for pod in newly_failed:
            for index, rule in enumerate(rules):
                matched = _rule_matches(rule, pod)
                if matched is None:
                    continue
                action = rule.get("action")
                if action == "Ignore":
                    ctx.track.failed.discard(pod["metadata"]["uid"])
                    ctx.track.ignored.add(pod["metadata"]["uid"])
                elif action == "FailJob":
                    return "PodFailurePolicy", "%s matching FailJob rule at index %d" % (matched, index)
                break
        return None

    def _fail(self, ctx, reason, message):
        if ctx.set_condition("FailureTarget", "True", reason, message):
            self.event(ctx.job, "Warning", reason, message)
        for pod in ctx.active:
            self._delete(ctx, pod)
        ctx.active = []
        if not ctx.terminating():
            ctx.set_condition("Failed", "True", reason, message)

    def _succeed(self, ctx):
        ctx.set_condition("SuccessCriteriaMet", "True", "CompletionsReached", SUCCESS_MESSAGE)
        for pod in ctx.active:
            self._delete(ctx, pod)
        ctx.active = []
        if not ctx.terminating():
            ctx.status["completionTime"] = self.clock.timestamp(ctx.now)
            ctx.set_condition("Complete", "True", "CompletionsReached", SUCCESS_MESSAGE)
            self.event(ctx.job, "Normal", "Completed", "Job completed")

    def _scale(self, ctx):
        """Create pods up to the wanted number (after the failure back-off), delete surplus."""
        spec = ctx.spec
        parallelism = int(podutil.field(spec, "parallelism", 1))
        completions = spec.get("completions")
        track = ctx.track
        if ctx.indexed:
            busy = {_index_of(p) for p in ctx.active}
            pending = [i for i in range(int(completions or 0)) if i not in ctx.succeeded_indexes() and i not in busy]
            room = max(0, parallelism - len(ctx.active))
            creations = pending[:room]
            surplus = max(0, len(ctx.active) - parallelism)
        else:
            if completions is None:
                wanted = parallelism if ctx.succeeded_count() == 0 else 0
            else:
                wanted = min(parallelism, int(completions) - ctx.succeeded_count())
            wanted = max(wanted, 0)
            creations = [None] * max(0, wanted - len(ctx.active))
            surplus = max(0, len(ctx.active) - wanted)
        if surplus:
            for pod in sorted(ctx.active, key=lambda p: p["metadata"].get("creationTimestamp", ""))[-surplus:]:
                self._delete(ctx, pod)
                ctx.active.remove(pod)
        if not creations:
            return
        failures = ctx.failed_count()
        if failures and track.last_failure is not None:
            delay = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
            if ctx.now < track.last_failure + delay:
                self.enqueue_after(track.last_failure + delay - ctx.now, ctx.key)
                return
        for index in creations:
            ctx.active.append(self._create(ctx.job, index))

    def _create(self, job, index):
        meta = job["metadata"]
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        labels = {"batch.kubernetes.io/controller-uid": meta["uid"], "batch.kubernetes.io/job-name": meta["name"],
                  "controller-uid": meta["uid"], "job-name": meta["name"]}
        annotations = None
        generate = meta["name"] + "-"
        if index is not None:
            labels[INDEX] = str(index)
            annotations = {INDEX: str(index)}
            generate = "%s-%d-" % (meta["name"], index)
        pod = podutil.pod_from_template(template, job, "batch/v1", "Job", generate_name=generate, labels=labels,
                                        annotations=annotations)
        if index is not None:
            pod["spec"]["hostname"] = "%s-%d" % (meta["name"], index)
            for container in (pod["spec"].get("containers") or []) + (pod["spec"].get("initContainers") or []):
                env = container.setdefault("env", [])
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                    env.insert(0, {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                        "apiVersion": "v1", "fieldPath": "metadata.annotations['%s']" % INDEX}}})
        created = self.store.create(PODS, pod)
        self.event(job, "Normal", "SuccessfulCreate", "Created pod: %s" % created["metadata"]["name"])
        return created

    def _delete(self, ctx, pod):
        try:
            removed = self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])[1]
        except ApiError as exc:
            if exc.code != 404:
                raise
            return
        if not removed:
            ctx.deleting += 1
        self.event(ctx.job, "Normal", "SuccessfulDelete", "Deleted pod: %s" % pod["metadata"]["name"])

    def _write(self, ctx):
        status = ctx.status
        status["active"] = len(ctx.active)
        status["ready"] = sum(1 for p in ctx.active if podutil.is_ready(p))
        status["succeeded"] = ctx.succeeded_count()
        status["failed"] = ctx.failed_count()
        status["terminating"] = ctx.terminating()
        status["uncountedTerminatedPods"] = {}
        if ctx.indexed:
            status["completedIndexes"] = format_indexes(ctx.succeeded_indexes())
        podutil.drop_zero(status, ("active", "succeeded", "failed"))
        status["conditions"] = ctx.conditions
        if not status["conditions"]:
            del status["conditions"]
        self.write_status(JOBS, ctx.job, status)

    def _ttl(self, job, finished):
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None or job["metadata"].get("deletionTimestamp"):
            return
        done = parse_timestamp((job.get("status") or {}).get("completionTime") or finished.get("lastTransitionTime"))
        due = (done or self.clock.now()) + float(ttl)
        now = self.clock.now()
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        seen = self._finished_seen.setdefault(job["metadata"]["uid"], time.monotonic())
        real_left = seen + float(ttl) - time.monotonic()
        wait = max(due - now, real_left * self.clock.speed)   # in simulated seconds
        if wait > 0:
            self.enqueue_after(wait, key)
            return
        try:
            self.store.delete(JOBS, key[0], key[1], propagation="Background",
                              preconditions={"uid": job["metadata"]["uid"]})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise


class _JobContext(object):
    """One reconcile's view of a job: pods by state, counters and condition helpers."""

    def __init__(self, controller, job, pods, track, now):
        self.controller = controller
        self.job = job
        self.key = (job["metadata"]["namespace"], job["metadata"]["name"])
        self.spec = job.get("spec") or {}
        self.status = copy.deepcopy(job.get("status") or {})
        self.conditions = self.status.get("conditions") or []
        self.pods = pods
        self.track = track
        self.now = now
        self.active = [p for p in pods if podutil.is_active(p)]
        self.indexed = self.spec.get("completionMode") == "Indexed"
        self.suspended = bool(self.spec.get("suspend"))
        self.deleting = 0

    def condition(self, ctype):
        return next((c for c in self.conditions if c.get("type") == ctype), None)

    def set_condition(self, ctype, status, reason, message):
        """True when the condition changed. Job conditions carry lastProbeTime too."""
        stamp = self.controller.clock.timestamp(self.now)
        cond = self.condition(ctype)
        if cond is not None and cond.get("status") == status and cond.get("reason") == reason:
            return False
        if cond is None:
            cond = {"type": ctype}
            self.conditions.append(cond)
        cond.update({"status": status, "reason": reason, "message": message, "lastProbeTime": stamp,
                     "lastTransitionTime": stamp})
        return True

    def failure_target(self):
        cond = self.condition("FailureTarget")
        if cond is not None and cond.get("status") == "True":
            return cond.get("reason"), cond.get("message")
        return None

    def success_target(self):
        cond = self.condition("SuccessCriteriaMet")
        return cond is not None and cond.get("status") == "True"

    def terminating(self):
        """Pods still shutting down, including those deleted during this reconcile."""
        return self.deleting + sum(1 for p in self.pods if p["metadata"].get("deletionTimestamp") and
                                   not podutil.is_terminal(p))

    def succeeded_count(self):
        return self.track.base_succeeded + len(self.track.succeeded)

    def failed_count(self):
        return self.track.base_failed + len(self.track.failed)

    def succeeded_indexes(self):
        return {i for i in self.track.succeeded.values() if i is not None}

    def complete(self):
        completions = self.spec.get("completions")
        if self.indexed:
            return len(self.succeeded_indexes()) >= int(completions or 0)
        if completions is None:
            return self.succeeded_count() >= 1 and not self.active
        return self.succeeded_count() >= int(completions)


def _rule_matches(rule, pod):
    """The failure description if a podFailurePolicy rule matches the failed pod, else None."""
    meta = pod["metadata"]
    exit_rule = rule.get("onExitCodes")
    if exit_rule:
        values = set(exit_rule.get("values") or [])
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            if exit_rule.get("containerName") and status.get("name") != exit_rule["containerName"]:
                continue
            code = ((status.get("state") or {}).get("terminated") or {}).get("exitCode")
            if code is None or code == 0:
                continue
            hit = code in values if exit_rule.get("operator", "In") == "In" else code not in values
            if hit:
                return "Container %s for pod %s/%s failed with exit code %d" % (
                    status.get("name"), meta["namespace"], meta["name"], code)
        return None
    for pattern in rule.get("onPodConditions") or ():
        cond = podutil.get_condition(pod, pattern.get("type"))
        if cond is not None and cond.get("status") == pattern.get("status", "True"):
            return "Pod %s/%s has condition %s matching %s rule" % (
                meta["namespace"], meta["name"], pattern.get("type"), rule.get("action"))
    return None
