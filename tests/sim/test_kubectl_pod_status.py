"""`kubectl get pods`: the READY, STATUS and RESTARTS columns the server prints (printPod in
pkg/printers/internalversion/printers.go), read through the real kubectl.

The first tests drive pods through the simulated kubelet into every state it produces and wait (bounded,
not timed) for kubectl to show the real printer's text. The last one restores pod statuses the simulated
kubelet never writes (signals, scheduling gates, a lost node, sidecars) to cover the printer's other
branches.
"""
from __future__ import annotations

import re

from conftest import Tool
from simcluster.controllers.testing import wait_for

POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  restartPolicy: %(restart)s
  terminationGracePeriodSeconds: %(grace)d
  initContainers: %(inits)s
  containers: %(containers)s
"""


def _container(name, script):
    return "{name: %s, image: 'busybox:1.36', command: [sh, -c, '%s']}" % (name, script)


def _apply(kubectl, ns, name, containers, inits=(), restart="Always", grace=30):
    kubectl("apply", "-n", ns, "-f", "-", stdin=POD % {
        "name": name, "restart": restart, "grace": grace, "inits": "[%s]" % ", ".join(inits),
        "containers": "[%s]" % ", ".join(containers)})


def _row(kubectl, ns, name):
    """(READY, STATUS, RESTARTS) of one pod as kubectl prints them (RESTARTS may read "2 (5s ago)")."""
    fields = kubectl("get", "pod", name, "-n", ns, "--no-headers").stdout.split()
    return fields[1], fields[2], " ".join(fields[3:-1])


def _await(kubectl, ns, name, ready, status):
    """Wait until kubectl shows `status` for the pod; return its row."""
    def shown():
        row = _row(kubectl, ns, name)
        return row if row[:2] == (ready, status) else None
    return wait_for(shown, "pod %s to show %s %s" % (name, ready, status))


FOREVER = "sleep 100000"


def test_statuses_of_pods_that_finish(kubectl, namespace):
    """Completed, Error, StartError (runc could not exec) and Init:Error: terminal pods keep their reason."""
    _apply(kubectl, namespace, "done", [_container("main", "exit 0")], restart="Never")
    _apply(kubectl, namespace, "failed", [_container("main", "exit 3")], restart="Never")
    kubectl("run", "noexec", "-n", namespace, "--image=busybox:1.36", "--restart=Never", "--command", "--",
            "no-such-program")
    _apply(kubectl, namespace, "init-failed", [_container("main", FOREVER)], [_container("setup", "exit 2")],
           restart="Never")
    assert _await(kubectl, namespace, "done", "0/1", "Completed") == ("0/1", "Completed", "0")
    assert _await(kubectl, namespace, "failed", "0/1", "Error")[2] == "0"
    assert _await(kubectl, namespace, "noexec", "0/1", "StartError")[2] == "0"
    assert _await(kubectl, namespace, "init-failed", "0/1", "Init:Error")[2] == "0"


def test_statuses_of_crashing_and_initialising_pods(kubectl, namespace):
    """Init:0/1 while an init container runs, CrashLoopBackOff and Init:CrashLoopBackOff while the kubelet
    backs off, with the restarts counted and dated like kubectl's "2 (15s ago)"."""
    _apply(kubectl, namespace, "initialising", [_container("main", FOREVER)], [_container("setup", FOREVER)])
    _apply(kubectl, namespace, "crashing", [_container("main", "exit 1")])
    _apply(kubectl, namespace, "init-crashing", [_container("main", FOREVER)], [_container("setup", "exit 1")])
    assert _await(kubectl, namespace, "initialising", "0/1", "Init:0/1")[2] == "0"
    restarts = _await(kubectl, namespace, "crashing", "0/1", "CrashLoopBackOff")[2]
    assert re.match(r"^[1-9][0-9]* \([0-9a-z]+ ago\)$", restarts), restarts
    restarts = _await(kubectl, namespace, "init-crashing", "0/1", "Init:CrashLoopBackOff")[2]
    assert re.match(r"^[1-9][0-9]* \([0-9a-z]+ ago\)$", restarts), restarts


def test_statuses_of_running_and_terminating_pods(kubectl, namespace):
    """Running; NotReady when the last container Completed while another still runs (READY 1/2);
    Terminating while a pod's grace period runs (a shell as PID 1 ignores SIGTERM)."""
    _apply(kubectl, namespace, "running", [_container("main", FOREVER)])
    _apply(kubectl, namespace, "half-done", [_container("server", FOREVER), _container("job", "exit 0")],
           restart="Never")
    _apply(kubectl, namespace, "stubborn", [_container("main", FOREVER)], grace=3600)
    assert _await(kubectl, namespace, "running", "1/1", "Running")[2] == "0"
    assert _await(kubectl, namespace, "half-done", "1/2", "NotReady")[2] == "0"
    _await(kubectl, namespace, "stubborn", "1/1", "Running")
    kubectl("delete", "pod", "stubborn", "-n", namespace, "--wait=false")
    assert _await(kubectl, namespace, "stubborn", "1/1", "Terminating")[2] == "0"
    kubectl("delete", "pod", "stubborn", "-n", namespace, "--grace-period=0", "--force")


