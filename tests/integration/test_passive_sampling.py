"""What a check reads of a large cluster is bounded: beyond probe.NODE_SAMPLE nodes it reads one page of nodes plus
one page per vendor presence label, and still finds accelerator nodes that sort after a big CPU pool.

The cluster is real (the simulator over HTTP) with 1,010 CPU nodes named before two labelled GPU nodes, so the
first page of nodes holds no accelerator node at all; the API server counts the requests the client made."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr

from checks_support import FAST, run_module, start_sim

CPU_NODES = pr.NODE_SAMPLE + 10
POOLS = [
    {"name": "a-cpu", "count": CPU_NODES, "cpu": "8", "memory": "32Gi", "instanceType": "sim.cpu-8"},
    {"name": "z-gpu", "count": 2, "cpu": "96", "memory": "1024Gi", "instanceType": "sim.gpu",
     "labels": {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    sim = start_sim("cpu-only", tmp_path_factory.mktemp("big"), nodePools=POOLS)
    yield sim
    sim.stop()


def admin_requests(sim):
    return sum(sim.server.requests_by_user.values())


def test_a_large_cluster_is_read_in_a_fixed_number_of_requests(big):
    cluster = cl.Cluster.connect({"kubeconfig": big.kubeconfig})
    before = admin_requests(big)
    facts = pr.observe_accelerators(cluster, "auto")
    made = admin_requests(big) - before
    labelled_vendors = sum(1 for entry in acc.VENDORS.values() if entry["labels"].get("present"))
    # one page of every node, one page per vendor presence label; nothing per node
    assert made == 1 + labelled_vendors, made
    assert facts["nodes_sampled"] is True
    assert facts["node_count"] == CPU_NODES + 2
    assert facts["vendor"] == "nvidia"
    assert [n["name"] for n in facts["nodes"]] == sorted(n["name"] for n in facts["nodes"])
    assert len(facts["nodes"]) == 2 and all(n["name"].startswith("z-gpu") for n in facts["nodes"])


def test_vendor_detection_sees_the_gpu_nodes_beyond_the_first_page(big):
    cluster = cl.Cluster.connect({"kubeconfig": big.kubeconfig})
    assert pr.present_vendors(cluster) == ["nvidia"]


def test_vendor_detection_and_the_checks_first_look_share_one_read_of_the_nodes(big):
    """vendor: auto detects the vendors from the node sample, then the check observes its nodes: the second look
    uses the sample the first just read (the same requests as one look); a third look reads the nodes anew."""
    cluster = cl.Cluster.connect({"kubeconfig": big.kubeconfig})
    labelled_vendors = sum(1 for entry in acc.VENDORS.values() if entry["labels"].get("present"))
    before = admin_requests(big)
    assert pr.present_vendors(cluster) == ["nvidia"]
    detected = admin_requests(big) - before
    facts = pr.observe_accelerators(cluster, "auto")
    assert admin_requests(big) - before == detected
    assert len(facts["nodes"]) == 2 and facts["node_count"] == CPU_NODES + 2
    again = admin_requests(big)
    pr.observe_accelerators(cluster, "auto")
    assert admin_requests(big) - again == 1 + labelled_vendors


def test_a_check_of_one_vendor_reads_only_that_vendors_labelled_nodes(big):
    cluster = cl.Cluster.connect({"kubeconfig": big.kubeconfig})
    before = admin_requests(big)
    facts = pr.observe_accelerators(cluster, "nvidia")
    assert admin_requests(big) - before == 2     # the first page, then the NVIDIA presence label's page
    assert len(facts["nodes"]) == 2 and facts["node_count"] == CPU_NODES + 2


def test_accelerator_info_reports_what_auto_detection_finds(big):
    out = run_module("accelerator_info", {"kubeconfig": big.kubeconfig})
    assert not out.get("failed"), out.get("msg")
    assert (out["vendors"], out["node_count"], out["nodes_sampled"], out["changed"]) == (
        ["nvidia"], CPU_NODES + 2, True, False)


@pytest.mark.parametrize("check_id", ["gang_scheduling", "dra_support"])
def test_vendors_present_gives_the_same_verdict_with_fewer_reads(big, check_id):
    """What the conform role passes after accelerator_info: the check skips its own detection and the absent
    vendors' labelled pages, and judges exactly as with vendor: auto."""
    labelled_vendors = sum(1 for entry in acc.VENDORS.values() if entry["labels"].get("present"))
    runs = {}
    for name, extra in (("auto", {}), ("told", {"vendors_present": ["nvidia"]})):
        before = admin_requests(big)
        out = run_module(check_id, dict(FAST, kubeconfig=big.kubeconfig, mode="passive", **extra))
        assert not out.get("failed"), out.get("msg")
        runs[name] = (admin_requests(big) - before, out["result"])
    (auto_requests, auto), (told_requests, told) = runs["auto"], runs["told"]
    assert told_requests <= auto_requests - (labelled_vendors - 1), (auto_requests, told_requests)
    assert (told["status"], told["summary"]) == (auto["status"], auto["summary"])
    assert [(f["name"], f["passed"]) for f in told["findings"]] == [(f["name"], f["passed"]) for f in auto["findings"]]


def test_the_conform_role_detects_vendors_once_for_all_its_checks(big, tmp_path):
    """conform.yml runs accelerator_info once and passes vendors_present: of the three vendors' presence-label
    reads, the absent vendors' are made once in the whole run, the present vendor's once per check that reads
    nodes, however many checks run."""
    from test_conform_playbook import run_playbook  # pylint: disable=import-outside-toplevel

    big.add_user("conform-run", "conform-run-token", groups=["system:masters"])
    log = big.server.request_log["conform-run"] = []
    checks = ["dra_support", "gang_scheduling", "cluster_autoscaling"]
    run = run_playbook(big.kubeconfig_for("conform-run"), str(tmp_path), "conform_mode=passive",
                       "conform_checks=%s" % ",".join(checks))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    selectors = [parse_qs(urlsplit(line.split(" ", 1)[1]).query).get("labelSelector", [None])[0]
                 for line in log if line.startswith("GET /api/v1/nodes?")]
    labelled = {name: selectors.count(entry["labels"]["present"])
                for name, entry in acc.VENDORS.items() if entry["labels"].get("present")}
    absent = {name: count for name, count in labelled.items() if name != "nvidia"}
    assert absent == {name: 1 for name in absent}, labelled
    assert labelled["nvidia"] == 1 + len(checks), labelled
