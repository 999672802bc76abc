"""What a check reads of a large cluster is bounded: beyond probe.NODE_SAMPLE nodes it reads one page of nodes plus
one page per vendor presence label, and still finds accelerator nodes that sort after a big CPU pool.

The cluster is real (the simulator over HTTP) with 1,010 CPU nodes named before two labelled GPU nodes, so the
first page of nodes holds no accelerator node at all; the API server counts the requests the client made."""
from __future__ import annotations

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr

from checks_support import start_sim

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
