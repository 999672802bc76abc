"""`python -m simcluster` as scripts drive it: it stops within seconds on TERM and INT sent in every phase
(loading, settling, serving, stopping), also when they are sent again and again, and it says ready on a
scenario whose workloads fail steadily (a crash loop, an image that cannot be pulled, nothing fits),
naming each of them on the ready line."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT

BASE = os.path.join(ROOT, "tests", "simcluster", "scenarios", "base.yaml")
EXIT_WITHIN = 15.0     # real seconds; the CLI's own --stop-timeout is 10


def _spawn(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests"))
    return subprocess.Popen([sys.executable, "-m", "simcluster"] + list(args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc):
    try:
        out, err = proc.communicate(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("simcluster did not exit within %ss of the signals; stderr: %s" % (EXIT_WITHIN, err[-2000:]))
    return proc.returncode, out, err


def _wait_for_line(proc, needle, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return line
        if not line and proc.poll() is not None:
            break
    pytest.fail("no %r line from simcluster (exit %s): %s" % (needle, proc.poll(), proc.stderr.read()[-2000:]))
    return ""


@pytest.mark.parametrize("delay", [0.05, 0.4, 1.0, 2.0])
def test_signals_before_ready_stop_it_within_seconds(tmp_path, delay):
    """TERM then INT, repeatedly, while the scenario loads or settles (the conformant GPU scenario takes a
    few seconds to settle): the process exits 0 without a traceback, whatever it was doing."""
    proc = _spawn("--scenario", "conformant", "--kubeconfig", str(tmp_path / "kc"))
    time.sleep(delay)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        time.sleep(0.02)
    code, out, err = _finish(proc)
    # A TERM that arrives before the interpreter has run our code ends it by the default action (-15): still
    # an exit within seconds. Once the handlers are in, every signal leads to a clean stop (0).
    assert code in (0, -signal.SIGTERM), err
    assert "Traceback" not in err
    assert "ready" not in out or "stopped" in out


def test_signals_while_serving_and_while_stopping(tmp_path):
    """After ready: a burst of TERM and INT (the second and later ones arrive while it stops)."""
    proc = _spawn("--scenario", "conformant", "--kubeconfig", str(tmp_path / "kc"))
    _wait_for_line(proc, "simcluster ready")
    for i in range(20):
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGTERM if i % 2 == 0 else signal.SIGINT)
        time.sleep(0.01)
    code, out, err = _finish(proc)
    assert code == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_group_signal_from_make(tmp_path):
    """`make sim` and the simulator both get the terminal's INT (the process group): make ends, and so does
    the simulator, in seconds."""
    env = dict(os.environ, PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"])
    proc = subprocess.Popen(["make", "-s", "-C", ROOT, "sim", "SCENARIO=conformant", "KUBECONFIG=%s" % (tmp_path / "kc")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_line(proc, "simcluster ready")
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        _code, _out, err = _finish(proc)
        assert "Traceback" not in err
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    leftovers = subprocess.run(["pgrep", "-f", "simcluster --scenario conformant --kubeconfig %s" % (tmp_path / "kc")],
                               capture_output=True, text=True, check=False).stdout.split()
    assert leftovers == []


def _broken_scenario(tmp_path):
    def deployment(name, image, **pod):
        spec = {"containers": [dict({"name": "main", "image": image}, **pod.pop("container", {}))]}
        spec.update(pod)
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
    scenario = {
        "name": "broken-workloads", "include": [BASE], "kubernetesVersion": "v1.33.5",
        "nodePools": [{"name": "cpu", "count": 1, "cpu": "4", "memory": "16Gi"}],
        "settings": {"runtime": {"unpullableImages": ["*:does-not-exist"]}},
        "objects": [
            deployment("healthy", "registry.k8s.io/pause:3.10"),
            deployment("crasher", "busybox:1.36", container={"command": ["sh", "-c", "echo starting; exit 3"]}),
            deployment("no-image", "registry.example/exporter:does-not-exist"),
            deployment("nowhere", "registry.k8s.io/pause:3.10", nodeSelector={"pool": "does-not-exist"}),
        ],
    }
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_ready_on_steady_failures_names_what_is_not_ready(tmp_path):
    proc = _spawn("--scenario", str(_broken_scenario(tmp_path)), "--kubeconfig", str(tmp_path / "kc"),
                  "--speed", "50")
    try:
        line = _wait_for_line(proc, "simcluster ready")
        assert "not ready:" in line
        assert "deployment default/crasher (CrashLoopBackOff)" in line
        assert re.search(r"deployment default/no-image \((ErrImagePull|ImagePullBackOff)\)", line), line
        assert "deployment default/nowhere (Unschedulable)" in line
        assert "healthy" not in line
    finally:
        proc.send_signal(signal.SIGTERM)
        code, _out, err = _finish(proc)
    assert code == 0 and "Traceback" not in err


def test_image_that_cannot_be_pulled_reports_as_kubelet_does(make_sim, tools, tmp_path):
    sim = make_sim(str(_broken_scenario(tmp_path)), speed=50)
    kubectl, _helm = tools(sim)
    sim.wait_settled(60)
    pods = kubectl.json("get", "pods", "-n", "default", "-l", "app=no-image")["items"]
    waiting = pods[0]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "registry.example/exporter:does-not-exist" in waiting["message"] and "not found" in waiting["message"]
    assert pods[0]["status"]["phase"] == "Pending"
    events = kubectl.json("get", "events", "-n", "default", "--field-selector",
                          "involvedObject.name=%s" % pods[0]["metadata"]["name"])["items"]
    messages = [e["message"] for e in events]
    assert 'Failed to pull image "registry.example/exporter:does-not-exist": rpc error: code = NotFound' in \
        " ".join(messages)
    assert "Error: ErrImagePull" in messages
