"""Jobs of the simulated cluster: completions, parallelism, Indexed, suspend, back-off, deadlines,
podFailurePolicy and TTL, read back through kubectl and the Python client."""
from __future__ import annotations

from simcluster.clock import parse_timestamp
from simcluster.controllers.testing import (batch, condition, core, events_for, pods, pods_version, wait_for, wait_until,
                                            watch_pods)

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: %(name)s}
spec:
  %(spec)s
  template:
    spec:
      restartPolicy: %(restart)s
      containers: [{name: c, image: "busybox:1.36", command: [sh, -c, '%(script)s']}]
"""


def _job(kubectl, ns, name, script, spec="backoffLimit: 6", restart="Never"):
    manifest = JOB % {"name": name, "spec": spec, "script": script, "restart": restart}
    kubectl("apply", "-n", ns, "-f", "-", stdin=manifest)


def _finished(sim, ns, name):
    job = batch(sim).read_namespaced_job(name, ns)
    for ctype in ("Complete", "Failed"):
        cond = condition(job, ctype)
        if cond is not None and cond.status == "True":
            return job
    return None


def _condition_types(job):
    return [(c.type, c.status, c.reason) for c in job.status.conditions or []]


def test_completions_with_parallelism(sim_cluster, kubectl, namespace):
    running, succeeded, peak = set(), set(), []

    def observe(kind, pod):
        name, phase = pod["metadata"]["name"], pod["status"].get("phase")
        if kind == "DELETED" or phase in ("Succeeded", "Failed"):
            running.discard(name)
        else:
            running.add(name)
        if phase == "Succeeded":
            succeeded.add(name)
        peak.append(len(running))
        return len(succeeded) == 4

    since = pods_version(sim_cluster, namespace)
    _job(kubectl, namespace, "work", "echo working; sleep 3", spec="completions: 4\n  parallelism: 2")
    watch_pods(sim_cluster, namespace, observe, since)
    kubectl("wait", "--for=condition=complete", "job/work", "-n", namespace, "--timeout=60s")
    assert max(peak) == 2            # never more than `parallelism` pods at once
    job = batch(sim_cluster).read_namespaced_job("work", namespace)
    assert (job.status.succeeded, job.status.active, job.status.failed) == (4, None, None)
    assert (job.status.ready, job.status.terminating) == (0, 0)
    # 1.33 sets SuccessCriteriaMet before Complete
    assert _condition_types(job) == [("SuccessCriteriaMet", "True", "CompletionsReached"),
                                     ("Complete", "True", "CompletionsReached")]
    assert job.status.completion_time >= job.status.start_time
    finished = pods(sim_cluster, namespace, "job-name=work")
    assert len(finished) == 4 and {p.status.phase for p in finished} == {"Succeeded"}
    assert all(p.metadata.labels["batch.kubernetes.io/controller-uid"] == job.metadata.uid for p in finished)
    reasons = [e.reason for e in events_for(sim_cluster, namespace, "work")]
    assert reasons.count("SuccessfulCreate") == 4 and reasons[-1] == "Completed"


def test_indexed_job_gives_each_pod_its_index(sim_cluster, kubectl, namespace):
    _job(kubectl, namespace, "idx", "echo index=$JOB_COMPLETION_INDEX host=$(hostname)",
         spec="completions: 3\n  parallelism: 3\n  completionMode: Indexed")
    kubectl("wait", "--for=condition=complete", "job/idx", "-n", namespace, "--timeout=60s")
    job = batch(sim_cluster).read_namespaced_job("idx", namespace)
    assert job.status.completed_indexes == "0-2"
    seen = {}
    for pod in pods(sim_cluster, namespace, "job-name=idx"):
        index = pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        assert pod.metadata.labels["batch.kubernetes.io/job-completion-index"] == index
        assert pod.metadata.name.startswith("idx-%s-" % index)
        assert pod.spec.hostname == "idx-%s" % index
        seen[index] = core(sim_cluster).read_namespaced_pod_log(pod.metadata.name, namespace)
    assert seen == {str(i): "index=%d host=idx-%d\n" % (i, i) for i in range(3)}


def test_suspended_job_has_no_pods_until_resumed(sim_cluster, kubectl, namespace):
    _job(kubectl, namespace, "later", "echo ran", spec="suspend: true")
    job = wait_until(lambda: batch(sim_cluster).read_namespaced_job("later", namespace),
                     lambda j: condition(j, "Suspended"), "the Suspended condition")
    suspended = condition(job, "Suspended")
    assert (suspended.status, suspended.reason, suspended.message) == ("True", "JobSuspended", "Job suspended")
    # the controller has processed the job (the condition proves it) and started nothing
    assert pods(sim_cluster, namespace) == [] and job.status.start_time is None and job.status.active is None

    kubectl("patch", "job/later", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    kubectl("wait", "--for=condition=complete", "job/later", "-n", namespace, "--timeout=60s")
    job = batch(sim_cluster).read_namespaced_job("later", namespace)
    resumed = condition(job, "Suspended")
    assert (resumed.status, resumed.reason) == ("False", "JobResumed")
    assert job.status.succeeded == 1


def test_suspending_a_running_job_stops_its_pods(sim_cluster, kubectl, namespace):
    _job(kubectl, namespace, "long", "sleep 3600", spec="parallelism: 2\n  completions: 2")
    wait_for(lambda: len([p for p in pods(sim_cluster, namespace) if p.status.phase == "Running"]) == 2,
             "two running pods")
    kubectl("patch", "job/long", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    job = wait_until(lambda: batch(sim_cluster).read_namespaced_job("long", namespace),
                     lambda j: j.status.active is None and condition(j, "Suspended"), "no active pods")
    assert job.status.start_time is None
    # the shell as PID 1 ignores SIGTERM: the pods stay Terminating until the grace period ends
    wait_for(lambda: pods(sim_cluster, namespace) == [], "the pods to be gone")
    assert job.status.failed is None                     # deleted for suspension, not failed


def test_failing_job_stops_at_backoff_limit(sim_cluster, kubectl, namespace):
    _job(kubectl, namespace, "bad", "echo failing; exit 3", spec="backoffLimit: 2")
    kubectl("wait", "--for=condition=failed", "job/bad", "-n", namespace, "--timeout=60s")
    job = batch(sim_cluster).read_namespaced_job("bad", namespace)
    message = "Job has reached the specified backoff limit"
    assert [(c.type, c.reason, c.message) for c in job.status.conditions] == [
        ("FailureTarget", "BackoffLimitExceeded", message), ("Failed", "BackoffLimitExceeded", message)]
    assert job.status.failed == 3                       # backoffLimit 2 allows 2 retries: 3 pods in all
    created = sorted(parse_timestamp(p.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
                     for p in pods(sim_cluster, namespace, "job-name=bad"))
    assert len(created) == 3
    # the pod failure back-off: 10 s, then 20 s (simulated time) between replacements
    assert created[1] - created[0] >= 10 and created[2] - created[1] >= 20
    warnings = [e for e in events_for(sim_cluster, namespace, "bad") if e.type == "Warning"]
    assert [(e.reason, e.message) for e in warnings] == [("BackoffLimitExceeded", message)]
    logs = kubectl("logs", "-n", namespace, "job/bad").stdout
    assert logs == "failing\n"


def test_active_deadline_fails_the_job(sim_cluster, kubectl, namespace):
    _job(kubectl, namespace, "slow", "sleep 600", spec="activeDeadlineSeconds: 5")
    kubectl("wait", "--for=condition=failed", "job/slow", "-n", namespace, "--timeout=60s")
    job = batch(sim_cluster).read_namespaced_job("slow", namespace)
    failed = condition(job, "Failed")
    assert (failed.reason, failed.message) == ("DeadlineExceeded", "Job was active longer than specified deadline")
    assert job.status.active is None


def test_pod_failure_policy_fails_the_job_on_a_matching_exit_code(sim_cluster, kubectl, namespace):
    spec = ("backoffLimit: 6\n  podFailurePolicy: {rules: [{action: FailJob, onExitCodes: "
            "{containerName: c, operator: In, values: [42]}}]}")
    _job(kubectl, namespace, "policy", "exit 42", spec=spec)
    kubectl("wait", "--for=condition=failed", "job/policy", "-n", namespace, "--timeout=60s")
    job = batch(sim_cluster).read_namespaced_job("policy", namespace)
    pod = pods(sim_cluster, namespace, "job-name=policy")
    assert len(pod) == 1                                  # no retry despite backoffLimit 6
    failed = condition(job, "Failed")
    assert failed.reason == "PodFailurePolicy"
    assert failed.message == "Container c for pod %s/%s failed with exit code 42 matching FailJob rule at index 0" % (
        namespace, pod[0].metadata.name)


def test_on_failure_restarts_count_towards_the_backoff_limit(sim_cluster, kubectl, namespace):
    _job(kubectl, namespace, "flaky", "exit 1", spec="backoffLimit: 1", restart="OnFailure")
    kubectl("wait", "--for=condition=failed", "job/flaky", "-n", namespace, "--timeout=60s")
    assert condition(batch(sim_cluster).read_namespaced_job("flaky", namespace), "Failed").reason == \
        "BackoffLimitExceeded"
    # one pod, restarted in place until its restarts exceeded the limit; then the job deleted it
    reasons = [e.reason for e in events_for(sim_cluster, namespace, "flaky")]
    assert reasons.count("SuccessfulCreate") == 1 and reasons.count("SuccessfulDelete") == 1


def test_ttl_after_finished_lasts_real_seconds_however_fast_the_clock(make_sim, tools):
    """The TTL is a grace period for clients, which run in real time. At 20,000 simulated seconds per real one a
    3 s TTL would be 0.15 ms: a client that starts watching only after the job finished (helm waits
    for a hook Job that way) would find nothing and wait until its timeout. The job must still be there for
    `kubectl wait` started after `kubectl apply` returned, and must still go away afterwards."""
    sim = make_sim("cpu-only", speed=20000)
    kubectl, _helm = tools(sim)
    kubectl("create", "namespace", "ttl")
    _job(kubectl, "ttl", "hook", "echo done", spec="ttlSecondsAfterFinished: 3")
    kubectl("wait", "--for=condition=complete", "job/hook", "-n", "ttl", "--timeout=30s")
    kubectl("wait", "--for=delete", "job/hook", "-n", "ttl", "--timeout=60s")


def test_ttl_after_finished_deletes_job_and_pods(sim_cluster, kubectl, namespace):
    _job(kubectl, namespace, "brief", "echo bye", spec="ttlSecondsAfterFinished: 5")
    # The job may complete and be deleted (5 simulated seconds) before a `wait --for=condition=complete` starts,
    # so wait for the deletion alone (it succeeds for an object already gone) and read the job controller's
    # events, which outlive the job: TTL deletes only finished jobs.
    kubectl("wait", "--for=delete", "job/brief", "-n", namespace, "--timeout=60s")
    events = wait_for(lambda: [e for e in events_for(sim_cluster, namespace, "brief") if e.reason == "Completed"],
                      "the job controller's Completed event")
    assert events[0].involved_object.kind == "Job"
    wait_for(lambda: pods(sim_cluster, namespace) == [], "the garbage collector to remove the job's pods")
