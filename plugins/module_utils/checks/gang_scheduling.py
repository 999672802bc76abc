# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""gang_scheduling: observe which gang-scheduling solution runs, probe it, judge (requirements.md).

Solutions come from one table (SOLUTIONS): adding a scheduler is a data change. Kueue gives quota-level
all-or-nothing admission (probed with its own ResourceFlavor, ClusterQueue and LocalQueue, an Indexed Job
that fits the quota and one that does not); Volcano, KAI and the coscheduling plugin are schedulers that
bind a PodGroup only when `minMember` pods fit (probed with a PodGroup on one node whose free capacity is
cut to one pod less than the gang by a blocker pod). Verdict: a solution whose positive and negative probes
both pass -> Implemented; positive only -> Partially Implemented; none -> Not Implemented.
"""
from __future__ import annotations

import random
import re
import string
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "gang_scheduling"

# Paired with the module's DOCUMENTATION (keep both in step).
ARG_SPEC = {
    "gang_window": {"type": "int", "default": 90},
    "admission_timeout": {"type": "int", "default": 60},
    "quota": {"type": "int", "default": 2},
}

KUEUE_GROUP = "kueue.x-k8s.io"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
BLOCKER_SECONDS = 86400
KUEUE_CONFIGMAP = "kueue-manager-config"
KUEUE_CONFIG_KEY = "controller_manager_config.yaml"

# One row per solution. kind "quota": Kueue-style admission; kind "scheduler": a scheduler binding
# PodGroups. `deployments` are (label selector or metadata.name) ways to find its controller.
SOLUTIONS = (
    {"name": "kueue", "title": "Kueue", "kind": "quota", "group": KUEUE_GROUP,
     "resources": ("clusterqueues", "localqueues", "resourceflavors", "workloads"),
     "versions": ("v1beta2", "v1beta1"),
     "deployments": ("control-plane=controller-manager,app.kubernetes.io/name=kueue",
                     "metadata.name=kueue-controller-manager")},
    {"name": "volcano", "title": "Volcano", "kind": "scheduler", "group": "scheduling.volcano.sh",
     "resources": ("podgroups", "queues"), "versions": ("v1beta1",),
     "deployments": ("metadata.name=volcano-scheduler", "app=volcano-scheduler"),
     "scheduler_name": "volcano", "podgroup": {"kind": "PodGroup", "resource": "podgroups",
                                               "pod_annotation": "scheduling.k8s.io/group-name"}},
    {"name": "kai", "title": "KAI Scheduler", "kind": "scheduler", "group": "scheduling.run.ai",
     "resources": ("podgroups", "queues"), "versions": ("v2alpha2",),
     "deployments": ("app=kai-scheduler", "metadata.name=kai-scheduler-default"),
     "scheduler_name": "kai-scheduler", "podgroup": {"kind": "PodGroup", "resource": "podgroups",
                                                     "pod_annotation": "pod-group-name"}},
    {"name": "coscheduling", "title": "scheduler-plugins coscheduling", "kind": "scheduler",
     "group": "scheduling.x-k8s.io", "resources": ("podgroups",), "versions": ("v1alpha1",),
     "deployments": ("component=scheduler,app=scheduler-plugins-scheduler", "metadata.name=scheduler-plugins-scheduler"),
     "scheduler_name": "scheduler-plugins-scheduler", "podgroup": {"kind": "PodGroup", "resource": "podgroups",
                                                                   "pod_label": "scheduling.x-k8s.io/pod-group"}},
)


def solution(name):
    for row in SOLUTIONS:
        if row["name"] == name:
            return row
    raise KeyError(name)


# --------------------------------------------------------------------------------------------- quantities
def milli(value):
    """A Kubernetes quantity (cpu-like) as an int of thousandths; None when unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    match = re.match(r"^([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?$", text)
    if not match:
        return None
    number = float(match.group(1))
    factor = {None: 1000, "m": 1, "k": 1000 ** 2, "M": 1000 ** 3, "G": 1000 ** 4,
              "Ki": 1024 * 1000, "Mi": 1024 ** 2 * 1000, "Gi": 1024 ** 3 * 1000}[match.group(2)]
    return int(round(number * factor))


def condition(obj, ctype):
    return pr.condition(obj, ctype)


def is_true(obj, ctype):
    cond = condition(obj, ctype)
    return bool(cond) and cond.get("status") == "True"


def config_map_name(deployment_name):
    """Kueue's manager ConfigMap for its controller Deployment (kueue-controller-manager -> kueue-manager-config)."""
    suffix = "-controller-manager"
    if deployment_name.endswith(suffix):
        return deployment_name[:-len(suffix)] + "-manager-config"
    return KUEUE_CONFIGMAP


