"""Modes, limits and failures of the accelerator checks on a simulated cluster: passive and check mode create
nothing, probes that cannot run still clean up and explain themselves, earlier runs' leftovers are swept
(never a live run's), bad connection settings fail with a message that names the fix, and the modules work
through the real `ansible` CLI with kubernetes.core's connection options.
"""
from __future__ import annotations

import time

import pytest

from checks_support import (FAST, finding, kubeconfig, leftovers, probe_namespaces, run_cli, run_module, start_sim,
                            writes_since)

SCENARIO = "conformant"
MODULES = ("dra_support", "secure_accelerator_access", "accelerator_metrics")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_sim(SCENARIO, tmp_path_factory.mktemp("modes"))
    yield cluster
    cluster.stop()


def args(sim, **extra):
    out = dict(FAST, kubeconfig=sim.kubeconfig)
    out.update(extra)
    return out


@pytest.mark.parametrize("module", MODULES)
def test_passive_mode_creates_nothing_and_says_so(sim, module):
    before = sim.store.rv
    result = run_module(module, args(sim, mode="passive"))["result"]
    assert writes_since(sim, before) == []
    assert result["mode"] == "passive"
    skipped = [f for f in result["findings"] if f["passed"] is None and "mode=passive" in f["detail"]]
    assert skipped, result["findings"]


@pytest.mark.parametrize("module", MODULES)
def test_check_mode_creates_nothing_and_says_so(sim, module):
    before = sim.store.rv
    out = run_module(module, args(sim), check_mode=True)
    assert writes_since(sim, before) == []
    assert out["changed"] is False
    assert any("check mode" in f["detail"] for f in out["result"]["findings"])


def test_passive_verdicts_are_never_stronger_than_the_rules_allow(sim):
    # 1.33 DRA and isolation need probes; metrics need the load reaction: all Partially in passive mode
    for module in MODULES:
        result = run_module(module, args(sim, mode="passive"))["result"]
        assert result["status"] == "Partially Implemented", (module, result["notes"])


def test_probe_that_cannot_schedule_times_out_cleans_up_and_explains(sim):
    before = sim.store.rv
    result = run_module("secure_accelerator_access",
                        args(sim, node_selector={"pool": "does-not-exist"}, wait_timeout=2))["result"]
    assert result["status"] == "Partially Implemented"
    assert "timed out after 2.0s waiting for the isolation probe pods" in result["notes"]
    assert "didn't match Pod's node affinity/selector" in result["notes"]
    assert any(w.startswith("Namespace /aic-secure-accelerator-access-") for w in writes_since(sim, before))
    assert probe_namespaces(sim) == [] and leftovers(sim) == []


def test_dra_probe_timeout_is_reported_and_cleaned(sim):
    result = run_module("dra_support", args(sim, node_selector={"pool": "does-not-exist"}, wait_timeout=2,
                                            unschedulable_window=1))["result"]
    assert result["status"] == "Partially Implemented"
    assert "Probes ran out of time" in result["notes"]
    assert finding(result, "claim from a ResourceClaimTemplate")[0]["passed"] is False
    assert leftovers(sim) == []


def _probe_namespace(sim, name, deadline_offset):
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
    now = time.time()
    sim.store.create(("", "namespaces"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {cl.MANAGED_BY_LABEL: cl.MANAGED_BY_VALUE},
        "annotations": {cl.STARTED_ANNOTATION: cl.rfc3339(now - 4000), cl.DEADLINE_ANNOTATION: cl.rfc3339(now + deadline_offset)}}})


def test_leftovers_of_interrupted_runs_are_swept_but_not_live_runs(sim):
    _probe_namespace(sim, "aic-dra-support-old00", -3600)
    _probe_namespace(sim, "aic-dra-support-live0", 3600)
    try:
        run_module("accelerator_metrics", args(sim, load_seconds=60))
        names = probe_namespaces(sim)
        assert "aic-dra-support-old00" not in names
        assert "aic-dra-support-live0" in names
    finally:
        sim.store.delete(("", "namespaces"), None, "aic-dra-support-live0")


def test_missing_kubeconfig_fails_with_the_fix():
    out = run_module("dra_support", {"kubeconfig": "/nonexistent/kubeconfig"})
    assert out["failed"]
    # the path is masked (kubernetes.core marks kubeconfig no_log), the remedy is not
    assert "does not exist: set the kubeconfig option (or K8S_AUTH_KUBECONFIG)" in out["msg"]
    assert "Traceback" not in out["msg"]


def test_unreachable_api_names_the_url(tmp_path):
    path = kubeconfig(tmp_path / "kc", "https://127.0.0.1:9", None, "token")
    out = run_module("secure_accelerator_access", {"kubeconfig": path})
    assert out["failed"] and "cannot reach the Kubernetes API at https://127.0.0.1:9" in out["msg"]


def test_bad_token_is_a_clear_401(sim, tmp_path):
    path = kubeconfig(tmp_path / "kc", sim.url, sim.ca_pem, "not-a-token")
    out = run_module("accelerator_metrics", {"kubeconfig": path})
    assert out["failed"]
    assert "rejected the credentials (401 Unauthorized)" in out["msg"] and "refresh the kubeconfig" in out["msg"]
    assert "the Kubernetes API at %s rejected" % sim.url in out["msg"]      # the server, from the kubeconfig


@pytest.mark.parametrize("module", MODULES)
def test_real_ansible_cli_with_kubernetes_core_options(sim, module):
    extra = {"unschedulable_window": 2} if module == "dra_support" else (
        {"load_seconds": 60} if module == "accelerator_metrics" else {})
    out = run_cli(module, args(sim, **extra))
    assert out["_status_line"] == "localhost | SUCCESS", out.get("msg")
    assert out["changed"] is False
    assert out["result"]["status"] == "Implemented"
    assert leftovers(sim) == []


def test_dra_v1_shapes_on_kubernetes_134(tmp_path):
    sim = start_sim(SCENARIO, tmp_path, kubernetesVersion="v1.34.1")
    try:
        result = run_module("dra_support", args(sim, unschedulable_window=2))["result"]
        assert result["status"] == "Implemented"
        assert "served versions: v1" == finding(result, "resource.k8s.io served")[0]["detail"]
        assert finding(result, "claim from a ResourceClaimTemplate")[0]["passed"] is True
        assert "does not exist yet" not in result["notes"]
        classes = [e["content"] for e in result["evidence"] if e["title"] == "DeviceClasses"][0]
        assert {c["name"]: c["extendedResourceName"] for c in classes}["gpu.nvidia.com"] == "nvidia.com/gpu"
    finally:
        sim.stop()
