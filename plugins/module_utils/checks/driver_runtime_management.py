# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""driver_runtime_management: a verifiable mechanism keeps accelerator drivers and the container runtime
configuration installed and up to date on accelerator nodes, and what it reports matches the nodes.

observe (read-only) -> probe (active only) -> judge (pure). Rules: ../shared/spec/requirements.md,
driver_runtime_management.

* Passive: the GPU operator's ClusterPolicy (nvidia.com/v1 clusterpolicies, status.state) and NVIDIADriver
  objects; its operand DaemonSets (driver, container toolkit, device plugin, validator, GPU feature discovery,
  DCGM exporter) and their readiness; the RuntimeClass `nvidia`; GPU feature discovery's version labels
  (nvidia.com/cuda.driver-version.*, cuda.runtime-version.*, gpu-driver-upgrade-state) on a bounded sample of
  accelerator nodes; the NVIDIA DRA driver's ResourceSlice attributes driverVersion and cudaDriverVersion.
* Active: on each sampled node a one-GPU pod (device plugin resource, else a DRA claim) runs `nvidia-smi`; the
  driver and CUDA versions it prints are compared NUMERICALLY with the label and the DRA attribute (DRA publishes
  semantic versions without leading zeros: 580.126.09 is 580.126.9). The namespace is always deleted.
"""
from __future__ import absolute_import, division, print_function

import re
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra_mod
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

__metaclass__ = type

REQUIREMENT_ID = "driver_runtime_management"
ARG_SPEC = {
    "max_nodes": {"type": "int", "default": 3},
}

DRIVER_LABEL = "nvidia.com/cuda.driver-version.full"
DRIVER_PART_LABELS = ("nvidia.com/cuda.driver-version.major", "nvidia.com/cuda.driver-version.minor",
                      "nvidia.com/cuda.driver-version.revision")
CUDA_LABEL = "nvidia.com/cuda.runtime-version.full"
CUDA_PART_LABELS = ("nvidia.com/cuda.runtime-version.major", "nvidia.com/cuda.runtime-version.minor")
UPGRADE_LABEL = "nvidia.com/gpu-driver-upgrade-state"
OPERATOR_NAMESPACE = "gpu-operator"
DRA_DRIVER = "gpu.nvidia.com"
MAX_SLICES = 500
MAX_DAEMONSETS = 100
# Seconds observe() waits for operand DaemonSets whose missing pods are only starting (a node that an autoscaler
# just added gets the operator's pods a little later), and how many of the namespace's pods it reads to tell.
ROLLOUT_WAIT = 60
MAX_OPERAND_PODS = 1000
# Operand DaemonSets of the GPU operator, by name prefix (the driver's name carries a suffix per node pool).
OPERANDS = (
    ("driver", "nvidia-driver-daemonset"),
    ("container toolkit", "nvidia-container-toolkit-daemonset"),
    ("device plugin", "nvidia-device-plugin-daemonset"),
    ("validator", "nvidia-operator-validator"),
    ("GPU feature discovery", "gpu-feature-discovery"),
    ("DCGM exporter", "nvidia-dcgm-exporter"),
)
PROBE_MARK = "QUERY_EXIT: "
SMI_MARK = "SMI_EXIT: "


# --------------------------------------------------------------------------------------------- pure helpers
def version_tuple(text):
    """A dotted version as a tuple of ints padded to three parts, or None when it is not numeric.
    580.126.09 and 580.126.9 are equal; 12.8 and 12.8.0 are equal."""
    if text is None:
        return None
    parts = str(text).strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return None
    nums = [int(p) for p in parts]
    return tuple((nums + [0, 0, 0])[:max(3, len(nums))])


def same_version(left, right):
    """True/False when both parse as versions, None when either is missing or not numeric."""
    a, b = version_tuple(left), version_tuple(right)
    if a is None or b is None:
        return None
    return a == b


def label_version(labels, full_key, part_keys):
    """The version a node's labels state: the `.full` label, else major.minor(.revision) joined."""
    labels = labels or {}
    if labels.get(full_key):
        return str(labels[full_key])
    parts = [labels.get(k) for k in part_keys]
    if parts[0] and parts[1]:
        return ".".join(str(p) for p in parts if p not in (None, ""))
    return None


