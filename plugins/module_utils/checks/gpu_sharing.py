# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""gpu_sharing: at least one GPU sharing strategy is provided, exposed as schedulable resources, and works.

observe (read-only) -> probe (active only) -> judge (pure). Rules: ../shared/spec/requirements.md, gpu_sharing.

* Passive: GPU nodes (one paged node list) and what GPU feature discovery says about them:
  nvidia.com/gpu.sharing-strategy, nvidia.com/gpu.replicas, the product's `-SHARED` suffix, nvidia.com/gpu.count
  (physical) against the advertised capacity (physical x replicas for time-slicing/MPS); MIG labels
  (nvidia.com/mig.capable, mig.strategy, mig.config, mig.config.state) and nvidia.com/mig-<g>g.<mem>gb resources.
  The device plugin's sharing config: the GPU operator's ClusterPolicy spec.devicePlugin.config (when its CRD is
  served) and the device-plugin DaemonSets' config-manager ConfigMap, read as the plugin reads it
  (sharing.timeSlicing / sharing.mps, resources[{name, replicas}]). The nvidia-mig-manager DaemonSet. DRA: the
  `mig.nvidia.com` DeviceClass and MIG devices in a bounded sample of ResourceSlices; the stage of the
  DRAPartitionableDevices feature gate for the cluster's minor (the checklist's dynamic-sharing clause waits
  for it to be GA).
* Active (one strategy, never reconfiguring the cluster): time-slicing/MPS: on one shared node, physical + 1 pods
  each requesting one GPU; all must run and list one GPU each, with fewer distinct UUIDs than pods. Else MIG:
  pods requesting a MIG resource must list MIG devices. Else DRA: two pods referencing one shared ResourceClaim
  see the same UUID; on its own that is reported as Partially Implemented (see the docs: a claim shared by the
  pods of one namespace is not a platform mechanism that exposes fractions of a GPU to independent workloads).
