"""The whole conform run on the v1.35 and v1.36 reference stacks (scenarios ai-stack-1.35 and ai-stack-1.36): with
no conform_checks the run picks every check of the cluster's checklist, all of them side by side in active mode,
and writes a PRODUCT.yaml where every requirement of that checklist is Implemented and CNCF's rules pass; no
probe is left behind."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from checks_support import ROOT, leftovers, probe_namespaces, start_sim
from test_conform_playbook import requirements, run_playbook, validate


def checklist(version):
    with open(os.path.join(ROOT, "data", "checklists", "AIConformance-%s.yaml" % version), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    return {req["id"]: req["level"] for reqs in doc["spec"].values() for req in reqs}


@pytest.mark.parametrize("version", ["1.35", "1.36"])
def test_every_requirement_of_the_newer_checklists_is_verified(tmp_path_factory, tmp_path, version):
    # a quarter of the usual simulated speed: fourteen checks side by side on two cores must not starve the
    # metrics pipeline behind pod_autoscaling (the real Prometheus scrapes in real time, and its load pods work for
    # load_seconds of simulated time)
    sim = start_sim("ai-stack-%s" % version, tmp_path_factory.mktemp("ai-stack-" + version), speed=10)
    try:
        with open(os.path.join(ROOT, "hack", "demo-vars.yml"), encoding="utf-8") as handle:
            metadata = yaml.safe_load(handle)["conform_metadata"]
        metadata["k8sConformanceUrl"] = metadata["k8sConformanceUrl"].replace("/v1.33/", "/v%s/" % version)
        run = run_playbook(sim.kubeconfig, str(tmp_path), "conform_disaggregated_request_test=true",
                           "conform_scale_test=true", "conform_wait_timeout=300",
                           json.dumps({"conform_metadata": metadata}), timeout=900)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        product_path = tmp_path / ("v" + version) / "simulated-ai-cluster" / "PRODUCT.yaml"
        reqs = requirements(yaml.safe_load(product_path.read_text()))
        expected = checklist(version)
        assert set(reqs) == set(expected)
        statuses = {rid: req["status"] for rid, req in reqs.items()}
        assert statuses == {rid: "Implemented" for rid in expected}, {
            rid: (req["status"], req.get("notes")) for rid, req in reqs.items() if req["status"] != "Implemented"}
        for rid, req in reqs.items():
            assert req["evidence"], rid
        verdict = validate(str(product_path))[0]
        assert verdict["valid"] is True, verdict
        assert probe_namespaces(sim) == [] and leftovers(sim) == []
    finally:
        sim.stop()
