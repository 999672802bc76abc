"""`vendor: auto` (the default) on clusters whose accelerators are not (only) NVIDIA's: every vendor present
is checked, N/A only without any known accelerator, and each vendor's fix hints are its own."""
from __future__ import annotations

import pytest

from checks_support import FAST, leftovers, probe_namespaces, run_module, start_sim


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    sim = start_sim("mixed-vendors", tmp_path_factory.mktemp("mixed"))
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def amd_only(tmp_path_factory):
    sim = start_sim("amd-only", tmp_path_factory.mktemp("amd"))
    yield sim
    sim.stop()


def test_default_checks_every_vendor_and_keeps_each_ones_verdict(mixed):
    out = run_module("accelerator_metrics", dict(FAST, kubeconfig=mixed.kubeconfig, load_seconds=60))
    assert not out.get("failed"), out.get("msg")
    result = out["result"]
    # NVIDIA's DCGM exporter serves every GPU; the AMD nodes have no exporter: the whole is the weakest
    assert result["status"] == "Not Implemented", result["summary"]
    assert "NVIDIA: " in result["summary"] and "(Implemented)" in result["summary"]
    assert "AMD: " in result["summary"] and "(Not Implemented)" in result["summary"]
    names = [f["name"] for f in result["findings"]]
    assert any(n.startswith("[NVIDIA] ") for n in names) and any(n.startswith("[AMD] ") for n in names)
    amd_notes = [line for line in result["notes"].splitlines() if line.startswith("AMD: ")]
    assert amd_notes and "AMD device metrics exporter" in amd_notes[0] and "metricsExporter" in amd_notes[0]
    assert "dcgm" not in amd_notes[0].lower()
    assert probe_namespaces(mixed) == [] and leftovers(mixed) == []


def test_a_named_vendor_checks_that_vendor_only(mixed):
    out = run_module("accelerator_metrics", dict(FAST, kubeconfig=mixed.kubeconfig, load_seconds=60, vendor="nvidia"))
    assert out["result"]["status"] == "Implemented", out["result"]["notes"]
    assert not any(f["name"].startswith("[") for f in out["result"]["findings"])


@pytest.mark.parametrize("module", ["secure_accelerator_access", "accelerator_metrics"])
def test_non_nvidia_accelerators_are_never_na(amd_only, module):
    out = run_module(module, dict(FAST, kubeconfig=amd_only.kubeconfig, mode="passive"))
    assert not out.get("failed"), out.get("msg")
    assert out["result"]["status"] != "N/A", out["result"]["notes"]
    text = out["result"]["summary"] + out["result"]["notes"] + str(out["result"]["findings"])
    assert "amd" in text.lower()
    assert "dcgm" not in text.lower() and "nvidia" not in text.lower()
