"""Helpers for the accelerator checks' integration tests: simulated clusters with the accelerator stack,
module runs (in-process through main() with patch_module_args, or the real `ansible` CLI), and what a run
left behind on the cluster's side.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess

from ansible.module_utils.testing import patch_module_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANAGED = ("app.kubernetes.io/managed-by", "k8s-ai-conformance")
PROBE_TYPES = (("", "namespaces"), ("", "pods"), ("batch", "jobs"), ("resource.k8s.io", "resourceclaims"),
               ("resource.k8s.io", "resourceclaimtemplates"))
# Fast but realistic: short polls, short bounded waits; the simulated clock runs 40x.
FAST = {"wait_sleep": 0.1, "wait_timeout": 20}
SPEED = 40


def start_sim(scenario, directory, **overrides):
    """A started SimCluster of `scenario` with the accelerator stack up (device plugin capacity, slices,
    exporter pods Running)."""
    from simcluster.cluster import SimCluster

    speed = overrides.pop("speed", SPEED)
    sim = SimCluster(scenario, overrides=overrides or None, speed=speed,
                     kubeconfig=os.path.join(str(directory), "kubeconfig"),
                     verbose=bool(os.environ.get("SIMCLUSTER_VERBOSE")))
    sim.start()
    try:
        wait_ready(sim)
    except Exception:
        sim.stop()
        raise
    return sim


def wait_ready(sim, timeout=30.0):
    """Bounded wait until every workload is ready and the accelerator stack has published its state."""
    try:
        sim.wait_settled(timeout)
    except TimeoutError as exc:
        raise AssertionError(str(exc))


def run_module(name, args, check_mode=False):
    """Run module `name`'s main() in this process; returns the JSON it printed (success or failure)."""
    module = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.%s" % name)
    params = dict(args)
    if check_mode:
        params["_ansible_check_mode"] = True
    out = io.StringIO()
    with patch_module_args(params), contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit:
            pass
    return json.loads(out.getvalue())


def run_cli(name, args, timeout=180):
    """Run the module through the real `ansible localhost -m` (AnsiballZ packaging and all); returns the
    module's JSON result as the ad-hoc output prints it (`localhost | SUCCESS => {...}`)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m", "k8s_ai.conformance.%s" % name,
            "-a", json.dumps(args)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    head, sep, body = proc.stdout.partition(" => ")
    if not sep:
        raise AssertionError("unexpected ansible output (rc %d): %s %s" % (proc.returncode, proc.stdout, proc.stderr))
    result = json.loads(body)
    result["_status_line"] = head.strip()
    return result


def kubeconfig(path, server, ca_pem, token):
    """A kubeconfig for `server` with a bearer token (tests need wrong tokens and unreachable servers)."""
    import base64
    import yaml
    cluster = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem.encode()).decode()
    else:
        cluster["insecure-skip-tls-verify"] = True
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "test", "cluster": cluster}], "users": [{"name": "test", "user": {"token": token}}],
           "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}
    with open(str(path), "w", encoding="utf-8") as handle:
        yaml.safe_dump(doc, handle)
    return str(path)


def probe_namespaces(sim):
    """Names of namespaces labelled as our probes' (a finished run leaves none)."""
    items = sim.store.list(("", "namespaces"))[0]
    return sorted(ns["metadata"]["name"] for ns in items
                  if (ns["metadata"].get("labels") or {}).get(MANAGED[0]) == MANAGED[1])


def leftovers(sim):
    """Probe objects still in the cluster: namespaces `aic-*` and anything inside them."""
    found = []
    for gr in PROBE_TYPES:
        if gr not in sim.store.types:
            continue
        for obj in sim.store.list(gr)[0]:
            meta = obj["metadata"]
            where = meta["name"] if gr == ("", "namespaces") else meta.get("namespace") or ""
            if where.startswith("aic-"):
                found.append("%s/%s %s/%s" % (gr[0] or "core", gr[1], meta.get("namespace") or "", meta["name"]))
    return found


def writes_since(sim, rv):
    """Objects created in the cluster since resourceVersion `rv` (kind/namespace/name)."""
    return ["%s %s/%s" % (e.obj.get("kind"), e.obj["metadata"].get("namespace") or "", e.obj["metadata"]["name"])
            for e in sim.store.events_since(rv) if e.type == "ADDED" and e.gr in PROBE_TYPES]


def finding(result, prefix):
    """The findings whose name starts with `prefix`."""
    return [f for f in result["findings"] if f["name"].startswith(prefix)]
