# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What the accelerator checks share: their options, accelerator discovery, probe pod manifests, pure
predicates over pods and jobs, and the parser for what probe containers print.

Probe pods are plain, unprivileged pods (privileged containers see every device by design, which would
prove nothing). They tolerate the vendor's accelerator taint (or the `tolerations` option), can be pinned
to a node through required node affinity on `metadata.name` (never `spec.nodeName`, which would skip the
scheduler and with it device and DRA allocation) and carry the user's `node_selector`.
"""
from __future__ import annotations

import copy
import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import result as result_mod

# Paired with the doc fragment k8s_ai.conformance.checks (keep both in step).
CHECK_ARG_SPEC = {
    "mode": {"type": "str", "default": "active", "choices": ["active", "passive"]},
    "wait_timeout": {"type": "int", "default": 300},
    "wait_sleep": {"type": "float", "default": 2.0},
    "node_selector": {"type": "dict"},
    "tolerations": {"type": "list", "elements": "dict"},
    "probe_image": {"type": "str", "default": "ubuntu:22.04"},
    "vendor": {"type": "str", "default": "auto", "choices": list(acc.VENDOR_CHOICES)},
    "vendors_present": {"type": "list", "elements": "str", "choices": [v for v in acc.VENDOR_CHOICES if v != "auto"]},
}

LISTING_MARK = "LISTING_EXIT: "
RESULT_FOUND = "ACCELERATOR_FOUND"
RESULT_MISSING = "ACCELERATOR_MISSING"
PROBE_LABEL = "k8s-ai-conformance/probe"
# Probe namespaces are named aic-<check>-<random> (cluster.probe_namespace_name).
PROBE_NAMESPACE_PREFIX = "aic-"
TERMINAL_PHASES = ("Succeeded", "Failed")


# The checks whose verdict is about each vendor's accelerators: with `vendor: auto` on a cluster with several
# vendors they run once per vendor. The others use the vendor table at most to pick probe resources.
PER_VENDOR_CHECKS = ("dra_support", "secure_accelerator_access", "accelerator_metrics")
DETECTED_BEFORE = "detected from node resources, labels or DRA drivers (vendors_present, by accelerator_info)"


def run_check(requirement_id, run, params, check_mode):
    """Connect, run one requirement check and return (result, None), or (None, message) for an error that
    stops it (connection, permission, missing API, interrupted probe). The module's main() turns the
    message into fail_json; an unmet requirement is a result, never an error.

    With `vendor: auto` (the default) on a cluster with accelerators of several vendors, the check runs once
    per vendor and the results are combined (result.combine_vendors): each vendor's accelerators must meet
    the requirement. `vendors_present` (what the accelerator_info module detected, the conform role passes it)
    replaces the detection: one vendor present is then checked as if named, which spares the reads of the other
    vendors' nodes."""
    opts = CheckOptions(params, check_mode)
    try:
        cluster = cl.Cluster.connect(params)
        if opts.vendor == "auto" and opts.vendors_present is not None:
            vendors = list(opts.vendors_present)
            if len(vendors) == 1:
                return run(cluster, opts.for_vendor(vendors[0], DETECTED_BEFORE)), None
        elif opts.vendor == "auto" and requirement_id in PER_VENDOR_CHECKS:
            vendors = present_vendors(cluster)
        else:
            vendors = []
        if len(vendors) < 2 or requirement_id not in PER_VENDOR_CHECKS:
            return run(cluster, opts), None
        per_vendor = []
        for name in vendors:
            per_vendor.append((acc.vendor(name)["display"], run(cluster, opts.for_vendor(name))))
        return result_mod.combine_vendors(requirement_id, per_vendor, mode=per_vendor[0][1]["mode"]), None
    except cl.ClusterError as err:
        return None, "%s: %s" % (requirement_id, err)
    except (cl.ProbeInterrupted, KeyboardInterrupt) as err:
        what = str(err) or "interrupted (SIGINT)"
        cleanup = getattr(err, "cleanup", None) or "no probe objects had been created"
        return None, "%s: %s; %s. Run the check again to get a verdict" % (requirement_id, what, cleanup)


def present_vendors(cluster):
    """The table's vendors whose accelerators the cluster has (see accelerator_presence); [] when the nodes may
    not be listed (the check's own node list then names the missing rule)."""
    try:
        return accelerator_presence(cluster)["vendors"]
    except cl.ForbiddenError:
        return []