"""
from __future__ import absolute_import, division, print_function

import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra_mod
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

__metaclass__ = type

REQUIREMENT_ID = "gpu_sharing"
GPU = "nvidia.com/gpu"
SHARED_RESOURCE = "nvidia.com/gpu.shared"
MIG_PREFIX = "nvidia.com/mig-"
MIG_RESOURCE = re.compile(r"^nvidia\.com/mig-(\d+)g\.(\d+)gb$")
SHARING_STRATEGIES = ("time-slicing", "mps")
CONFIG_LABEL = "nvidia.com/device-plugin.config"
DEVICE_PLUGIN_SELECTORS = ("app=nvidia-device-plugin-daemonset", "app.kubernetes.io/name=nvidia-device-plugin")
MIG_MANAGER_SELECTOR = "app=nvidia-mig-manager"
MIG_DEVICE_CLASS = "mig.nvidia.com"
MAX_NODES_SHOWN = 20
MAX_SLICES = 50
MAX_CONFIGMAPS = 3
# KEP-4815 DRAPartitionableDevices: alpha (off) 1.33-1.35, beta (on by default) 1.36 (kubernetes.io, "DRA features").
# The checklist's dynamic-sharing clause applies once it is GA; None = not in that release.
PARTITIONABLE_GATE = {31: None, 32: None, 33: "alpha", 34: "alpha", 35: "alpha", 36: "beta"}
MIG_LISTING = re.compile(r"^\s*MIG (?P<profile>\S+)\s+Device\s+(?P<index>\d+): \(UUID: (?P<uuid>MIG-[^)\s]+)\)")
APP = "aic-share"

ARG_SPEC = {
    "strategy": {"type": "str", "default": "auto", "choices": ["auto", "time-slicing", "mig", "dra"]},
    "max_pods": {"type": "int", "default": 9},
    "hold_seconds": {"type": "int", "default": 600},
}

DRA_SHARED_CLAIM_NOTE = (
    "Two pods sharing one ResourceClaim is core DRA behaviour: any DRA driver allows it, only pods of the claim's "
    "namespace can join, and nothing exposes a fraction of a GPU or oversubscribes it for independent workloads. "
    "It is not counted as a GPU sharing strategy on its own; time-slicing or MPS in the device plugin, MIG "
    "partitions as schedulable resources, or MIG devices / a GpuConfig sharing strategy through the DRA driver are.")


# --------------------------------------------------------------------------------------------- pure helpers
def parse_sharing_config(text):
    """The sharing settings of one k8s-device-plugin config file (api/config/v1):
    {"strategy": time-slicing|mps|none, "replicas", "resource", "mig_strategy", "error"}."""
    out = {"strategy": "none", "replicas": 1, "resource": GPU, "mig_strategy": "none", "error": ""}
    if yaml is None:
        out["error"] = "PyYAML is missing"
        return out
    try:
        doc = yaml.safe_load(text or "") or {}
    except yaml.YAMLError as err:
        out["error"] = "not valid YAML: %s" % str(err).splitlines()[0]
        return out
    if not isinstance(doc, dict):
        out["error"] = "not a mapping"
        return out
    out["mig_strategy"] = str((doc.get("flags") or {}).get("migStrategy") or "none")
    sharing = doc.get("sharing") or {}
    for strategy, key in (("mps", "mps"), ("time-slicing", "timeSlicing")):
        section = sharing.get(key)
        if not isinstance(section, dict):
            continue
        for res in section.get("resources") or ():
            if not isinstance(res, dict) or res.get("name") != GPU:
                continue
            replicas = acc.quantity_int(res.get("replicas"))
            if replicas is None or replicas < 2:
                out["error"] = "sharing.%s: replicas must be >= 2 (got %r); the plugin refuses this config" % (
                    key, res.get("replicas"))
                continue
            out.update(strategy=strategy, replicas=replicas,
                       resource=SHARED_RESOURCE if section.get("renameByDefault") else GPU)
        if out["strategy"] != "none":
            break
    return out


def config_source(daemonset):
    """How a device-plugin DaemonSet gets its config: {"configmap", "namespace", "label", "default"} from its
    config-manager container and the ConfigMap volume at CONFIG_FILE_SRCDIR, or None."""
    spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    volumes = {v.get("name"): v for v in spec.get("volumes") or ()}
    for container in list(spec.get("initContainers") or ()) + list(spec.get("containers") or ()):
        argv = list(container.get("command") or ()) + list(container.get("args") or ())
        if not argv or argv[0].rsplit("/", 1)[-1] != "config-manager":
            continue
        env = {e.get("name"): e.get("value") for e in container.get("env") or ()}
        srcdir = (env.get("CONFIG_FILE_SRCDIR") or "/available-configs").rstrip("/")
        for mount in container.get("volumeMounts") or ():
            if (mount.get("mountPath") or "").rstrip("/") == srcdir:
                name = ((volumes.get(mount.get("name")) or {}).get("configMap") or {}).get("name")
                if name:
                    return {"configmap": name, "namespace": daemonset["metadata"].get("namespace"),
                            "label": env.get("NODE_LABEL") or CONFIG_LABEL, "default": env.get("DEFAULT_CONFIG") or ""}
    return None


def mig_resources(allocatable):
    """{resource: count} of the MIG resources a node advertises (nvidia.com/mig-<g>g.<mem>gb)."""
    out = {}
    for name, value in (allocatable or {}).items():
        if MIG_RESOURCE.match(name):
            count = acc.quantity_int(value)
            if count:
                out[name] = count
    return out


def node_sharing(node):
    """What a node says about GPU sharing (labels and status), or None when it has no NVIDIA GPUs."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = node.get("status") or {}
    allocatable = status.get("allocatable") or {}
    capacity = status.get("capacity") or {}
    gpu = acc.quantity_int(allocatable.get(GPU))
    shared_res = acc.quantity_int(allocatable.get(SHARED_RESOURCE))
    physical = acc.quantity_int(labels.get("nvidia.com/gpu.count"))
    migs = mig_resources(allocatable)
    present = str(labels.get("nvidia.com/gpu.present") or "").lower() == "true"
    if not (gpu or shared_res or physical or migs or present):
        return None
    product = labels.get("nvidia.com/gpu.product") or ""
    strategy = labels.get("nvidia.com/gpu.sharing-strategy") or ""
    replicas = acc.quantity_int(labels.get("nvidia.com/gpu.replicas"))
    advertised = shared_res if shared_res else gpu
    shared_label = strategy in SHARING_STRATEGIES or product.endswith("-SHARED")
    multiplied = bool(shared_label and physical and replicas and replicas > 1 and advertised == physical * replicas)
    return {
        "name": meta.get("name"),
        "product": product,
        "physical": physical,
        "allocatable": advertised or 0,
        "capacity": acc.quantity_int(capacity.get(SHARED_RESOURCE if shared_res else GPU)),
        "resource": SHARED_RESOURCE if shared_res else GPU,
        "strategy": strategy or "",
        "replicas": replicas,
        "shared_label": shared_label,
        "multiplied": multiplied,
        "config_label": labels.get(CONFIG_LABEL) or "",
        "mig_capable": str(labels.get("nvidia.com/mig.capable") or "").lower() == "true",
        "mig_strategy": labels.get("nvidia.com/mig.strategy") or "",
        "mig_config": labels.get("nvidia.com/mig.config") or "",
        "mig_state": labels.get("nvidia.com/mig.config.state") or "",
        "mig_resources": migs,
        "mig_single": labels.get("nvidia.com/mig.strategy") == "single" and "MIG" in product and bool(gpu),
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "taints": list((node.get("spec") or {}).get("taints") or []),
    }