def daemonset_state(ds):
    """{name, desired, ready, updated, available, ok} of a DaemonSet (ok: every scheduled pod updated and ready)."""
    status = ds.get("status") or {}
    desired = status.get("desiredNumberScheduled")
    ready = status.get("numberReady", 0)
    updated = status.get("updatedNumberScheduled", 0)
    observed = status.get("observedGeneration", 0) >= ((ds.get("metadata") or {}).get("generation") or 0)
    ok = desired is not None and observed and ready >= desired and updated >= desired
    return {"name": ds["metadata"]["name"], "desired": desired, "ready": ready, "updated": updated, "ok": bool(ok)}


def operand_of(name):
    for label, prefix in OPERANDS:
        if name.startswith(prefix):
            return label
    return None


def slice_versions(slices):
    """{node: {"driver": [...], "cuda": [...], "products": [...]}} from NVIDIA DRA driver slices (raw objects)."""
    out = {}
    for obj in slices:
        summary = dra_mod.summarize_slice(obj)
        if summary["driver"] != DRA_DRIVER or not summary["node"] or summary["node"] == "all nodes":
            continue
        node = out.setdefault(summary["node"], {"driver": [], "cuda": [], "products": []})
        for device in summary["devices"]:
            attrs = device["attributes"]
            for key, name in (("driver", "driverVersion"), ("cuda", "cudaDriverVersion"), ("products", "productName")):
                value = dra_mod.device_attribute({"attributes": attrs}, DRA_DRIVER, name)
                if value is not None and str(value) not in node[key]:
                    node[key].append(str(value))
    return out


def sample_nodes(nodes, limit):
    """Up to `limit` node summaries ({name, labels, ...}): first one per distinct (driver label, product), then
    the rest by name, so differing driver versions are seen even when only a few nodes are probed."""
    ordered = sorted(nodes, key=lambda n: n["name"])
    chosen, seen = [], set()
    for node in ordered:
        key = (label_version(node.get("labels"), DRIVER_LABEL, DRIVER_PART_LABELS), node.get("product"))
        if key not in seen and len(chosen) < limit:
            seen.add(key)
            chosen.append(node)
    for node in ordered:
        if len(chosen) >= limit:
            break
        if node not in chosen:
            chosen.append(node)
    return sorted(chosen, key=lambda n: n["name"])


def parse_smi(text):
    """What the probe container printed: {"driver", "name", "uuid", "cuda", "query_exit", "smi_exit"}."""
    out = {"driver": None, "name": None, "uuid": None, "cuda": None, "query_exit": None, "smi_exit": None}
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped.startswith(PROBE_MARK):
            out["query_exit"] = int(stripped[len(PROBE_MARK):] or -1)
            continue
        if stripped.startswith(SMI_MARK):
            out["smi_exit"] = int(stripped[len(SMI_MARK):] or -1)
            continue
        parts = [p.strip() for p in stripped.split(",")]
        if out["driver"] is None and len(parts) == 3 and version_tuple(parts[0]) and parts[2].startswith(("GPU-", "MIG-")):
            out["driver"], out["name"], out["uuid"] = parts
        match = re.search(r"CUDA Version:\s*([0-9.]+)", stripped)
        if match and out["cuda"] is None:
            out["cuda"] = match.group(1)
        match = re.search(r"Driver Version:\s*([0-9.]+)", stripped)
        if match and out["driver"] is None:
            out["driver"] = match.group(1)
    return out