def manager_config(text):
    """Kueue's Configuration YAML -> {"wait_for_pods_ready": bool|None, "frameworks": [...]}; pure."""
    import yaml  # ansible ships PyYAML; imported here so the judge module stays importable without it
    try:
        doc = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return {"wait_for_pods_ready": None, "frameworks": [], "error": "unreadable YAML"}
    if not isinstance(doc, dict):
        return {"wait_for_pods_ready": None, "frameworks": [], "error": "not a mapping"}
    wfpr = doc.get("waitForPodsReady")
    enabled = False
    if isinstance(wfpr, dict):
        enabled = bool(wfpr.get("enable", True))
    return {"wait_for_pods_ready": enabled, "block_admission": bool((wfpr or {}).get("blockAdmission"))
            if isinstance(wfpr, dict) else False,
            "frameworks": list(((doc.get("integrations") or {}).get("frameworks")) or [])}


# --------------------------------------------------------------------------------------------- observe
def _deployment(cluster, selectors):
    for selector in selectors:
        kwargs = {"field_selector": selector} if selector.startswith("metadata.") else {"label_selector": selector}
        try:
            items = cluster.list("apps/v1", "deployments", **kwargs)
        except cl.ForbiddenError:
            return None, "forbidden"
        if items:
            return items[0], ""
    return None, ""


def _deployment_summary(dep):
    if not dep:
        return None
    status = dep.get("status") or {}
    images = [c.get("image") for c in ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []]
    return {"name": dep["metadata"]["name"], "namespace": dep["metadata"].get("namespace"),
            "replicas": (dep.get("spec") or {}).get("replicas", 1), "ready": status.get("readyReplicas", 0) or 0,
            "images": images}


def observe_solution(cluster, row):
    served = cluster.discovery().served_versions(row["group"])
    version = next((v for v in row["versions"] if v in served), None)
    facts = {"name": row["name"], "title": row["title"], "kind": row["kind"], "group": row["group"], "served": served,
             "version": version, "resources": {}, "controller": None, "controller_note": ""}
    if version:
        table = cluster.discovery().resources(row["group"], version)
        facts["resources"] = {r: r in table for r in row["resources"]}
    dep, note = _deployment(cluster, row["deployments"])
    facts["controller"] = _deployment_summary(dep)
    facts["controller_note"] = note
    if row["name"] == "kueue" and version:
        _observe_kueue(cluster, facts, version)
    return facts


def _observe_kueue(cluster, facts, version):
    api = "%s/%s" % (KUEUE_GROUP, version)
    facts["config"] = None
    ctrl = facts["controller"]
    if ctrl:
        # the chart names both after its fullname: <fullname>-controller-manager, <fullname>-manager-config
        name = config_map_name(ctrl["name"])
        facts["config_map"] = name
        try:
            cm = cluster.get("v1", "configmaps", name, ctrl["namespace"])
            if cm is not None:
                facts["config"] = manager_config((cm.get("data") or {}).get(KUEUE_CONFIG_KEY))
        except cl.ForbiddenError:
            facts["config"] = {"wait_for_pods_ready": None, "frameworks": [], "error": "forbidden"}
    queues = []
    if facts["resources"].get("clusterqueues"):
        for cq in cluster.list(api, "clusterqueues"):
            cond = condition(cq, "Active") or {}
            queues.append({"name": cq["metadata"]["name"], "active": cond.get("status") == "True",
                           "reason": cond.get("reason", ""), "message": cond.get("message", "")})
    facts["clusterqueues"] = queues


def healthy(facts):
    """Served API with all its resources and a controller with a ready replica."""
    ctrl = facts.get("controller")
    return bool(facts.get("version") and facts.get("resources") and all(facts["resources"].values())
                and ctrl and ctrl["ready"] >= 1)


def observe(cluster, opts):
    version = cluster.version()
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    solutions = [observe_solution(cluster, row) for row in SOLUTIONS]
    return {"git_version": version.get("gitVersion", ""), "vendor": accel["vendor"],
            "accelerator_nodes": accel["nodes"], "solutions": solutions}


# --------------------------------------------------------------------------------------------- probe helpers
def _rand(length=5):
    rng = random.SystemRandom()
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for dummy in range(length))


def _list_pods(cluster, namespace, selector):
    return cluster.list("v1", "pods", namespace=namespace, label_selector=selector)


def _pod_rows(pods):
    rows = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        rows.append([pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName") or "<none>",
                     (pod.get("status") or {}).get("phase", ""), pod["metadata"].get("creationTimestamp", "")])
    return rows


def _events(cluster, kind, name, namespace):
    try:
        return ["%s %s: %s" % (e.get("type", ""), e.get("reason", ""), e.get("message", ""))
                for e in cluster.events_for(kind, name, namespace)]
    except cl.ClusterError:
        return []


def _unit(facts, opts, cluster):
    """(resource, per-pod amount, what) the probes request: one accelerator when free ones exist, else CPU."""
    entry = acc.vendor(facts["vendor"]) if facts["vendor"] in acc.VENDORS else None
    if entry:
        free = 0
        for node in facts["accelerator_nodes"]:
            if node.get("unschedulable"):
                continue
            free += pr.free_accelerators(cluster, entry, node)
        if free >= opts.get("quota", 2):
            return entry["resources"][0], "1", entry
    return "cpu", "100m", entry