def slice_mig_devices(slices):
    """{node: [device names]} of MIG devices in NVIDIA DRA ResourceSlices (attribute type == "mig")."""
    out = {}
    for obj in slices:
        spec = obj.get("spec") or {}
        if spec.get("driver") != "gpu.nvidia.com":
            continue
        for device in spec.get("devices") or ():
            kind = dra_mod.device_attribute(device, "gpu.nvidia.com", "type")
            if dra_mod.attribute_value(kind) == "mig" if kind is not None else False:
                out.setdefault(spec.get("nodeName") or spec.get("pool", {}).get("name") or "?", []).append(
                    device.get("name"))
    return out


def parse_mig_listing(text):
    """MIG devices printed by `nvidia-smi -L`: [{profile, index, uuid}]."""
    found = []
    for line in (text or "").splitlines():
        match = MIG_LISTING.match(line)
        if match:
            found.append(match.groupdict())
    return found


def gate_stage(minor):
    """(stage, note) of DRAPartitionableDevices for a Kubernetes minor."""
    if minor is None:
        return None, "unknown Kubernetes minor"
    stage = PARTITIONABLE_GATE.get(minor, "beta or later" if minor > 36 else None)
    if stage is None:
        return None, "DRAPartitionableDevices does not exist in 1.%d (alpha since 1.33)" % minor
    return stage, "DRAPartitionableDevices is %s in 1.%d; the checklist's dynamic-sharing clause applies once it is GA" % (
        stage, minor)


def timeslice_outcome(pods, physical):
    """Judge the time-slicing probe: pods = [{name, phase, uuids}]. (passed, detail)."""
    running = [p for p in pods if p.get("phase") == "Running"]
    uuids = [u for p in running for u in p.get("uuids") or ()]
    distinct = sorted(set(uuids))
    if len(running) < len(pods):
        return False, "%d of %d pods ran (%s)" % (len(running), len(pods), "; ".join(
            "%s: %s" % (p["name"], p.get("detail") or p.get("phase")) for p in pods if p.get("phase") != "Running")[:400])
    if any(len(p.get("uuids") or ()) != 1 for p in running):
        return False, "every pod must see exactly one GPU: %s" % ", ".join(
            "%s=%d" % (p["name"], len(p.get("uuids") or ())) for p in running)
    if len(distinct) >= len(pods):
        return False, "%d pods saw %d distinct GPUs: no GPU was shared" % (len(pods), len(distinct))
    return True, "%d pods, each with one GPU, ran at once on %d physical GPU(s) (%d distinct UUIDs%s)" % (
        len(pods), physical or len(distinct), len(distinct),
        "" if not physical or len(distinct) <= physical else "; more than the node's count label")


def mig_outcome(pods, resource):
    """Judge the MIG probe: every pod Running with exactly one MIG device, no MIG device in two pods."""
    ok = [p for p in pods if p.get("phase") == "Running" and len(p.get("mig") or ()) == 1]
    uuids = [m["uuid"] for p in ok for m in p["mig"]]
    parents = set(u for p in ok for u in p.get("uuids") or ())
    profiles = ", ".join(sorted(set(m["profile"] for p in ok for m in p["mig"]))) or "none"
    if len(ok) < len(pods):
        return False, "%d of %d pods on %s listed exactly one MIG device (%s)" % (len(ok), len(pods), resource, "; ".join(
            "%s: %s" % (p["name"], p.get("detail") or p.get("phase")) for p in pods if p not in ok)[:400])
    if len(set(uuids)) < len(uuids):
        return False, "two pods listed the same MIG device: partitions are not isolated"
    return True, "%d pods on %s each got their own MIG device (%s) on %d parent GPU(s)" % (
        len(ok), resource, profiles, len(parents))


