# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""high_performance_networking: pods get high-performance (RDMA) network interfaces through DRA (KAR-0010).

observe (read-only) -> probe (active only) -> judge (pure). Rules: ../shared/spec/requirements.md,
high_performance_networking.

* Passive: the served resource.k8s.io version; ResourceSlices of the DRANET driver `dra.net` (listed with the
  field selector spec.driver=dra.net, at most `slice_sample` of them) and the NIC attributes they publish
  (dra.net/ifName, rdma, rdmaDevice, pciAddress, numaNode, type, resource.kubernetes.io/pcieRoot);
  DeviceClasses whose CEL selectors name dra.net. The non-DRA ways: Multus NetworkAttachmentDefinitions
  (k8s.cni.cncf.io/v1), the SR-IOV network operator (sriovnetwork.openshift.io), the NVIDIA Network Operator's
  NicClusterPolicy (mellanox.com/v1alpha1) and RDMA/EFA/SR-IOV device-plugin resources on a sample of nodes.
* Active (KAR-0010's four outcomes), in a fresh namespace deleted afterwards: pod A claims one NIC
  (ResourceClaimTemplate, CEL `nic_selector`, default rdma == true) and prints `ip -o link` / `ip -o addr`: it
  must run with an interface besides lo and eth0 on a node that publishes the NIC; a pod whose claim selects an
  interface that does not exist must stay Pending for `pending_window` seconds; pod B on another node with such
  a NIC (same ifName, i.e. the same rail) must ping A's secondary address over its own secondary interface.
"""
from __future__ import absolute_import, division, print_function

import re
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

__metaclass__ = type

REQUIREMENT_ID = "high_performance_networking"
DRIVER = "dra.net"
DEFAULT_SELECTOR = 'device.attributes["dra.net"].rdma == true'
IMPOSSIBLE_IFNAME = "aic-no-such-nic"
NIC_ATTRIBUTES = ("ifName", "rdma", "rdmaDevice", "pciAddress", "numaNode", "type")
PCIE_ROOT = "resource.kubernetes.io/pcieRoot"
PRIMARY_INTERFACES = ("lo", "eth0")
DONE_MARK = "AIC_IP_DONE"
PING_MARK = "AIC_PING_EXIT: "
NAD = ("k8s.cni.cncf.io/v1", "network-attachment-definitions")
SRIOV = ("sriovnetwork.openshift.io/v1", ("sriovnetworks", "sriovibnetworks", "sriovnetworknodepolicies"))
NIC_POLICY = ("mellanox.com/v1alpha1", "nicclusterpolicies")
NETWORK_RESOURCE = re.compile(r"rdma|vpc\.amazonaws\.com/efa|sriov|infiniband|/mlnx|hca|roce|_vf$|/vf", re.IGNORECASE)

ARG_SPEC = {
    "network_image": {"type": "str", "default": "busybox:1.36"},
    "device_class": {"type": "str"},
    "nic_selector": {"type": "str", "default": DEFAULT_SELECTOR},
    "pending_window": {"type": "int", "default": 30},
    "slice_sample": {"type": "int", "default": 200},
    "node_sample": {"type": "int", "default": 500},
    "expect_hardware": {"type": "bool", "default": False},
}


# --------------------------------------------------------------------------------------------- pure helpers
def nic_summary(slice_summaries):
    """What DRANET publishes: {"nodes": {node: [device]}, "devices", "rdma", "attributes": {name: count}}
    from summarize_slice() dicts (the dra.net ones)."""
    nodes, attributes, rdma, total = {}, {}, 0, 0
    for sl in slice_summaries:
        if sl.get("driver") != DRIVER:
            continue
        for device in sl.get("devices") or ():
            total += 1
            attrs = device.get("attributes") or {}
            entry = {"name": device.get("name"), "pool": sl.get("pool"), "node": sl.get("node")}
            for name in NIC_ATTRIBUTES:
                entry[name] = attrs.get("%s/%s" % (DRIVER, name), attrs.get(name))
            entry["pcieRoot"] = attrs.get(PCIE_ROOT)
            for name in NIC_ATTRIBUTES + ("pcieRoot",):
                if entry[name] is not None:
                    attributes[name] = attributes.get(name, 0) + 1
            if entry["rdma"] is True:
                rdma += 1
            nodes.setdefault(sl.get("node") or "", []).append(entry)
    return {"nodes": nodes, "devices": total, "rdma": rdma, "attributes": attributes}


def dranet_classes(device_classes):
    """DeviceClasses (observe_dra's dicts) whose CEL selectors name the dra.net driver."""
    return [c for c in device_classes if any(DRIVER in (s or "") for s in c.get("selectors") or ())]


def choose_class(classes, wanted=None):
    """The DeviceClass the probe claims through: `wanted` when it exists, else one selecting only the driver
    (`device.driver == "dra.net"`), else any class naming dra.net. None: nothing to claim through."""
    names = [c["name"] for c in classes]
    if wanted:
        return wanted if wanted in names else None
    for cls in classes:
        if all(re.match(r"""^device\.driver\s*==\s*["']dra\.net["']$""", s or "") for s in cls.get("selectors") or ()):
            return cls["name"]
    return names[0] if names else None


def parse_interfaces(text):
    """{name: [addresses]} from `ip -o link` and `ip -o addr` output (iproute2 and busybox one-line forms)."""
    out = {}
    for line in (text or "").splitlines():
        match = re.match(r"^\s*\d+:\s+([^:\s@]+)(?:@\S+)?:?\s+(.*)$", line)
        if not match:
            continue
        name, rest = match.group(1), match.group(2)
        addrs = out.setdefault(name, [])
        found = re.search(r"\binet6?\s+(\S+)", rest)
        if found and found.group(1) not in addrs:
            addrs.append(found.group(1))
    return out


def rdma_devices(text):
    """RDMA character devices `ls /dev/infiniband` listed (uverbsN, rdma_cm, umadN)."""
    return sorted(set(line.strip() for line in (text or "").splitlines()
                      if re.match(r"^(uverbs\d+|umad\d+|issm\d+|rdma_cm)$", line.strip())))


def expected_names(nic, claim):
    """Names the allocated NIC can have inside the pod: its dra.net/ifName (DRANET keeps the name unless the claim
    config renames it; the probe sets no config) and the interfaceName the driver reported in the claim status."""
    names = set()
    if (nic or {}).get("ifName"):
        names.add(nic["ifName"])
    for device in (claim or {}).get("devices") or ():
        name = (device.get("networkData") or {}).get("interfaceName")
        if name:
            names.add(name)
    return names


def secondary_interfaces(interfaces):
    return {name: addrs for name, addrs in interfaces.items() if name not in PRIMARY_INTERFACES}


def ipv4(addresses):
    for address in addresses or ():
        if re.match(r"^\d+\.\d+\.\d+\.\d+(/\d+)?$", address):
            return address.split("/", 1)[0]
    return None


def parse_ping(text):
    """(exit status or None, transmitted, received) from the probe's ping output."""
    status, transmitted, received = None, 0, 0
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith(PING_MARK):
            try:
                status = int(line[len(PING_MARK):])
            except ValueError:
                status = None
        match = re.match(r"^(\d+) packets transmitted, (\d+) (?:packets )?received", line)
        if match:
            transmitted, received = int(match.group(1)), int(match.group(2))
    return status, transmitted, received


def network_resources(nodes):
    """{resource: total allocatable} of device-plugin resources that look like RDMA/EFA/SR-IOV NICs."""
    out = {}
    for node in nodes:
        for name, value in ((node.get("status") or {}).get("allocatable") or {}).items():
            if "/" in name and NETWORK_RESOURCE.search(name):
                count = acc.quantity_int(value) or 0
                if count:
                    out[name] = out.get(name, 0) + count
    return out


def plan_nodes(nics, selector_is_default):
    """(node for pod A, [other nodes with a matching NIC]) from nic_summary()["nodes"]."""
    usable = {}
    for node, devices in sorted(nics.items()):
        matching = [d for d in devices if d.get("rdma") is True] if selector_is_default else list(devices)
        if node and matching:
            usable[node] = matching
    names = sorted(usable)
    return (names[0] if names else None), names[1:]


# --------------------------------------------------------------------------------------------- observe
def _list_slices(cluster, api_version, sample):
    """dra.net ResourceSlices, at most `sample`: with the field selector spec.driver (served since DRA's beta), or
    one bounded list filtered here when the API server rejects that selector (400). Other errors propagate."""
    try:
        return cluster.list(api_version, "resourceslices", field_selector="spec.driver=%s" % DRIVER,
                            max_items=sample, limit=min(500, sample)), ""
    except cl.ApiRequestError as err:
        if err.status != 400:
            raise
        items = cluster.list(api_version, "resourceslices", max_items=sample, limit=min(500, sample))
        return ([s for s in items if (s.get("spec") or {}).get("driver") == DRIVER],
                "the API server rejected fieldSelector spec.driver (%s); read %d slices" % (err, len(items)))


def observe(cluster, opts):
    disc = cluster.discovery()
    served = disc.served_versions(dra.GROUP)
    version = dra.best_version(served)
    facts = {"dra_version": version, "classes": [], "slices": [], "slice_note": "", "nads": [], "sriov": {},
             "nic_policies": [], "resources": {}, "nodes_sampled": 0, "vendor": "nvidia", "truncated": False}
    sample = max(1, int(opts.get("slice_sample", 200)))
    if version:
        api_version = "%s/%s" % (dra.GROUP, version)
        if disc.has(api_version, "deviceclasses"):
            facts["classes"] = [{"name": c["metadata"]["name"],
                                 "selectors": [((s.get("cel") or {}).get("expression") or "").strip()
                                               for s in (c.get("spec") or {}).get("selectors") or ()]}
                                for c in cluster.list(api_version, "deviceclasses", max_items=200)]
        if disc.has(api_version, "resourceslices"):
            slices, facts["slice_note"] = _list_slices(cluster, api_version, sample)
            facts["truncated"] = len(slices) >= sample
            facts["slices"] = [dra.summarize_slice(s) for s in slices]
    if disc.has(*NAD):
        nads = cluster.list(NAD[0], NAD[1], max_items=50, limit=50)
        facts["nads"] = ["%s/%s" % (n["metadata"].get("namespace"), n["metadata"]["name"]) for n in nads]
    for resource in SRIOV[1]:
        if disc.has(SRIOV[0], resource):
            items = cluster.list(SRIOV[0], resource, max_items=50, limit=50)
            facts["sriov"][resource] = len(items)
    if disc.has(*NIC_POLICY):
        items = cluster.list(NIC_POLICY[0], NIC_POLICY[1], max_items=5, limit=5)
        facts["nic_policies"] = [n["metadata"]["name"] for n in items]
    nodes = cluster.list("v1", "nodes", max_items=max(1, int(opts.get("node_sample", 500))))
    facts["nodes_sampled"] = len(nodes)
    facts["resources"] = network_resources(nodes)
    facts["vendor"] = acc.resolve_vendor(opts.vendor, nodes)[0]
    return facts


# --------------------------------------------------------------------------------------------- probe
def _pod(name, opts, entry, image, script, template, node=None):
    ctr = pr.container("net", image, script, claims=["nic"])
    pod = pr.pod_manifest(name, [ctr], opts, entry, node=node,
                          resource_claims=[{"name": "nic", "resourceClaimTemplateName": template}])
    return pod


def _template(version, name, device_class, selectors):
    request = dra.device_request(version, "nic", device_class, selectors=selectors)
    return dra.claim_template(version, name, [request])


def _pod_claim(cluster, api_version, namespace, pod_name):
    for claim in cluster.list(api_version, "resourceclaims", namespace=namespace):
        if dra.claim_owner_pod(claim) == pod_name:
            return claim
    return None


def probe(cluster, opts, facts, deadline):
    """Run the four outcomes; returns what judge() reads. Cluster errors (403, ...) propagate."""
    version = facts["dra_version"]
    api_version = "%s/%s" % (dra.GROUP, version)
    entry = acc.vendor(facts["vendor"])
    image = opts.get("network_image", "busybox:1.36")
    selector = opts.get("nic_selector", DEFAULT_SELECTOR)
    nics = nic_summary(facts["slices"])["nodes"]
    node_a, others = plan_nodes(nics, selector == DEFAULT_SELECTOR)
    device_class = choose_class(dranet_classes(facts["classes"]), opts.get("device_class"))
    window = int(opts.get("pending_window", 30))
    out = {"device_class": device_class, "selector": selector, "timeline": [], "timed_out": [], "cleanup": "",
           "a": {}, "b": {}, "pending": {}, "claim": None}
    started = time.monotonic()

    def mark(what):
        out["timeline"].append("%5.1fs %s" % (time.monotonic() - started, what))

    def wait(what, fn, predicate, timeout=None):
        try:
            return cl.wait_until(what, fn, predicate, timeout or opts.wait_timeout, opts.wait_sleep, deadline)
        except cl.WaitTimeout as err:
            out["timed_out"].append(str(err))
            return None

    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep, cleanup_timeout=opts.wait_timeout) as ns:
        out["namespace"] = ns.name

        def get_pod(name):
            return cluster.get("v1", "pods", name, namespace=ns.name)

        cluster.create(api_version, "resourceclaimtemplates", _template(version, "aic-nic", device_class, [selector]),
                       namespace=ns.name)
        cluster.create(api_version, "resourceclaimtemplates",
                       _template(version, "aic-no-nic", device_class,
                                 [dra.cel_equals(DRIVER, "ifName", IMPOSSIBLE_IFNAME)]), namespace=ns.name)
        script_a = "ip -o link; ip -o addr; ls /dev/infiniband; echo %s; sleep 3600" % DONE_MARK
        cluster.create("v1", "pods", _pod("aic-nic-a", opts, entry, image, script_a, "aic-nic"), namespace=ns.name)
        cluster.create("v1", "pods", _pod("aic-nic-pending", opts, entry, image, "ip -o addr; sleep 3600", "aic-no-nic"),
                       namespace=ns.name)
        pending_since = time.monotonic()
        mark("created pod aic-nic-a (claim: %s) and aic-nic-pending (claim: ifName %s)" % (selector, IMPOSSIBLE_IFNAME))

        pod_a = wait("pod aic-nic-a to print its interfaces", lambda: get_pod("aic-nic-a"),
                     lambda p: pr.pod_done(p) or (pr.pod_started(p) and DONE_MARK in cluster.pod_logs(
                         ns.name, "aic-nic-a")))
        if pod_a is None:
            pod_a = get_pod("aic-nic-a")
        out["a"] = {"summary": pr.summarize_pod(pod_a), "node": (pod_a.get("spec") or {}).get("nodeName"),
                    "phase": (pod_a.get("status") or {}).get("phase"), "interfaces": {}, "log": ""}
        if pr.pod_started(pod_a):
            out["a"]["log"] = cluster.pod_logs(ns.name, "aic-nic-a")
            out["a"]["interfaces"] = parse_interfaces(out["a"]["log"])
            out["a"]["rdma_devices"] = rdma_devices(out["a"]["log"])
        claim = _pod_claim(cluster, api_version, ns.name, "aic-nic-a")
        out["claim"] = {"allocations": dra.claim_allocations(claim),
                        "devices": (claim.get("status") or {}).get("devices") or []} if claim else None
        out["a"]["nic"] = _allocated_nic(out["claim"], nics)
        mark("pod aic-nic-a: %s; secondary interfaces %s" % (out["a"]["summary"],
                                                             secondary_interfaces(out["a"]["interfaces"]) or "none"))

        secondary = secondary_interfaces(out["a"]["interfaces"])
        if_name = (out["a"]["nic"] or {}).get("ifName")
        names = expected_names(out["a"]["nic"], out["claim"])
        address = next((ipv4(secondary[n]) for n in sorted(names) if n in secondary and ipv4(secondary[n])), None)
        out["a"]["address"] = address
        node_b = next((n for n in others if n != out["a"]["node"]), None)
        if node_b is None and out["a"]["node"] and node_a and node_a != out["a"]["node"]:
            node_b = node_a
        out["b"]["node"] = node_b
        if address and node_b:
            selectors = [selector] + ([dra.cel_equals(DRIVER, "ifName", if_name)] if if_name else [])
            cluster.create(api_version, "resourceclaimtemplates", _template(version, "aic-nic-peer", device_class, selectors),
                           namespace=ns.name)
            script_b = "ip -o addr; ping -c 3 -W 2 %s; echo %s$?" % (address, PING_MARK)
            cluster.create("v1", "pods", _pod("aic-nic-b", opts, entry, image, script_b, "aic-nic-peer", node=node_b),
                           namespace=ns.name)
            mark("created pod aic-nic-b on %s to ping %s" % (node_b, address))
            pod_b = wait("pod aic-nic-b to finish its ping", lambda: get_pod("aic-nic-b"), pr.pod_done) or get_pod("aic-nic-b")
            out["b"].update({"summary": pr.summarize_pod(pod_b), "bound": (pod_b.get("spec") or {}).get("nodeName")})
            if pr.pod_started(pod_b):
                out["b"]["log"] = cluster.pod_logs(ns.name, "aic-nic-b")
                out["b"]["interfaces"] = parse_interfaces(out["b"]["log"])
                out["b"]["ping"] = parse_ping(out["b"]["log"])
            mark("pod aic-nic-b: %s" % out["b"]["summary"])

        while time.monotonic() - pending_since < window and not deadline.expired():   # bounded observation window
            pod_p = get_pod("aic-nic-pending")
            if pr.pod_bound(pod_p) or pr.pod_started(pod_p):
                break
            time.sleep(min(opts.wait_sleep, max(0.0, window - (time.monotonic() - pending_since))))
        pod_p = get_pod("aic-nic-pending")
        out["pending"] = {"summary": pr.summarize_pod(pod_p), "bound": pr.pod_bound(pod_p),
                          "unschedulable": pr.pod_unschedulable(pod_p),
                          "waited": round(time.monotonic() - pending_since, 1)}
        mark("pod aic-nic-pending after %ss: %s" % (out["pending"]["waited"], out["pending"]["summary"]))
    out["cleanup"] = ns.cleanup_note
    return out


def _allocated_nic(claim, nics):
    """The slice entry of the NIC allocated to pod A's claim (first dra.net result), or None."""
    for result in (claim or {}).get("allocations") or ():
        if result.get("driver") != DRIVER:
            continue
        for devices in nics.values():
            for device in devices:
                if device.get("name") == result.get("device") and device.get("pool") == result.get("pool"):
                    return device
        return {"name": result.get("device"), "pool": result.get("pool")}
    return None


# --------------------------------------------------------------------------------------------- judge (pure)
def _non_dra(facts):
    """[(name, detail)] of the non-DRA secondary-network mechanisms found."""
    found = []
    if facts.get("nads"):
        found.append(("Multus NetworkAttachmentDefinitions", "%d: %s" % (len(facts["nads"]), ", ".join(facts["nads"][:10]))))
    if any(facts.get("sriov", {}).values()):
        found.append(("SR-IOV network operator", ", ".join("%s: %d" % kv for kv in sorted(facts["sriov"].items()))))
    if facts.get("nic_policies"):
        found.append(("NVIDIA Network Operator NicClusterPolicy", ", ".join(facts["nic_policies"])))
    if facts.get("resources"):
        found.append(("RDMA/EFA/SR-IOV device-plugin resources",
                      ", ".join("%s=%d" % kv for kv in sorted(facts["resources"].items()))))
    return found


def judge(facts, probe_out=None, passive_reason="", expect_hardware=False):
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    nics = nic_summary(facts.get("slices") or [])
    classes = dranet_classes(facts.get("classes") or [])
    non_dra = _non_dra(facts)
    res.finding("resource.k8s.io served", bool(facts.get("dra_version")),
                "%s/%s" % (dra.GROUP, facts["dra_version"]) if facts.get("dra_version") else "not served")
    res.finding("DRANET (dra.net) publishes NICs", bool(nics["devices"]),
                "%d devices (%d RDMA) on %d nodes%s" % (nics["devices"], nics["rdma"], len(nics["nodes"]),
                                                        " (first %d slices read)" % len(facts["slices"])
                                                        if facts.get("truncated") else "")
                if nics["devices"] else "no ResourceSlice of driver dra.net")
    if nics["devices"]:
        missing = [a for a in ("rdma", "pciAddress", "numaNode") if not nics["attributes"].get(a)]
        res.finding("NIC characteristics discoverable", not missing,
                    "attributes published: %s" % ", ".join("%s (%d)" % kv for kv in sorted(nics["attributes"].items()))
                    + ("; missing: %s" % ", ".join(missing) if missing else ""))
        res.finding("DeviceClass selecting dra.net", bool(classes),
                    ", ".join(c["name"] for c in classes) if classes else "none: claims cannot name DRANET's devices")
        res.add_evidence("DRANET NICs (ResourceSlices of dra.net)", pr.text_table(
            ("node", "device", "ifName", "rdma", "rdmaDevice", "pciAddress", "numaNode", "pcieRoot"),
            [(n, d["name"], d["ifName"], d["rdma"], d["rdmaDevice"], d["pciAddress"], d["numaNode"], d["pcieRoot"])
             for n, devices in sorted(nics["nodes"].items()) for d in devices][:200]), "table")
    for name, detail in non_dra:
        res.finding(name, None, detail)
    if facts.get("slice_note"):
        res.note(facts["slice_note"] + ".")
    if facts.get("classes"):
        res.add_evidence("DeviceClasses", [{"name": c["name"], "selectors": c["selectors"]} for c in facts["classes"]], "yaml")

    if not nics["devices"]:
        if non_dra:
            res.set(PARTIAL, "secondary networks through %s, not through DRA" % ", ".join(n for n, d in non_dra))
            res.note("Pods can get secondary/high-performance interfaces through %s, but the checklist asks for them "
                     "to be managed through DRA: install DRANET (kubernetes-sigs/dranet, driver dra.net) or another DRA "
                     "network driver so NICs appear in ResourceSlices and pods claim them." % ", ".join(n for n, d in non_dra))
            return res.to_dict()
        if expect_hardware:
            res.set(NOT_IMPLEMENTED, "no DRA network driver and no secondary-network mechanism found")
            res.note("The nodes are said to have high-performance NICs (expect_hardware), yet no DRA driver publishes "
                     "them and no Multus/SR-IOV/RDMA device plugin exposes them. Install DRANET (kubernetes-sigs/dranet) "
                     "and a DeviceClass selecting device.driver == \"dra.net\".")
            return res.to_dict()
        res.set(NOT_APPLICABLE, "no high-performance network hardware found")
        res.note("N/A: no node exposes high-performance or secondary NICs: no ResourceSlice of a DRA network driver "
                 "(dra.net), no RDMA/EFA/SR-IOV device-plugin resource on %d sampled nodes, no Multus "
                 "NetworkAttachmentDefinition, SR-IOV operator or NicClusterPolicy. If the nodes do have such NICs, "
                 "install DRANET (kubernetes-sigs/dranet) and run again (expect_hardware: true makes this Not "
                 "Implemented)." % facts.get("nodes_sampled", 0))
        return res.to_dict()

    if passive_reason:
        for name in ("pod got a claimed NIC as a secondary interface", "unsatisfiable NIC claim stays Pending",
                     "pod-to-pod data over secondary addresses"):
            res.finding(name, None, passive_reason)
        res.set(PARTIAL, "DRANET publishes %d NICs; the pod outcomes were not shown (passive)" % nics["devices"])
        res.note("Passive mode creates nothing; run in active mode to claim a NIC into a pod, check an unsatisfiable "
                 "claim stays Pending and send data between two pods over their secondary addresses.")
        return res.to_dict()

    out = probe_out or {}
    if out.get("skipped"):
        res.finding("pod got a claimed NIC as a secondary interface", None, out["skipped"])
        res.set(PARTIAL, "DRANET publishes NICs, but no pod could claim one: %s" % out["skipped"])
        res.note("Pods claim DRANET's NICs through a DeviceClass: create one selecting device.driver == \"dra.net\" "
                 "(GKE's managed DRANET installs them), or name an existing one with device_class." if
                 "DeviceClass" in out["skipped"] else "Probe skipped: %s." % out["skipped"])
        return res.to_dict()
    return _judge_probe(res, out, nics)


def _judge_probe(res, out, nics):
    if out.get("timeline"):
        res.add_evidence("timeline", "\n".join(out["timeline"]), "text")
    a, b, pending = out.get("a") or {}, out.get("b") or {}, out.get("pending") or {}
    if a.get("log"):
        res.add_evidence("pod aic-nic-a: ip -o link; ip -o addr; ls /dev/infiniband", a["log"][:4000], "text")
    if out.get("claim"):
        res.add_evidence("pod aic-nic-a's ResourceClaim status", out["claim"], "yaml")
    if b.get("log"):
        res.add_evidence("pod aic-nic-b: ip -o addr; ping", b["log"][:4000], "text")
    secondary = secondary_interfaces(a.get("interfaces") or {})
    nic = a.get("nic") or {}
    verbs = [d for d in a.get("rdma_devices") or () if d.startswith("uverbs")]
    ib_only = bool(nic.get("name")) and not nic.get("ifName") and nic.get("rdma") is True
    names = expected_names(nic, out.get("claim"))
    matched = sorted(n for n in secondary if n in names)
    got_interface = a.get("phase") == "Running" and (bool(matched) or (ib_only and bool(verbs)))
    res.finding("pod got a claimed NIC as a secondary interface", got_interface,
                "%s: %s" % (a.get("summary"), ", ".join("%s %s" % (k, " ".join(v)) for k, v in sorted(secondary.items())))
                + ("" if matched else "; none of them is the allocated NIC (%s)" % (", ".join(sorted(names)) or "name unknown"))
                if secondary else "%s; %s" % (a.get("summary") or "pod not run", "RDMA devices only (InfiniBand NIC): %s"
                                              % ", ".join(a.get("rdma_devices")) if ib_only and verbs else
                                              "no interface besides lo and eth0 in the pod"))
    scheduled = bool(nic.get("name")) and bool(a.get("node")) and a.get("node") in nics["nodes"] and \
        nic.get("pool") in (a.get("node"), None)
    res.finding("scheduled onto a node that has the NIC", scheduled,
                "allocated %s (%s) on %s" % (nic.get("name"), nic.get("ifName"), a.get("node")) if nic.get("name")
                else "no dra.net device was allocated to the claim")
    if secondary and not matched and not ib_only:
        res.note("The pod has interfaces besides lo and eth0 (%s), but none is the NIC allocated to its claim (%s): "
                 "another CNI (Multus?) may add them to every pod; DRANET did not move the NIC in."
                 % (", ".join(sorted(secondary)), ", ".join(sorted(names)) or "its name is unknown"))
    stayed = bool(pending) and not pending.get("bound")
    res.finding("unsatisfiable NIC claim stays Pending", stayed if pending else False,
                "after %ss: %s" % (pending.get("waited"), pending.get("summary")) if pending else "not run")
    ping = b.get("ping") or (None, 0, 0)
    data = got_interface and ping[0] == 0 and ping[2] > 0 and \
        any(n in names for n in secondary_interfaces(b.get("interfaces") or {}))
    if b.get("summary"):
        detail = "%s -> %s (%s): %d/%d packets received, exit %s" % (
            b.get("bound") or b["node"], a.get("address"), a.get("node"), ping[2], ping[1], ping[0])
        res.finding("pod-to-pod data over secondary addresses", data, detail)
    elif ib_only and got_interface:
        res.finding("pod-to-pod data over secondary addresses", None,
                    "not run: the NIC is InfiniBand-only (no netdev, no IP); show RDMA traffic with ib_write_bw by hand")
    elif not a.get("address"):
        res.finding("pod-to-pod data over secondary addresses", False,
                    "not run: pod aic-nic-a has no secondary IPv4 address to reach")
    else:
        res.finding("pod-to-pod data over secondary addresses", None,
                    "not run: needs a second node publishing a matching NIC (only %s has one)" % a.get("node"))
    reported = [d for d in (out.get("claim") or {}).get("devices") or () if d.get("networkData")]
    shown = ["%s: %s %s" % (d.get("device"), d["networkData"].get("interfaceName"), " ".join(d["networkData"].get("ips") or ()))
             for d in reported]
    res.finding("claim status reports the interface (networkData)", True if reported else None,
                ", ".join(shown) if reported else "the driver wrote no status.devices for the claim (informational)")
    for line in out.get("timed_out") or ():
        res.note(line)
    if out.get("cleanup"):
        res.note(out["cleanup"])
    outcomes = [got_interface, scheduled, stayed, data]
    if all(outcomes):
        res.set(IMPLEMENTED, "a pod claimed an RDMA NIC through DRA (dra.net), got it as %s, an unsatisfiable claim "
                "stayed Pending, and two pods on different nodes exchanged data over their secondary addresses"
                % ", ".join(matched or verbs))
        return res.to_dict()
    res.set(PARTIAL, "DRANET publishes NICs, but %s" % "; ".join(
        why for ok, why in zip(outcomes, ("no claimed NIC reached the pod as an interface",
                                          "the NIC was not allocated on the pod's node",
                                          "an unsatisfiable NIC claim did not stay Pending",
                                          "no data went between pods over secondary addresses")) if not ok))
    if not got_interface and a.get("phase") == "Running":
        res.note("The claim was allocated and the pod runs, but the NIC never appeared in the pod's network namespace. "
                 "DRANET moves interfaces from NRI hooks: enable NRI in the container runtime (containerd 2.x has it "
                 "on; containerd 1.7 needs [plugins.\"io.containerd.nri.v1.nri\"] disable = false) and check the dranet "
                 "pod's logs on %s." % (a.get("node") or "the node"))
    if got_interface and not data and b.get("node"):
        res.note("The pods got interfaces but could not reach each other over them: check the fabric (same subnet or "
                 "routes per rail), the claim config's addresses and routes, and that both NICs are on the same rail.")
    return res.to_dict()


def deadline_seconds(opts):
    return 4 * opts.wait_timeout + int(opts.get("pending_window", 30)) + 180


def run(cluster, opts):
    facts = observe(cluster, opts)
    expect = bool(opts.get("expect_hardware", False))
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason(), expect_hardware=expect)
    nics = nic_summary(facts["slices"])
    if not nics["devices"]:
        return judge(facts, expect_hardware=expect)
    skipped = ""
    if not choose_class(dranet_classes(facts["classes"]), opts.get("device_class")):
        skipped = ("no DeviceClass selects dra.net devices" if not opts.get("device_class") else
                   "DeviceClass %s does not exist or does not select dra.net" % opts.get("device_class"))
    elif plan_nodes(nics["nodes"], opts.get("nic_selector", DEFAULT_SELECTOR) == DEFAULT_SELECTOR)[0] is None:
        skipped = "no node publishes an RDMA NIC (dra.net/rdma == true) for the default selector"
    if skipped:
        return judge(facts, probe_out={"skipped": skipped}, expect_hardware=expect)
    deadline = cl.Deadline(deadline_seconds(opts))
    return judge(facts, probe(cluster, opts, facts, deadline), expect_hardware=expect)