def _container(opts, script, resource, amount):
    limits = {resource: amount}
    out = pr.container("member", opts.probe_image, script, limits=limits)
    if resource == "cpu":
        out["resources"]["requests"] = {"cpu": amount}
    return out


# --------------------------------------------------------------------------------------------- Kueue probe
def kueue_objects(version, suffix, namespace, resource, quota_amount):
    """The probe's ResourceFlavor, ClusterQueue and LocalQueue (cluster-scoped names carry `suffix`)."""
    api = "%s/%s" % (KUEUE_GROUP, version)
    flavor = {"apiVersion": api, "kind": "ResourceFlavor",
              "metadata": {"name": "aic-flavor-%s" % suffix, "labels": {cl.MANAGED_BY_LABEL: cl.MANAGED_BY_VALUE}}}
    cq = {"apiVersion": api, "kind": "ClusterQueue",
          "metadata": {"name": "aic-gang-%s" % suffix, "labels": {cl.MANAGED_BY_LABEL: cl.MANAGED_BY_VALUE}},
          "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                   "resourceGroups": [{"coveredResources": [resource], "flavors": [
                       {"name": flavor["metadata"]["name"],
                        "resources": [{"name": resource, "nominalQuota": quota_amount}]}]}]}}
    lq = {"apiVersion": api, "kind": "LocalQueue", "metadata": {"name": "aic-queue", "namespace": namespace},
          "spec": {"clusterQueue": cq["metadata"]["name"]}}
    return flavor, cq, lq


def gang_job(name, count, container, opts, entry, queue):
    pod = pr.pod_manifest(name, [container], opts, entry or acc.vendor("nvidia"))
    labels = {QUEUE_LABEL: queue}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
            "spec": {"suspend": True, "parallelism": count, "completions": count, "completionMode": "Indexed",
                     "backoffLimit": 0, "template": {"metadata": {"labels": pod["metadata"]["labels"]},
                                                     "spec": pod["spec"]}}}


def _workload_for(cluster, api, namespace, job):
    for wl in cluster.list(api, "workloads", namespace=namespace):
        for ref in wl["metadata"].get("ownerReferences") or ():
            if ref.get("kind") == "Job" and ref.get("uid") == job["metadata"].get("uid"):
                return wl
    return None


def _wl_summary(wl):
    if not wl:
        return None
    out = {"name": wl["metadata"]["name"], "conditions": []}
    for cond in (wl.get("status") or {}).get("conditions") or []:
        out["conditions"].append({k: cond.get(k) for k in ("type", "status", "reason", "message")})
    if (wl.get("status") or {}).get("admission"):
        out["admission"] = wl["status"]["admission"]
    return out


def probe_kueue(cluster, opts, facts, kfacts, deadline):
    """Positive (N = quota) and negative (N = quota + 1) Indexed Jobs through the probe's own queues."""
    quota = max(1, int(opts.get("quota", 2)))
    resource, amount, entry = _unit(facts, opts, cluster)
    per_pod = milli(amount)
    quota_amount = str(quota) if resource != "cpu" else "%dm" % (per_pod * quota)
    window = int(opts.get("gang_window", 90))
    admit_timeout = min(int(opts.get("admission_timeout", 60)), opts.wait_timeout)
    out = {"solution": "kueue", "resource": resource, "per_pod": amount, "quota": quota,
           "positive": {"passed": False, "detail": "not run"}, "negative": {"passed": False, "detail": "not run"},
           "namespace": None, "cleanup": "", "objects": {}}
    version = kfacts["version"]
    api = "%s/%s" % (KUEUE_GROUP, version)
    suffix = _rand()
    created = []
    ns = None
    try:
        with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep,
                               cleanup_timeout=opts.wait_timeout) as ns:
            out["namespace"] = ns.name
            flavor, cq, lq = kueue_objects(version, suffix, ns.name, resource, quota_amount)
            out["objects"] = {"ResourceFlavor": flavor, "ClusterQueue": cq, "LocalQueue": lq}
            cluster.create(api, "resourceflavors", flavor)
            created.append(("resourceflavors", flavor["metadata"]["name"]))
            cluster.create(api, "clusterqueues", cq)
            created.append(("clusterqueues", cq["metadata"]["name"]))
            cluster.create(api, "localqueues", lq, ns.name)
            try:
                cluster.wait_for_object("ClusterQueue %s to become Active" % cq["metadata"]["name"], api,
                                        "clusterqueues", cq["metadata"]["name"], None,
                                        lambda o: is_true(o, "Active"), admit_timeout, opts.wait_sleep, deadline)
                active = True
            except cl.WaitTimeout as err:
                out["positive"] = {"passed": False, "detail": str(err)}
                active = False
            if active:
                script = "echo gang member $JOB_COMPLETION_INDEX of %d; sleep 5" % quota
                out["positive"] = _kueue_positive(cluster, opts, api, ns.name, quota,
                                                  _container(opts, script, resource, amount), entry, admit_timeout, deadline)
                out["negative"] = _kueue_negative(cluster, opts, api, ns.name, quota + 1,
                                                  _container(opts, script, resource, amount), entry, window, deadline)
    finally:
        notes = [ns.cleanup_note] if ns is not None and ns.cleanup_note else []
        notes.append(_delete_cluster_objects(cluster, api, created, opts))
        out["cleanup"] = "; ".join(n for n in notes if n)
    return out