def compare_node(node, dra_versions, seen):
    """Pure: the comparison rows of one node. `seen` is parse_smi()'s result or None (not probed).

    Returns {"node", "label_driver", "label_cuda", "dra_driver", "dra_cuda", "smi_driver", "smi_cuda",
    "checks": [(what, ok True/False/None, detail)]}."""
    labels = node.get("labels") or {}
    row = {"node": node["name"], "label_driver": label_version(labels, DRIVER_LABEL, DRIVER_PART_LABELS),
           "label_cuda": label_version(labels, CUDA_LABEL, CUDA_PART_LABELS),
           "dra_driver": (dra_versions or {}).get("driver") or [], "dra_cuda": (dra_versions or {}).get("cuda") or [],
           "smi_driver": (seen or {}).get("driver"), "smi_cuda": (seen or {}).get("cuda"),
           "upgrade_state": labels.get(UPGRADE_LABEL), "checks": []}

    def add(what, left, right, lname, rname):
        result = same_version(left, right)
        row["checks"].append((what, result, "%s %s vs %s %s" % (lname, left or "-", rname, right or "-")))
    if len(row["dra_driver"]) > 1:
        row["checks"].append(("DRA devices agree on driverVersion", False, ", ".join(row["dra_driver"])))
    dra_driver = row["dra_driver"][0] if row["dra_driver"] else None
    dra_cuda = row["dra_cuda"][0] if row["dra_cuda"] else None
    if row["label_driver"] and dra_driver:
        add("driver label = DRA driverVersion", row["label_driver"], dra_driver, "label", "DRA")
    if seen is not None:
        if row["label_driver"]:
            add("driver label = nvidia-smi", row["label_driver"], row["smi_driver"], "label", "nvidia-smi")
        if dra_driver:
            add("DRA driverVersion = nvidia-smi", dra_driver, row["smi_driver"], "DRA", "nvidia-smi")
        if row["label_cuda"] and row["smi_cuda"]:
            add("CUDA label = nvidia-smi", row["label_cuda"], row["smi_cuda"], "label", "nvidia-smi")
        if dra_cuda and row["smi_cuda"]:
            add("DRA cudaDriverVersion = nvidia-smi", dra_cuda, row["smi_cuda"], "DRA", "nvidia-smi")
    return row


# --------------------------------------------------------------------------------------------- observe
def list_slices(cluster, driver=DRA_DRIVER):
    """(resource.k8s.io version or None, the driver's ResourceSlices; one bounded list)."""
    version = dra_mod.best_version(cluster.discovery().served_versions(dra_mod.GROUP))
    if not version or not cluster.discovery().has("%s/%s" % (dra_mod.GROUP, version), "resourceslices"):
        return None, []
    return version, cluster.list("%s/%s" % (dra_mod.GROUP, version), "resourceslices",
                                 field_selector="spec.driver=%s" % driver, max_items=MAX_SLICES)


def device_class_names(cluster, version):
    """Names of the DeviceClasses (one bounded list)."""
    items = cluster.list("%s/%s" % (dra_mod.GROUP, version), "deviceclasses", max_items=200)
    return set(o["metadata"]["name"] for o in items)


def observe_operator(cluster):
    """ClusterPolicy, NVIDIADriver objects and the operand DaemonSets of the GPU operator."""
    out = {"crd": False, "policies": [], "drivers": None, "namespace": OPERATOR_NAMESPACE, "daemonsets": []}
    disc = cluster.discovery()
    if disc.has("nvidia.com/v1", "clusterpolicies"):
        out["crd"] = True
        for obj in cluster.list("nvidia.com/v1", "clusterpolicies", max_items=10):
            status = obj.get("status") or {}
            ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
            spec = obj.get("spec") or {}
            out["policies"].append({
                "name": obj["metadata"]["name"], "state": status.get("state"), "namespace": status.get("namespace"),
                "condition": ready[0] if ready else None,
                "driver_enabled": (spec.get("driver") or {}).get("enabled", True) is not False,
                "toolkit_enabled": (spec.get("toolkit") or {}).get("enabled", True) is not False,
                "auto_upgrade": ((spec.get("driver") or {}).get("upgradePolicy") or {}).get("autoUpgrade"),
            })
        if out["policies"] and out["policies"][0]["namespace"]:
            out["namespace"] = out["policies"][0]["namespace"]
    if disc.has("nvidia.com/v1alpha1", "nvidiadrivers"):
        out["drivers"] = [{"name": o["metadata"]["name"], "state": (o.get("status") or {}).get("state")}
                          for o in cluster.list("nvidia.com/v1alpha1", "nvidiadrivers", max_items=50)]
    try:
        items = cluster.list("apps/v1", "daemonsets", namespace=out["namespace"], max_items=MAX_DAEMONSETS)
    except cl.NotFoundError:
        items = []
    out["daemonsets"] = [dict(daemonset_state(ds), operand=operand_of(ds["metadata"]["name"])) for ds in items
                         if operand_of(ds["metadata"]["name"])]
    return out


