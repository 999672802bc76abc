"""high_performance_networking: reading DRANET's ResourceSlices (real ones from the upstream examples), the probe
pods' `ip` and `ping` output, and the verdict rules (DRA + four outcomes -> Implemented; some outcomes, or
Multus/SR-IOV only -> Partially; nothing at all -> N/A, or Not Implemented when hardware is expected)."""
from __future__ import annotations

import copy
import os

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import high_performance_networking as hpn
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "dranet")
DRANET_CLASS = {"name": "dra.net", "selectors": ['device.driver == "dra.net"']}
GPU_CLASS = {"name": "gpu.nvidia.com",
             "selectors": ["device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'"]}

# busybox `ip -o link` / `ip -o addr` in a pod with DRANET's rdma0, as the probe pod prints them
IP_OUTPUT = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP,M-DOWN> mtu 1500 qdisc noqueue state UP \\    link/ether 0a:58:0a:f4:02:05 brd ff:ff:ff:ff:ff:ff
3: rdma0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9000 qdisc mq state UP qlen 1000\\    link/ether 60:5e:65:14:0f:10 brd ff:ff:ff:ff:ff:ff
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.244.2.5/24 brd 10.244.2.255 scope global eth0\\       valid_lft forever preferred_lft forever
3: rdma0    inet 192.168.10.10/24 brd 192.168.10.255 scope global rdma0\\       valid_lft forever preferred_lft forever
3: rdma0    inet6 fe80::625e:65ff:fe14:f10/64 scope link \\       valid_lft forever preferred_lft forever
rdma_cm
uverbs0
AIC_IP_DONE
"""
PING_OK = """PING 192.168.10.10 (192.168.10.10): 56 data bytes
64 bytes from 192.168.10.10: seq=0 ttl=64 time=0.080 ms
64 bytes from 192.168.10.10: seq=1 ttl=64 time=0.081 ms
64 bytes from 192.168.10.10: seq=2 ttl=64 time=0.082 ms

--- 192.168.10.10 ping statistics ---
3 packets transmitted, 3 packets received, 0% packet loss
round-trip min/avg/max = 0.080/0.081/0.082 ms
AIC_PING_EXIT: 0
"""
PING_LOST = """PING 192.168.10.10 (192.168.10.10): 56 data bytes