def _kueue_positive(cluster, opts, api, namespace, count, container, entry, admit_timeout, deadline):
    job = cluster.create("batch/v1", "jobs", gang_job("aic-gang-fits", count, container, opts, entry, "aic-queue"),
                         namespace)
    res = {"passed": False, "job": "aic-gang-fits", "count": count, "detail": ""}
    try:
        wl = cl.wait_until("the Workload of Job aic-gang-fits to be Admitted",
                           lambda: _workload_for(cluster, api, namespace, job), lambda w: bool(w) and is_true(w, "Admitted"),
                           admit_timeout, opts.wait_sleep, deadline,
                           summarize=lambda w: _wl_summary(w) and str(_wl_summary(w)["conditions"]) or "no Workload")
        res["workload"] = _wl_summary(wl)
        selector = "batch.kubernetes.io/job-name=aic-gang-fits"
        pods = cl.wait_until("%d pods of Job aic-gang-fits" % count, lambda: _list_pods(cluster, namespace, selector),
                             lambda p: len(p) >= count, opts.wait_timeout, opts.wait_sleep, deadline,
                             summarize=lambda p: "%d pods" % len(p or []))
        created = [cl.parse_rfc3339(p["metadata"].get("creationTimestamp")) for p in pods]
        spread = (max(created) - min(created)) if all(created) else None
        res["creation_spread_seconds"] = spread
        done = cluster.wait_for_object("Job aic-gang-fits to complete", "batch/v1", "jobs", "aic-gang-fits", namespace,
                                       pr.job_done, opts.wait_timeout, opts.wait_sleep, deadline,
                                       summarize=lambda j: str(((j or {}).get("status") or {}).get("conditions")))
        pods = _list_pods(cluster, namespace, selector)
        res["pods"] = _pod_rows(pods)
        res["workload"] = _wl_summary(_workload_for(cluster, api, namespace, job)) or res["workload"]
        res["events"] = _events(cluster, "Workload", wl["metadata"]["name"], namespace) + \
            _events(cluster, "Job", "aic-gang-fits", namespace)
        complete = is_true(done, "Complete")
        res["passed"] = complete and len(pods) == count
        res["detail"] = ("Workload %s admitted, %d pods created within %ss of each other, Job %s"
                         % (wl["metadata"]["name"], len(pods), spread if spread is not None else "?",
                            "Complete" if complete else "Failed"))
    except cl.WaitTimeout as err:
        res["detail"] = str(err)
        res["pods"] = _pod_rows(_list_pods(cluster, namespace, "batch.kubernetes.io/job-name=aic-gang-fits"))
    return res


def _kueue_negative(cluster, opts, api, namespace, count, container, entry, window, deadline):
    job = cluster.create("batch/v1", "jobs", gang_job("aic-gang-too-big", count, container, opts, entry, "aic-queue"),
                         namespace)
    selector = "batch.kubernetes.io/job-name=aic-gang-too-big"
    res = {"passed": False, "job": "aic-gang-too-big", "count": count, "window": window, "detail": ""}
    end = time.monotonic() + min(window, deadline.remaining())
    max_pods, unsuspended, admitted, wl = 0, False, False, None
    while True:
        pods = _list_pods(cluster, namespace, selector)
        max_pods = max(max_pods, len(pods))
        current = cluster.get("batch/v1", "jobs", "aic-gang-too-big", namespace) or {}
        if (current.get("spec") or {}).get("suspend") is False:
            unsuspended = True
        wl = _workload_for(cluster, api, namespace, job) or wl
        if wl is not None and is_true(wl, "Admitted"):
            admitted = True
        if time.monotonic() >= end:
            break
        time.sleep(max(0.01, min(opts.wait_sleep, end - time.monotonic())))
    res["workload"] = _wl_summary(wl)
    res["max_pods"] = max_pods
    if wl is not None:
        res["events"] = _events(cluster, "Workload", wl["metadata"]["name"], namespace)
    reserved = condition(wl, "QuotaReserved") if wl else None
    if wl is None:
        res["detail"] = ("no Workload was created for Job aic-gang-too-big within %ss: Kueue does not manage the "
                         "Job, so its staying suspended proves nothing" % window)
    elif admitted or unsuspended or max_pods:
        res["detail"] = ("a gang of %d that exceeds the quota was %s; %d pod(s) existed during the window"
                         % (count, "admitted" if admitted else "unsuspended", max_pods))
    else:
        res["passed"] = True
        res["detail"] = ("for %ss the Workload stayed unadmitted (%s), the Job stayed suspended and 0 of %d pods "
                         "existed" % (window, "%s: %s" % (reserved.get("reason"), reserved.get("message")) if reserved
                                      else "no QuotaReserved condition", count))
    return res


