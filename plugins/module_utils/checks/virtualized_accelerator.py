# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""virtualized_accelerator: virtualized accelerators (NVIDIA vGPU) are exposed and managed through the same
mechanisms as physical GPUs.

observe (read-only) -> probe (active only) -> judge (pure). Rules: ../shared/spec/requirements.md,
virtualized_accelerator.

* Passive: vGPU nodes by GPU feature discovery's labels (nvidia.com/vgpu.present, vgpu.host-driver-version and
  -branch, a gpu.product naming a vGPU profile such as GRID-A100-40C), DRA devices whose productName is a vGPU
  profile, KubeVirt GPU workload configuration (nvidia.com/gpu.workload.config vm-vgpu|vm-passthrough), the
  DeviceClass vfio.gpu.nvidia.com, hypervisor hints on a bounded sample of accelerator nodes (node feature
  discovery's cpu-cpuid.HYPERVISOR flag, GPU feature discovery's nvidia.com/gpu.machine) and, on a bounded
  sample of vGPU nodes, the DCGM exporter's DCGM_FI_DEV_VGPU_LICENSE_STATUS (1 licensed, 0 not).
* Active: on each sampled vGPU node a pod requests one GPU exactly like a physical one (device plugin resource,
  else a DRA claim) and runs `nvidia-smi -L`, which must list the vGPU profile. The namespace is always deleted.

N/A needs a bare-metal justification: no vGPU anywhere and either every sampled accelerator node shows node
feature discovery CPU labels without the hypervisor flag (and no virtual-machine platform name), or the
operator declares it with `bare_metal_justification` and no sampled node contradicts it.
"""
from __future__ import absolute_import, division, print_function

import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra_mod
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import driver_runtime_management as drm
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

__metaclass__ = type

REQUIREMENT_ID = "virtualized_accelerator"
ARG_SPEC = {
    "max_nodes": {"type": "int", "default": 3},
    "bare_metal_justification": {"type": "str"},
    "exporter_selector": {"type": "str"},
}

VGPU_PRESENT = "nvidia.com/vgpu.present"
VGPU_HOST_DRIVER = "nvidia.com/vgpu.host-driver-version"
VGPU_HOST_BRANCH = "nvidia.com/vgpu.host-driver-branch"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MACHINE_LABEL = "nvidia.com/gpu.machine"
WORKLOAD_LABEL = "nvidia.com/gpu.workload.config"
HYPERVISOR_LABEL = "feature.node.kubernetes.io/cpu-cpuid.HYPERVISOR"
NFD_CPU_PREFIX = "feature.node.kubernetes.io/cpu-"
VFIO_CLASS = "vfio.gpu.nvidia.com"
LICENSE_METRIC = "DCGM_FI_DEV_VGPU_LICENSE_STATUS"
MAX_SAMPLE = 10
# A vGPU profile name: GRID A100-40C, GRID-A100-4C, NVIDIA H100-20C (series A, B, C, Q after the frame buffer GB).
VGPU_NAME = re.compile(r"^(GRID[ -].+|NVIDIA[ -][A-Z]+\d+[A-Z]*-\d+[ABCQ])$")
# DMI product names of virtual machines as GPU feature discovery labels them (nvidia.com/gpu.machine).
VM_MACHINE = re.compile(r"(?i)(virtual|vmware|kvm|qemu|hvm|xen|ahv|hyper-v|standard-pc|bochs|google-compute-engine|"
                        r"openstack|nutanix)")


# --------------------------------------------------------------------------------------------- pure helpers
def is_vgpu_name(name):
    """Does a product name (label with dashes, or nvidia-smi/DRA with spaces) name a vGPU profile? A time-sliced
    node's product label carries the suffix -SHARED, which is dropped first."""
    text = str(name or "").strip()
    if text.endswith("-SHARED"):
        text = text[:-len("-SHARED")]
    return bool(text) and (bool(VGPU_NAME.match(text)) or bool(VGPU_NAME.match(text.replace("-", " ", 1))))