def operands_rolling_out(cluster, operator):
    """Names of the operand DaemonSets that are not ready only because some of their pods are still starting
    (probe.pod_starting); [] when the pods cannot be read."""
    waiting = set(d["name"] for d in operator["daemonsets"] if not d["ok"])
    if not waiting:
        return []
    try:
        pods = cluster.list("v1", "pods", namespace=operator["namespace"], max_items=MAX_OPERAND_PODS)
    except (cl.ForbiddenError, cl.NotFoundError):
        return []
    starting = set()
    for pod in pods:
        owners = [o.get("name") for o in pod["metadata"].get("ownerReferences") or () if o.get("kind") == "DaemonSet"]
        if owners and owners[0] in waiting and pr.pod_starting(pod):
            starting.add(owners[0])
    return sorted(starting)


def observe_operator_settled(cluster, opts):
    """observe_operator(), read again (bounded by ROLLOUT_WAIT) while operand pods are still starting: judging a
    DaemonSet in the middle of its rollout onto a new node would call a healthy operator unhealthy. Pods in a
    steady failure (crash loop, image pull) are not waited for."""
    operator = observe_operator(cluster)
    end = time.monotonic() + min(opts.wait_timeout, ROLLOUT_WAIT)
    while operands_rolling_out(cluster, operator) and time.monotonic() < end:
        time.sleep(opts.wait_sleep)
        operator = observe_operator(cluster)
    return operator


def observe(cluster, opts):
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    facts = {"vendor": accel["vendor"], "vendor_reason": accel["vendor_reason"], "node_total": 0, "nodes": [],
             "other": accel["other"], "operator": None, "runtime_class": None, "dra_version": None, "dra": {},
             "dra_class": None}
    entry = acc.vendor(accel["vendor"])
    if accel["vendor"] == "nvidia":
        facts["dra_version"], slices = list_slices(cluster)
        facts["dra"] = slice_versions(slices)
        if facts["dra_version"] and facts["dra"]:
            if entry["dra"]["device_class"] in device_class_names(cluster, facts["dra_version"]):
                facts["dra_class"] = entry["dra"]["device_class"]
        facts["operator"] = observe_operator_settled(cluster, opts)
    if entry.get("runtime_class") and cluster.discovery().has("node.k8s.io/v1", "runtimeclasses"):
        rc = cluster.get("node.k8s.io/v1", "runtimeclasses", entry["runtime_class"])
        facts["runtime_class"] = {"name": rc["metadata"]["name"], "handler": rc.get("handler")} if rc else None
    nodes = list(accel["nodes"])
    known = set(n["name"] for n in nodes)
    for name in sorted(facts["dra"]):
        if name not in known:
            nodes.append({"name": name, "labels": {}, "product": "", "allocatable": 0, "unschedulable": False})
    facts["node_total"] = len(nodes)
    limit = max(1, int(opts.get("max_nodes", 3)))
    facts["nodes"] = [{"name": n["name"], "labels": {k: v for k, v in (n.get("labels") or {}).items()
                                                     if k.startswith("nvidia.com/") or k.startswith("feature.node")},
                       "product": n.get("product") or "", "allocatable": n.get("allocatable") or 0,
                       "unschedulable": bool(n.get("unschedulable"))}
                      for n in sample_nodes(nodes, limit)]
    return facts