# --------------------------------------------------------------------------------------------- observe
def observe(cluster, opts):
    sample = pr.sample_nodes(cluster, opts.vendor)    # bounded on large clusters, like every other check's node read
    nodes = sample["nodes"]
    vendor, reason = acc.resolve_vendor(opts.vendor, nodes)
    reason = opts.vendor_reason or reason
    facts = {"vendor": vendor, "vendor_reason": reason, "node_count": sample["total"], "nodes": [], "other": {},
             "minor": (cluster.version() or {}).get("minor_int"), "cluster_policy": None, "plugins": [],
             "configs": [], "mig_manager": [], "accelerator_nodes": 0,
             "dra": {"version": None, "mig_class": False, "mig_devices": {}, "classes": []}}
    facts["other"] = acc.other_accelerators(nodes)
    facts["accelerator_nodes"] = len(acc.accelerator_nodes(nodes, acc.vendor(vendor)))
    if vendor != "nvidia":
        return facts
    facts["nodes"] = sorted((s for s in (node_sharing(n) for n in nodes) if s), key=lambda s: s["name"])
    disc = cluster.discovery()
    if disc.has("nvidia.com/v1", "clusterpolicies"):
        policies = cluster.list("nvidia.com/v1", "clusterpolicies", max_items=5)
        if policies:
            policy = sorted(policies, key=lambda p: p["metadata"].get("creationTimestamp") or "")[0]
            spec = policy.get("spec") or {}
            facts["cluster_policy"] = {
                "name": policy["metadata"]["name"],
                "namespace": (policy.get("status") or {}).get("namespace") or "",
                "state": (policy.get("status") or {}).get("state") or "",
                "config": ((spec.get("devicePlugin") or {}).get("config") or {}),
                "mig_strategy": (spec.get("mig") or {}).get("strategy") or "",
                "mig_manager": (spec.get("migManager") or {}).get("enabled"),
            }
    for selector in DEVICE_PLUGIN_SELECTORS:
        for ds in cluster.list("apps/v1", "daemonsets", label_selector=selector, max_items=10):
            src = config_source(ds)
            status = ds.get("status") or {}
            facts["plugins"].append({"name": "%s/%s" % (ds["metadata"].get("namespace"), ds["metadata"]["name"]),
                                     "source": src, "ready": status.get("numberReady", 0),
                                     "desired": status.get("desiredNumberScheduled", 0)})
    wanted = []
    policy = facts["cluster_policy"]
    if policy and policy["config"].get("name"):
        wanted.append((policy["namespace"] or _plugin_namespace(facts), policy["config"]["name"],
                       policy["config"].get("default") or "", "ClusterPolicy %s" % policy["name"]))
    for plugin in facts["plugins"]:
        if plugin["source"]:
            src = plugin["source"]
            wanted.append((src["namespace"], src["configmap"], src["default"], "DaemonSet %s" % plugin["name"]))
    seen = set()
    for namespace, name, default, referrer in wanted:
        if (namespace, name) in seen or len(seen) >= MAX_CONFIGMAPS or not namespace:
            continue
        seen.add((namespace, name))
        cm = cluster.get("v1", "configmaps", name, namespace=namespace)
        entry = {"namespace": namespace, "name": name, "referrer": referrer, "default": default, "found": cm is not None,
                 "keys": {}}
        for key, text in sorted(((cm or {}).get("data") or {}).items()):
            entry["keys"][key] = parse_sharing_config(text)
        facts["configs"].append(entry)
    facts["mig_manager"] = ["%s/%s" % (d["metadata"].get("namespace"), d["metadata"]["name"])
                            for d in cluster.list("apps/v1", "daemonsets", label_selector=MIG_MANAGER_SELECTOR, max_items=5)]
    version = dra_mod.best_version(disc.served_versions(dra_mod.GROUP))
    if version and version in ("v1", "v1beta2", "v1beta1"):
        api = "%s/%s" % (dra_mod.GROUP, version)
        facts["dra"]["version"] = version
        if disc.has(api, "deviceclasses"):
            classes = [c["metadata"]["name"] for c in cluster.list(api, "deviceclasses", max_items=100)]
            facts["dra"]["classes"] = sorted(classes)
            facts["dra"]["mig_class"] = MIG_DEVICE_CLASS in classes
        if disc.has(api, "resourceslices"):
            slices = cluster.list(api, "resourceslices", limit=MAX_SLICES, max_items=MAX_SLICES)
            facts["dra"]["mig_devices"] = slice_mig_devices(slices)
            facts["dra"]["gpu_slices"] = sum(1 for s in slices if (s.get("spec") or {}).get("driver") == "gpu.nvidia.com"
                                             and (s.get("spec") or {}).get("devices"))
    return facts


def _plugin_namespace(facts):
    for plugin in facts["plugins"]:
        return plugin["name"].split("/", 1)[0]
    return ""


# --------------------------------------------------------------------------------------------- plan
def strategies(facts):
    """What the passive facts show: {"time-slicing": [nodes], "mps": [...], "mig": [...], "dra-mig": [...],
    "claimed": [nodes whose labels claim sharing but whose capacity is not multiplied]}."""
    out = {"time-slicing": [], "mps": [], "mig": [], "dra-mig": sorted(facts["dra"]["mig_devices"]), "claimed": []}
    for node in facts["nodes"]:
        if node["multiplied"]:
            out["mps" if node["strategy"] == "mps" else "time-slicing"].append(node["name"])
        elif node["shared_label"]:
            out["claimed"].append(node["name"])
        if node["mig_resources"] or node["mig_single"]:
            out["mig"].append(node["name"])
    return out