def _delete_cluster_objects(cluster, api, created, opts):
    """Delete the probe's cluster-scoped Kueue objects (newest first) and wait, bounded, until gone."""
    notes = []
    for resource, name in reversed(created):
        try:
            cluster.delete(api, resource, name)
            cl.wait_until("%s %s to be deleted" % (resource, name), lambda r=resource, n=name: cluster.get(api, r, n),
                          lambda o: o is None, opts.wait_timeout, opts.wait_sleep)
        except cl.WaitTimeout:
            notes.append("%s %s is still being deleted" % (resource, name))
        except cl.ClusterError as err:
            notes.append("could not delete %s %s: %s; delete it by hand (kubectl delete %s.%s %s)"
                         % (resource, name, err, resource, KUEUE_GROUP, name))
    return "; ".join(notes)


# --------------------------------------------------------------------------------------------- scheduler probe
def podgroup_manifest(row, version, name, min_member):
    spec = {"minMember": min_member}
    if row["name"] in ("volcano", "kai"):
        spec["queue"] = "default"
    return {"apiVersion": "%s/%s" % (row["group"], version), "kind": row["podgroup"]["kind"],
            "metadata": {"name": name}, "spec": spec}


def gang_pod(row, name, group, container, opts, entry, node):
    pod = pr.pod_manifest(name, [container], opts, entry or acc.vendor("nvidia"), node=node)
    pod["spec"]["schedulerName"] = row["scheduler_name"]
    pg = row["podgroup"]
    if pg.get("pod_annotation"):
        pod["metadata"]["annotations"] = {pg["pod_annotation"]: group}
    if pg.get("pod_label"):
        pod["metadata"]["labels"][pg["pod_label"]] = group
    pod["metadata"]["labels"]["k8s-ai-conformance/gang"] = group
    return pod


def _node_free(cluster, resource, entry, node_name, node_obj):
    if resource != "cpu":
        summary = acc.summarize_node(node_obj, entry)
        return pr.free_accelerators(cluster, entry, summary) if summary else 0
    allocatable = milli(((node_obj.get("status") or {}).get("allocatable") or {}).get("cpu")) or 0
    pods = cluster.list("v1", "pods", field_selector="spec.nodeName=%s,status.phase!=Succeeded,status.phase!=Failed"
                        % node_name)
    used = 0
    for pod in pods:
        for cont in (pod.get("spec") or {}).get("containers") or []:
            used += milli(((cont.get("resources") or {}).get("requests") or {}).get("cpu")) or 0
    return max(0, allocatable - used) // 500


def _pick_node(cluster, facts, opts, size):
    """(node name, resource, amount, free units, entry) for the node with the most free units, or None."""
    entry = acc.vendor(facts["vendor"]) if facts["vendor"] in acc.VENDORS else None
    best = None
    if entry:
        for summary in facts["accelerator_nodes"]:
            if summary.get("unschedulable"):
                continue
            free = pr.free_accelerators(cluster, entry, summary)
            if free >= size and (best is None or free > best[3]):
                best = (summary["name"], entry["resources"][0], "1", free, entry)
    if best:
        return best
    for node in cluster.list("v1", "nodes"):
        if (node.get("spec") or {}).get("unschedulable") or (node.get("spec") or {}).get("taints"):
            continue
        free = _node_free(cluster, "cpu", entry, node["metadata"]["name"], node)
        if free >= size and (best is None or free > best[3]):
            best = (node["metadata"]["name"], "cpu", "500m", free, entry)
    return best


