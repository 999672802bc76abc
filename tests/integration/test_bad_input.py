"""Bad input the checks meet on a cluster: an exporter that answers malformed, huge or non-UTF-8 metrics,
and the CRDs a check reads being absent. (Bad kubeconfigs, unreachable hosts, 401 and 403 are in
tests/unit/test_cluster.py, test_checks_modes.py and test_checks_rbac.py; bad report files in
tests/unit/test_report*.py.) One simulated cluster for the module; the exporter's answers are replaced
through the simulator's fault switch `httpAnswers` (tests/simcluster/faults.py), so the check reads them
through the real API server pod proxy.
"""
from __future__ import annotations

import json

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerator_metrics as am

from checks_support import FAST, run_module, start_sim

HEADER = b"# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
BODIES = {
    "malformed": (HEADER + b'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0" 12\n',
                  "malformed metrics exposition: not Prometheus text exposition format: line 3"),
    "non-UTF-8": (HEADER + b'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-\xff\xfe"} 12\n\x80\x81\n',
                  "malformed metrics exposition (the body is not UTF-8 text, which the Prometheus text format requires)"),
    "huge": (HEADER + b'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0"} 1\n' * (am.MAX_SCRAPE_BYTES // 40),
             "the exporter's answer is too large: GET"),
    "one long line": (b"A" * (2 * 1024 * 1024), "malformed metrics exposition: not Prometheus text exposition format"),
    "empty": (b"", "no accelerator node serves any per-accelerator utilisation or memory metric"),
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_sim("conformant", tmp_path_factory.mktemp("bad-input"))
    yield cluster
    cluster.stop()


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_exporter_answering_garbage_is_not_implemented_and_says_why(sim, kind):
    body, message = BODIES[kind]
    sim.faults.set(httpAnswers=[{"podPrefix": "nvidia-dcgm-exporter", "path": "/metrics", "body": body}])
    try:
        out = run_module("accelerator_metrics", dict(FAST, kubeconfig=sim.kubeconfig, mode="passive"))
    finally:
        sim.faults.clear()
    assert not out.get("failed"), out.get("msg")
    result = out["result"]
    assert result["status"] == "Not Implemented", result
    text = json.dumps(result)
    assert message in text, result["notes"]
    # bounded output whatever the exporter sent: no 16 MiB of evidence, no 2 MiB line quoted back
    assert len(text) < 60000, len(text)
    assert "Traceback" not in text


def test_exporter_answering_garbage_on_one_node_only_is_partial(sim):
    body, message = BODIES["malformed"]
    exporters = sorted(p["metadata"]["name"] for p in sim.store.list(("", "pods"))[0]
                       if p["metadata"]["name"].startswith("nvidia-dcgm-exporter"))
    assert len(exporters) == 2
    sim.faults.set(httpAnswers=[{"podPrefix": exporters[0], "path": "/metrics", "body": body}])
    try:
        out = run_module("accelerator_metrics", dict(FAST, kubeconfig=sim.kubeconfig, mode="passive"))
    finally:
        sim.faults.clear()
    result = out["result"]
    assert result["status"] == "Partially Implemented", result
    assert message in result["notes"]


def test_checks_without_the_gpu_operator_crds_still_judge_from_probes(sim):
    """The conformant scenario serves no nvidia.com CRDs (no GPU operator ClusterPolicy): the check that
    reads it when present neither fails nor guesses; its verdict rests on the probes."""
    served = [g for g in sim.store.types if g[0] == "nvidia.com"]
    assert not served, served
    out = run_module("secure_accelerator_access", dict(FAST, kubeconfig=sim.kubeconfig))
    assert not out.get("failed"), out.get("msg")
    assert out["result"]["status"] == "Implemented"
