# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""cluster_autoscaling: detect the node autoscaler, optionally scale an accelerator group up and down, judge.

Passive: cluster-autoscaler (its pods, the `cluster-autoscaler-status` ConfigMap, TriggeredScaleUp /
NotTriggerScaleUp / ScaleDown events), Karpenter (karpenter.sh/v1 NodePools and NodeClaims), Cluster API
autoscaler annotations on MachineDeployments and the OpenShift ClusterAutoscaler; accelerator node groups
with min and max where readable. Active (opt-in `scale_test`, it costs money on a cloud): F+1 pause pods
of one accelerator each, no nodeSelector or affinity, where F is the free accelerators; a new accelerator
node must appear and run the pending pod; once the pods are deleted the node must go away.
Verdict: up and down observed -> Implemented; up only -> Partially; the autoscaler ignores accelerator
pods -> Not Implemented; no autoscaler -> N/A with the justification (the report's
conditional_must_not_applicable policy decides what PRODUCT.yaml says).
"""
from __future__ import annotations

import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "cluster_autoscaling"
STATUS_CONFIGMAP = "cluster-autoscaler-status"
NODE_GROUP_LABELS = ("eks.amazonaws.com/nodegroup", "cloud.google.com/gke-nodepool", "kubernetes.azure.com/agentpool",
                     "karpenter.sh/nodepool", "worker.gardener.cloud/pool")
CAPI_MIN = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
CAPI_MAX = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
CA_SELECTORS = ("app.kubernetes.io/name=cluster-autoscaler", "app=cluster-autoscaler")
COST_WARNING = ("scale_test adds at least one accelerator node to the cluster for the length of the test (up to "
                "scale_up_timeout + scale_down_timeout); on a cloud this is billed")

# Paired with the module's DOCUMENTATION (keep both in step).
ARG_SPEC = {
    "scale_test": {"type": "bool", "default": False},
    "scale_up_timeout": {"type": "int", "default": 1200},
    "scale_down_timeout": {"type": "int", "default": 1800},
    "pending_timeout": {"type": "int", "default": 120},
    "autoscaler_namespace": {"type": "str", "default": "kube-system"},
    "node_group_labels": {"type": "list", "elements": "str", "default": list(NODE_GROUP_LABELS)},
    "pause_image": {"type": "str", "default": "registry.k8s.io/pause:3.10"},
}


# --------------------------------------------------------------------------------------------- parsing (pure)
def parse_status(text):
    """The cluster-autoscaler-status ConfigMap's `status` -> {"format", "autoscaler_status", "node_groups":
    [{name, min, max, target, ready, registered}]}. YAML since cluster-autoscaler 1.30, text before."""
    import re
    import yaml  # imported here: the judge stays importable without PyYAML
    out = {"format": "unknown", "autoscaler_status": None, "node_groups": []}
    try:
        doc = yaml.safe_load(text or "")
    except yaml.YAMLError:
        doc = None
    if isinstance(doc, dict) and ("nodeGroups" in doc or "clusterWide" in doc):
        out["format"] = "yaml"
        out["autoscaler_status"] = doc.get("autoscalerStatus")
        for group in doc.get("nodeGroups") or []:
            health = group.get("health") or {}
            counts = (health.get("nodeCounts") or {}).get("registered") or {}
            out["node_groups"].append({"name": group.get("name"), "min": health.get("minSize"),
                                       "max": health.get("maxSize"), "target": health.get("cloudProviderTarget"),
                                       "registered": counts.get("total"), "ready": counts.get("ready"),
                                       "scale_up": (group.get("scaleUp") or {}).get("status"),
                                       "scale_down": (group.get("scaleDown") or {}).get("status")})
        return out
    if text and "Cluster-autoscaler status" in text:
        out["format"] = "text"
        for match in re.finditer(r"Name:\s+(\S+)\s*\n\s*Health:.*?cloudProviderTarget=(\d+).*?minSize=(\d+),\s*"
                                 r"maxSize=(\d+)", text, re.S):
            out["node_groups"].append({"name": match.group(1), "target": int(match.group(2)),
                                       "min": int(match.group(3)), "max": int(match.group(4))})
    return out


def group_of(node, labels):
    for key in labels:
        value = ((node.get("metadata") or {}).get("labels") or {}).get(key)
        if value:
            return value
    return None


def nodepool_accelerators(nodepool, resources):
    """Does a Karpenter NodePool provision accelerator nodes (limits, requirements or taints say so)?"""
    spec = nodepool.get("spec") or {}
    if any(r in (spec.get("limits") or {}) for r in resources):
        return True
    template = (spec.get("template") or {}).get("spec") or {}
    for req in template.get("requirements") or []:
        if "gpu" in str(req.get("key", "")).lower() or "accelerator" in str(req.get("key", "")).lower():
            return True
    return any(str(t.get("key", "")).endswith("/gpu") for t in template.get("taints") or [])


# --------------------------------------------------------------------------------------------- observe
def observe(cluster, opts):
    version = cluster.version()
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    entry = acc.vendor(accel["vendor"]) if accel["vendor"] in acc.VENDORS else acc.vendor("nvidia")
    labels = list(opts.get("node_group_labels") or NODE_GROUP_LABELS)
    facts = {"git_version": version.get("gitVersion", ""), "vendor": entry["name"], "resource": entry["resources"][0],
             "accelerator_nodes": [{"name": n["name"], "count": n["count"], "allocatable": n["allocatable"],
                                    "group": group_of({"metadata": {"labels": n["labels"]}}, labels)}
                                   for n in accel["nodes"]],
             "node_count": accel["node_count"], "cluster_autoscaler": {}, "karpenter": {}, "capi": [], "openshift": []}
    ca = facts["cluster_autoscaler"]
    ca["pods"] = []
    for selector in CA_SELECTORS:
        pods = cluster.list("v1", "pods", label_selector=selector)
        if pods:
            ca["pods"] = [{"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"],
                           "phase": (p.get("status") or {}).get("phase"),
                           "images": [c.get("image") for c in (p.get("spec") or {}).get("containers") or []]}
                          for p in pods]
            break
    namespace = opts.get("autoscaler_namespace", "kube-system")
    if ca["pods"]:
        namespace = ca["pods"][0]["namespace"] if namespace == "kube-system" else namespace
    try:
        cm = cluster.get("v1", "configmaps", STATUS_CONFIGMAP, namespace)
    except cl.ForbiddenError:
        cm, ca["status_note"] = None, "reading ConfigMap %s/%s is forbidden" % (namespace, STATUS_CONFIGMAP)
    ca["status_text"] = ((cm or {}).get("data") or {}).get("status") if cm else None
    ca["status"] = parse_status(ca["status_text"]) if cm else None
    ca["events"] = []
    for reason in ("TriggeredScaleUp", "NotTriggerScaleUp", "ScaleDown"):
        try:
            for ev in cluster.list("v1", "events", field_selector="reason=%s" % reason, max_items=5):
                ca["events"].append("%s %s/%s: %s" % (reason, (ev.get("involvedObject") or {}).get("kind"),
                                                      (ev.get("involvedObject") or {}).get("name"), ev.get("message", "")))
        except cl.ClusterError:
            break
    disc = cluster.discovery()
    if "v1" in disc.served_versions("karpenter.sh"):
        pools = cluster.list("karpenter.sh/v1", "nodepools") if disc.has("karpenter.sh/v1", "nodepools") else []
        claims = cluster.list("karpenter.sh/v1", "nodeclaims") if disc.has("karpenter.sh/v1", "nodeclaims") else []
        facts["karpenter"] = {
            "nodepools": [{"name": p["metadata"]["name"], "limits": (p.get("spec") or {}).get("limits") or {},
                           "accelerators": nodepool_accelerators(p, entry["resources"])} for p in pools],
            "nodeclaims": [{"name": c["metadata"]["name"],
                            "nodepool": (c["metadata"].get("labels") or {}).get("karpenter.sh/nodepool"),
                            "node": (c.get("status") or {}).get("nodeName")} for c in claims]}
    for version in ("v1beta1", "v1beta2"):
        if disc.has("cluster.x-k8s.io/%s" % version, "machinedeployments"):
            for md in cluster.list("cluster.x-k8s.io/%s" % version, "machinedeployments"):
                ann = md["metadata"].get("annotations") or {}
                if CAPI_MIN in ann or CAPI_MAX in ann:
                    facts["capi"].append({"name": md["metadata"]["name"], "namespace": md["metadata"].get("namespace"),
                                          "min": ann.get(CAPI_MIN), "max": ann.get(CAPI_MAX),
                                          "gpu_type": ann.get("capacity.cluster-autoscaler.kubernetes.io/gpu-type"),
                                          "gpu_count": ann.get("capacity.cluster-autoscaler.kubernetes.io/gpu-count")})
            break
    if disc.has("autoscaling.openshift.io/v1", "clusterautoscalers"):
        facts["openshift"] = [c["metadata"]["name"] for c in cluster.list("autoscaling.openshift.io/v1", "clusterautoscalers")]
    facts["groups"] = accelerator_groups(facts)
    return facts


def accelerator_groups(facts):
    """Node groups known to provide accelerators: [{source, name, min, max, accelerators: bool|None}]."""
    gpu_groups = {n["group"] for n in facts["accelerator_nodes"] if n.get("group")}
    out = []
    status = (facts["cluster_autoscaler"] or {}).get("status") or {}
    for group in status.get("node_groups") or []:
        out.append({"source": "cluster-autoscaler", "name": group["name"], "min": group.get("min"),
                    "max": group.get("max"), "accelerators": group["name"] in gpu_groups or None})
    for pool in (facts.get("karpenter") or {}).get("nodepools") or []:
        out.append({"source": "karpenter", "name": pool["name"], "min": None, "max": pool["limits"].get(facts["resource"]),
                    "accelerators": pool["accelerators"] or pool["name"] in gpu_groups or None})
    for md in facts.get("capi") or []:
        out.append({"source": "cluster-api", "name": md["name"], "min": md["min"], "max": md["max"],
                    "accelerators": bool(md.get("gpu_count")) or md["name"] in gpu_groups or None})
    return out


def detected(facts):
    """Names of the autoscalers seen."""
    ca = facts["cluster_autoscaler"]
    out = []
    if ca.get("pods") or ca.get("status") or ca.get("events"):
        out.append("cluster-autoscaler")
    if facts.get("karpenter"):
        out.append("Karpenter")
    if facts.get("capi"):
        out.append("Cluster API autoscaler")
    if facts.get("openshift"):
        out.append("OpenShift ClusterAutoscaler")
    return out


# --------------------------------------------------------------------------------------------- probe
def _free(cluster, facts, entry):
    free = 0
    for node in pr.observe_accelerators(cluster, entry["name"])["nodes"]:
        if not node.get("unschedulable"):
            free += pr.free_accelerators(cluster, entry, node)
    return free


def scale_deployment(name, replicas, image, resource, tolerations):
    """F+1 pause pods of one accelerator each; tolerations only, no nodeSelector or affinity."""
    labels = {pr.PROBE_LABEL: name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                                           "tolerations": tolerations,
                                           "containers": [{"name": "pause", "image": image,
                                                           "resources": {"limits": {resource: "1"}}}]}}}}


def _accel_node_names(cluster, entry):
    return {n["metadata"]["name"] for n in cluster.list("v1", "nodes")
            if acc.summarize_node(n, entry) is not None}


def probe(cluster, opts, facts, deadline):
    entry = acc.vendor(facts["vendor"])
    resource = facts["resource"]
    out = {"ran": False, "scaled_up": False, "pod_on_new_node": False, "scaled_down": False, "details": [],
           "events": [], "nodes_before": [], "new_nodes": [], "cleanup": "", "namespace": None}
    initial = _accel_node_names(cluster, entry)
    out["nodes_before"] = sorted(initial)
    free = _free(cluster, facts, entry)
    replicas = free + 1
    out.update({"free": free, "replicas": replicas, "resource": resource})
    started = time.monotonic()
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep,
                           cleanup_timeout=opts.wait_timeout) as ns:
        out["namespace"] = ns.name
        out["ran"] = True
        tolerations = opts.pod_tolerations(entry)
        cluster.create("apps/v1", "deployments", scale_deployment("aic-scale", replicas, opts.get("pause_image"),
                                                                  resource, tolerations), ns.name)
        selector = "%s=aic-scale" % pr.PROBE_LABEL

        def pods():
            return cluster.list("v1", "pods", namespace=ns.name, label_selector=selector)
        try:
            cl.wait_until("a probe pod to be Unschedulable (PodScheduled=False)", pods,
                          lambda items: any(pr.pod_unschedulable(p) for p in items or []),
                          opts.get("pending_timeout", 120), opts.wait_sleep, deadline,
                          summarize=lambda items: "%d pods" % len(items or []))
            out["details"].append("a pod was Unschedulable after %ds" % (time.monotonic() - started))
            nodes = cl.wait_until("a new accelerator node (not one of %s)" % ", ".join(sorted(initial)),
                                  lambda: _accel_node_names(cluster, entry) - initial, bool,
                                  opts.get("scale_up_timeout", 1200), opts.wait_sleep, deadline)
            out["scaled_up"] = True
            out["new_nodes"] = sorted(nodes)
            out["details"].append("new node(s) %s after %ds" % (", ".join(sorted(nodes)), time.monotonic() - started))
            running = cl.wait_until("every probe pod Running, one on a new node", pods,
                                    lambda items: len(items or []) >= replicas and all(
                                        (p.get("status") or {}).get("phase") == "Running" for p in items)
                                    and any((p.get("spec") or {}).get("nodeName") in nodes for p in items),
                                    opts.get("scale_up_timeout", 1200), opts.wait_sleep, deadline,
                                    summarize=lambda items: "; ".join(pr.summarize_pod(p) for p in (items or [])
                                                                      if (p.get("status") or {}).get("phase") != "Running"))
            out["pod_on_new_node"] = True
            out["pods"] = [[p["metadata"]["name"], p["spec"].get("nodeName"), p["status"].get("phase")] for p in running]
            out["details"].append("all %d pods Running after %ds" % (replicas, time.monotonic() - started))
        except cl.WaitTimeout as err:
            out["details"].append(str(err))
        out["events"] = ["%s %s: %s" % (e.get("reason"), (e.get("involvedObject") or {}).get("name"), e.get("message"))
                         for e in cluster.list("v1", "events", namespace=ns.name)
                         if e.get("reason") in ("TriggeredScaleUp", "NotTriggerScaleUp", "FailedScheduling")]
        cluster.delete("apps/v1", "deployments", "aic-scale", ns.name, propagation="Foreground")
    out["cleanup"] = ns.cleanup_note
    if out["scaled_up"]:
        down_started = time.monotonic()
        try:
            # the autoscaler may remove any empty node of the group, not necessarily the one it added (it removed
            # the group's older node in the simulated demo): scale-down is the count returning to what it was
            remaining = cl.wait_until("the accelerator node count to return to %d (scale-down; it is %d with the new "
                                      "node(s) %s)" % (len(initial), len(initial) + len(out["new_nodes"]),
                                                       ", ".join(out["new_nodes"])),
                                      lambda: _accel_node_names(cluster, entry), lambda names: len(names) <= len(initial),
                                      opts.get("scale_down_timeout", 1800), opts.wait_sleep, deadline)
            removed = sorted((initial | set(out["new_nodes"])) - set(remaining))
            out["scaled_down"] = True
            out["removed_nodes"] = removed
            out["details"].append("scaled down %ds after the pods were deleted: node(s) %s removed" % (
                time.monotonic() - down_started, ", ".join(removed)))
            out["events"].extend("%s %s: %s" % (e.get("reason"), (e.get("involvedObject") or {}).get("name"), e.get("message"))
                                 for e in cluster.list("v1", "events", field_selector="reason=ScaleDown", max_items=10)
                                 if (e.get("involvedObject") or {}).get("name") in removed)
        except cl.WaitTimeout as err:
            out["details"].append(str(err))
            out["cleanup"] = ("the probe's pods are gone but the group still has the node(s) it added (%s) after %ss: "
                              "the autoscaler has not scaled down (yet); check that it does, or remove the extra "
                              "node by hand, as it costs money"
                              % (", ".join(out["new_nodes"]), opts.get("scale_down_timeout", 1800)))
    return out


# --------------------------------------------------------------------------------------------- judge
def judge(facts, probe_out=None, passive_reason=""):
    res = Result(REQUIREMENT_ID, mode="active" if probe_out else "passive")
    seen = detected(facts)
    ca = facts["cluster_autoscaler"]
    res.finding("cluster-autoscaler", bool(ca.get("pods") or ca.get("status")) or None,
                "pods: %s; status ConfigMap: %s" % (
                    ", ".join("%s/%s (%s)" % (p["namespace"], p["name"], p["phase"]) for p in ca.get("pods") or []) or "none",
                    ("%s format, %d node group(s)" % (ca["status"]["format"], len(ca["status"]["node_groups"])))
                    if ca.get("status") else (ca.get("status_note") or "not found")))
    if facts.get("karpenter"):
        kp = facts["karpenter"]
        res.finding("Karpenter", True, "karpenter.sh/v1: %d NodePool(s), %d NodeClaim(s)"
                    % (len(kp["nodepools"]), len(kp["nodeclaims"])))
    if facts.get("capi"):
        res.finding("Cluster API autoscaler annotations", True, ", ".join(m["name"] for m in facts["capi"]))
    if facts.get("openshift"):
        res.finding("OpenShift ClusterAutoscaler", True, ", ".join(facts["openshift"]))
    groups = facts.get("groups") or []
    if groups:
        rows = [[g["source"], g["name"], g["min"], g["max"], {True: "yes", None: "unknown", False: "no"}[g["accelerators"]]]
                for g in groups]
        res.add_evidence("node groups", pr.text_table(["SOURCE", "GROUP", "MIN", "MAX", "ACCELERATORS"], rows), "table")
    if ca.get("status_text"):
        res.add_evidence("ConfigMap %s" % STATUS_CONFIGMAP, ca["status_text"], "text")
    if ca.get("events"):
        res.add_evidence("autoscaler events", "\n".join(ca["events"]), "text")
    if facts["accelerator_nodes"]:
        res.add_evidence("accelerator nodes", pr.text_table(["NODE", "ALLOCATABLE", "GROUP"], [
            [n["name"], n["allocatable"], n["group"] or "-"] for n in facts["accelerator_nodes"]]), "table")
    accel_groups = [g for g in groups if g["accelerators"]]
    res.finding("accelerator node group under an autoscaler", bool(accel_groups) if seen else None,
                ", ".join("%s %s (min %s, max %s)" % (g["source"], g["name"], g["min"], g["max"]) for g in accel_groups)
                or "none found among %d group(s)" % len(groups))
    if probe_out:
        return _judge_active(res, probe_out, seen)
    if not seen:
        res.set(NOT_APPLICABLE, "no node autoscaler found: a fixed-size platform")
        res.note("No cluster autoscaler was found (no cluster-autoscaler pods, no %s ConfigMap, no autoscaler events, "
                 "no karpenter.sh/v1 NodePools, no Cluster API autoscaler annotations, no OpenShift ClusterAutoscaler): "
                 "the platform has a fixed size, so the requirement (\"If the platform provides ... autoscaling\") does "
                 "not apply. If it does autoscale where this check cannot see it (e.g. an autoscaler run by the "
                 "provider), run with scale_test=true to show it." % STATUS_CONFIGMAP)
        return res.to_dict()
    res.finding("scale test", None, passive_reason or "not run: scale_test is false (it adds nodes, which costs "
                "money); run with scale_test=true to observe a scale-up and scale-down")
    if not accel_groups:
        res.set(NOT_IMPLEMENTED, "%s runs but manages no accelerator node group" % ", ".join(seen))
        res.note("%s was found, but none of the node groups it manages provides accelerators, so accelerator pods "
                 "cannot trigger a scale-up. Add an accelerator node group (min/max) to the autoscaler." % ", ".join(seen))
        return res.to_dict()
    res.set(PARTIAL, "%s manages accelerator node group(s); scaling not observed" % ", ".join(seen))
    res.note("An autoscaler with accelerator node groups is configured, but scaling was not tested. Run with "
             "scale_test=true (adds a node for the test) for an Implemented verdict.")
    return res.to_dict()


def _judge_active(res, out, seen):
    res.finding("scale test: accelerator pod pending, new accelerator node appears", out["scaled_up"],
                "; ".join(d for d in out["details"][:2]))
    res.finding("scale test: pending pod runs on the new node", out["pod_on_new_node"],
                "new node(s): %s" % (", ".join(out["new_nodes"]) or "none"))
    res.finding("scale test: node removed once the pods are gone", out["scaled_down"] if out["scaled_up"] else None,
                out["details"][-1] if out["details"] else "")
    res.add_evidence("scale test", {"namespace": out["namespace"], "free_accelerators_before": out.get("free"),
                                    "probe_pods": out.get("replicas"), "resource": out.get("resource"),
                                    "accelerator_nodes_before": out["nodes_before"], "new_nodes": out["new_nodes"],
                                    "timeline": out["details"], "cost": COST_WARNING}, "yaml")
    if out.get("pods"):
        res.add_evidence("probe pods", pr.text_table(["POD", "NODE", "PHASE"], out["pods"]), "table")
    if out["events"]:
        res.add_evidence("scale test events", "\n".join(out["events"]), "text")
    if out["scaled_up"]:
        res.note("Verified with a scale test: %d pod(s) of one %s each; new node(s) %s; %s." % (
            out.get("replicas") or 0, out.get("resource"), ", ".join(out["new_nodes"]), "; ".join(out["details"][1:])))
    if out.get("cleanup"):
        res.note(out["cleanup"])
    if out["scaled_up"] and out["pod_on_new_node"] and out["scaled_down"]:
        res.set(IMPLEMENTED, "an accelerator node was added for a pending accelerator pod and removed afterwards")
    elif out["scaled_up"]:
        res.set(PARTIAL, "an accelerator node was added but %s" % (
            "not removed within scale_down_timeout" if not out["scaled_down"] else "the pending pod did not run on it"))
        res.note("Scale-up works; fix what the failed finding names (scale-down of empty accelerator nodes, or the new "
                 "node's device plugin).")
    elif not seen:
        res.set(NOT_APPLICABLE, "no node autoscaler found and no node was added for a pending accelerator pod")
        res.note("No autoscaler was found and the scale test added no node: the platform has a fixed size, so the "
                 "requirement (\"If the platform provides ... autoscaling\") does not apply.")
    else:
        res.set(NOT_IMPLEMENTED, "%s did not add an accelerator node for a pending accelerator pod" % ", ".join(seen))
        res.note("A pod asking for one %s stayed pending and no node was added: the autoscaler ignores accelerator "
                 "pods (no accelerator node group, or its template lacks the resource)." % out.get("resource"))
    return res.to_dict()


# --------------------------------------------------------------------------------------------- run
def deadline_seconds(opts):
    return (int(opts.get("pending_timeout", 120)) + 2 * int(opts.get("scale_up_timeout", 1200))
            + int(opts.get("scale_down_timeout", 1800)) + 2 * opts.wait_timeout + 120)


def run(cluster, opts):
    facts = observe(cluster, opts)
    if not opts.active or not opts.get("scale_test"):
        return judge(facts, passive_reason=opts.passive_reason())
    return judge(facts, probe(cluster, opts, facts, cl.Deadline(deadline_seconds(opts))))
