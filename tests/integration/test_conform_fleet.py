"""A fleet: one inventory host per cluster, three simulated clusters of different scenarios verified at once
(forks, checks side by side), one submission per cluster and a fleet summary (Markdown table, one JUnit)."""
from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from checks_support import ROOT, leftovers, start_sim
from test_conform_playbook import requirements

SCENARIOS = ("conformant", "gpu-leak", "cpu-only")
CHECKS = "secure_accelerator_access,accelerator_metrics"
# what each scenario must get for CHECKS (docs/scenarios.md)
EXPECTED = {"conformant": ("v1.33", "Implemented", "Implemented"),
            "gpu-leak": ("v1.33", "Not Implemented", "Implemented"),
            "cpu-only": ("v1.34", "N/A", "N/A")}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    sims = {name: start_sim(name, tmp_path_factory.mktemp(name)) for name in SCENARIOS}
    yield sims
    for sim in sims.values():
        sim.stop()


@pytest.mark.slow(seconds=20)
def test_three_clusters_at_once_write_three_submissions_and_a_fleet_summary(fleet, tmp_path):
    inventory = {"clusters": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "hosts": {name: {"conform_kubeconfig": sim.kubeconfig,
                         "conform_metadata": {"platformName": "Fleet %s" % name, "vendorName": "Example"}}
                  for name, sim in fleet.items()}}}
    (tmp_path / "clusters.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=os.pathsep.join([os.path.join(ROOT, ".venv", "bin"), os.environ.get("PATH", "")]))
    out = tmp_path / "out"
    run = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", str(tmp_path / "clusters.yml"),
                          os.path.join(ROOT, "playbooks", "conform.yml"), "-e", "conform_hosts=clusters",
                          "-e", "conform_output_dir=%s" % out, "-e", "conform_checks=%s" % CHECKS,
                          "-e", "conform_wait_sleep=0.5", "-e", "conform_metrics_load_seconds=60"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for name, (version, secure, metrics) in EXPECTED.items():
        product = yaml.safe_load((out / version / name / "PRODUCT.yaml").read_text())
        reqs = requirements(product)
        assert (reqs["secure_accelerator_access"]["status"], reqs["accelerator_metrics"]["status"]) == (secure, metrics)
        assert product["metadata"]["platformName"] == "Fleet %s" % name
        assert leftovers(fleet[name]) == []

    summary = (out / "fleet" / "SUMMARY.md").read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| cluster")}
    header = [c.strip() for c in next(line for line in summary.splitlines() if line.startswith("| cluster")).split("|")[2:-1]]
    assert set(rows) == set(SCENARIOS)
    for name, (version, secure, metrics) in EXPECTED.items():
        cells = dict(zip(header, rows[name]))
        assert cells["checklist"] == version
        assert (cells["secure_accelerator_access"], cells["accelerator_metrics"]) == (secure, metrics)
        assert cells["gang_scheduling"] == "blank" and cells["submission"].startswith("blocked")
    # dra_support is a SHOULD on 1.33, a MUST on 1.34: both columns exist, each cluster its own level
    junit = ET.parse(out / "fleet" / "junit.xml").getroot()
    suites = {s.get("name"): s for s in junit.iter("testsuite")}
    assert set(suites) == set(SCENARIOS)
    conformant = {c.get("name"): c for c in suites["conformant"].iter("testcase")}
    assert conformant["secure_accelerator_access (MUST)"].find("failure") is None
    assert conformant["gang_scheduling (MUST)"].find("failure") is not None
    assert conformant["dra_support (SHOULD)"].find("skipped") is not None
    leak = {c.get("name"): c for c in suites["gpu-leak"].iter("testcase")}
    assert leak["secure_accelerator_access (MUST)"].find("failure").get("message") == "Not Implemented"
    assert int(junit.get("tests")) == sum(int(s.get("tests")) for s in suites.values())