def probe_scheduler(cluster, opts, facts, sfacts, deadline):
    """Positive: a PodGroup of N pods that fit binds. Negative: a blocker leaves N-1 units free on the node;
    for the window no gang pod may get spec.nodeName."""
    row = solution(sfacts["name"])
    size = max(2, int(opts.get("quota", 2)))
    window = int(opts.get("gang_window", 90))
    out = {"solution": row["name"], "positive": {"passed": False, "detail": "not run"},
           "negative": {"passed": False, "detail": "not run"}, "namespace": None, "cleanup": ""}
    pick = _pick_node(cluster, facts, opts, size)
    if pick is None:
        out["skipped"] = "no schedulable node has %d free units (accelerators, or 500m CPU) for the gang probe" % size
        return out
    node, resource, amount, free, entry = pick
    out.update({"node": node, "resource": resource, "per_pod": amount, "free_units": free, "size": size})
    api = "%s/%s" % (row["group"], sfacts["version"])
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep,
                           cleanup_timeout=opts.wait_timeout) as ns:
        out["namespace"] = ns.name
        script = "echo gang member; sleep 5"
        # positive
        cluster.create(api, row["podgroup"]["resource"], podgroup_manifest(row, sfacts["version"], "aic-fits", size),
                       ns.name)
        for i in range(size):
            cluster.create("v1", "pods", gang_pod(row, "aic-fits-%d" % i, "aic-fits",
                                                  _container(opts, script, resource, amount), opts, entry, node), ns.name)
        selector = "k8s-ai-conformance/gang=aic-fits"
        try:
            pods = cl.wait_until("%d pods of PodGroup aic-fits to finish" % size,
                                 lambda: _list_pods(cluster, ns.name, selector),
                                 lambda p: len(p) == size and all(pr.pod_done(x) for x in p), opts.wait_timeout,
                                 opts.wait_sleep, deadline,
                                 summarize=lambda p: "; ".join(pr.summarize_pod(x) for x in p or []))
            ok = all((x.get("status") or {}).get("phase") == "Succeeded" for x in pods)
            out["positive"] = {"passed": ok, "pods": _pod_rows(pods),
                               "detail": "all %d gang pods bound to %s and %s" % (size, node, "succeeded" if ok else "ended")}
        except cl.WaitTimeout as err:
            out["positive"] = {"passed": False, "detail": str(err),
                               "pods": _pod_rows(_list_pods(cluster, ns.name, selector))}
        out["negative"] = _scheduler_negative(cluster, opts, row, sfacts, api, ns.name, node, resource, amount, entry,
                                              size, window, deadline)
    out["cleanup"] = ns.cleanup_note
    return out


def _scheduler_negative(cluster, opts, row, sfacts, api, namespace, node, resource, amount, entry, size, window,
                        deadline):
    script = "echo gang member; sleep 5"
    # negative: a blocker leaves size-1 units free on the node
    free_now = _node_free(cluster, resource, entry, node, cluster.get("v1", "nodes", node)) if resource == "cpu" \
        else pr.free_accelerators(cluster, entry, acc.summarize_node(cluster.get("v1", "nodes", node), entry))
    block_units = free_now - (size - 1)
    if block_units > 0:
        block_amount = str(block_units) if resource != "cpu" else "%dm" % (block_units * 500)
        # it holds its units until the namespace is deleted (a bounded sleep could end inside the window)
        blocker = pr.pod_manifest("aic-blocker", [_container(opts, "sleep %d" % BLOCKER_SECONDS, resource, block_amount)],
                                  opts, entry or acc.vendor("nvidia"), node=node)
        cluster.create("v1", "pods", blocker, namespace)
        try:
            cluster.wait_for_object("blocker pod aic-blocker to be bound", "v1", "pods", "aic-blocker", namespace,
                                    pr.pod_bound, opts.wait_timeout, opts.wait_sleep, deadline,
                                    summarize=pr.summarize_pod)
        except cl.WaitTimeout as err:
            return {"passed": False, "detail": str(err)}
    cluster.create(api, row["podgroup"]["resource"], podgroup_manifest(row, sfacts["version"], "aic-short", size),
                   namespace)
    for i in range(size):
        cluster.create("v1", "pods", gang_pod(row, "aic-short-%d" % i, "aic-short",
                                              _container(opts, script, resource, amount), opts, entry, node), namespace)
    selector = "k8s-ai-conformance/gang=aic-short"
    end = time.monotonic() + min(window, deadline.remaining())
    bound = set()
    while True:
        pods = _list_pods(cluster, namespace, selector)
        bound.update(p["metadata"]["name"] for p in pods if pr.pod_bound(p))
        if time.monotonic() >= end:
            break
        time.sleep(max(0.01, min(opts.wait_sleep, end - time.monotonic())))
    events = _events(cluster, row["podgroup"]["kind"], "aic-short", namespace)
    for pod in pods:
        events.extend(_events(cluster, "Pod", pod["metadata"]["name"], namespace))
    neg = {"window": window, "pods": _pod_rows(pods), "events": events, "bound": sorted(bound)}
    if bound:
        neg["passed"] = False
        neg["detail"] = ("%d of %d gang pods got a node while only %d fit (%s): the scheduler placed part of the gang"
                         % (len(bound), size, size - 1, ", ".join(sorted(bound))))
    else:
        neg["passed"] = True
        neg["detail"] = "for %ss none of the %d gang pods got spec.nodeName while only %d fit on %s" % (
            window, size, size - 1, node)
        if block_units > 0:
            neg["recovery"] = _recovery(cluster, opts, namespace, selector, size, deadline)
    return neg