def accelerator_presence(cluster):
    """{"vendors", "node_count", "nodes_sampled", "dra_drivers"}: the table's vendors whose accelerators the
    cluster has, from node resources and labels (the bounded node sample) and the drivers of the ResourceSlices
    of the newest served resource.k8s.io version (one bounded list: drivers publish a slice per node, a sample
    of 500 names them all on clusters of one driver per vendor). Not being allowed to list slices leaves the
    nodes alone to decide; not being allowed to list nodes raises cl.ForbiddenError."""
    sample = sample_nodes(cluster)
    nodes = sample["nodes"]
    cluster._node_sample_for_next_read = sample
    drivers = set()
    served = cluster.discovery().served_versions("resource.k8s.io")
    for version in ("v1", "v1beta2", "v1beta1"):
        if version in served:
            if cluster.discovery().has("resource.k8s.io/" + version, "resourceslices"):
                try:
                    slices = cluster.list("resource.k8s.io/" + version, "resourceslices", max_items=500)
                except cl.ClusterError:
                    slices = []   # not allowed to list slices: nodes alone decide
                drivers = set((s.get("spec") or {}).get("driver") for s in slices
                              if (s.get("spec") or {}).get("devices"))
            break
    return {"vendors": acc.detect_vendors(nodes, drivers), "node_count": sample["total"],
            "nodes_sampled": sample["sampled"], "dra_drivers": sorted(d for d in drivers if d)}


class CheckOptions(object):
    """Module parameters as the checks read them. `active` is False in passive mode and in check mode."""

    def __init__(self, params, check_mode=False):
        self.params = params
        self.mode = params.get("mode") or "active"
        self.check_mode = bool(check_mode)
        self.wait_timeout = int(params.get("wait_timeout") or 300)
        self.wait_sleep = float(params.get("wait_sleep") or 2.0)
        self.node_selector = {str(k): str(v) for k, v in (params.get("node_selector") or {}).items()}
        self.tolerations = params.get("tolerations")
        self.probe_image = params.get("probe_image") or "ubuntu:22.04"
        self.vendor = params.get("vendor") or "auto"
        vendors_present = params.get("vendors_present")
        self.vendors_present = None if vendors_present is None else [str(v) for v in vendors_present]
        self.vendor_reason = None   # set when run_check picked the vendor (several present, or told which)

    def for_vendor(self, name, reason=None):
        """These options with the vendor set to `name` (one vendor's run on a cluster with several, or the one
        vendor present)."""
        params = dict(self.params, vendor=name)
        out = CheckOptions(params, self.check_mode)
        out.vendor_reason = reason or "detected from node resources, labels or DRA drivers (one of several vendors present)"
        return out

    @property
    def active(self):
        return self.mode == "active" and not self.check_mode

    def passive_reason(self):
        """Why probes do not run (for the findings), or "" when they do."""
        if self.check_mode:
            return "check mode: only read-only checks ran, no probe workloads were created"
        if self.mode == "passive":
            return "mode=passive: only read-only checks ran, no probe workloads were created"
        return ""

    def pod_tolerations(self, entry):
        return copy.deepcopy(self.tolerations) if self.tolerations is not None else acc.default_tolerations(entry)

    def get(self, key, default=None):
        value = self.params.get(key)
        return default if value is None else value


# --------------------------------------------------------------------------------------------- observe
# Nodes one list request reads. Up to this many nodes a check sees every node; beyond, it sees this many plus up
# to this many of each vendor's labelled accelerator nodes, so its passive cost stops growing with the cluster.
NODE_SAMPLE = 1000


def sample_nodes(cluster, vendor="auto"):
    """{"nodes", "total", "sampled"}: every node on clusters of at most NODE_SAMPLE nodes (one request); on larger
    ones the first NODE_SAMPLE plus up to NODE_SAMPLE nodes carrying each vendor's presence label (nodes come back
    in name order, so a large CPU pool could otherwise hide every accelerator node). A fixed number of requests
    whatever the cluster's size; `total` is the API's count of all nodes (None when it does not say).

    A `vendor` of the table limits the labelled reads to that vendor's label: a check of one vendor needs no
    other vendor's nodes beyond the first page (what it says about other vendors' accelerators then rests on the
    first page alone). "auto" reads every vendor's.

    A sample that present_vendors() just read is used once more instead of being read again (the check's first
    look at its nodes, milliseconds later); any later call reads the nodes anew."""
    handed_over = getattr(cluster, "_node_sample_for_next_read", None)
    if handed_over is not None:
        cluster._node_sample_for_next_read = None
        return handed_over
    nodes, token, remaining = cluster.list_page("v1", "nodes", limit=NODE_SAMPLE)
    if not token:
        return {"nodes": nodes, "total": len(nodes), "sampled": False}
    seen = {n["metadata"]["name"] for n in nodes}
    for name, entry in acc.VENDORS.items():
        label = entry["labels"].get("present")
        if not label or vendor not in ("auto", name):
            continue
        labelled, _token, _remaining = cluster.list_page("v1", "nodes", label_selector=label, limit=NODE_SAMPLE)
        for node in labelled:
            if node["metadata"]["name"] not in seen:
                seen.add(node["metadata"]["name"])
                nodes.append(node)
    total = len(seen) if remaining is None else NODE_SAMPLE + int(remaining)
    return {"nodes": nodes, "total": total, "sampled": True}


