"""Each accelerator check against each scenario: the verdict docs/scenarios.md promises, the findings that
explain it, and a cluster left as it was found (no probe namespace, pod, job or claim).

One simulated cluster per scenario for the whole module (the checks clean up after themselves, which these
tests verify, so they do not disturb each other).
"""
from __future__ import annotations

import pytest

from checks_support import FAST, finding, leftovers, probe_namespaces, run_module, start_sim

IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED, NA = "Implemented", "Partially Implemented", "Not Implemented", "N/A"

# scenario -> (dra_support, secure_accelerator_access, accelerator_metrics); docs/scenarios.md has the same table
EXPECTED = {
    "conformant": (IMPLEMENTED, IMPLEMENTED, IMPLEMENTED),
    "gpu-leak": (IMPLEMENTED, NOT_IMPLEMENTED, IMPLEMENTED),
    "no-dra-api": (NOT_IMPLEMENTED, IMPLEMENTED, IMPLEMENTED),
    "dra-no-driver": (PARTIAL, IMPLEMENTED, IMPLEMENTED),
    "no-accelerator-metrics": (IMPLEMENTED, IMPLEMENTED, NOT_IMPLEMENTED),
    "metrics-no-memory": (IMPLEMENTED, IMPLEMENTED, PARTIAL),
    "cpu-only": (IMPLEMENTED, NA, NA),
}
MODULES = ("dra_support", "secure_accelerator_access", "accelerator_metrics")
EXTRA = {"dra_support": {"unschedulable_window": 2}, "accelerator_metrics": {"load_seconds": 60}}


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    started = {}

    def get(name):
        if name not in started:
            started[name] = start_sim(name, tmp_path_factory.mktemp(name))
        return started[name]
    yield get
    for sim in started.values():
        sim.stop()


def check(sim, module, **args):
    params = dict(FAST, kubeconfig=sim.kubeconfig, **EXTRA.get(module, {}))
    params.update(args)
    return run_module(module, params)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
@pytest.mark.parametrize("module", MODULES)
def test_verdict_per_scenario(clusters, scenario, module):
    sim = clusters(scenario)
    out = check(sim, module)
    assert not out.get("failed"), out.get("msg")
    assert out["changed"] is False
    result = out["result"]
    assert (result["id"], result["status"]) == (module, EXPECTED[scenario][MODULES.index(module)]), result["notes"]
    assert probe_namespaces(sim) == [] and leftovers(sim) == []


def test_conformant_dra_evidence_shows_the_allocation_and_beta_note(clusters):
    result = check(clusters("conformant"), "dra_support")["result"]
    assert "does not exist yet" in result["notes"]          # 1.33: the API is beta
    job = finding(result, "claim from a ResourceClaimTemplate")[0]
    assert job["passed"] and "gpu.nvidia.com/gpu-1/gpu-" in job["detail"] and "NVIDIA H100 80GB HBM3" in job["detail"]
    held = finding(result, "CEL selector matching no device")[0]
    assert held["passed"] and "cannot allocate all claims" in held["detail"]


def test_gpu_leak_names_the_tests_that_leaked(clusters):
    result = check(clusters("gpu-leak"), "secure_accelerator_access")["result"]
    leaked = [f["name"].split()[0] for f in result["findings"] if f["detail"].startswith("LEAK")]
    assert {"T1a", "T1b", "T4"} <= set(leaked)
    # the pod without a request saw all eight GPUs of its node
    table = [e["content"] for e in result["evidence"] if e["title"].startswith("probe pods")][0]
    t1a = [line for line in table.splitlines() if line.startswith("T1a")][0]
    assert t1a.count("GPU-") == 8


def test_no_dra_api_reports_the_group_missing(clusters):
    result = check(clusters("no-dra-api"), "dra_support")["result"]
    assert finding(result, "resource.k8s.io served")[0]["passed"] is False
    assert "DynamicResourceAllocation feature gate" in result["notes"]
    iso = check(clusters("no-dra-api"), "secure_accelerator_access")["result"]
    assert {t.split()[0] for t in [f["name"] for f in iso["findings"]] if "(dra)" in t} == set()


def test_dra_without_driver_is_partial_like_gardener(clusters):
    result = check(clusters("dra-no-driver"), "dra_support")["result"]
    assert "No DRA driver publishes devices" in result["notes"]
    assert [f["detail"] for f in finding(result, "allocation probes")][0].startswith("skipped: no DRA driver")


def test_metrics_without_memory_say_which_metric_is_missing(clusters):
    result = check(clusters("metrics-no-memory"), "accelerator_metrics")["result"]
    assert "no memory usage metric" in result["notes"]
    assert all(not f["passed"] for f in finding(result, "metrics on gpu-"))


def test_no_exporter_is_named(clusters):
    result = check(clusters("no-accelerator-metrics"), "accelerator_metrics")["result"]
    assert finding(result, "NVIDIA DCGM exporter pods")[0]["passed"] is False


def test_cpu_only_justifies_na(clusters):
    sim = clusters("cpu-only")
    for module in ("secure_accelerator_access", "accelerator_metrics"):
        result = check(sim, module)["result"]
        assert result["status"] == NA and "no accelerators" in result["summary"] and result["notes"]
    dra = check(sim, "dra_support")["result"]
    assert "served versions: v1" in finding(dra, "resource.k8s.io served")[0]["detail"]
    assert "No DRA driver publishes devices" in dra["notes"]
