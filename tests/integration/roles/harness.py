"""What the stack roles' integration tests share: a simulated GPU cluster with nothing installed, and
ansible-playbook runs against it through the real kubernetes.core modules, helm and kubectl."""
from __future__ import annotations

import json
import os
import re
import subprocess

import upstream_charts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "stackless-gpu.yaml")
LOCAL_CHARTS = os.path.join(HERE, "local-charts.yml")
HELM = os.path.join(ROOT, ".tools", "bin", "helm")
CHARTS = upstream_charts.charts_dir()   # K8S_AI_CHARTS_DIR, ../shared, or a cache of the pinned charts
ROLE_NAMESPACES = ("gpu-operator", "dra-driver-nvidia-gpu", "envoy-gateway-system", "kueue-system", "monitoring",
                   "dcgm-exporter", "kuberay-system")
# Simulated seconds per real second: container starts and operator loops take a few simulated seconds.
SPEED = 50
# The simulated cluster settles in seconds; a role that is not Ready within this is broken, so fail fast.
WAIT_TIMEOUT = 120
TIMEOUTS = {"%s_wait_timeout" % role: WAIT_TIMEOUT
            for role in ("gpu_operator", "dra_driver", "gateway_api", "kueue", "prometheus", "dcgm_exporter", "kuberay")}


def start_stack_sim(directory, scenario=SCENARIO, **overrides):
    """A started simulated cluster for the stack roles (the simulator brings the apps of their operators)."""
    from simcluster.cluster import SimCluster  # pylint: disable=import-outside-toplevel

    sim = SimCluster(scenario, overrides=overrides or None, speed=SPEED, kubeconfig=os.path.join(str(directory), "kubeconfig"))
    return sim.start()


class Run(object):
    """One ansible-playbook run: return code, output, and the PLAY RECAP counters."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        recap = re.findall(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
        self.ok, self.changed, _unreachable, self.failed = (int(x) for x in recap[-1]) if recap else (0, 0, 0, 0)

    def changed_tasks(self):
        """Names of the tasks that reported a change (from the default callback's output)."""
        names, current = [], None
        for line in self.out.splitlines():
            if line.startswith("TASK ["):
                current = line[len("TASK ["):].rsplit("]", 1)[0]
            elif line.startswith("changed:") and current and current not in names:
                names.append(current)
        return names

    def tail(self, chars=4000):
        return self.out[-chars:]


def playbook(sim, path, *extra_vars, **env):
    """Run a playbook against `sim` with the local upstream charts; extra vars as JSON-able dicts or k=v."""
    for name in upstream_charts.ROLE_CHARTS:
        upstream_charts.chart(name)   # fetched into the cache once, when that is where charts come from
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), path, "-e", "@" + LOCAL_CHARTS,
           "-e", json.dumps(dict(TIMEOUTS, kubeconfig=sim.kubeconfig, helm_binary=HELM))]
    for var in extra_vars:
        cmd += ["-e", var if isinstance(var, str) else json.dumps(var)]
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), K8S_AI_CHARTS_DIR=CHARTS,
                   PATH=os.path.join(ROOT, ".tools", "bin") + os.pathsep + os.environ.get("PATH", ""),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0", **env)
    proc = subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True, check=False)
    return Run(proc)


def write_role_playbook(directory, role):
    """A playbook that runs one role with the same connection defaults as playbooks/install.yml."""
    path = os.path.join(str(directory), "%s.yml" % role)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            "- hosts: localhost\n"
            "  connection: local\n"
            "  gather_facts: false\n"
            "  module_defaults:\n"
            "    group/kubernetes.core.k8s: {kubeconfig: '{{ kubeconfig }}'}\n"
            "    group/kubernetes.core.helm: {kubeconfig: '{{ kubeconfig }}', binary_path: '{{ helm_binary }}'}\n"
            "  roles:\n"
            "    - role: k8s_ai.conformance.%s\n" % role)
    return path


def helm_releases(sim):
    out = subprocess.run([HELM, "list", "-A", "--output", "json", "--kubeconfig", sim.kubeconfig],
                         capture_output=True, text=True, check=True).stdout
    return sorted((r["namespace"], r["name"]) for r in json.loads(out or "[]"))