--- 192.168.10.10 ping statistics ---
3 packets transmitted, 0 packets received, 100% packet loss
AIC_PING_EXIT: 1
"""
# iproute2 (not busybox) prints "received" without "packets"
PING_IPROUTE = """--- 192.168.10.10 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 2003ms
AIC_PING_EXIT: 0
"""


def slices(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    items = doc["items"] if doc.get("kind") == "List" else [doc]
    return [dra.summarize_slice(item) for item in items]


def two_node_slices():
    """The OKE GB200 slice (8 ConnectX-8 NICs, rdma0..rdma7) on two nodes."""
    one = slices("oke-gb200-resourceslice.yaml")[0]
    two = copy.deepcopy(one)
    two["node"] = two["pool"] = "10.140.65.249"
    return [one, two]


def facts(slice_list=None, classes=(DRANET_CLASS, GPU_CLASS), **extra):
    out = {"dra_version": "v1", "classes": list(classes), "slices": two_node_slices() if slice_list is None else slice_list,
           "slice_note": "", "nads": [], "sriov": {}, "nic_policies": [], "resources": {}, "nodes_sampled": 4,
           "vendor": "nvidia", "truncated": False}
    out.update(extra)
    return out


def probe_out(interface=True, pending=True, ping=PING_OK, peer=True):
    a_log = IP_OUTPUT if interface else "\n".join(line for line in IP_OUTPUT.splitlines() if "rdma0" not in line)
    a = {"summary": "phase=Running, node=10.140.65.248", "node": "10.140.65.248", "phase": "Running", "log": a_log,
         "interfaces": hpn.parse_interfaces(a_log), "rdma_devices": hpn.rdma_devices(a_log),
         "nic": {"name": "pci-0000-03-00-0", "pool": "10.140.65.248", "ifName": "rdma0", "rdma": True},
         "address": "192.168.10.10" if interface else None}
    b = {"node": "10.140.65.249" if peer else None}
    if peer and interface:
        b.update({"summary": "phase=Succeeded, node=10.140.65.249", "bound": "10.140.65.249", "log": IP_OUTPUT + ping,
                  "interfaces": hpn.parse_interfaces(IP_OUTPUT), "ping": hpn.parse_ping(ping)})
    return {"device_class": "dra.net", "selector": hpn.DEFAULT_SELECTOR, "timeline": ["  0.1s created pod aic-nic-a"],
            "timed_out": [], "cleanup": "", "a": a, "b": b,
            "pending": {"summary": "phase=Pending, PodScheduled=False (Unschedulable: cannot allocate all claims)",
                        "bound": not pending, "unschedulable": pending, "waited": 30.0},
            "claim": {"allocations": [{"request": "nic", "driver": "dra.net", "pool": "10.140.65.248",
                                       "device": "pci-0000-03-00-0"}], "devices": []}}


def finding(result, name):
    return [f for f in result["findings"] if f["name"] == name][0]


# --------------------------------------------------------------------------------------------- reading
def test_nic_summary_of_real_slices():
    oke = hpn.nic_summary(slices("oke-gb200-resourceslice.yaml"))
    assert (oke["devices"], oke["rdma"], list(oke["nodes"])) == (8, 8, ["10.140.65.248"])
    assert [d["ifName"] for d in oke["nodes"]["10.140.65.248"]] == ["rdma%d" % i for i in range(8)]
    first = oke["nodes"]["10.140.65.248"][0]
    assert (first["name"], first["pciAddress"], first["numaNode"], first["pcieRoot"], first["type"]) == \
        ("pci-0000-03-00-0", "0000:03:00.0", 0, "pci0000:00", "device")
    efa = hpn.nic_summary(slices("eks-efa-resourceslices.yaml"))
    assert (efa["devices"], efa["rdma"]) == (7, 4)                  # EFA devices are RDMA, ENA interfaces are not
    assert efa["attributes"]["ifName"] == 3 and efa["attributes"]["rdmaDevice"] == 4
    aks = hpn.nic_summary(slices("aks-gb300-resourceslice.yaml"))
    assert (aks["devices"], aks["rdma"], aks["attributes"].get("ifName")) == (4, 4, None)   # InfiniBand-only VFs


def test_nic_summary_ignores_other_drivers():
    gpu = {"name": "s", "driver": "gpu.nvidia.com", "node": "n", "pool": "n",
           "devices": [{"name": "gpu-0", "attributes": {"type": "gpu"}, "capacity": {}}]}
    assert hpn.nic_summary([gpu])["devices"] == 0


@pytest.mark.parametrize("classes, wanted, expected", [
    ([DRANET_CLASS, GPU_CLASS], None, "dra.net"),
    ([{"name": "rdma", "selectors": ['device.driver == "dra.net"', 'device.attributes["dra.net"].rdma']},
      {"name": "plain", "selectors": ["device.driver == 'dra.net'"]}], None, "plain"),
    ([{"name": "rdma", "selectors": ['device.driver == "dra.net"', 'device.attributes["dra.net"].rdma']}], None, "rdma"),
    ([DRANET_CLASS], "mrdma.google.com", None),
    ([GPU_CLASS], None, None),
])
def test_choose_class(classes, wanted, expected):
    assert hpn.choose_class(hpn.dranet_classes(classes), wanted) == expected


def test_parse_interfaces_and_rdma_devices():
    interfaces = hpn.parse_interfaces(IP_OUTPUT)
    assert sorted(interfaces) == ["eth0", "lo", "rdma0"]
    assert hpn.secondary_interfaces(interfaces) == {"rdma0": ["192.168.10.10/24", "fe80::625e:65ff:fe14:f10/64"]}
    assert hpn.ipv4(interfaces["rdma0"]) == "192.168.10.10"
    assert hpn.rdma_devices(IP_OUTPUT) == ["rdma_cm", "uverbs0"]


@pytest.mark.parametrize("text, expected", [(PING_OK, (0, 3, 3)), (PING_LOST, (1, 3, 0)), (PING_IPROUTE, (0, 3, 3)),
                                            ("", (None, 0, 0))])
def test_parse_ping(text, expected):
    assert hpn.parse_ping(text) == expected


def test_network_resources_of_nodes():
    nodes = [{"status": {"allocatable": {"cpu": "96", "nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "4"}}},
             {"status": {"allocatable": {"rdma/rdma_shared_device_a": "63", "nvidia.com/gpu": "8"}}},
             {"status": {"allocatable": {"openshift.io/mlx5_vf": "0"}}}]
    assert hpn.network_resources(nodes) == {"rdma/rdma_shared_device_a": 63, "vpc.amazonaws.com/efa": 4}


def test_plan_nodes():
    nics = hpn.nic_summary(two_node_slices())["nodes"]
    assert hpn.plan_nodes(nics, True) == ("10.140.65.248", ["10.140.65.249"])
    ena_only = {"n": [{"name": "pci-0000-20-01-0", "rdma": False}]}
    assert hpn.plan_nodes(ena_only, True) == (None, [])
    assert hpn.plan_nodes(ena_only, False) == ("n", [])


# --------------------------------------------------------------------------------------------- verdicts
def test_all_four_outcomes_implemented():
    result = hpn.judge(facts(), probe_out())
    validate_result(result)
    assert result["status"] == IMPLEMENTED, result["notes"]
    assert "rdma0" in result["summary"]
    assert all(finding(result, name)["passed"] for name in (
        "pod got a claimed NIC as a secondary interface", "scheduled onto a node that has the NIC",
        "unsatisfiable NIC claim stays Pending", "pod-to-pod data over secondary addresses",
        "NIC characteristics discoverable"))
    titles = [e["title"] for e in result["evidence"]]
    assert "DRANET NICs (ResourceSlices of dra.net)" in titles and "pod aic-nic-b: ip -o addr; ping" in titles


@pytest.mark.parametrize("kwargs, failed, words", [
    ({"interface": False}, "pod got a claimed NIC as a secondary interface", "NRI"),
    ({"pending": False}, "unsatisfiable NIC claim stays Pending", "did not stay Pending"),
    ({"ping": PING_LOST}, "pod-to-pod data over secondary addresses", "same rail"),
])
def test_a_missing_outcome_is_partial(kwargs, failed, words):
    result = hpn.judge(facts(), probe_out(**kwargs))
    validate_result(result)
    assert result["status"] == PARTIAL
    assert finding(result, failed)["passed"] is False
    assert words in result["summary"] + result["notes"]


def test_one_node_with_nics_cannot_show_data_and_is_partial():
    result = hpn.judge(facts(slice_list=two_node_slices()[:1]), probe_out(peer=False))
    assert result["status"] == PARTIAL
    data = finding(result, "pod-to-pod data over secondary addresses")
    assert data["passed"] is None and "second node" in data["detail"]


def test_infiniband_only_nic_reaches_the_pod_as_rdma_devices_but_data_is_not_shown():
    out = probe_out(interface=False)
    out["a"]["nic"] = {"name": "pci-0101-00-00-0", "pool": "10.140.65.248", "ifName": None, "rdma": True}
    out["a"]["log"] += "uverbs0\n"
    out["a"]["rdma_devices"] = hpn.rdma_devices(out["a"]["log"])
    result = hpn.judge(facts(slice_list=slices("aks-gb300-resourceslice.yaml")), out)
    assert finding(result, "pod got a claimed NIC as a secondary interface")["passed"] is True
    assert "ib_write_bw" in finding(result, "pod-to-pod data over secondary addresses")["detail"]
    assert result["status"] == PARTIAL


def test_passive_with_dranet_is_partial():
    result = hpn.judge(facts(), passive_reason="mode=passive: only read-only checks ran")
    validate_result(result)
    assert (result["status"], result["mode"]) == (PARTIAL, "passive")
    assert finding(result, "pod-to-pod data over secondary addresses")["passed"] is None


def test_no_device_class_is_partial_with_the_fix():
    result = hpn.judge(facts(classes=[GPU_CLASS]), {"skipped": "no DeviceClass selects dra.net devices"})
    assert result["status"] == PARTIAL
    assert finding(result, "DeviceClass selecting dra.net")["passed"] is False
    assert 'device.driver == \\"dra.net\\"' in result["notes"] or 'device.driver == "dra.net"' in result["notes"]


@pytest.mark.parametrize("extra, mechanism", [
    ({"nads": ["default/rdma-net"]}, "Multus"),
    ({"sriov": {"sriovnetworks": 2}}, "SR-IOV"),
    ({"nic_policies": ["nic-cluster-policy"]}, "NicClusterPolicy"),
    ({"resources": {"vpc.amazonaws.com/efa": 32}}, "device-plugin"),
])
def test_non_dra_mechanisms_only_are_partial(extra, mechanism):
    result = hpn.judge(facts(slice_list=[], **extra))
    validate_result(result)
    assert result["status"] == PARTIAL
    assert mechanism in result["summary"] and "DRANET" in result["notes"]


def test_nothing_is_na_with_justification_or_not_implemented_when_expected():
    result = hpn.judge(facts(slice_list=[], classes=[GPU_CLASS]))
    validate_result(result)
    assert result["status"] == NOT_APPLICABLE and result["notes"].startswith("N/A:")
    assert "no ResourceSlice of a DRA network driver" in result["notes"]
    expected = hpn.judge(facts(slice_list=[], classes=[GPU_CLASS]), expect_hardware=True)
    assert expected["status"] == NOT_IMPLEMENTED


def test_a_pod_that_never_ran_is_never_implemented():
    out = probe_out()
    out["a"].update({"phase": "Pending", "summary": "phase=Pending", "interfaces": {}, "log": ""})
    out["timed_out"] = ["timed out after 20s waiting for pod aic-nic-a to print its interfaces"]
    result = hpn.judge(facts(), out)
    assert result["status"] == PARTIAL and "timed out" in result["notes"]


def test_an_interface_that_is_not_the_allocated_nic_does_not_count():
    """A CNI that adds net1 to every pod must not pass for DRANET's NIC: only the allocated NIC's name counts."""
    out = probe_out()
    other = IP_OUTPUT.replace("rdma0", "net1")
    out["a"].update({"log": other, "interfaces": hpn.parse_interfaces(other)})
    result = hpn.judge(facts(), out)
    assert result["status"] == PARTIAL
    got = finding(result, "pod got a claimed NIC as a secondary interface")
    assert got["passed"] is False and "none of them is the allocated NIC (rdma0)" in got["detail"]
    assert finding(result, "pod-to-pod data over secondary addresses")["passed"] is False
    assert "Multus" in result["notes"]


def test_the_name_reported_in_the_claim_status_counts():
    out = probe_out()
    renamed = IP_OUTPUT.replace("rdma0", "eth99")
    out["a"].update({"log": renamed, "interfaces": hpn.parse_interfaces(renamed)})
    out["b"]["interfaces"] = hpn.parse_interfaces(renamed)
    out["claim"]["devices"] = [{"driver": "dra.net", "pool": "10.140.65.248", "device": "pci-0000-03-00-0",
                                "networkData": {"interfaceName": "eth99", "ips": ["192.168.10.10/24"]}}]
    result = hpn.judge(facts(), out)
    assert result["status"] == IMPLEMENTED and "eth99" in result["summary"]