# --------------------------------------------------------------------------------------------- probe
def probe_script():
    return ("nvidia-smi --query-gpu=driver_version,name,uuid --format=csv,noheader; echo \"%s$?\"; "
            "nvidia-smi; echo \"%s$?\"" % (PROBE_MARK, SMI_MARK))


def no_free_gpu(cluster, entry, node, opts=None, deadline=None):
    """"" when a probe pod can get one of the node's device-plugin GPUs, else why not. When probes of this
    collection hold them (checks run side by side and the node has few GPUs), wait up to the probe wait for one to
    be released; GPUs held by other workloads are not waited for (a probe pod would only stay Pending)."""
    allocatable = node.get("allocatable") or 0
    if not allocatable:
        return ""
    end = time.monotonic() + (deadline.bound(opts.wait_timeout) if opts is not None and deadline is not None else 0)
    while True:
        used, by_probes = pr.accelerators_in_use(cluster, entry, node["name"])
        if used < allocatable:
            return ""
        if not by_probes:
            return "every GPU of the node is in use"
        if time.monotonic() >= end:
            return "every GPU of the node stayed in use by other probes of this collection (checks side by side)"
        time.sleep(opts.wait_sleep)


def one_gpu_pod(name, node, script, opts, entry, facts):
    """A pod pinned to `node` asking for one accelerator the way the node offers it: the device plugin's
    resource, else a DRA claim from the template `aic-one`. None when the node offers neither."""
    if node.get("allocatable"):
        ctr = pr.container("probe", opts.probe_image, script, limits={entry["resources"][0]: 1})
        return pr.pod_manifest(name, [ctr], opts, entry, node=node["name"])
    if facts.get("dra_class") and node["name"] in facts.get("dra", {}):
        ctr = pr.container("probe", opts.probe_image, script, claims=["gpu"])
        return pr.pod_manifest(name, [ctr], opts, entry, node=node["name"],
                               resource_claims=[{"name": "gpu", "resourceClaimTemplateName": "aic-one"}])
    return None


def run_pods(cluster, opts, facts, check_id, deadline, pods):
    """Create `pods` ({node: manifest}) in a fresh probe namespace, wait (bounded) until each has finished and
    return ({node: {"pod", "log", "state"}}, namespace, timed_out, cleanup note). Shared with
    virtualized_accelerator."""
    results, timed_out = {}, ""
    with cl.ProbeNamespace(cluster, check_id, deadline, sleep=opts.wait_sleep, cleanup_timeout=opts.wait_timeout) as ns:
        if any((m["spec"].get("resourceClaims")) for m in pods.values()):
            version = facts["dra_version"]
            request = dra_mod.device_request(version, "gpu", facts["dra_class"])
            template = dra_mod.claim_template(version, "aic-one", [request])
            cluster.create("%s/%s" % (dra_mod.GROUP, version), "resourceclaimtemplates", template, ns.name)
        for manifest in pods.values():
            cluster.create("v1", "pods", manifest, ns.name)
        states = {}

        def poll():
            for node, manifest in pods.items():
                if node in results:
                    continue
                pod = cluster.get("v1", "pods", manifest["metadata"]["name"], ns.name)
                states[node] = pod
                if pr.pod_done(pod):
                    results[node] = {"pod": manifest["metadata"]["name"], "state": pr.summarize_pod(pod),
                                     "log": cluster.pod_logs(ns.name, manifest["metadata"]["name"], "probe")}
            return len(results) == len(pods)
        try:
            cl.wait_until("the one-accelerator probe pods to finish", poll, bool, opts.wait_timeout, opts.wait_sleep,
                          deadline, lambda done: "; ".join("%s: %s" % (n, pr.summarize_pod(p)) for n, p in
                                                           sorted(states.items()) if n not in results))
        except cl.WaitTimeout as err:
            timed_out = str(err)
            for node, manifest in pods.items():
                if node not in results:
                    results[node] = {"pod": manifest["metadata"]["name"], "state": pr.summarize_pod(states.get(node)),
                                     "log": ""}
        namespace = ns.name
    return results, namespace, timed_out, ns.cleanup_note