def _recovery(cluster, opts, namespace, selector, size, deadline):
    """Remove the blocker: the held-back gang must now bind as a whole (the hold was about room)."""
    cluster.delete("v1", "pods", "aic-blocker", namespace, grace_period=0)
    try:
        cl.wait_until("the %d held-back gang pods to be bound once the blocker was deleted" % size,
                      lambda: _list_pods(cluster, namespace, selector),
                      lambda p: len(p) == size and all(pr.pod_bound(x) for x in p), opts.wait_timeout, opts.wait_sleep,
                      deadline, summarize=lambda p: "; ".join(pr.summarize_pod(x) for x in p or []))
        return {"passed": True, "detail": "once the blocker was deleted all %d gang pods were bound" % size}
    except cl.WaitTimeout as err:
        return {"passed": False, "detail": str(err)}


# --------------------------------------------------------------------------------------------- judge
def judge(facts, probes=None, passive_reason=""):
    """Pure: facts (+ probe outcomes, one per probed solution) -> result dict."""
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    found = [s for s in facts["solutions"] if s.get("version") or s.get("controller")]
    ready = [s for s in found if healthy(s)]
    rows = []
    for sol in facts["solutions"]:
        ctrl = sol.get("controller")
        rows.append([sol["title"], ", ".join(sol.get("served") or []) or "-",
                     "%s/%s %d/%d" % (ctrl["namespace"], ctrl["name"], ctrl["ready"], ctrl["replicas"]) if ctrl else "-",
                     "yes" if healthy(sol) else "no"])
    res.add_evidence("gang scheduling solutions seen", pr.text_table(["SOLUTION", "SERVED", "CONTROLLER", "HEALTHY"], rows),
                     "table")
    for sol in found:
        _solution_findings(res, sol)
    if not found:
        res.finding("gang scheduling solution installed", False,
                    "none of %s is installed (no API group served, no controller)" % ", ".join(s["title"] for s in SOLUTIONS))
        res.set(NOT_IMPLEMENTED, "no gang scheduling solution is installed")
        res.note("Nothing on this cluster schedules gangs all-or-nothing. Install Kueue (the kueue role of this "
                 "collection) or Volcano / KAI / the coscheduling plugin, then run this check again.")
        return res.to_dict()
    if not ready:
        res.set(NOT_IMPLEMENTED, "%s installed but not healthy" % ", ".join(s["title"] for s in found))
        res.note("A gang scheduling solution is installed but not working: its API is not fully served or its "
                 "controller has no ready replica (see findings). Fix the controller and run again.")
        return res.to_dict()
    if passive_reason:
        res.finding("gang probes", None, passive_reason)
        res.set(PARTIAL, "%s runs; gang behaviour not probed" % ", ".join(s["title"] for s in ready))
        res.note("Passive run: %s is installed and healthy, but all-or-nothing behaviour was not verified. Run the "
                 "check in active mode for an Implemented verdict." % ", ".join(s["title"] for s in ready))
        return res.to_dict()
    best = None
    for outcome in probes or []:
        status = _probe_findings(res, outcome, facts)
        if best is None or _rank(status) < _rank(best[0]):
            best = (status, outcome)
    if best is None:
        res.set(PARTIAL, "no gang probe could run")
        res.note("The installed solution could not be probed (see findings); the verdict stays Partially Implemented "
                 "until a positive and a negative gang probe pass.")
        return res.to_dict()
    status, outcome = best
    title = solution(outcome["solution"])["title"]
    if status == IMPLEMENTED:
        if outcome["solution"] == "kueue":
            res.set(IMPLEMENTED, "%s admits a gang that fits all at once and holds back one that does not" % title)
        else:
            res.set(IMPLEMENTED, "%s binds a gang that fits all at once and none of one that does not" % title)
    elif status == PARTIAL:
        res.set(PARTIAL, "%s runs a gang that fits, but the all-or-nothing negative test failed" % title)
        res.note("Only the positive gang probe passed: %s. Fix this before submitting (positive-only evidence is "
                 "not gang scheduling)." % outcome["negative"].get("detail", ""))
    else:
        res.set(NOT_IMPLEMENTED, "%s did not run the gang probe" % title)
        res.note("The gang probe failed with %s: %s" % (title, outcome["positive"].get("detail", "")))
    if outcome["solution"] == "kueue":
        kfacts = next(s for s in facts["solutions"] if s["name"] == "kueue")
        wfpr = (kfacts.get("config") or {}).get("wait_for_pods_ready")
        if wfpr:
            res.note("Kueue waitForPodsReady is enabled: admitted gangs must have all pods ready within the timeout, "
                     "which adds physical co-scheduling to quota atomicity.")
        elif wfpr is False:
            res.note("Kueue waitForPodsReady is off: Kueue guarantees quota atomicity (all pods admitted together), "
                     "not physical co-scheduling; enable waitForPodsReady (kueue_manager_config) for that.")
        else:
            res.note("Kueue's manager configuration (ConfigMap %s) could not be read, so whether waitForPodsReady is on "
                     "is unknown." % kfacts.get("config_map", KUEUE_CONFIGMAP))
    for outcome in probes or []:
        if outcome.get("cleanup"):
            res.note(outcome["cleanup"])
    return res.to_dict()