def configured(facts):
    """[(where, key, settings)] of config keys that enable time-slicing/MPS."""
    out = []
    for entry in facts["configs"]:
        for key, settings in entry["keys"].items():
            if settings["strategy"] != "none":
                out.append(("%s/%s" % (entry["namespace"], entry["name"]), key, settings))
    return out


def time_sliced_candidates(facts, opts):
    """Schedulable time-sliced/MPS nodes the probe may use (physical + 1 <= max_pods), fewest GPUs first."""
    found = strategies(facts)
    by_name = {n["name"]: n for n in facts["nodes"]}
    shared = [by_name[n] for n in found["time-slicing"] + found["mps"] if not by_name[n]["unschedulable"]]
    fits = [n for n in shared if (n["physical"] or 0) + 1 <= int(opts.get("max_pods", 9))]
    return shared, sorted(fits, key=lambda n: (n["physical"], n["name"]))


def choose_probe(facts, opts, free=None):
    """(strategy, node or None) the active probe uses, or (None, reason). `free` ({node: free replicas}, for some
    candidates) prefers a time-sliced node where physical + 1 replicas are free."""
    found = strategies(facts)
    wanted = opts.get("strategy", "auto")
    by_name = {n["name"]: n for n in facts["nodes"]}
    if wanted in ("auto", "time-slicing"):
        shared, fits = time_sliced_candidates(facts, opts)
        if fits:
            free = free or {}
            room = [n for n in fits if free.get(n["name"], n["allocatable"]) >= (n["physical"] or 0) + 1]
            return "time-slicing", (room or fits)[0]
        if wanted == "time-slicing":
            return None, ("no schedulable node advertises time-sliced GPUs" if not shared else
                          "every time-sliced node has more than max_pods - 1 GPUs (raise max_pods)")
    if wanted in ("auto", "mig"):
        migs = [by_name[n] for n in found["mig"] if not by_name[n]["unschedulable"]]
        if migs:
            return "mig", migs[0]
        if wanted == "mig":
            return None, "no schedulable node advertises MIG resources"
    if wanted in ("auto", "dra") and facts["dra"].get("gpu_slices") and "gpu.nvidia.com" in facts["dra"]["classes"]:
        return "dra", None
    return None, "no sharing strategy is advertised and no NVIDIA DRA driver publishes GPUs"


# --------------------------------------------------------------------------------------------- probe
def _holding_script(entry, seconds):
    return "%s; echo \"LISTING_EXIT: $?\"; sleep %d" % (entry["listing"]["command"], seconds)


def _tolerations(opts, entry, node):
    """The vendor's tolerations plus the chosen node's NoSchedule taints (the probe is pinned there)."""
    out = opts.pod_tolerations(entry)
    for taint in (node or {}).get("taints") or ():
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(t.get("key") == taint.get("key") for t in out):
            out.append({"key": taint.get("key"), "operator": "Exists", "effect": taint.get("effect")})
    return out


def _pod(name, opts, entry, node, limits=None, claims=None, resource_claims=None, hold=600):
    ctr = pr.container("probe", opts.probe_image, _holding_script(entry, hold), limits=limits, claims=claims)
    pod = pr.pod_manifest(name, [ctr], opts, entry, node=node["name"] if node else None,
                          resource_claims=resource_claims, labels={"app": APP}, restart_policy="Never")
    if node:
        pod["spec"]["tolerations"] = _tolerations(opts, entry, node)
    return pod


def _running_with_output(cluster, namespace, names):
    """Pods as {name: pod}, once every pod is Running and printed its listing (None until then)."""
    pods = {p["metadata"]["name"]: p for p in cluster.list("v1", "pods", namespace=namespace, label_selector="app=%s" % APP)}
    if any(pr.pod_done(pods.get(n)) for n in names):
        return pods     # a pod ended: no point waiting
    if not all((pods.get(n) or {}).get("status", {}).get("phase") == "Running" for n in names):
        return None
    for name in names:
        if pr.LISTING_MARK not in cluster.pod_logs(namespace, name, container="probe"):
            return None
    return pods


def free_replicas(cluster, node):
    """The node's advertised GPUs (replicas) minus the requests of its non-terminal pods (one pod list)."""
    pods = cluster.list("v1", "pods", field_selector="spec.nodeName=%s,status.phase!=Succeeded,status.phase!=Failed"
                        % node["name"])
    return max(0, (node["allocatable"] or 0) - sum(pr.pod_requests(p, (node["resource"],)) for p in pods))