def probe(cluster, opts, facts, deadline):
    entry = acc.vendor(facts["vendor"])
    out = {"nodes": {}, "skipped": {}, "namespace": None, "timed_out": "", "cleanup": ""}
    pods = {}
    for index, node in enumerate(facts["nodes"]):
        if node["unschedulable"]:
            out["skipped"][node["name"]] = "node is cordoned"
            continue
        busy = no_free_gpu(cluster, entry, node, opts, deadline)
        if busy:
            out["skipped"][node["name"]] = busy
            continue
        manifest = one_gpu_pod("aic-driver-%d" % index, node, probe_script(), opts, entry, facts)
        if manifest is None:
            out["skipped"][node["name"]] = "no device plugin resource and no DRA device class to request a GPU with"
            continue
        pods[node["name"]] = manifest
    if not pods:
        return out
    results, out["namespace"], out["timed_out"], out["cleanup"] = run_pods(cluster, opts, facts, REQUIREMENT_ID,
                                                                           deadline, pods)
    for node, item in results.items():
        out["nodes"][node] = dict(item, seen=parse_smi(item["log"]))
    return out


# --------------------------------------------------------------------------------------------- judge (pure)
def _operator_findings(res, facts):
    """Findings about the GPU operator; returns (installed, problems)."""
    op = facts.get("operator") or {}
    problems = []
    if not op.get("crd"):
        res.finding("GPU operator ClusterPolicy", None, "CRD clusterpolicies.nvidia.com is not served")
        return False, problems
    if not op.get("policies"):
        res.finding("GPU operator ClusterPolicy", False, "the CRD exists but there is no ClusterPolicy")
        problems.append("the ClusterPolicy CRD exists but no ClusterPolicy does (the chart creates cluster-policy)")
        return False, problems
    policy = op["policies"][0]
    cond = policy.get("condition") or {}
    ok = policy.get("state") == "ready"
    res.finding("ClusterPolicy %s state ready" % policy["name"], ok, "state %s%s" % (
        policy.get("state") or "(none)", "; %s: %s" % (cond.get("reason"), cond.get("message")) if cond else ""))
    if not ok:
        problems.append("ClusterPolicy %s is %s, not ready" % (policy["name"], policy.get("state") or "without a state"))
    if op.get("drivers") is not None and op["drivers"]:
        bad = [d for d in op["drivers"] if d.get("state") not in ("ready", None)]
        res.finding("NVIDIADriver objects ready", not bad, ", ".join("%s=%s" % (d["name"], d["state"]) for d in op["drivers"]))
        if bad:
            problems.append("NVIDIADriver %s not ready" % ", ".join(d["name"] for d in bad))
    sets = op.get("daemonsets") or []
    if sets:
        not_ready = [d for d in sets if not d["ok"]]
        res.finding("operand DaemonSets ready (namespace %s)" % op["namespace"], not not_ready, ", ".join(
            "%s %s/%s" % (d["name"], d["ready"], d["desired"]) for d in sets))
        if not_ready:
            problems.append("operand DaemonSets not fully ready: %s" % ", ".join(d["name"] for d in not_ready))
        present = set(d["operand"] for d in sets)
        missing = [label for label, _prefix in OPERANDS if label not in present]
        if missing:
            res.finding("operands not deployed by the operator", None, ", ".join(missing) + (
                " (the driver is then the host's own)" if "driver" in missing else ""))
    else:
        res.finding("operand DaemonSets ready (namespace %s)" % op["namespace"], False, "none found")
        problems.append("no operand DaemonSet of the GPU operator in namespace %s" % op["namespace"])
    return True, problems


def _table(rows):
    return pr.text_table(["NODE", "LABEL DRIVER", "DRA DRIVER", "NVIDIA-SMI DRIVER", "LABEL CUDA", "DRA CUDA",
                          "NVIDIA-SMI CUDA", "UPGRADE STATE"],
                         [[r["node"], r["label_driver"] or "-", ",".join(r["dra_driver"]) or "-", r["smi_driver"] or "-",
                           r["label_cuda"] or "-", ",".join(r["dra_cuda"]) or "-", r["smi_cuda"] or "-",
                           r["upgrade_state"] or "-"] for r in rows])


