"""The fault matrix: every accelerator check against a simulated cluster that misbehaves (tests/simcluster/faults.py).

One row per (fault, check). A row records the check's verdict against the healthy cluster's verdict, the
error text when the module failed, the probe objects left in the cluster once in-flight deletions have
finished, and whether a Python traceback reached the output. hack/fault-matrix.py prints the table;
tests/integration/test_fault_matrix.py asserts the same rows. A new check plugs in with one CHECKS entry;
a new fault with one FAULTS entry.

Outcomes a row may have (`expect`):
  unchanged  the verdict equals the healthy cluster's (transient faults are retried away)
  weaker     a weaker verdict whose notes name what was missing (never a stronger one)
  error      the module failed, with a message naming the fix (never a verdict it could not prove)
Every row must leave zero probe objects and print no traceback.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from checks_support import FAST, ROOT, leftovers, run_module

RANK = {"Implemented": 3, "Partially Implemented": 2, "Not Implemented": 1, "N/A": 0}
# check -> module options for fast runs on the simulated clock (the same as the other integration tests)
CHECKS = {
    "dra_support": {"unschedulable_window": 2},
    "secure_accelerator_access": {},
    "accelerator_metrics": {"load_seconds": 60},
}
WEBHOOK = {
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
    "metadata": {"name": "fault-hung-policy"},
    "webhooks": [{
        "name": "pods.policy.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
        "failurePolicy": "Fail", "timeoutSeconds": 10,
        "clientConfig": {"service": {"namespace": "kube-system", "name": "policy-webhook", "path": "/validate"}},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
    }],
}


def _outage(sim):
    # starts 0.2 s after the check creates its first probe pod, lasts 3 s (connections dropped unanswered)
    sim.faults.set(outage={"after": {"method": "POST", "pathContains": "/pods"}, "delaySeconds": 0.2, "seconds": 3})


def _webhook(sim):
    sim.restore(WEBHOOK)
    sim.faults.set(webhookTimeout=True)


def _webhook_off(sim):
    sim.store.delete(("admissionregistration.k8s.io", "validatingwebhookconfigurations"), None, WEBHOOK["metadata"]["name"])


# name -> (what it models, apply(sim), undo(sim) or None, how the check runs, expected outcome)
FAULTS = {
    "latency 50-100ms": ("every API answer delayed 50-100 ms",
                         lambda sim: sim.faults.set(latencyMs=50, latencyJitterMs=50), None, "inprocess", "unchanged"),
    "30% 429/503": ("30 % of API requests answered 429 or 503 with Retry-After",
                    lambda sim: sim.faults.set(errorRate=0.3, errorCodes=[429, 503], retryAfterSeconds=0, seed=11),
                    None, "inprocess", "unchanged"),
    "outage mid-probe": ("API connections dropped for 3 s, starting just after the first probe pod is created",
                         _outage, None, "inprocess", "unchanged"),
    "dropped watches": ("every watch stream cut after 0.5 s (the checks poll; kubectl/helm re-watch)",
                        lambda sim: sim.faults.set(dropWatches={"afterSeconds": 0.5}), None, "inprocess", "unchanged"),
    "pods never start": ("probe pods stay Pending in ImagePullBackOff",
                         lambda sim: sim.faults.set(podsNeverStart={"namespacePrefix": "aic-"}), None,
                         "inprocess-short", "weaker"),
    "webhook timeout": ("a pod-validating webhook (failurePolicy Fail) hangs until its 10 s timeout",
                        _webhook, _webhook_off, "inprocess", "error"),
    "SIGINT mid-probe": ("Ctrl-C (SIGINT) while probe pods run", None, None, "sigint", "error"),
    "SIGTERM mid-probe": ("a job runner's timeout (SIGTERM) while probe pods run", None, None, "sigterm", "error"),
    "ansible task timeout": ("the real ansible-playbook with `timeout: 4` on the task while probe pods never start: "
                             "Ansible abandons the module, which notices and cleans up",
                             lambda sim: sim.faults.set(podsNeverStart={"namespacePrefix": "aic-"}), None,
                             "ansible-timeout", "error"),
    "ansible Ctrl-C": ("Ctrl-C on ansible-playbook (SIGINT to its process group) while probe pods never start",
                       lambda sim: sim.faults.set(podsNeverStart={"namespacePrefix": "aic-"}), None,
                       "ansible-sigint", "error"),
    "SIGKILL, run again": ("killed (SIGKILL) while probes run, then run again: the second run sweeps the first's "
                           "namespace and gives the healthy verdict", None, None, "sigkill", "unchanged"),
}


def params(sim, check, **extra):
    out = dict(FAST, kubeconfig=sim.kubeconfig, **CHECKS[check])
    out.update(extra)
    return out


def settle_leftovers(sim, timeout=15.0):
    """Probe objects left once deletions in flight have finished (bounded wait on the cluster's state)."""
    end = time.monotonic() + timeout
    found = leftovers(sim)
    while found and time.monotonic() < end:
        time.sleep(0.1)
        found = leftovers(sim)
    return found


def baseline(sim):
    """The healthy cluster's verdict per check."""
    return {check: run_module(check, params(sim, check))["result"]["status"] for check in CHECKS}


# The child starts with Python's own SIGINT handler (KeyboardInterrupt) as in a terminal, whatever the disposition
# it inherited: a process that was started with SIGINT ignored passes that on, and Python then keeps ignoring it.
CHILD = """
import json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path[:0] = %r
from checks_support import run_module
print(json.dumps(run_module(%r, json.loads(sys.argv[1]))))
"""


def run_child(check, args, sig, sim):
    """Run the check in a child process and send `sig` once its probe pods exist; returns (output dict or
    None, stdout+stderr text)."""
    paths = [os.path.join(ROOT, ".tools", "collections"), os.path.join(ROOT, "tests"),
             os.path.join(ROOT, "tests", "integration")]
    earlier = probe_namespace_names(sim)
    proc = subprocess.Popen([sys.executable, "-c", CHILD % (paths, check), json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    signalled = wait_for_probe_pods(sim, proc, ignore=earlier)
    if signalled:
        proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    text = stdout + stderr
    if not signalled:   # the row then proves nothing: say so in its output
        text += "\n(the signal was not sent: the run ended, or had no probe pods within 60 s; exit %s)" % proc.returncode
    try:
        return json.loads(stdout.strip().splitlines()[-1]), text
    except (ValueError, IndexError):
        return None, text


PLAYBOOK = """
- name: One check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the check
      k8s_ai.conformance.%s: %s
%s"""


def run_ansible(check, args, sim, timeout=None, sigint=False):
    """ansible-playbook running the check, with a task `timeout:`, or interrupted like Ctrl-C in a terminal
    (SIGINT to its process group) once probe pods exist; returns (failure dict or None, output)."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(PLAYBOOK % (check, json.dumps(dict(args, wait_timeout=120)),
                                 "      timeout: %d\n" % timeout if timeout else ""))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    earlier = probe_namespace_names(sim)
    try:
        proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), handle.name], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        if sigint and wait_for_probe_pods(sim, proc, ignore=earlier):
            os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        os.unlink(handle.name)
    text = stdout + stderr
    match = re.search(r"FAILED! => (\{.*\})", stdout)
    out = json.loads(match.group(1)) if match else None
    if out is None and "User interrupted execution" in text:
        out = {"msg": "User interrupted execution"}
    if out is not None:
        out["failed"] = True
    return out, text


def probe_namespace_names(sim):
    return {ns["metadata"]["name"] for ns in sim.store.list(("", "namespaces"))[0]
            if ns["metadata"]["name"].startswith("aic-")}


def wait_for_probe_pods(sim, proc, timeout=60, ignore=()):
    """True once a probe pod exists in a probe namespace not in `ignore` (one an earlier row left terminating
    must not fire the signal before this run has probes), bounded; False if the process ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if [p for p in sim.store.list(("", "pods"))[0]
                if p["metadata"]["namespace"].startswith("aic-") and p["metadata"]["namespace"] not in ignore]:
            return True
        time.sleep(0.05)
    return False


def run_row(sim, fault, check, healthy):
    """One row: {fault, check, expect, verdict, outcome, ok, error, leftovers, traceback, detail}."""
    _what, apply, undo, how, expect = FAULTS[fault]
    sim.faults.clear()
    before = dict(sim.faults.stats)
    text = ""
    extra_left = None
    try:
        if apply:
            apply(sim)
        if how == "ansible-timeout":
            out, text = run_ansible(check, params(sim, check), sim, timeout=4)
        elif how == "ansible-sigint":
            out, text = run_ansible(check, params(sim, check), sim, sigint=True)
        elif how.startswith("inprocess"):
            out = run_module(check, params(sim, check, **({"wait_timeout": 6} if how == "inprocess-short" else {})))
            text = json.dumps(out)
        else:
            sig = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[how]
            out, text = run_child(check, params(sim, check), sig, sim)
            if how == "sigkill":
                extra_left = len(leftovers(sim))        # what the killed run left behind
                out = run_module(check, params(sim, check))
                text += json.dumps(out)
    finally:
        sim.faults.clear()
        if undo:
            undo(sim)
    injected = {k: v - before.get(k, 0) for k, v in sim.faults.stats.items() if v - before.get(k, 0) and k != "passed"}
    left = settle_leftovers(sim)
    status = (out or {}).get("result", {}).get("status")
    error = (out or {}).get("msg", "") if (out or {}).get("failed") else ""
    if out is None:
        error = "no module output: " + text[-300:]
    silent = not status and not error
    if status and expect == "unchanged":
        outcome = "unchanged" if status == healthy[check] else "changed"
    elif status:
        outcome = "weaker" if RANK[status] < RANK[healthy[check]] else "unchanged" if status == healthy[check] \
            else "stronger"
    else:
        outcome = "nothing" if silent else "error"
    notes = (out or {}).get("result", {}).get("notes", "") if status else ""
    row = {
        "fault": fault, "check": check, "expect": expect, "healthy": healthy[check], "verdict": status or "failed",
        "outcome": outcome, "error": error, "notes": notes, "leftovers": len(left), "left": left,
        "left_by_killed_run": extra_left, "traceback": "Traceback (most recent call last)" in text,
        "injected": injected, "tail": text[-400:],
    }
    row["ok"] = outcome == expect and not left and not row["traceback"]
    if how == "sigkill":   # the kill must really have left something for the second run to sweep
        row["ok"] = row["ok"] and bool(extra_left)
    return row


def said(row, width=None):
    """What the module told the user: the error (minus the API URL) or, for a weaker verdict, its notes."""
    text = row["error"] or (row["notes"] if row["outcome"] != "unchanged" else "") or "-"
    text = re.sub(r"the Kubernetes API at https?://\S+ answered (\w+) \S+ with", r"\1 answered", text)
    text = re.sub(r"aic-[a-z0-9-]+", "aic-...", text).replace("\n", " ")
    return text[:width] if width else text


def table(rows, width=150):
    """The matrix as aligned text."""
    cols = ("fault", "check", "verdict", "outcome", "leftovers", "traceback", "injected", "error / notes")
    lines = []
    for row in rows:
        killed = "" if row["left_by_killed_run"] is None else " (killed run left %d)" % row["left_by_killed_run"]
        injected = " ".join("%s:%d" % kv for kv in sorted(row["injected"].items())) or "-"
        lines.append((row["fault"], row["check"], row["verdict"], row["outcome"] + ("" if row["ok"] else " !!"),
                      "%d%s" % (row["leftovers"], killed), "yes" if row["traceback"] else "none", injected,
                      said(row, width)))
    widths = [max(len(str(x[i])) for x in [cols] + lines) for i in range(len(cols))]
    return "\n".join("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(x)).rstrip() for x in [cols] + lines)