def _rank(status):
    return {IMPLEMENTED: 0, PARTIAL: 1, NOT_IMPLEMENTED: 2}[status]


def _solution_findings(res, sol):
    ctrl = sol.get("controller")
    res.finding("%s API served" % sol["title"], bool(sol.get("version") and all((sol.get("resources") or {}).values())),
                "%s/%s: %s" % (sol.get("group") or solution(sol["name"])["group"], sol.get("version") or "-", ", ".join(
                    "%s%s" % (r, "" if ok else " (missing)") for r, ok in sorted((sol.get("resources") or {}).items())))
                or "not served")
    res.finding("%s controller ready" % sol["title"], bool(ctrl and ctrl["ready"] >= 1),
                "%s/%s %d/%d ready (%s)" % (ctrl["namespace"], ctrl["name"], ctrl["ready"], ctrl["replicas"],
                                            ", ".join(ctrl["images"])) if ctrl else
                ("not found%s" % (" (listing Deployments is forbidden)" if sol.get("controller_note") == "forbidden" else "")))
    if sol["name"] == "kueue" and sol.get("version"):
        queues = sol.get("clusterqueues") or []
        res.finding("Kueue ClusterQueues Active", None if not queues else all(q["active"] for q in queues),
                    ", ".join("%s %s" % (q["name"], "Active" if q["active"] else "inactive (%s)" % q["reason"])
                              for q in queues) or "no ClusterQueue yet (the probe creates its own)")
        config = sol.get("config")
        if config is not None:
            res.finding("Kueue manager configuration", None, "waitForPodsReady %s; integrations: %s" % (
                {True: "on", False: "off", None: "unknown"}[config.get("wait_for_pods_ready")],
                ", ".join(config.get("frameworks") or []) or "-"))
            res.add_evidence("Kueue manager configuration (ConfigMap %s)" % sol.get("config_map", KUEUE_CONFIGMAP),
                             config, "yaml")


def _probe_findings(res, outcome, facts):
    title = solution(outcome["solution"])["title"]
    if outcome.get("skipped"):
        res.finding("%s gang probe" % title, None, "skipped: %s" % outcome["skipped"])
        return NOT_IMPLEMENTED
    pos, neg = outcome["positive"], outcome["negative"]
    unit = "%s %s per pod" % (outcome.get("per_pod"), outcome.get("resource"))
    res.finding("%s positive: a gang that fits runs all together (%s)" % (title, unit), bool(pos.get("passed")),
                pos.get("detail", ""))
    res.finding("%s negative: a gang that does not fit gets nothing" % title, bool(neg.get("passed")),
                neg.get("detail", ""))
    if neg.get("recovery"):
        res.finding("%s held-back gang binds once room exists (informational)" % title, neg["recovery"]["passed"],
                    neg["recovery"]["detail"])
    evidence = {"namespace": outcome.get("namespace"), "resource": outcome.get("resource"),
                "per_pod": outcome.get("per_pod")}
    if outcome["solution"] == "kueue":
        evidence["quota"] = outcome.get("quota")
        evidence["probe objects"] = outcome.get("objects")
    else:
        evidence["node"] = outcome.get("node")
    res.add_evidence("%s gang probe setup" % title, evidence, "yaml")
    for label, part in (("positive", pos), ("negative", neg)):
        if part.get("pods"):
            res.add_evidence("%s %s probe pods" % (title, label),
                             pr.text_table(["POD", "NODE", "PHASE", "CREATED"], part["pods"]), "table")
        if part.get("workload"):
            res.add_evidence("%s %s Workload status" % (title, label), part["workload"], "yaml")
        if part.get("events"):
            res.add_evidence("%s %s events" % (title, label), "\n".join(part["events"]), "text")
    if pos.get("passed") and neg.get("passed"):
        return IMPLEMENTED
    if pos.get("passed"):
        return PARTIAL
    return NOT_IMPLEMENTED


# --------------------------------------------------------------------------------------------- run
def deadline_seconds(opts):
    return 3 * opts.wait_timeout + int(opts.get("gang_window", 90)) + int(opts.get("admission_timeout", 60)) + 180


def run(cluster, opts):
    """observe -> probe every healthy solution (active only) -> judge."""
    facts = observe(cluster, opts)
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason())
    deadline = cl.Deadline(deadline_seconds(opts))
    probes = []
    for sol in facts["solutions"]:
        if not healthy(sol):
            continue
        if sol["kind"] == "quota":
            probes.append(probe_kueue(cluster, opts, facts, sol, deadline))
        else:
            probes.append(probe_scheduler(cluster, opts, facts, sol, deadline))
        if probes[-1]["positive"].get("passed") and probes[-1]["negative"].get("passed"):
            break
    return judge(facts, probes)