def vgpu_node(labels):
    """(is a vGPU guest, why) from a node's labels."""
    labels = labels or {}
    if str(labels.get(VGPU_PRESENT, "")).lower() == "true":
        return True, "%s=true" % VGPU_PRESENT
    if is_vgpu_name(labels.get(PRODUCT_LABEL)):
        return True, "%s=%s" % (PRODUCT_LABEL, labels[PRODUCT_LABEL])
    return False, ""


def hypervisor_hint(labels):
    """What a node's labels say about virtualisation: "vm" (with the reason), "bare-metal" (node feature
    discovery's CPU labels are there without the hypervisor flag, and the machine name is not a VM's) or
    "unknown" (no node feature discovery CPU labels)."""
    labels = labels or {}
    machine = labels.get(MACHINE_LABEL) or ""
    if str(labels.get(HYPERVISOR_LABEL, "")).lower() == "true":
        return "vm", "%s=true" % HYPERVISOR_LABEL
    if machine and VM_MACHINE.search(machine):
        return "vm", "%s=%s" % (MACHINE_LABEL, machine)
    if any(k.startswith(NFD_CPU_PREFIX) for k in labels):
        return "bare-metal", "node feature discovery CPU labels without the hypervisor flag%s" % (
            ", machine %s" % machine if machine else "")
    return "unknown", "no node feature discovery CPU labels"


def license_states(scrape):
    """{uuid or gpu index: value} of DCGM_FI_DEV_VGPU_LICENSE_STATUS in a parsed scrape."""
    out = {}
    for sample in scrape.find(LICENSE_METRIC):
        key = sample.labels.get("UUID") or sample.labels.get("uuid") or sample.labels.get("gpu") or "?"
        out[key] = sample.value
    return out


def listed_vgpus(text, entry):
    """The accelerators `nvidia-smi -L` printed, and which of them are vGPU profiles."""
    listed = acc.parse_listing(entry, text)
    return listed, [d for d in listed if is_vgpu_name(d["name"])]


# --------------------------------------------------------------------------------------------- observe
def _exporter_pod(cluster, entry, node, selector):
    selectors = [selector] if selector else list(entry["exporter"]["selectors"])
    for sel in selectors:
        pods = cluster.list("v1", "pods", label_selector=sel, field_selector="spec.nodeName=%s" % node, max_items=5)
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        if running:
            return running[0]
    return None


def scrape_license(cluster, entry, node, selector):
    """{"pod", "states": {uuid: value}, "error"} for the exporter pod on `node` (None pod: no exporter there)."""
    pod = _exporter_pod(cluster, entry, node, selector)
    if pod is None:
        return {"pod": None, "states": {}, "error": "no running exporter pod on the node"}
    port = entry["exporter"]["port"]
    for ctr in (pod.get("spec") or {}).get("containers") or ():
        for item in ctr.get("ports") or ():
            if item.get("name") in entry["exporter"]["port_names"]:
                port = item.get("containerPort") or port
    meta = pod["metadata"]
    status, text = cluster.proxy_get("pod", meta["namespace"], meta["name"], port, entry["exporter"]["path"],
                                     max_bytes=16 * 1024 * 1024)
    if status != 200:
        return {"pod": meta["name"], "states": {}, "error": "metrics answered %s" % status}
    try:
        parsed = promtext.parse(text)
    except promtext.ExpositionError as err:
        return {"pod": meta["name"], "states": {}, "error": str(err)[:200]}
    return {"pod": meta["name"], "states": license_states(parsed), "error": ""}


