"""The shared result model: statuses, ordering, N/A justification and the builder used by judges."""
from __future__ import annotations

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import result as r


def test_statuses_are_the_checklist_spelling():
    # The CNCF validator compares these strings exactly (validate.go, rule 9).
    assert r.STATUSES == ("Implemented", "Partially Implemented", "Not Implemented", "N/A")


@pytest.mark.parametrize("statuses, expected", [
    (("Implemented", "Implemented"), "Implemented"),
    (("Implemented", "Partially Implemented"), "Partially Implemented"),
    (("Not Implemented", "Implemented", "Partially Implemented"), "Not Implemented"),
])
def test_weakest_picks_the_weaker_claim(statuses, expected):
    assert r.weakest(*statuses) == expected


def test_weakest_rejects_na_and_unknown_statuses():
    with pytest.raises(r.ResultError):
        r.weakest("Implemented", "N/A")
    with pytest.raises(r.ResultError):
        r.weakest("implemented")


def test_cap_never_raises_a_status():
    assert r.cap("Not Implemented", "Partially Implemented") == "Not Implemented"
    assert r.cap("Implemented", "Partially Implemented") == "Partially Implemented"
    assert r.cap("N/A", "Partially Implemented") == "N/A"


def test_na_needs_a_justification():
    with pytest.raises(r.ResultError, match="justification"):
        r.make_result("cluster_autoscaling", "N/A", notes="  ")
    res = r.make_result("cluster_autoscaling", "N/A", notes="Fixed-size on-premises platform; no node groups.")
    assert res["status"] == "N/A"


def test_unknown_status_is_refused():
    with pytest.raises(r.ResultError, match="not one of"):
        r.make_result("dra_support", "Implemented ")


def test_builder_lowers_with_a_reason_and_keeps_findings():
    res = r.Result("dra_support")
    assert res.finding("v1 served", True, "resource.k8s.io/v1") is True
    res.finding("claim allocated", None, "no DRA driver publishes ResourceSlices")
    res.add_evidence("Served versions", "resource.k8s.io/v1", kind="text")
    res.set("Implemented", "DRA v1 API served")
    res.lower_to("Partially Implemented", "No driver: allocation was not shown.")
    res.lower_to("Implemented", "never recorded")  # a ceiling above the status changes nothing
    out = res.to_dict()
    assert out["status"] == "Partially Implemented"
    assert out["notes"] == "No driver: allocation was not shown."
    assert [f["passed"] for f in out["findings"]] == [True, None]
    assert out["evidence"][0]["kind"] == "text"


def test_builder_rejects_malformed_parts():
    res = r.Result("x")
    with pytest.raises(r.ResultError):
        res.finding("f", "yes")
    with pytest.raises(r.ResultError):
        res.add_evidence("e", "c", kind="html")
    with pytest.raises(r.ResultError):
        res.lower_to("Partially Implemented", "no status yet")


def _vendor_result(status, summary, notes="", finding="exporter pods"):
    return r.make_result("accelerator_metrics", status, [{"name": finding, "passed": status == r.IMPLEMENTED,
                                                          "detail": ""}],
                         [{"title": "scrape", "kind": "text", "content": "x"}], notes, summary=summary)


def test_vendors_combine_to_the_weakest_with_each_vendors_words():
    combined = r.combine_vendors("accelerator_metrics", [
        ("NVIDIA", _vendor_result(r.IMPLEMENTED, "every GPU reports")),
        ("AMD", _vendor_result(r.NOT_IMPLEMENTED, "no exporter", notes="Install AMD's exporter.")),
    ])
    assert combined["status"] == r.NOT_IMPLEMENTED
    assert [f["name"] for f in combined["findings"]] == ["[NVIDIA] exporter pods", "[AMD] exporter pods"]
    assert [e["title"] for e in combined["evidence"]] == ["[NVIDIA] scrape", "[AMD] scrape"]
    assert combined["notes"] == "AMD: Install AMD's exporter."
    assert "NVIDIA: every GPU reports (Implemented)" in combined["summary"] and "AMD: no exporter" in combined["summary"]


def test_vendors_na_only_when_it_applies_to_none():
    na = _vendor_result(r.NOT_APPLICABLE, "no accelerators", notes="No accelerators of this vendor.")
    partial = r.combine_vendors("x", [("NVIDIA", na), ("AMD", _vendor_result(r.PARTIAL, "some"))])
    assert partial["status"] == r.PARTIAL
    both = r.combine_vendors("x", [("NVIDIA", na), ("AMD", na)])
    assert both["status"] == r.NOT_APPLICABLE and "NVIDIA: No accelerators" in both["notes"]