def judge(facts, probe_out=None, passive_reason=""):
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    entry = acc.vendor(facts["vendor"])
    if not facts["node_total"]:
        if facts.get("other"):
            res.set(PARTIAL, "accelerators outside the vendor table need manual verification")
            res.note("Nodes carry accelerators this collection has no vendor entry for (%s); verify their driver and "
                     "runtime management by hand." % ", ".join(sorted(set(r for v in facts["other"].values() for r in v))))
            return res.to_dict()
        res.set(NOT_APPLICABLE, "the cluster has no accelerators")
        res.note("No node advertises accelerators (no device plugin resource, no feature-discovery labels, no DRA "
                 "devices), so there are no accelerator drivers to manage; the requirement applies once accelerator "
                 "nodes join.")
        return res.to_dict()
    if facts["vendor"] != "nvidia":
        res.finding("accelerator nodes", True, "%d %s node(s)" % (facts["node_total"], entry["display"]))
        res.set(PARTIAL, "%s driver management needs manual verification" % entry["display"])
        res.note("This check knows how NVIDIA drivers are managed and reported (GPU operator, feature discovery labels, "
                 "DRA attributes, nvidia-smi); for %s accelerators verify the driver/runtime mechanism by hand."
                 % entry["display"])
        return res.to_dict()
    installed, problems = _operator_findings(res, facts)
    rc = facts.get("runtime_class")
    res.finding("RuntimeClass nvidia", True if rc else None, "handler %s" % rc["handler"] if rc else
                "absent (fine with CDI or a default nvidia runtime)")
    probed = (probe_out or {}).get("nodes") or {}
    rows = [compare_node(n, facts["dra"].get(n["name"]), probed[n["name"]]["seen"] if n["name"] in probed else None)
            for n in facts["nodes"]]
    labelled = [r for r in rows if r["label_driver"]]
    dra_nodes = [r for r in rows if r["dra_driver"]]
    res.finding("driver version labels (GPU feature discovery)", bool(labelled) or None,
                "%d of %d sampled node(s) carry %s" % (len(labelled), len(rows), DRIVER_LABEL))
    res.finding("driver version in DRA ResourceSlices", bool(dra_nodes) or None,
                "%d of %d sampled node(s) publish driverVersion (driver %s)" % (len(dra_nodes), len(rows), DRA_DRIVER)
                if dra_nodes else "no NVIDIA DRA driver slice publishes driverVersion for the sampled nodes")
    failed = [r for r in rows if (r["upgrade_state"] or "") == "upgrade-failed"]
    if any(r["upgrade_state"] for r in rows):
        states = ", ".join("%s=%s" % (r["node"], r["upgrade_state"] or "-") for r in rows)
        res.finding("driver upgrade state", not failed, states)
    if failed:
        problems.append("driver upgrade failed on %s" % ", ".join(r["node"] for r in failed))
    mismatches = []
    for row in rows:
        for what, ok, detail in row["checks"]:
            res.finding("%s: %s" % (row["node"], what), ok, detail)
            if ok is False:
                mismatches.append("%s: %s (%s)" % (row["node"], what, detail))
    res.add_evidence("driver and CUDA versions (%d of %d accelerator nodes sampled)" % (len(rows), facts["node_total"]),
                     _table(rows), "table")
    if facts.get("operator") and facts["operator"].get("daemonsets"):
        res.add_evidence("GPU operator operand DaemonSets", facts["operator"]["daemonsets"], "yaml")
    mechanism = installed or bool(labelled) or bool(dra_nodes)
    if not mechanism:
        res.set(NOT_IMPLEMENTED, "no driver/runtime management mechanism and no machine-readable driver version")
        res.note("No GPU operator ClusterPolicy, no GPU feature discovery driver labels (%s) and no DRA driverVersion "
                 "attributes were found. Install the NVIDIA GPU operator (role k8s_ai.conformance.gpu_operator) and the "
                 "NVIDIA DRA driver (role k8s_ai.conformance.dra_driver), which report driver and CUDA versions per "
                 "node." % DRIVER_LABEL)
        return res.to_dict()
    dra_note = ("The driver version is also exposed through DRA (ResourceSlice attribute driverVersion), the "
                "mechanism the checklist prefers." if dra_nodes else
                "The driver version is not exposed through DRA: install the NVIDIA DRA driver (its ResourceSlices "
                "carry driverVersion and cudaDriverVersion), which the checklist prefers once available.")
    if facts["node_total"] > len(rows):
        res.note("%d of %d accelerator nodes were sampled (max_nodes)." % (len(rows), facts["node_total"]))
    if mismatches:
        res.set(PARTIAL, "reported driver/CUDA versions do not match the nodes")
        res.note("Mismatches: %s. Labels are written by GPU feature discovery when its pod starts: after a driver "
                 "upgrade restart it (or let the GPU operator's upgrade controller do the upgrade) so labels follow "
                 "the running driver." % "; ".join(mismatches[:6]))
    elif problems:
        res.set(PARTIAL, "the driver/runtime mechanism is installed but not healthy")
        res.note("; ".join(problems) + ".")
    elif passive_reason:
        res.finding("versions match nvidia-smi on the nodes", None, passive_reason)
        res.set(PARTIAL, "a driver/runtime mechanism reports versions; they were not compared with the running driver")
        res.note("Passive mode does not start pods; run in active mode to compare the reported versions with "
                 "nvidia-smi inside a one-GPU pod on each sampled node.")
    else:
        _judge_probe(res, rows, probe_out or {})
    res.note(dra_note)
    if (probe_out or {}).get("timed_out"):
        res.note((probe_out or {})["timed_out"])
    if (probe_out or {}).get("cleanup"):
        res.note(probe_out["cleanup"])
    return res.to_dict()