def observe_accelerators(cluster, requested_vendor, reason=None):
    """Accelerator facts every check starts from (a bounded sample of nodes, see sample_nodes; pods are not listed).

    Returns {"vendor", "vendor_reason", "nodes": [summaries], "node_count", "nodes_sampled", "other": {...}}.
    """
    sample = sample_nodes(cluster, requested_vendor)
    nodes = sample["nodes"]
    drivers = ()
    name, resolved = acc.resolve_vendor(requested_vendor, nodes, drivers)
    reason = reason or resolved
    entry = acc.vendor(name)
    return {
        "vendor": name,
        "vendor_reason": reason,
        "nodes": acc.accelerator_nodes(nodes, entry),
        "node_count": sample["total"],
        "nodes_sampled": sample["sampled"],
        "other": acc.other_accelerators(nodes),
    }


def free_accelerators(cluster, entry, node_summary):
    """Allocatable device-plugin accelerators minus the requests of non-terminal pods on the node
    (how carlory's suite computes free GPUs). One selective pod list per node asked about."""
    allocatable = node_summary.get("allocatable") or 0
    if not allocatable:
        return 0
    return max(0, allocatable - accelerators_in_use(cluster, entry, node_summary["name"])[0])


def accelerators_in_use(cluster, entry, node_name):
    """(accelerators the node's non-terminal pods request, how many of them pods in probe namespaces request).
    One selective pod list."""
    used = by_probes = 0
    for pod in cluster.list("v1", "pods", field_selector="spec.nodeName=%s,status.phase!=Succeeded,status.phase!=Failed"
                            % node_name):
        wanted = pod_requests(pod, entry["resources"])
        used += wanted
        if pod["metadata"].get("namespace", "").startswith(PROBE_NAMESPACE_PREFIX):
            by_probes += wanted
    return used, by_probes


def pod_requests(pod, resources):
    """Accelerators a pod asks for: max(init containers) vs sum(containers), as the scheduler counts."""
    def of(container):
        res = container.get("resources") or {}
        total = 0
        for resource in resources:
            value = acc.quantity_int((res.get("limits") or {}).get(resource))
            if value is None:
                value = acc.quantity_int((res.get("requests") or {}).get(resource))
            total += value or 0
        return total
    spec = pod.get("spec") or {}
    main = sum(of(c) for c in spec.get("containers") or [])
    init = max([of(c) for c in spec.get("initContainers") or []] or [0])
    return max(main, init)


# --------------------------------------------------------------------------------------------- manifests
def probe_script(entry):
    """Shell the probe containers run: the upstream test's RESULT line (any vendor device node visible),
    the device nodes, then the vendor's listing command and its exit status (127: not injected)."""
    return ('if ls {glob}; then echo "RESULT: {found}"; else echo "RESULT: {missing}"; fi; '
            '{listing}; echo "LISTING_EXIT: $?"').format(glob=entry["devices"].get("result_glob") or entry["devices"]["glob"],
                                                         found=RESULT_FOUND, missing=RESULT_MISSING,
                                                         listing=entry["listing"]["command"])


def container(name, image, script, env=None, limits=None, claims=None):
    """An unprivileged container running `script` with sh -c."""
    out = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False},
    }
    if env:
        out["env"] = [{"name": k, "value": str(v)} for k, v in sorted(env.items())]
    resources = {}
    if limits:
        resources["limits"] = {k: str(v) for k, v in limits.items()}
    if claims:
        resources["claims"] = [{"name": c} for c in claims]
    if resources:
        out["resources"] = resources
    return out