def probe(cluster, opts, facts, deadline):
    entry = acc.vendor(facts["vendor"])
    free = {}
    if opts.get("strategy", "auto") in ("auto", "time-slicing"):
        for node in time_sliced_candidates(facts, opts)[1][:3]:
            free[node["name"]] = free_replicas(cluster, node)
    strategy, node = choose_probe(facts, opts, free)
    out = {"strategy": strategy, "node": node["name"] if isinstance(node, dict) else None, "pods": [], "timed_out": "",
           "cleanup": "", "passed": False, "detail": "", "namespace": None}
    if strategy is None:
        out["skipped"] = node
        return out
    hold = int(opts.get("hold_seconds", 600))
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep,
                           cleanup_timeout=opts.wait_timeout) as ns:
        out["namespace"] = ns.name
        manifests = []
        if strategy == "time-slicing":
            count = (node["physical"] or 1) + 1
            manifests = [_pod("%s-%d" % (APP, i), opts, entry, node, limits={node["resource"]: 1}, hold=hold)
                         for i in range(count)]
        elif strategy == "mig":
            resource = sorted(node["mig_resources"])[0] if node["mig_resources"] else GPU
            out["resource"] = resource
            manifests = [_pod("%s-%d" % (APP, i), opts, entry, node, limits={resource: 1}, hold=hold) for i in range(2)]
        else:
            version = facts["dra"]["version"]
            claim = {"apiVersion": "%s/%s" % (dra_mod.GROUP, version), "kind": "ResourceClaim",
                     "metadata": {"name": "%s-claim" % APP},
                     "spec": {"devices": {"requests": [dra_mod.device_request(version, "gpu", "gpu.nvidia.com")]}}}
            cluster.create(claim["apiVersion"], "resourceclaims", claim, ns.name)
            manifests = [_pod("%s-%d" % (APP, i), opts, entry, None, claims=["gpu"],
                              resource_claims=[{"name": "gpu", "resourceClaimName": "%s-claim" % APP}], hold=hold)
                         for i in range(2)]
        names = [m["metadata"]["name"] for m in manifests]
        for manifest in manifests:
            cluster.create("v1", "pods", manifest, ns.name)
        try:
            cl.wait_until("%d probe pods Running with their GPU listing" % len(names),
                          lambda: _running_with_output(cluster, ns.name, names), bool,
                          opts.wait_timeout, opts.wait_sleep, deadline)
        except cl.WaitTimeout as err:
            out["timed_out"] = str(err)
        listed = cluster.list("v1", "pods", namespace=ns.name, label_selector="app=%s" % APP)
        pods = {p["metadata"]["name"]: p for p in listed}
        for name in names:
            pod = pods.get(name)
            text = cluster.pod_logs(ns.name, name, container="probe") if pr.pod_started(pod) else ""
            seen = pr.parse_probe_output(entry, text)
            out["pods"].append({"name": name, "phase": (pod or {}).get("status", {}).get("phase", "missing"),
                                "node": (pod or {}).get("spec", {}).get("nodeName") or "",
                                "uuids": [g["uuid"] for g in seen["listed"]], "mig": parse_mig_listing(text),
                                "detail": pr.summarize_pod(pod)})
    out["cleanup"] = ns.cleanup_note
    if strategy == "time-slicing":
        out["passed"], out["detail"] = timeslice_outcome(out["pods"], node["physical"])
    elif strategy == "mig":
        out["passed"], out["detail"] = mig_outcome(out["pods"], out.get("resource"))
    else:
        uuids = [tuple(p["uuids"]) for p in out["pods"] if p["phase"] == "Running"]
        out["passed"] = len(uuids) == 2 and uuids[0] == uuids[1] and len(uuids[0]) == 1
        out["detail"] = ("both pods of the shared claim saw %s" % uuids[0][0]) if out["passed"] else (
            "the shared claim's pods saw %s" % (", ".join("/".join(u) or "nothing" for u in uuids) or "nothing"))
    return out