def observe(cluster, opts):
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    entry = acc.vendor(accel["vendor"])
    facts = {"vendor": accel["vendor"], "node_total": len(accel["nodes"]), "other": accel["other"],
             "vgpu_nodes": [], "vm_workload": {}, "hints": {}, "dra_vgpu": {}, "dra_version": None, "dra": {},
             "dra_class": None, "vfio_class": False, "licenses": {}, "justification": opts.get("bare_metal_justification")}
    limit = max(1, int(opts.get("max_nodes", 3)))
    for node in accel["nodes"]:
        labels = node.get("labels") or {}
        is_vgpu, why = vgpu_node(labels)
        if is_vgpu:
            facts["vgpu_nodes"].append({
                "name": node["name"], "why": why, "product": node.get("product") or "",
                "host_driver": labels.get(VGPU_HOST_DRIVER), "host_branch": labels.get(VGPU_HOST_BRANCH),
                "allocatable": node.get("allocatable") or 0, "unschedulable": bool(node.get("unschedulable")),
                "labels": {}})
        if labels.get(WORKLOAD_LABEL) in ("vm-vgpu", "vm-passthrough"):
            facts["vm_workload"][node["name"]] = labels[WORKLOAD_LABEL]
    for node in drm.sample_nodes(accel["nodes"], MAX_SAMPLE):
        facts["hints"][node["name"]] = hypervisor_hint(node.get("labels"))
    if accel["vendor"] == "nvidia":
        facts["dra_version"], slices = drm.list_slices(cluster)
        for obj in slices:
            summary = dra_mod.summarize_slice(obj)
            names = [str(dra_mod.device_attribute(d, drm.DRA_DRIVER, "productName") or "") for d in summary["devices"]]
            facts["dra"].setdefault(summary["node"], {"driver": []})
            vgpus = [n for n in names if is_vgpu_name(n)]
            if vgpus and summary["node"]:
                facts["dra_vgpu"].setdefault(summary["node"], [])
                facts["dra_vgpu"][summary["node"]].extend(v for v in vgpus if v not in facts["dra_vgpu"][summary["node"]])
        if facts["dra_version"]:
            classes = drm.device_class_names(cluster, facts["dra_version"])
            facts["vfio_class"] = VFIO_CLASS in classes
            if facts["dra"] and entry["dra"]["device_class"] in classes:
                facts["dra_class"] = entry["dra"]["device_class"]
    known = set(n["name"] for n in facts["vgpu_nodes"])
    for name in sorted(facts["dra_vgpu"]):
        if name not in known:
            facts["vgpu_nodes"].append({"name": name, "why": "DRA productName %s" % ", ".join(facts["dra_vgpu"][name]),
                                        "product": facts["dra_vgpu"][name][0], "host_driver": None, "host_branch": None,
                                        "allocatable": 0, "unschedulable": False, "labels": {}})
    facts["vgpu_total"] = len(facts["vgpu_nodes"])
    facts["vgpu_nodes"] = sorted(facts["vgpu_nodes"], key=lambda n: n["name"])[:limit]
    for node in facts["vgpu_nodes"]:
        facts["licenses"][node["name"]] = scrape_license(cluster, entry, node["name"], opts.get("exporter_selector"))
    return facts


# --------------------------------------------------------------------------------------------- probe
def probe(cluster, opts, facts, deadline):
    entry = acc.vendor(facts["vendor"])
    out = {"nodes": {}, "skipped": {}, "namespace": None, "timed_out": "", "cleanup": ""}
    script = "nvidia-smi -L; echo \"%s$?\"" % pr.LISTING_MARK
    pods = {}
    for index, node in enumerate(facts["vgpu_nodes"]):
        if node["unschedulable"]:
            out["skipped"][node["name"]] = "node is cordoned"
            continue
        busy = drm.no_free_gpu(cluster, entry, node, opts, deadline)
        if busy:
            out["skipped"][node["name"]] = busy
            continue
        manifest = drm.one_gpu_pod("aic-vgpu-%d" % index, node, script, opts, entry, facts)
        if manifest is None:
            out["skipped"][node["name"]] = "the vGPU is neither a device plugin resource nor a DRA device: not requestable"
            continue
        pods[node["name"]] = manifest
    if not pods:
        return out
    results, out["namespace"], out["timed_out"], out["cleanup"] = drm.run_pods(cluster, opts, facts, REQUIREMENT_ID,
                                                                               deadline, pods)
    for node, item in results.items():
        listed, vgpus = listed_vgpus(item["log"], entry)
        out["nodes"][node] = dict(item, listed=listed, vgpus=vgpus,
                                  mechanism="device plugin" if pods[node]["spec"]["containers"][0].get(
                                      "resources", {}).get("limits") else "DRA claim")
    return out


