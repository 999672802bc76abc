"""The fault matrix (tests/integration/fault_matrix.py) as tests: each fault x check row must give the healthy
verdict or an honestly weaker one, or fail with a message naming the fix; leave no probe object; print no
traceback. One simulated cluster for the module; hack/fault-matrix.py prints the same rows as a table.
"""
from __future__ import annotations

import pytest

import fault_matrix
from checks_support import start_sim

ROWS = [(fault, check) for fault in fault_matrix.FAULTS for check in fault_matrix.CHECKS]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_sim("conformant", tmp_path_factory.mktemp("faults"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def healthy(sim):
    verdicts = fault_matrix.baseline(sim)
    # the comparisons below mean something only if the healthy cluster passes every check
    assert set(verdicts.values()) == {"Implemented"}, verdicts
    return verdicts


@pytest.mark.parametrize("fault,check", ROWS, ids=["%s-%s" % (f.replace(" ", "_"), c) for f, c in ROWS])
def test_fault_row(sim, healthy, fault, check):
    row = fault_matrix.run_row(sim, fault, check, healthy)
    assert row["leftovers"] == 0, row["left"]
    assert not row["traceback"], row
    assert row["outcome"] == row["expect"], row
    message = fault_matrix.said(row)
    if fault in ("30% 429/503", "outage mid-probe", "latency 50-100ms") or fault.startswith("webhook"):
        assert row["injected"], "the fault was never injected: %s" % row
    if fault == "pods never start":
        assert "ImagePullBackOff" in message and "timed out" in message, message
    if fault == "webhook timeout":
        assert 'failed calling webhook "pods.policy.example.com"' in message and "context deadline exceeded" in message
        assert "exempt namespaces labelled app.kubernetes.io/managed-by=k8s-ai-conformance" in message
    if fault == "SIGINT mid-probe":
        assert "interrupted (SIGINT); the probe namespace aic-" in row["error"] and " was deleted" in row["error"]
    if fault == "SIGTERM mid-probe":
        assert "terminated by signal 15 during a probe; the probe namespace aic-" in row["error"]
    if fault == "ansible task timeout":
        assert "Timed out after 4 second(s)" in row["error"], row
    if fault == "ansible Ctrl-C":
        assert "User interrupted execution" in row["error"], row
    if fault.startswith("SIGKILL"):
        assert row["left_by_killed_run"], "the kill left nothing to sweep: the row proves nothing"