# --------------------------------------------------------------------------------------------- judge (pure)
def judge(facts, probe_out=None, passive_reason=""):
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    if facts["vendor"] != "nvidia":
        return _judge_other_vendor(res, facts)
    nodes = facts["nodes"]
    if not nodes and not facts["dra"].get("gpu_slices"):
        res.finding("GPU nodes", False, "no node advertises NVIDIA GPUs")
        if facts["other"]:
            res.set(NOT_IMPLEMENTED, "no NVIDIA GPU nodes; other accelerators need manual verification")
            res.note("Only accelerators this check has no sharing knowledge of were found (%s); verify their sharing "
                     "mechanism by hand." % ", ".join(sorted(set(r for v in facts["other"].values() for r in v))))
            return res.to_dict()
        res.set(NOT_APPLICABLE, "the cluster has no accelerators")
        res.note("No node has GPUs or other accelerators, so there is no accelerator to share (hardware: none "
                 "present); add GPU nodes and configure time-slicing, MPS or MIG to implement gpu_sharing.")
        return res.to_dict()
    found = strategies(facts)
    conf = configured(facts)
    _passive_findings(res, facts, found, conf)
    stage, stage_note = gate_stage(facts["minor"])
    res.finding("DRAPartitionableDevices stage", None, stage_note)
    if stage and stage != "GA":
        res.note("Dynamic GPU sharing through DRA (partitionable devices) is not required yet: %s." % stage_note)
    advertised = found["time-slicing"] or found["mps"] or found["mig"] or found["dra-mig"]
    if passive_reason:
        res.finding("sharing demonstrated with pods", None, passive_reason)
        if advertised:
            res.set(PARTIAL, "GPU sharing is advertised (%s); not demonstrated (passive)" % _names(found))
            res.note("Run in active mode to show pods sharing a GPU.")
        else:
            res.set(NOT_IMPLEMENTED, "no GPU sharing strategy is advertised by any node")
            _fix_notes(res, facts, found, conf)
        return res.to_dict()
    out = probe_out or {}
    if out.get("skipped"):
        res.finding("sharing demonstrated with pods", None, "skipped: %s" % out["skipped"])
        if advertised:
            res.set(PARTIAL, "GPU sharing is advertised (%s) but could not be probed" % _names(found))
            res.note("The probe was skipped: %s." % out["skipped"])
        else:
            res.set(NOT_IMPLEMENTED, "no GPU sharing strategy is advertised by any node")
            _fix_notes(res, facts, found, conf)
        return res.to_dict()
    _probe_evidence(res, out)
    label = {"time-slicing": "time-slicing: physical + 1 pods on %s" % out.get("node"),
             "mig": "MIG: pods on %s list MIG devices" % out.get("node"),
             "dra": "DRA: two pods sharing one ResourceClaim see the same GPU"}[out["strategy"]]
    res.finding(label, out["passed"], out["detail"])
    if out.get("timed_out"):
        res.note(out["timed_out"])
    if out.get("cleanup"):
        res.note(out["cleanup"])
    if out["passed"] and out["strategy"] in ("time-slicing", "mig"):
        strategy = out["strategy"]
        if strategy == "time-slicing":
            node = next((n for n in nodes if n["name"] == out["node"]), {})
            strategy = node.get("strategy") or "time-slicing"
        res.set(IMPLEMENTED, "%s shown with pods on %s" % (strategy, out["node"]))
        return res.to_dict()
    if out["passed"]:
        res.set(PARTIAL, "two pods shared one GPU through a shared ResourceClaim; no sharing strategy is advertised")
        res.note(DRA_SHARED_CLAIM_NOTE)
        _fix_notes(res, facts, found, conf)
        return res.to_dict()
    res.set(PARTIAL if advertised else NOT_IMPLEMENTED, "the %s probe did not show GPU sharing" % out["strategy"])
    if out["strategy"] == "time-slicing":
        res.note("Nodes advertise time-sliced GPUs but physical + 1 pods did not all run sharing them: check that "
                 "the device plugin really runs with the sharing config (capacity, pod events).")
    _fix_notes(res, facts, found, conf)
    return res.to_dict()


def _names(found):
    parts = []
    for key in ("time-slicing", "mps", "mig", "dra-mig"):
        if found[key]:
            parts.append("%s on %s" % (key, ", ".join(found[key][:5]) + (" ..." if len(found[key]) > 5 else "")))
    return "; ".join(parts)