# --------------------------------------------------------------------------------------------- judge (pure)
def _no_vgpu(res, facts):
    hints = facts["hints"]
    vm = {n: why for n, (kind, why) in hints.items() if kind == "vm"}
    bare = {n: why for n, (kind, why) in hints.items() if kind == "bare-metal"}
    unknown = sorted(n for n, (kind, _why) in hints.items() if kind == "unknown")
    res.finding("vGPU nodes", False, "no node is labelled %s=true or names a vGPU profile, no DRA device is a vGPU"
                % VGPU_PRESENT)
    res.add_evidence("hypervisor hints (sampled accelerator nodes)", pr.text_table(
        ["NODE", "HINT", "WHY"], [[n, kind, why] for n, (kind, why) in sorted(hints.items())]), "table")
    if facts["vm_workload"]:
        kinds = sorted(set(facts["vm_workload"].values()))
        res.finding("KubeVirt GPU workloads", None, ", ".join("%s=%s" % kv for kv in sorted(facts["vm_workload"].items())))
        if "vm-vgpu" in kinds:
            res.set(PARTIAL, "vGPUs are offered to KubeVirt virtual machines only; not verified")
            res.note("Nodes are configured for vGPU virtual machines (%s=vm-vgpu): vGPUs go to KubeVirt VMs through "
                     "the sandbox device plugin. This check cannot start a VM; verify a VirtualMachine with a vGPU by "
                     "hand. Pods cannot request vGPUs here." % WORKLOAD_LABEL)
            return res.to_dict()
        res.set(NOT_IMPLEMENTED, "GPUs are passed through to virtual machines, but no vGPU is offered")
        res.note("Nodes pass whole GPUs to KubeVirt VMs (%s=vm-passthrough); no vGPU profile is exposed. Configure "
                 "the GPU operator's vGPU manager (sandboxWorkloads with vm-vgpu) or vGPU guests to offer vGPUs."
                 % WORKLOAD_LABEL)
        return res.to_dict()
    if facts["vfio_class"]:
        res.finding("DeviceClass %s" % VFIO_CLASS, None, "exists (whole-GPU passthrough through DRA, not a vGPU)")
    justification = (facts.get("justification") or "").strip()
    if vm:
        res.finding("accelerator nodes run on a hypervisor", False, "; ".join("%s: %s" % kv for kv in sorted(vm.items())))
        res.set(NOT_IMPLEMENTED, "accelerator nodes are virtual machines, but no vGPU is offered")
        res.note("Sampled accelerator nodes run on a hypervisor (%s), so virtualized accelerators could be offered, "
                 "but none is: no vGPU node, no vGPU DRA device. Offer vGPU node pools (NVIDIA vGPU guest driver and "
                 "licence, GPU operator) to implement it." % ", ".join(sorted(vm)))
        if justification:
            res.note("The declared bare_metal_justification is contradicted by these nodes, so it was not used.")
        return res.to_dict()
    if justification and not unknown:
        res.finding("bare metal (declared, not contradicted)", True, "; ".join("%s: %s" % kv for kv in sorted(bare.items())))
        res.set(NOT_APPLICABLE, "accelerator nodes are bare metal without a hypervisor (declared)")
        res.note("%s (Sampled accelerator nodes agree: node feature discovery shows no hypervisor.)" % justification)
        return res.to_dict()
    if justification:
        res.finding("bare metal (declared)", None, "not contradicted; no node feature discovery CPU labels on %s"
                    % ", ".join(unknown))
        res.set(NOT_APPLICABLE, "accelerator nodes are bare metal without a hypervisor (declared)")
        res.note("%s (Declared by the operator; nodes %s carry no node feature discovery CPU labels, so the check "
                 "could not confirm it.)" % (justification, ", ".join(unknown)))
        return res.to_dict()
    if bare and not unknown:
        res.finding("accelerator nodes are bare metal", True, "; ".join("%s: %s" % kv for kv in sorted(bare.items())))
        res.set(NOT_APPLICABLE, "accelerator nodes are bare metal without a hypervisor")
        res.note("The accelerator nodes are bare-metal servers without a hypervisor (node feature discovery reports "
                 "no CPU hypervisor flag on %s), so there is no vGPU to expose; virtualized accelerators do not apply "
                 "to this platform configuration." % ", ".join(sorted(bare)))
        return res.to_dict()
    res.set(NOT_IMPLEMENTED, "no virtualized accelerators are offered")
    res.note("No vGPU was found and the nodes' virtualisation could not be told (%s carry no node feature "
             "discovery CPU labels). If the accelerator nodes are bare metal without a hypervisor, pass "
             "bare_metal_justification (or run node feature discovery, which the GPU operator brings) to get N/A "
             "with that justification; otherwise offer vGPU node pools." % ", ".join(unknown))
    return res.to_dict()


