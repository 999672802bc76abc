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


def test_accelerator_info_names_every_vendor_present(mixed, amd_only):
    found = {}
    for name, sim in (("mixed", mixed), ("amd", amd_only)):
        out = run_module("accelerator_info", {"kubeconfig": sim.kubeconfig})
        assert not out.get("failed"), out.get("msg")
        found[name] = out["vendors"]
    assert found == {"mixed": ["nvidia", "amd"], "amd": ["amd"]}


def test_vendors_present_with_several_vendors_checks_each(mixed):
    """The conform role passes what accelerator_info found: with two vendors the check still runs per vendor."""
    out = run_module("secure_accelerator_access", dict(FAST, kubeconfig=mixed.kubeconfig, mode="passive",
                                                       vendors_present=["nvidia", "amd"]))
    assert not out.get("failed"), out.get("msg")
    names = [f["name"] for f in out["result"]["findings"]]
    assert any(n.startswith("[NVIDIA] ") for n in names) and any(n.startswith("[AMD] ") for n in names)


def test_vendors_present_with_one_vendor_judges_as_auto_does(amd_only):
    results = []
    for extra in ({}, {"vendors_present": ["amd"]}):
        out = run_module("secure_accelerator_access", dict(FAST, kubeconfig=amd_only.kubeconfig, mode="passive", **extra))
        assert not out.get("failed"), out.get("msg")
        results.append(out["result"])
    auto, told = results
    assert told["status"] != "N/A" and "amd-0 (amd x8)" in str(told["findings"])
    assert (told["status"], told["summary"], told["findings"]) == (auto["status"], auto["summary"], auto["findings"])
