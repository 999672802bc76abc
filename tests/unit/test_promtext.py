"""promtext: prometheus_client's parser over real exporter output, and clear errors for what is not exposition."""
from __future__ import annotations

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext

import accel_fixtures as fx

UPCLOUD_UUID = "GPU-5b4e07f6-3a86-4340-039d-25f2a83cdc43"


@pytest.fixture(scope="module")
def upcloud():
    return promtext.parse(fx.exposition_from_markdown("upcloud-v1.35-accelerator-metrics.md"))


def test_upcloud_scrape_keeps_every_family_with_help_and_type(upcloud):
    # The document pastes 23 HELP/TYPE/sample triples of one L40S (the dcgm-exporter default counters).
    assert len(upcloud.names()) == 23
    assert upcloud.families["DCGM_FI_DEV_FB_USED"] == {"type": "gauge", "help": "Framebuffer memory used (in MiB)."}
    util = upcloud.find("DCGM_FI_DEV_GPU_UTIL")
    assert [(s.labels["UUID"], s.labels["modelName"], s.value) for s in util] == [(UPCLOUD_UUID, "NVIDIA L40S", 0)]
    assert upcloud.find("DCGM_FI_DEV_FB_FREE")[0].value == 45459


def test_counter_found_by_the_name_the_exporter_wrote(upcloud):
    # prometheus_client renames counter samples to <name>_total; lookups must still use the exporter's name.
    energy = upcloud.find("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
    assert len(energy) == 1 and energy[0].value == 5551899580
    assert energy[0].name == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total"
    assert upcloud.find("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total") == energy
    assert upcloud.families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]["type"] == "counter"


def test_lines_without_help_or_type_parse_as_untyped():
    # gardener's log shows bare sample lines (no HELP/TYPE) as the exporter printed them.
    lines = [line for line in fx.read("gardener-v1.33-accelerator_metrics.log").splitlines()
             if line.startswith("DCGM_FI_DEV_") and "{" in line]
    scrape = promtext.parse("\n".join(lines[:3]))
    assert scrape.names() == ["DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_SM_CLOCK"]
    assert scrape.families["DCGM_FI_DEV_SM_CLOCK"]["type"] == "unknown"
    assert scrape.find("DCGM_FI_DEV_SM_CLOCK")[0].labels["Hostname"].startswith("ip-10-180-")


def test_amd_exposition_with_upper_case_uuid_label():
    scrape = promtext.parse(fx.read("amd-metrics_mini.txt"))
    assert scrape.first_present(("gpu_gfx_activity", "gpu_usage")) == "gpu_usage"
    assert scrape.find("gpu_total_memory")[0].labels == {"GPU_UUID": "6699c0a8-4200-4242-037f-f97e6cae0f09",
                                                         "SERIAL_NUMBER": "692247001282"}
    assert scrape.find("gpu_nodes_total")[0].value == 1


@pytest.mark.parametrize("text, line", [
    ("<html><body>503 Service Unavailable</body></html>\n", 1),
    ('# HELP ok fine\nok{a="1"} 1\nbroken{a="1" 2\n', 3),
    ("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} busy\n", 1),
])
def test_malformed_exposition_names_the_line(text, line):
    with pytest.raises(promtext.ExpositionError) as err:
        promtext.parse(text)
    assert err.value.line == line
    assert "not Prometheus text exposition format: line %d" % line in str(err.value)


def test_empty_body_has_no_samples_and_bytes_are_decoded():
    assert promtext.parse("").samples == []
    scrape = promtext.parse(b'm{UUID="GPU-1"} 3\n')
    assert scrape.find("m")[0].labels == {"UUID": "GPU-1"}


def test_first_present_keeps_candidate_order(upcloud):
    assert upcloud.first_present(("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL")) == "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    assert upcloud.first_present(("NOT_THERE",)) is None
