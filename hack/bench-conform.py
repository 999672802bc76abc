"""How long the whole conformance run takes against its slowest check (the checks run side by side).

    .venv/bin/python hack/bench-conform.py                  # conformant scenario, demo settings
    .venv/bin/python hack/bench-conform.py --scenario ai-stack --sequential
    make bench-conform

Starts the simulated cluster once, times each check alone (`ansible localhost -m k8s_ai.conformance.<id>`,
the demo's settings), then the whole `playbooks/conform.yml` run (checks side by side; with --sequential
also with conform_parallel=false), and prints the figures and the ratio run / slowest check. Figures for
people: nothing is asserted against them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_VARS = os.path.join(ROOT, "hack", "demo-vars.yml")
# conform_* setting -> (check, module option); the generic ones go to every check
SPECIFIC = {"conform_dra_unschedulable_window": ("dra_support", "unschedulable_window"),
            "conform_metrics_load_seconds": ("accelerator_metrics", "load_seconds"),
            "conform_gang_window": ("gang_scheduling", "gang_window")}
GENERIC = {"conform_wait_timeout": "wait_timeout", "conform_wait_sleep": "wait_sleep"}


def env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                PATH=os.pathsep.join([os.path.join(ROOT, ".venv", "bin"), os.path.join(ROOT, ".tools", "bin"),
                                      os.environ.get("PATH", "")]))


def start_sim(scenario, workdir):
    kubeconfig = os.path.join(workdir, "kubeconfig")
    log = open(os.path.join(workdir, "simcluster.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "simcluster", "--scenario", scenario, "--kubeconfig", kubeconfig],
                            env=dict(env(), PYTHONPATH=os.path.join(ROOT, "tests")), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with open(log.name) as handle:
            if "simcluster ready" in handle.read():
                return proc, kubeconfig
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the simulated cluster did not start; see %s" % log.name)


def default_checks(scenario):
    """The checks the conform role runs by default on this scenario: every known check its checklist lists."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from simcluster import scenario as scenario_mod   # pylint: disable=import-outside-toplevel
    from simcluster.cluster import DEFAULT_VERSION   # pylint: disable=import-outside-toplevel

    version = str(scenario_mod.load(scenario).get("kubernetesVersion", DEFAULT_VERSION)).lstrip("v")
    minor = ".".join(version.split(".")[:2])
    with open(os.path.join(ROOT, "roles", "conform", "vars", "main.yml")) as handle:
        known = yaml.safe_load(handle)["__conform_known_checks"]
    with open(os.path.join(ROOT, "data", "checklists", "AIConformance-%s.yaml" % minor)) as handle:
        ids = {req["id"] for reqs in yaml.safe_load(handle)["spec"].values() for req in reqs}
    return [check for check in known if check in ids]


def timed(cmd):
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, check=False)
    return time.monotonic() - started, proc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scenario", default="conformant")
    parser.add_argument("--sequential", action="store_true", help="also time the run with conform_parallel=false")
    args = parser.parse_args(argv)
    with open(DEMO_VARS) as handle:
        demo = yaml.safe_load(handle)
    checks = default_checks(args.scenario)
    workdir = tempfile.mkdtemp(prefix="bench-conform-")
    sim, kubeconfig = start_sim(args.scenario, workdir)
    rows = []
    try:
        for check in checks:
            options = {"kubeconfig": kubeconfig}
            options.update({opt: demo[var] for var, opt in GENERIC.items() if var in demo})
            options.update({opt: demo[var] for var, (cid, opt) in SPECIFIC.items() if cid == check and var in demo})
            seconds, proc = timed([os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m",
                                   "k8s_ai.conformance.%s" % check, "-a", " ".join("%s=%s" % kv for kv in options.items())])
            status = "error (exit %d)" % proc.returncode if proc.returncode else "ok"
            if "=> " in proc.stdout:
                try:
                    status = json.loads(proc.stdout.split("=> ", 1)[1])["result"]["status"]
                except (ValueError, KeyError, TypeError):
                    pass
            rows.append((check, seconds, status))
            print("check %-26s %6.1f s  %s" % (check, seconds, status), flush=True)
        runs = []
        for parallel in ([True, False] if args.sequential else [True]):
            seconds, proc = timed([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "playbooks/conform.yml",
                                   "-e", "@" + DEMO_VARS, "-e", "conform_kubeconfig=%s" % kubeconfig,
                                   "-e", "conform_output_dir=%s" % os.path.join(workdir, "out-%s" % parallel),
                                   "-e", "conform_parallel=%s" % str(parallel).lower()])
            if proc.returncode:
                print(proc.stdout[-3000:], proc.stderr[-2000:])
                raise SystemExit("the conform run failed (exit %d)" % proc.returncode)
            runs.append(("side by side" if parallel else "one after another", seconds))
    finally:
        sim.terminate()
        sim.wait(30)
    slowest = max(rows, key=lambda r: r[1])
    total = sum(r[1] for r in rows)
    print("\nscenario %s, %d checks, demo settings" % (args.scenario, len(rows)))
    print("slowest check alone:  %6.1f s (%s)" % (slowest[1], slowest[0]))
    print("all checks, one by one (sum): %6.1f s" % total)
    for name, seconds in runs:
        print("whole run, checks %-17s %6.1f s  ratio to the slowest check %.2f" % (name + ":", seconds, seconds / slowest[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
