"""The conform playbook on simulated clusters of every checklist version: v1.34, v1.35 and v1.36 clusters get
that version's PRODUCT.yaml with its own ids and levels; ids without a check stay blank and are listed, and a
SHOULD without a check never blocks; a cluster newer than the newest checklist is refused until the user asks
for a version on purpose."""
from __future__ import annotations

import os

import pytest
import yaml

from checks_support import ROOT, leftovers, start_sim
from test_conform_playbook import requirements, run_playbook

CHECKS = "secure_accelerator_access,accelerator_metrics"   # fast, and present in every version


def checklist(version):
    with open(os.path.join(ROOT, "data", "checklists", "AIConformance-%s.yaml" % version), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    return {req["id"]: req["level"] for reqs in doc["spec"].values() for req in reqs}


@pytest.mark.parametrize("version", ["1.34", "1.35", "1.36"])
def test_each_version_writes_its_own_checklist(tmp_path_factory, tmp_path, version):
    sim = start_sim("conformant", tmp_path_factory.mktemp("v" + version), kubernetesVersion="v%s.2" % version)
    try:
        run = run_playbook(sim.kubeconfig, str(tmp_path), "conform_checks=%s" % CHECKS, "conform_mode=passive")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        product_path = tmp_path / ("v" + version) / "simulated-ai-cluster" / "PRODUCT.yaml"
        reqs = requirements(yaml.safe_load(product_path.read_text()))
        expected = checklist(version)
        assert {rid: req["level"] for rid, req in reqs.items()} == expected
        for rid in CHECKS.split(","):
            assert reqs[rid]["status"] in ("Implemented", "Partially Implemented"), reqs[rid]
        unchecked = [rid for rid in expected if rid not in CHECKS.split(",")]
        for rid in unchecked:
            assert reqs[rid]["status"] == "" and reqs[rid]["evidence"] == [], reqs[rid]
        blocks = run.stdout[run.stdout.index("Blocks a CNCF submission"):] if "Blocks a CNCF submission" in run.stdout else ""
        for rid in unchecked:
            if expected[rid] == "SHOULD":
                assert "%s (SHOULD)" % rid not in blocks and "%s (MUST)" % rid not in blocks
            else:
                assert "%s (MUST) has no result" % rid in blocks
        if version == "1.36":
            assert "dra_support" not in reqs          # 1.36 drops it
        assert leftovers(sim) == []
    finally:
        sim.stop()


def test_a_cluster_newer_than_the_newest_checklist_needs_conform_version(tmp_path_factory, tmp_path):
    sim = start_sim("cpu-only", tmp_path_factory.mktemp("v137"), kubernetesVersion="v1.37.0")
    try:
        refused = run_playbook(sim.kubeconfig, str(tmp_path / "refused"), "conform_checks=accelerator_metrics",
                               "conform_mode=passive")
        assert refused.returncode != 0
        assert "newer than the newest checklist shipped (1.36)" in refused.stdout
        assert "conform_version" in refused.stdout
        assert not (tmp_path / "refused" / "v1.36").exists()
        chosen = run_playbook(sim.kubeconfig, str(tmp_path / "chosen"), "conform_checks=accelerator_metrics",
                              "conform_mode=passive", "conform_version=1.36")
        assert chosen.returncode == 0, chosen.stdout[-3000:]
        assert (tmp_path / "chosen" / "v1.36" / "simulated-ai-cluster" / "PRODUCT.yaml").is_file()
    finally:
        sim.stop()


def known_checks():
    with open(os.path.join(ROOT, "roles", "conform", "vars", "main.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["__conform_known_checks"]


def test_by_default_the_run_checks_what_the_clusters_checklist_lists(tmp_path_factory, tmp_path):
    """No conform_checks: every check the collection has for the cluster's checklist version runs, and only those
    (1.36 drops dra_support, so a v1.36 cluster does not run it; its SHOULDs with a check are filled in)."""
    sim = start_sim("conformant", tmp_path_factory.mktemp("v136default"), kubernetesVersion="v1.36.1")
    try:
        run = run_playbook(sim.kubeconfig, str(tmp_path), "conform_mode=passive")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        reqs = requirements(yaml.safe_load((tmp_path / "v1.36" / "simulated-ai-cluster" / "PRODUCT.yaml").read_text()))
        expected = checklist("1.36")
        ran = [rid for rid in known_checks() if rid in expected]
        assert "dra_support" in known_checks() and "dra_support" not in ran
        dra_task = run.stdout.split("Conform | Check dra_support]", 1)[1].split("TASK [", 1)[0]
        assert "skipping: [localhost]" in dra_task and "ok: [localhost]" not in dra_task, dra_task
        for rid in expected:
            if rid in ran:
                assert reqs[rid]["status"] != "", (rid, reqs[rid])
            else:
                assert reqs[rid]["status"] == "", (rid, reqs[rid])
        assert not list((tmp_path / "v1.36").rglob("*dra_support*"))
        assert leftovers(sim) == []
    finally:
        sim.stop()