def pod_manifest(name, containers, opts, entry, node=None, resource_claims=None, runtime_class=None,
                 labels=None, restart_policy="Never"):
    """A probe pod: tolerations, node selector, optional pin to `node`, optional DRA claims."""
    spec = {
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 5,
        "automountServiceAccountToken": False,
        "tolerations": opts.pod_tolerations(entry),
        "containers": containers,
    }
    if opts.node_selector:
        spec["nodeSelector"] = dict(opts.node_selector)
    if node:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}
    if resource_claims:
        spec["resourceClaims"] = resource_claims
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    meta_labels = {PROBE_LABEL: name}
    meta_labels.update(labels or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": meta_labels}, "spec": spec}


# --------------------------------------------------------------------------------------------- predicates
def pod_done(pod):
    return bool(pod) and (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def pod_started(pod):
    return bool(pod) and (pod.get("status") or {}).get("phase") in ("Running",) + TERMINAL_PHASES


def condition(obj, ctype):
    for cond in (obj or {}).get("status", {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def pod_unschedulable(pod):
    cond = condition(pod, "PodScheduled")
    return bool(cond) and cond.get("status") == "False" and cond.get("reason") == "Unschedulable"


# Container waiting reasons of a steady failure: such a pod will not become ready by itself.
STEADY_FAILURES = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                   "CreateContainerError", "InvalidImageName", "RunContainerError")


def pod_ready(pod):
    cond = condition(pod, "Ready")
    return (pod.get("status") or {}).get("phase") == "Running" and bool(cond) and cond.get("status") == "True"


def pod_starting(pod):
    """True for a pod on its way to Ready: Pending or Running with containers not ready yet, not unschedulable,
    no container in a steady failure and none restarted (a node that just joined has such pods for a while)."""
    status = pod.get("status") or {}
    if pod_ready(pod) or status.get("phase") not in ("Pending", "Running") or pod_unschedulable(pod):
        return False
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    if any(((cs.get("state") or {}).get("waiting") or {}).get("reason") in STEADY_FAILURES for cs in statuses):
        return False
    return not any(int(cs.get("restartCount") or 0) > 0 for cs in status.get("containerStatuses") or [])


def pod_bound(pod):
    return bool((pod or {}).get("spec", {}).get("nodeName"))


def job_done(job):
    for ctype in ("Complete", "Failed"):
        cond = condition(job, ctype)
        if cond and cond.get("status") == "True":
            return True
    return False


def summarize_pod(pod):
    """One line about where a pod is stuck (for timeout messages and findings)."""
    if not pod:
        return "pod not found"
    status = pod.get("status") or {}
    parts = ["phase=%s" % status.get("phase", "?")]
    sched = condition(pod, "PodScheduled")
    if sched and sched.get("status") != "True":
        message = (sched.get("message") or "")[:200]
        parts.append("PodScheduled=%s (%s: %s)" % (sched.get("status"), sched.get("reason", ""), message))
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            parts.append("%s waiting: %s %s" % (cs.get("name"), waiting.get("reason", ""),
                                                (waiting.get("message") or "")[:120]))
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated:
            parts.append("%s exited %s" % (cs.get("name"), terminated.get("exitCode")))
    if (pod.get("spec") or {}).get("nodeName"):
        parts.append("node=%s" % pod["spec"]["nodeName"])
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------- output
def text_table(columns, rows):
    """Rows as an aligned plain-text table (evidence kind "table" carries this text)."""
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)


def parse_probe_output(entry, text):
    """What a probe container saw, from its log.

    {"result": FOUND|MISSING|None, "device_paths": [every path ls printed], "devices": [accelerator
    device nodes], "listed": [{index, name, uuid}], "listing_exit": int|None, "visible": int}
    `visible` is the number of accelerators the container could see by either signal.
    """
    lines = (text or "").splitlines()
    result = None
    listing_exit = None
    paths = []
    for line in lines:
        stripped = line.strip()
        match = re.match(r"^RESULT: (%s|%s)$" % (RESULT_FOUND, RESULT_MISSING), stripped)
        if match:
            result = match.group(1)
            continue
        match = re.match(r"^LISTING_EXIT: (\d+)$", stripped)
        if match:
            listing_exit = int(match.group(1))
            continue
        if stripped.startswith("/dev/"):
            paths.append(stripped)
    devices = acc.device_nodes(entry, paths)
    listed = acc.parse_listing(entry, text)
    return {
        "result": result,
        "device_paths": paths,
        "devices": devices,
        "listed": listed,
        "listing_exit": listing_exit,
        "visible": max(len(devices), len(listed)),
    }