def _passive_findings(res, facts, found, conf):
    nodes = facts["nodes"]
    res.finding("time-slicing/MPS advertised (capacity = physical x replicas)", bool(found["time-slicing"] or found["mps"]),
                ", ".join(found["time-slicing"] + found["mps"]) or "no node")
    if found["claimed"]:
        res.finding("sharing labels match capacity", False, "; ".join(
            "%s: %s replicas=%s, %s allocatable %s for %s physical" % (
                n["name"], n["strategy"] or n["product"], n["replicas"], n["resource"], n["allocatable"], n["physical"])
            for n in nodes if n["name"] in found["claimed"][:10]))
    res.finding("MIG resources advertised", bool(found["mig"]) if found["mig"] else None,
                ", ".join("%s (%s)" % (n["name"], ", ".join("%s=%d" % kv for kv in sorted(n["mig_resources"].items()))
                                       or "mig.strategy single") for n in nodes if n["name"] in found["mig"][:10])
                or "no node")
    if facts["dra"]["version"]:
        res.finding("DRA MIG devices", bool(found["dra-mig"]) if found["dra-mig"] else None,
                    "DeviceClass %s %s; MIG devices in slices on %s" % (
                        MIG_DEVICE_CLASS, "present" if facts["dra"]["mig_class"] else "absent",
                        ", ".join(found["dra-mig"][:5]) or "no node"))
    if conf:
        res.finding("device plugin sharing config", True, "; ".join(
            "%s key %s: %s x%d" % (where, key, s["strategy"], s["replicas"]) for where, key, s in conf[:5]))
    for entry in facts["configs"]:
        if not entry["found"]:
            res.finding("device plugin config %s/%s" % (entry["namespace"], entry["name"]), False,
                        "referenced by %s but not found" % entry["referrer"])
    rows = [[n["name"], n["product"], n["physical"], n["resource"], n["allocatable"], n["strategy"] or "-",
             n["replicas"] if n["replicas"] is not None else "-", n["config_label"] or "-",
             ",".join("%s=%d" % kv for kv in sorted(n["mig_resources"].items())) or "-"] for n in nodes[:MAX_NODES_SHOWN]]
    res.add_evidence("GPU nodes and sharing (%d of %d shown)" % (len(rows), len(nodes)), pr.text_table(
        ["node", "product", "gpu.count", "resource", "allocatable", "sharing", "replicas", "config label", "MIG"], rows),
        "table")
    if facts["cluster_policy"] or facts["configs"] or facts["plugins"]:
        res.add_evidence("sharing configuration", {
            "clusterPolicy": facts["cluster_policy"], "devicePlugins": facts["plugins"],
            "configMaps": [dict(e, keys={k: {kk: vv for kk, vv in v.items() if vv} for k, v in e["keys"].items()})
                           for e in facts["configs"]],
            "migManager": facts["mig_manager"]}, "yaml")
    if facts["dra"]["version"]:
        res.add_evidence("DRA", {"version": facts["dra"]["version"], "deviceClasses": facts["dra"]["classes"],
                                 "migDevices": {k: v[:10] for k, v in facts["dra"]["mig_devices"].items()}}, "yaml")


def _fix_notes(res, facts, found, conf):
    if found["claimed"]:
        res.note("Nodes %s label GPUs as shared but advertise only their physical count: the device plugin is not "
                 "running with the sharing config GPU feature discovery uses (restart it, check its config-manager "
                 "and the ConfigMap key)." % ", ".join(found["claimed"][:5]))
    elif conf:
        where = ", ".join(sorted(set("%s (key %s)" % (w, k) for w, k, _s in conf)))[:300]
        res.note("A sharing config exists (%s) but no node advertises shared GPUs: point the device plugin at it "
                 "(ClusterPolicy spec.devicePlugin.config name/default, or label nodes nvidia.com/device-plugin.config="
                 "<key>) and make sure its config-manager picked it up." % where)
    else:
        res.note("Configure a GPU sharing strategy: time-slicing or MPS in the device plugin config (ClusterPolicy "
                 "spec.devicePlugin.config naming a ConfigMap with sharing.timeSlicing.resources[{name: nvidia.com/gpu, "
                 "replicas: N}]), or MIG on MIG-capable GPUs (mig.strategy and nvidia.com/mig.config).")


def _probe_evidence(res, out):
    if out.get("pods"):
        rows = [[p["name"], p["phase"], p["node"], ", ".join(p["uuids"]) or "-",
                 ", ".join(m["uuid"] for m in p.get("mig") or ()) or "-"] for p in out["pods"]]
        res.add_evidence("probe pods (%s)" % out["strategy"], pr.text_table(["pod", "phase", "node", "GPU UUIDs", "MIG UUIDs"],
                                                                            rows), "table")


def _judge_other_vendor(res, facts):
    entry = acc.vendor(facts["vendor"])
    res.finding("GPU sharing of %s accelerators" % entry["display"], None,
                "this check knows NVIDIA's sharing mechanisms (time-slicing, MPS, MIG) only")
    res.set(NOT_IMPLEMENTED, "no sharing mechanism this check can verify for %s accelerators" % entry["display"])
    res.note("%d %s accelerator node(s) found; verify their sharing or partitioning mechanism (for example AMD GPU "
             "compute partitioning) by hand and set the status manually." % (facts["accelerator_nodes"], entry["display"]))
    return res.to_dict()


def deadline_seconds(opts):
    return 3 * opts.wait_timeout + 180


def run(cluster, opts):
    facts = observe(cluster, opts)
    if not opts.active or facts["vendor"] != "nvidia" or not (facts["nodes"] or facts["dra"].get("gpu_slices")):
        return judge(facts, passive_reason=opts.passive_reason())
    deadline = cl.Deadline(deadline_seconds(opts))
    return judge(facts, probe(cluster, opts, facts, deadline))