def judge(facts, probe_out=None, passive_reason=""):
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    if not facts["node_total"] and not facts["vgpu_nodes"]:
        if facts.get("other"):
            res.set(PARTIAL, "accelerators outside the vendor table need manual verification")
            res.note("Nodes carry accelerators this collection has no vendor entry for; verify virtualized "
                     "accelerators by hand.")
            return res.to_dict()
        res.set(NOT_APPLICABLE, "the cluster has no accelerators")
        res.note("No node advertises accelerators, so there are no accelerators to virtualize; the requirement "
                 "applies once accelerator nodes join.")
        return res.to_dict()
    if not facts["vgpu_nodes"]:
        if facts["vendor"] != "nvidia":
            res.note("Only NVIDIA vGPU is recognised by this check.")
        return _no_vgpu(res, facts)
    rows = []
    unlicensed = []
    for node in facts["vgpu_nodes"]:
        lic = facts["licenses"].get(node["name"]) or {}
        states = lic.get("states") or {}
        licensed = None if not states else all(float(v) == 1 for v in states.values())
        if licensed is False:
            unlicensed.append(node["name"])
        rows.append([node["name"], node["product"] or "-", node["why"], node["host_driver"] or "-",
                     node["host_branch"] or "-", {True: "licensed", False: "NOT licensed", None: "unknown"}[licensed]
                     + ("" if states else " (%s)" % (lic.get("error") or "no %s series" % LICENSE_METRIC))])
    res.finding("vGPU nodes", True, "%d vGPU node(s): %s" % (facts["vgpu_total"], ", ".join(
        "%s (%s)" % (n["name"], n["product"] or n["why"]) for n in facts["vgpu_nodes"])))
    res.add_evidence("vGPU nodes (%d of %d sampled)" % (len(facts["vgpu_nodes"]), facts["vgpu_total"]), pr.text_table(
        ["NODE", "PRODUCT", "WHY", "HOST DRIVER", "BRANCH", "LICENCE"], rows), "table")
    known = [n for n in facts["vgpu_nodes"] if (facts["licenses"].get(n["name"]) or {}).get("states")]
    res.finding("vGPU licences (%s)" % LICENSE_METRIC, (not unlicensed) if known else None,
                "not licensed on %s" % ", ".join(unlicensed) if unlicensed else
                ("licensed on %s" % ", ".join(n["name"] for n in known) if known else "no licence series scraped"))
    dra_vgpu = sorted(facts["dra_vgpu"])
    res.finding("vGPUs in DRA ResourceSlices", True if dra_vgpu else None,
                ", ".join("%s: %s" % (n, ", ".join(facts["dra_vgpu"][n])) for n in dra_vgpu) or
                "no DRA device is a vGPU (the checklist prefers DRA once the accelerator supports it)")
    requestable = [n for n in facts["vgpu_nodes"] if n["allocatable"] or (facts["dra_class"] and n["name"] in facts["dra"])]
    if not requestable:
        res.set(NOT_IMPLEMENTED, "vGPU nodes exist but their vGPUs cannot be requested")
        res.note("vGPU nodes were found (%s) but neither the device plugin resource nor a DRA device class exposes "
                 "their vGPUs to pods. Run the GPU operator's device plugin (or the NVIDIA DRA driver) on them."
                 % ", ".join(n["name"] for n in facts["vgpu_nodes"]))
        return res.to_dict()
    if passive_reason:
        res.finding("a pod requesting a GPU gets the vGPU", None, passive_reason)
        res.set(PARTIAL, "vGPU nodes are exposed; a vGPU was not requested (passive)")
        res.note("Passive mode does not start pods; run in active mode to request a vGPU like a physical GPU and "
                 "see it with nvidia-smi -L.")
    else:
        _judge_probe(res, facts, probe_out or {})
    if unlicensed and res.status == IMPLEMENTED:
        res.set(PARTIAL, "vGPUs work through the same API, but are not licensed")
    if unlicensed:
        res.note("vGPU not licensed on %s (%s 0): the guest driver restricts unlicensed vGPUs. Make the NVIDIA "
                 "License System reachable from the vGPU nodes and configure the licence token (the GPU operator's "
                 "driver.licensingConfig)." % (", ".join(unlicensed), LICENSE_METRIC))
    elif not known and res.status == IMPLEMENTED:
        res.note("The vGPU licence status could not be read (no %s series from the DCGM exporter on the vGPU nodes); "
                 "check nvidia-smi -q's License Status by hand." % LICENSE_METRIC)
    if facts["vgpu_total"] > len(facts["vgpu_nodes"]):
        res.note("%d of %d vGPU nodes were sampled (max_nodes)." % (len(facts["vgpu_nodes"]), facts["vgpu_total"]))
    if not dra_vgpu:
        res.note("vGPUs are not published through DRA; the checklist asks for DRA once the accelerator supports it.")
    return res.to_dict()


