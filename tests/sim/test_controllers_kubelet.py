"""The simulated kubelet: pod phases, container statuses, restarts and back-off, readiness, logs and
graceful deletion, as kubectl and the Python client see them."""
from __future__ import annotations

import ipaddress
import re

from simcluster.clock import parse_timestamp
from simcluster.controllers.testing import condition, core, events_for, pods_version, wait_for, watch_pods

POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  restartPolicy: %(restart)s
  %(extra)s
  containers:
  - name: main
    image: %(image)s
    command: [sh, -c, '%(script)s']
    %(container_extra)s
"""


def _pod(kubectl, ns, name, script, restart="Never", image="busybox:1.36", extra="", container_extra=""):
    kubectl("apply", "-n", ns, "-f", "-", stdin=POD % {
        "name": name, "script": script, "restart": restart, "image": image, "extra": extra,
        "container_extra": container_extra})


def _read(sim, ns, name):
    return core(sim).read_namespaced_pod(name, ns)


def _stamp(value):
    return parse_timestamp(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_pod_runs_init_then_main_to_completion(sim_cluster, kubectl, namespace):
    phases = []

    def observe(kind, pod):
        phase = pod["status"].get("phase")
        if not phases or phases[-1] != phase:
            phases.append(phase)
        return phase == "Succeeded"

    since = pods_version(sim_cluster, namespace)
    _pod(kubectl, namespace, "staged", "echo main started; sleep 4; echo main done",
         extra="initContainers: [{name: setup, image: 'busybox:1.36', command: [sh, -c, 'echo init; sleep 1']}]")
    watch_pods(sim_cluster, namespace, observe, since)
    assert phases == ["Pending", "Running", "Succeeded"]

    pod = _read(sim_cluster, namespace, "staged")
    init = pod.status.init_container_statuses[0]
    assert (init.state.terminated.exit_code, init.state.terminated.reason, init.ready) == (0, "Completed", False)
    main = pod.status.container_statuses[0]
    term = main.state.terminated
    assert (term.exit_code, term.reason, main.restart_count, main.ready) == (0, "Completed", 0, False)
    assert _stamp(term.finished_at) - _stamp(term.started_at) >= 4          # simulated seconds
    assert _stamp(term.started_at) >= _stamp(init.state.terminated.finished_at)
    assert main.image == "docker.io/library/busybox:1.36"
    assert re.match(r"^docker\.io/library/busybox@sha256:[0-9a-f]{64}$", main.image_id)
    assert re.match(r"^containerd://[0-9a-f]{64}$", main.container_id)
    assert term.container_id == main.container_id
    assert [(c.type, c.status, c.reason) for c in pod.status.conditions] == [
        ("PodReadyToStartContainers", "False", None), ("Initialized", "True", "PodCompleted"),
        ("Ready", "False", "PodCompleted"), ("ContainersReady", "False", "PodCompleted"),
        ("PodScheduled", "True", None)]
    assert pod.status.qos_class == "BestEffort"
    node = core(sim_cluster).read_node(pod.spec.node_name)
    internal = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    assert pod.status.host_ip == internal[0] and pod.status.host_ips[0].ip == internal[0]
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(node.spec.pod_cidr)
    assert kubectl("logs", "-n", namespace, "staged").stdout == "main started\nmain done\n"
    assert kubectl("logs", "-n", namespace, "staged", "-c", "setup").stdout == "init\n"
    reasons = [e.reason for e in events_for(sim_cluster, namespace, "staged")]
    assert reasons[0] == "Scheduled" and {"Pulled", "Created", "Started"} <= set(reasons)


def test_crash_loop_back_off_and_previous_logs(sim_cluster, kubectl, namespace):
    _pod(kubectl, namespace, "crasher", "echo attempt; exit 1", restart="Always")

    def backing_off():
        status = _read(sim_cluster, namespace, "crasher").status
        cs = (status.container_statuses or [None])[0]
        if cs is not None and cs.restart_count >= 2 and cs.state.waiting is not None:
            return status
        return None

    status = wait_for(backing_off, "a restart count of 2 in back-off")
    cs = status.container_statuses[0]
    assert cs.state.waiting.reason == "CrashLoopBackOff"
    assert re.match(r"^back-off (10|20|40)s restarting failed container=main pod=crasher_%s\(" % namespace,
                    cs.state.waiting.message)
    assert (cs.last_state.terminated.exit_code, cs.last_state.terminated.reason) == (1, "Error")
    assert status.phase == "Running" and cs.ready is False          # restartPolicy Always: never terminal
    assert kubectl("logs", "-n", namespace, "crasher", "--previous").stdout == "attempt\n"
    back_off = [e for e in events_for(sim_cluster, namespace, "crasher") if e.reason == "BackOff"]
    assert back_off and back_off[0].type == "Warning"
    assert back_off[0].message.startswith("Back-off restarting failed container main in pod crasher_%s(" % namespace)
    listing = kubectl("get", "pod", "crasher", "-n", namespace).stdout
    assert re.search(r"crasher\s+0/1\s+(CrashLoopBackOff|Error)\s+[2-9]", listing)


def test_on_failure_restarts_in_place_with_its_empty_dir(sim_cluster, kubectl, namespace):
    script = ("if [ -f /scratch/tried ]; then echo second try; exit 0; fi; touch /scratch/tried; "
              "echo first try; exit 1")
    _pod(kubectl, namespace, "retry", script, restart="OnFailure",
         extra="volumes: [{name: scratch, emptyDir: {}}]",
         container_extra="volumeMounts: [{name: scratch, mountPath: /scratch}]")
    wait_for(lambda: _read(sim_cluster, namespace, "retry").status.phase == "Succeeded", "Succeeded")
    cs = _read(sim_cluster, namespace, "retry").status.container_statuses[0]
    # the emptyDir survives the container restart; the first restart comes without back-off
    assert cs.restart_count == 1 and cs.state.terminated.exit_code == 0
    assert cs.last_state.terminated.exit_code == 1
    assert kubectl("logs", "-n", namespace, "retry").stdout == "second try\n"
    assert kubectl("logs", "-n", namespace, "retry", "--previous").stdout == "first try\n"


def test_logs_tail_follow_and_python_client(sim_cluster, kubectl, namespace):
    script = "for i in 1 2 3 4 5; do echo line $i; sleep 1; done; echo finished >&2"
    _pod(kubectl, namespace, "talker", script)
    # as on a real cluster, logs of a container that has not started yet are a 400
    early = kubectl("logs", "-n", namespace, "talker", check=False)
    assert early.returncode == 0 or 'container "main" in pod "talker" is waiting to start: ContainerCreating' \
        in early.stderr
    # started: usually still Running, but a loaded machine may look only after its five simulated seconds
    wait_for(lambda: _read(sim_cluster, namespace, "talker").status.phase in ("Running", "Succeeded"), "started")
    followed = kubectl("logs", "-f", "-n", namespace, "talker").stdout
    assert followed == "line 1\nline 2\nline 3\nline 4\nline 5\nfinished\n"
    assert kubectl("logs", "-n", namespace, "talker", "--tail=2").stdout == "line 5\nfinished\n"
    api = core(sim_cluster)
    assert api.read_namespaced_pod_log("talker", namespace, tail_lines=3) == "line 4\nline 5\nfinished\n"
    assert api.read_namespaced_pod_log("talker", namespace, container="main").startswith("line 1\n")


def test_readiness_waits_for_the_probe_delay(sim_cluster, kubectl, namespace):
    states = []

    def observe(kind, pod):
        ready = next((c["status"] for c in pod["status"].get("conditions", []) if c["type"] == "Ready"), None)
        states.append((pod["status"].get("phase"), ready))
        return ready == "True"

    since = pods_version(sim_cluster, namespace)
    _pod(kubectl, namespace, "slow-ready", "sleep 3600", restart="Always",
         container_extra="readinessProbe: {exec: {command: [\"true\"]}, initialDelaySeconds: 15}")
    watch_pods(sim_cluster, namespace, observe, since)
    assert ("Running", "False") in states            # running but not yet ready
    pod = _read(sim_cluster, namespace, "slow-ready")
    started = _stamp(pod.status.container_statuses[0].state.running.started_at)
    assert _stamp(condition(pod, "Ready").last_transition_time) - started >= 15


def test_a_program_not_ready_from_its_first_step_is_never_reported_ready_before_it_says_so(make_sim, tools):
    """An app that declares itself not ready in its first step (the real Prometheus server does, until its
    /-/ready answers) must not be reported ready in between: the kubelet reads readiness at the container's
    start time, and by the time the first step ran the clock had moved on. At 20,000 simulated seconds per real
    one that gap is thousands of seconds; a Ready=True there once let a test start before Prometheus served."""
    sim = make_sim("cpu-only", speed=20000)
    kubectl, _helm = tools(sim)

    def slow_start(proc):
        proc.set_ready(False)
        yield 2000.0                 # 0.1 real seconds of starting up
        proc.set_ready(True)
        while True:
            yield 3600.0
    sim.runtime.register_app("*/slow-start", slow_start)
    kubectl("create", "namespace", "readiness")
    seen = []

    def observe(_kind, pod):
        statuses = pod["status"].get("containerStatuses") or []
        running = [c for c in statuses if "running" in (c.get("state") or {})]
        if running:
            seen.append(running[0]["ready"])
        return bool(running) and running[0]["ready"]

    since = pods_version(sim, "readiness")
    kubectl("run", "slow", "-n", "readiness", "--image=registry.test/slow-start:1")
    watch_pods(sim, "readiness", observe, since)
    assert seen[0] is False and seen[-1] is True, seen


def test_graceful_deletion_waits_for_programs_ignoring_sigterm(sim_cluster, kubectl, namespace):
    _pod(kubectl, namespace, "stubborn", "sleep 3600", extra="terminationGracePeriodSeconds: 20")
    kubectl("run", "polite", "-n", namespace, "--image=registry.k8s.io/pause:3.10")
    wait_for(lambda: all(_read(sim_cluster, namespace, n).status.phase == "Running" for n in ("stubborn", "polite")),
             "both pods running")
    order = []
    stamps = {}

    def observe(kind, pod):
        if kind == "DELETED":
            order.append(pod["metadata"]["name"])
            stamps[pod["metadata"]["name"]] = sim_cluster.clock.now()
        return len(order) == 2

    since = pods_version(sim_cluster, namespace)
    kubectl("delete", "pod", "stubborn", "polite", "-n", namespace, "--wait=false")
    deleting = _read(sim_cluster, namespace, "stubborn")
    assert deleting.metadata.deletion_grace_period_seconds == 20 and deleting.metadata.deletion_timestamp
    watch_pods(sim_cluster, namespace, observe, since)
    # pause exits on SIGTERM; a shell as PID 1 ignores it and is killed when the grace period ends
    assert order == ["polite", "stubborn"]
    assert stamps["stubborn"] - _stamp(deleting.metadata.deletion_timestamp) >= 19
    killing = [e.message for e in events_for(sim_cluster, namespace, "stubborn") if e.reason == "Killing"]
    assert killing == ["Stopping container main"]


def test_active_deadline_and_start_error(sim_cluster, kubectl, namespace):
    _pod(kubectl, namespace, "deadline", "sleep 600", extra="activeDeadlineSeconds: 5")
    wait_for(lambda: _read(sim_cluster, namespace, "deadline").status.phase == "Failed", "Failed")
    status = _read(sim_cluster, namespace, "deadline").status
    assert (status.reason, status.message) == ("DeadlineExceeded",
                                               "Pod was active on the node longer than the specified deadline")

    kubectl("run", "missing", "-n", namespace, "--image=busybox:1.36", "--restart=Never", "--command", "--",
            "no-such-tool", "--version")
    wait_for(lambda: _read(sim_cluster, namespace, "missing").status.phase == "Failed", "Failed")
    term = _read(sim_cluster, namespace, "missing").status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (128, "StartError")
    assert 'exec: "no-such-tool": executable file not found in $PATH' in term.message


def test_pods_of_a_vanished_node_are_removed(sim_cluster, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", stdin="""
apiVersion: v1
kind: Pod
metadata: {name: orphan}
spec:
  nodeName: node-that-left
  containers: [{name: c, image: "registry.k8s.io/pause:3.10"}]
""")
    assert _read(sim_cluster, namespace, "orphan").spec.node_name == "node-that-left"
    kubectl("wait", "--for=delete", "pod/orphan", "-n", namespace, "--timeout=60s")