def test_statuses_before_the_sandbox_is_ready(make_sim, tmp_path):
    """ContainerCreating before the sandbox exists; Init:0/1 (not Init:ContainerCreating) for a pod with init
    containers, whose containers all start out waiting with reason PodInitializing, as the kubelet writes."""
    sim = make_sim(settings={"runtime": {"containerStartSeconds": 100000}})
    kubectl = Tool("kubectl", sim, tmp_path)
    kubectl("create", "namespace", "wait")
    _apply(kubectl, "wait", "plain", [_container("main", FOREVER)])
    _apply(kubectl, "wait", "staged", [_container("main", FOREVER)], [_container("a", "exit 0"), _container("b", "exit 0")])
    assert _await(kubectl, "wait", "plain", "0/1", "ContainerCreating")[2] == "0"
    assert _await(kubectl, "wait", "staged", "0/1", "Init:0/2")[2] == "0"


def _status(phase, init=(), main=(), conditions=(), reason=None):
    status = {"phase": phase, "initContainerStatuses": list(init), "containerStatuses": list(main),
              "conditions": [dict(zip(("type", "status", "reason"), c)) for c in conditions]}
    if reason:
        status["reason"] = reason
    return status


def _cstatus(name, state, ready=False, started=None, restarts=0, last_finished=None):
    out = {"name": name, "image": "busybox:1.36", "imageID": "", "ready": ready, "restartCount": restarts,
           "state": state}
    if started is not None:
        out["started"] = started
    if last_finished:
        out["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": last_finished}}
    return out


RUNNING = {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
MAIN = [{"name": "main", "image": "busybox:1.36"}]
SETUP = [{"name": "setup", "image": "busybox:1.36"}]
PROXY = [{"name": "proxy", "image": "busybox:1.36", "restartPolicy": "Always"}]
MAIN_RUNNING = _cstatus("main", RUNNING, ready=True)
PROXY_STARTED = _cstatus("proxy", RUNNING, ready=True, started=True, restarts=2, last_finished="2025-01-01T00:00:00Z")
JOB_DONE = _cstatus("job", {"terminated": {"exitCode": 0, "reason": "Completed"}})
# pod name -> (spec, status, (READY, STATUS))
BRANCHES = {
    "signalled": ({"containers": MAIN},
                  _status("Failed", main=[_cstatus("main", {"terminated": {"exitCode": 137, "signal": 9}})]),
                  ("0/1", "Signal:9")),
    "exit-code": ({"containers": MAIN},
                  _status("Failed", main=[_cstatus("main", {"terminated": {"exitCode": 2}})]),
                  ("0/1", "ExitCode:2")),
    "init-signal": ({"containers": MAIN, "initContainers": SETUP},
                    _status("Pending", init=[_cstatus("setup", {"terminated": {"exitCode": 143, "signal": 15}})],
                            main=[_cstatus("main", {"waiting": {"reason": "PodInitializing"}})]),
                    ("0/1", "Init:Signal:15")),
    "sidecar": ({"containers": MAIN, "initContainers": PROXY},
                _status("Running", init=[PROXY_STARTED], main=[MAIN_RUNNING],
                        conditions=[("Initialized", "True"), ("Ready", "True")]),
                ("2/2", "Running")),
    "gated": ({"containers": MAIN, "schedulingGates": [{"name": "example.com/wait"}]},
              _status("Pending", conditions=[("PodScheduled", "False", "SchedulingGated")]),
              ("0/1", "SchedulingGated")),
    "finishing": ({"containers": MAIN + [{"name": "job", "image": "busybox:1.36"}]},
                  _status("Running", main=[MAIN_RUNNING, JOB_DONE], conditions=[("Ready", "True")]),
                  ("1/2", "Running")),
    "lost": ({"containers": MAIN, "nodeName": "gone"},
             _status("Running", reason="NodeLost", main=[MAIN_RUNNING]),
             ("1/1", "Unknown")),
}


def test_printer_branches_the_simulated_kubelet_does_not_reach(make_sim, tmp_path):
    """Statuses a real kubelet or controller writes: no reason but a signal or an exit code, a started sidecar
    (counted in READY, its restarts dated), a scheduling gate, Completed beside a running container in a Ready
    pod, and a pod being deleted on a lost node (Unknown)."""
    sim = make_sim(controllers=False)
    kubectl = Tool("kubectl", sim, tmp_path)
    kubectl("create", "namespace", "p")
    for name, (spec, status, _expected) in BRANCHES.items():
        sim.restore({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "p"}, "spec": spec,
                     "status": status})
    kubectl("delete", "pod", "lost", "-n", "p", "--wait=false")      # bound and running: deleted gracefully
    for name, (_spec, _status_unused, expected) in BRANCHES.items():
        ready, status, restarts = _row(kubectl, "p", name)
        assert (ready, status) == expected, name
        if name == "sidecar":
            assert re.match(r"^2 \([0-9a-z]+ ago\)$", restarts), restarts
        else:
            assert restarts == "0", (name, restarts)