def _judge_probe(res, facts, probe_out):
    nodes = probe_out.get("nodes") or {}
    for node, reason in sorted((probe_out.get("skipped") or {}).items()):
        res.finding("%s: pod requesting a GPU" % node, None, "skipped: %s" % reason)
    good, bad = [], []
    for node, item in sorted(nodes.items()):
        if item.get("log"):
            res.add_evidence("%s nvidia-smi -L (pod %s/%s)" % (node, probe_out.get("namespace"), item["pod"]),
                             item["log"], "text")
        ok = bool(item["vgpus"]) and len(item["listed"]) == 1
        res.finding("%s: pod requesting one GPU (%s) sees the vGPU" % (node, item["mechanism"]), ok,
                    ", ".join("%s (%s)" % (d["name"], d["uuid"]) for d in item["listed"]) or item["state"])
        (good if ok else bad).append(node)
    if probe_out.get("timed_out"):
        res.note(probe_out["timed_out"])
    if probe_out.get("cleanup"):
        res.note(probe_out["cleanup"])
    if good and not bad and not probe_out.get("skipped"):
        names = sorted(set(d["name"] for n in good for d in nodes[n]["vgpus"]))
        res.set(IMPLEMENTED, "a pod requesting one GPU got the vGPU %s on every probed vGPU node" % ", ".join(names))
    elif good:
        res.set(PARTIAL, "the vGPU was seen on %d of %d vGPU nodes" % (len(good), len(facts["vgpu_nodes"])))
        res.note("Not shown on %s; see the findings." % ", ".join(sorted(bad + list(probe_out.get("skipped") or {}))))
    else:
        res.set(PARTIAL, "vGPU nodes exist, but no pod was shown to get a vGPU")
        res.note("No probe pod listed a vGPU profile with nvidia-smi -L; see the findings for the pods' states.")


def deadline_seconds(opts):
    return 2 * opts.wait_timeout + 120


def run(cluster, opts):
    facts = observe(cluster, opts)
    requestable = [n for n in facts["vgpu_nodes"] if n["allocatable"] or (facts["dra_class"] and n["name"] in facts["dra"])]
    if not opts.active or not requestable:
        return judge(facts, passive_reason=opts.passive_reason())
    return judge(facts, probe(cluster, opts, facts, cl.Deadline(deadline_seconds(opts))))
