"""Secrets stay out of every output: the conform playbook runs at -vvv against a simulated cluster with a
kubeconfig that carries bearer tokens, a client certificate and key and the CA, and no output of the run
(PRODUCT.yaml, evidence, junit.xml, SUMMARY.md, the Ansible log, stdout, stderr) contains any of them.
"""
from __future__ import annotations

import base64
import os
import re
import subprocess

import pytest
import yaml

from checks_support import ROOT, start_sim


def run_playbook(kubeconfig, output_dir, log_path):
    """playbooks/conform.yml at -vvv with the demo's settings, logging to `log_path` as well."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOG_PATH=log_path,
               PATH=os.pathsep.join([os.path.join(ROOT, ".venv", "bin"), os.environ.get("PATH", "")]))
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-vvv", os.path.join(ROOT, "playbooks", "conform.yml"),
           "-e", "@" + os.path.join(ROOT, "hack", "demo-vars.yml"),
           "-e", "conform_kubeconfig=%s" % kubeconfig, "-e", "conform_output_dir=%s" % output_dir,
           "-e", "conform_dra_unschedulable_window=2", "-e", "conform_metrics_load_seconds=60"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)


def client_credentials():
    """A fresh certificate and its key in PEM (the simulator does not ask for client certificates, so the
    token still authenticates; the client nevertheless loads both, which is what could leak)."""
    from simcluster.tls import ServingCerts
    certs = ServingCerts()
    return certs.cert_pem.decode(), certs.key_pem.decode()


def pem_body(pem):
    """The base64 lines inside a PEM block (what a partial leak would show)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    sim = start_sim("conformant", tmp_path_factory.mktemp("secrets-sim"))
    work = tmp_path_factory.mktemp("secrets-run")
    try:
        with open(sim.kubeconfig, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        cert, key = client_credentials()
        for user in config["users"]:
            user["user"]["client-certificate-data"] = base64.b64encode(cert.encode()).decode()
            user["user"]["client-key-data"] = base64.b64encode(key.encode()).decode()
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        secrets = {}
        for user in config["users"]:
            secrets["token of %s" % user["name"]] = user["user"]["token"]
        ca_data = config["clusters"][0]["cluster"]["certificate-authority-data"]
        secrets["CA data"] = ca_data
        secrets["client certificate data"] = base64.b64encode(cert.encode()).decode()
        secrets["client key data"] = base64.b64encode(key.encode()).decode()
        for label, pem in (("client key", key), ("client certificate", cert),
                           ("CA", base64.b64decode(ca_data).decode())):
            for number, line in enumerate(pem_body(pem)):
                secrets["%s PEM line %d" % (label, number)] = line
        log = work / "ansible.log"
        out = work / "out"
        proc = run_playbook(str(kubeconfig), str(out), str(log))
        yield {"proc": proc, "out": out, "log": log, "secrets": secrets, "kubeconfig": kubeconfig.read_text()}
    finally:
        sim.stop()


def outputs(run):
    """Every output of the run: name -> text."""
    found = {"stdout": run["proc"].stdout, "stderr": run["proc"].stderr, "ansible.log": run["log"].read_text()}
    for dirpath, _dirs, files in os.walk(str(run["out"])):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8", errors="replace") as handle:
                found[os.path.relpath(path, str(run["out"]))] = handle.read()
    return found


def test_the_run_succeeds_and_writes_every_output(run):
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    names = set(outputs(run))
    for wanted in ("PRODUCT.yaml", "junit.xml", "SUMMARY.md"):
        assert any(n.endswith(wanted) for n in names), sorted(names)
    assert any("/evidence/" in n for n in names), sorted(names)
    # -vvv really was verbose: module invocations with their (masked) arguments are in the log
    assert "module_args" in run["log"].read_text()


def test_no_secret_in_any_output(run):
    leaks = []
    for name, text in outputs(run).items():
        for label, secret in run["secrets"].items():
            if len(secret) >= 8 and secret in text:
                leaks.append("%s contains the %s" % (name, label))
        if re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text):
            leaks.append("%s contains a PEM private key" % name)
    assert not leaks, "\n".join(sorted(leaks))


def test_no_kubeconfig_content_in_any_output(run):
    """Lines of the kubeconfig that carry something (server URLs excepted: they are not secret and
    evidence names the cluster's API) appear nowhere."""
    lines = [line.strip() for line in run["kubeconfig"].splitlines()
             if len(line.strip()) > 30 and "server:" not in line]
    assert lines, "the kubeconfig has no lines to look for"
    leaks = ["%s contains kubeconfig line %r" % (name, line[:40]) for name, text in outputs(run).items()
             for line in lines if line in text]
    assert not leaks, "\n".join(leaks)