def _judge_probe(res, rows, probe_out):
    nodes = probe_out.get("nodes") or {}
    for node, reason in sorted((probe_out.get("skipped") or {}).items()):
        res.finding("%s: nvidia-smi probe" % node, None, "skipped: %s" % reason)
    for node, item in sorted(nodes.items()):
        if item.get("log"):
            res.add_evidence("%s nvidia-smi output (pod %s/%s)" % (node, probe_out.get("namespace"), item["pod"]),
                             item["log"], "text")
    verified = [r for r in rows if r["node"] in nodes and r["smi_driver"] and
                any(ok for _what, ok, _d in r["checks"])]
    unverified = [r["node"] for r in rows if r not in verified]
    for row in rows:
        if row["node"] in nodes and not row["smi_driver"]:
            res.finding("%s: nvidia-smi probe" % row["node"], False, "no driver version printed: %s" %
                        nodes[row["node"]]["state"])
    if verified and not unverified:
        res.set(IMPLEMENTED, "reported driver/CUDA versions match nvidia-smi on every sampled node (%s)"
                % ", ".join(sorted(set(r["smi_driver"] for r in verified))))
    elif verified:
        res.set(PARTIAL, "versions were verified on %d of %d sampled nodes" % (len(verified), len(rows)))
        res.note("Not verified on %s: see the findings (probe skipped, did not run or nothing to compare)."
                 % ", ".join(unverified))
    else:
        res.set(PARTIAL, "the reported versions could not be compared with the running driver")
        res.note("No sampled node ran the nvidia-smi probe to a result; see the findings for why (free GPUs, "
                 "image pulls, taints).")


def deadline_seconds(opts):
    return 2 * opts.wait_timeout + 120


def run(cluster, opts):
    facts = observe(cluster, opts)
    if not opts.active or not facts["node_total"] or facts["vendor"] != "nvidia":
        return judge(facts, passive_reason=opts.passive_reason())
    return judge(facts, probe(cluster, opts, facts, cl.Deadline(deadline_seconds(opts))))
