# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""pod_autoscaling: accelerator workloads scale horizontally on a custom (AI) metric, up and back down.

observe (read-only) -> probe (active only) -> judge (pure). Rules: ../shared/spec/requirements.md,
pod_autoscaling.

* Passive: autoscaling/v2 served; the metrics APIServices (metrics.k8s.io, custom.metrics.k8s.io,
  external.metrics.k8s.io) and whether they are Available; which pod metrics custom.metrics.k8s.io lists and
  which look like accelerator metrics; existing HPAs (KEDA's keda-hpa-*).
* Active: a one-replica Deployment of one-accelerator pods running the vendor's load tool for `load_seconds`
  then idling, and an autoscaling/v2 HPA (type Pods, AverageValue `target_value`, 1..2 replicas, scale-down
  stabilization 60 s) on the accelerator pod metric. It waits for the metric, ScalingActive=True, 2 replicas
  Running, and after the load ends, 1 replica again. The namespace (and with it everything) is deleted.
"""
from __future__ import absolute_import, division, print_function

import re
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

__metaclass__ = type

REQUIREMENT_ID = "pod_autoscaling"
APISERVICES = {
    "resource": ("v1beta1.metrics.k8s.io",),
    "custom": ("v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"),
    "external": ("v1beta1.external.metrics.k8s.io",),
}
ACCELERATOR_METRIC = re.compile(r"gpu|dcgm|accelerator|neuron|tpu|xpu", re.IGNORECASE)
PREFERRED = ("pod_gpu_utilization", "DCGM_FI_DEV_GPU_UTIL", "gpu_utilization")
APP = "aic-autoscaled"

ARG_SPEC = {
    "metric": {"type": "str"},
    "target_value": {"type": "str", "default": "50"},
    "load_seconds": {"type": "int", "default": 300},
    "scale_down_window": {"type": "int", "default": 60},
}

EXPORTED_POD_NOTE = (
    "Accelerator exporters label series with the workload's pod/namespace; scraped without honorLabels these "
    "arrive as exported_pod/exported_namespace, which prometheus-adapter cannot map to pods. Add a recording rule "
    "that copies them back with label_replace (for example pod_gpu_utilization = avg by (namespace, pod) "
    "(label_replace(label_replace(DCGM_FI_DEV_GPU_UTIL{exported_pod!=\"\"}, \"pod\", \"$1\", \"exported_pod\", "
    "\"(.+)\"), \"namespace\", \"$1\", \"exported_namespace\", \"(.+)\"))) and an adapter rule serving it for pods "
    "(the collection's prometheus role does both).")


# --------------------------------------------------------------------------------------------- pure helpers
def apiservice_state(obj):
    """(available: bool, reason/message) of an APIService object (None: absent)."""
    if obj is None:
        return False, "not registered"
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Available":
            return cond.get("status") == "True", "%s %s" % (cond.get("reason") or "", cond.get("message") or "")
    return False, "no Available condition"


def pod_metrics(resource_list):
    """Metric names served for pods by a custom.metrics.k8s.io discovery document."""
    names = []
    for res in (resource_list or {}).get("resources") or ():
        name = res.get("name") or ""
        if name.startswith("pods/"):
            names.append(name.split("/", 1)[1])
    return sorted(set(names))


def accelerator_metrics(names):
    return [n for n in names if ACCELERATOR_METRIC.search(n)]


def choose_metric(names, wanted=None):
    """The accelerator pod metric to scale on: `wanted` when served, else a preferred name, else any utilisation."""
    if wanted:
        return wanted if wanted in names else None
    for name in PREFERRED:
        if name in names:
            return name
    candidates = accelerator_metrics(names)
    util = [n for n in candidates if "util" in n.lower()]
    return (util or candidates or [None])[0]


def hpa_condition(hpa, ctype):
    for cond in ((hpa or {}).get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond
    return None


# --------------------------------------------------------------------------------------------- observe
def observe(cluster, opts):
    disc = cluster.discovery()
    facts = {"v2": disc.has("autoscaling/v2", "horizontalpodautoscalers"), "apis": {}, "pod_metrics": [],
             "external_metrics": [], "hpas": [], "accelerators": 0, "free": {}, "vendor": None}
    for kind, names in APISERVICES.items():
        for name in names:
            obj = cluster.get("apiregistration.k8s.io/v1", "apiservices", name)
            if obj is not None:
                available, detail = apiservice_state(obj)
                facts["apis"][kind] = {"name": name, "available": available, "detail": detail.strip()}
                break
        else:
            facts["apis"][kind] = {"name": names[0], "available": False, "detail": "not registered"}
    if facts["apis"]["custom"]["available"]:
        facts["pod_metrics"] = pod_metrics(_discovery(cluster, facts["apis"]["custom"]["name"]))
    if facts["apis"]["external"]["available"]:
        doc = _discovery(cluster, facts["apis"]["external"]["name"])
        facts["external_metrics"] = sorted(r.get("name") for r in (doc or {}).get("resources") or ())
    if facts["v2"]:
        facts["hpas"] = ["%s/%s" % (h["metadata"]["namespace"], h["metadata"]["name"])
                         for h in cluster.list("autoscaling/v2", "horizontalpodautoscalers")]
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    facts["vendor"] = accel["vendor"]
    entry = acc.vendor(accel["vendor"])
    facts["accelerators"] = sum(n.get("allocatable") or 0 for n in accel["nodes"])
    if opts.active and facts["accelerators"]:
        facts["free"] = {n["name"]: pr.free_accelerators(cluster, entry, n) for n in accel["nodes"] if n.get("allocatable")}
    return facts


def _discovery(cluster, apiservice_name):
    version, group = apiservice_name.split(".", 1)
    try:
        return cluster.get_json("/apis/%s/%s" % (group, version))
    except cl.ForbiddenError:
        raise
    except cl.ClusterError:
        return None


# --------------------------------------------------------------------------------------------- probe
def _deployment(namespace, opts, entry):
    seconds = int(opts.get("load_seconds", 300))
    load = entry.get("load") or {}
    script = "%s; echo load done; sleep 86400" % (load.get("command") or "sleep {seconds}").format(seconds=seconds)
    ctr = pr.container("load", load.get("image") or opts.probe_image, script, limits={entry["resources"][0]: 1})
    pod = pr.pod_manifest(APP, [ctr], opts, entry, labels={"app": APP}, restart_policy="Always")
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": APP, "namespace": namespace, "labels": {"app": APP}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": APP}},
                     "template": {"metadata": {"labels": pod["metadata"]["labels"]}, "spec": pod["spec"]}}}


def hpa_manifest(namespace, metric, opts):
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": APP, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                     "minReplicas": 1, "maxReplicas": 2,
                     "metrics": [{"type": "Pods", "pods": {"metric": {"name": metric},
                                                           "target": {"type": "AverageValue",
                                                                      "averageValue": str(opts.get("target_value", "50"))}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": int(opts.get("scale_down_window", 60))}}}}


def _hpa_summary(hpa):
    status = (hpa or {}).get("status") or {}
    return "replicas %s -> %s; %s" % (status.get("currentReplicas"), status.get("desiredReplicas"), "; ".join(
        "%s=%s (%s)" % (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or ()))


def _running_pods(cluster, namespace):
    pods = cluster.list("v1", "pods", namespace=namespace, label_selector="app=%s" % APP)
    return [p for p in pods if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def probe(cluster, opts, facts, deadline):
    entry = acc.vendor(facts["vendor"])
    out = {"metric": None, "scaled_up": False, "scaled_down": False, "timeline": [], "events": [], "hpa": None,
           "timed_out": "", "cleanup": "", "metric_values": None, "plan": {}}
    if sum(facts["free"].values()) < 2:
        out["plan"]["warning"] = ("only %d free accelerators: the second replica may not be scheduled"
                                  % sum(facts["free"].values()))
    started = time.monotonic()

    def mark(what):
        out["timeline"].append("%5.1fs %s" % (time.monotonic() - started, what))

    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep, cleanup_timeout=opts.wait_timeout) as ns:
        out["namespace"] = ns.name
        try:
            cluster.create("apps/v1", "deployments", _deployment(ns.name, opts, entry), namespace=ns.name)
            cl.wait_until("a load pod of Deployment %s/%s to run" % (ns.name, APP), lambda: _running_pods(cluster, ns.name),
                          bool, opts.wait_timeout, opts.wait_sleep, deadline)
            mark("load pod Running (1 accelerator)")
            custom = facts["apis"]["custom"]["name"]
            version, group = custom.split(".", 1)

            def find_metric():
                names = pod_metrics(_discovery(cluster, custom))
                metric = choose_metric(names, opts.get("metric"))
                if not metric:
                    return None
                path = "/apis/%s/%s/namespaces/%s/pods/%%2A/%s" % (group, version, ns.name, metric)
                try:
                    doc = cluster.get_json(path)
                except cl.ForbiddenError:
                    raise               # a missing RBAC rule is an error naming the rule, not "no metric"
                except cl.ClusterError:
                    return None
                return (metric, doc.get("items")) if doc.get("items") else None
            found = cl.wait_until("an accelerator pod metric for the load pod in %s" % custom, find_metric, bool,
                                  opts.wait_timeout, opts.wait_sleep, deadline)
            out["metric"], out["metric_values"] = found
            mark("metric %s served for the load pod: %s" % (found[0], ", ".join(str(i.get("value")) for i in found[1])))
            cluster.create("autoscaling/v2", "horizontalpodautoscalers", hpa_manifest(ns.name, out["metric"], opts), namespace=ns.name)
            hpa = cluster.wait_for_object("HPA %s/%s ScalingActive=True" % (ns.name, APP), "autoscaling/v2",
                                          "horizontalpodautoscalers", APP, ns.name,
                                          lambda h: (hpa_condition(h, "ScalingActive") or {}).get("status") == "True",
                                          opts.wait_timeout, opts.wait_sleep, deadline, _hpa_summary)
            out["hpa"] = hpa
            mark("HPA ScalingActive=True (%s)" % hpa_condition(hpa, "ScalingActive").get("reason"))
            hpa = cluster.wait_for_object("HPA %s/%s to want 2 replicas" % (ns.name, APP), "autoscaling/v2",
                                          "horizontalpodautoscalers", APP, ns.name,
                                          lambda h: ((h or {}).get("status") or {}).get("desiredReplicas", 0) >= 2,
                                          opts.wait_timeout, opts.wait_sleep, deadline, _hpa_summary)
            out["hpa"] = hpa
            cl.wait_until("2 load pods Running", lambda: _running_pods(cluster, ns.name), lambda pods: len(pods) >= 2,
                          opts.wait_timeout, opts.wait_sleep, deadline)
            out["scaled_up"] = True
            mark("scaled up: 2 pods Running")
            window = int(opts.get("load_seconds", 300)) + int(opts.get("scale_down_window", 60))
            hpa = cluster.wait_for_object("HPA %s/%s back to 1 replica after the load ended" % (ns.name, APP),
                                          "autoscaling/v2", "horizontalpodautoscalers", APP, ns.name,
                                          lambda h: ((h or {}).get("status") or {}).get("desiredReplicas") == 1 and
                                          ((h or {}).get("status") or {}).get("currentReplicas") == 1,
                                          opts.wait_timeout + window, opts.wait_sleep, deadline, _hpa_summary)
            out["hpa"] = hpa
            out["scaled_down"] = True
            mark("scaled down: 1 replica")
        except cl.WaitTimeout as err:
            out["timed_out"] = str(err)
            if isinstance(err.last, dict) and err.last.get("kind") == "HorizontalPodAutoscaler":
                out["hpa"] = err.last
        out["events"] = ["%s %s: %s" % (e.get("type"), e.get("reason"), e.get("message"))
                         for e in cluster.events_for("HorizontalPodAutoscaler", APP, ns.name)]
    out["cleanup"] = ns.cleanup_note
    return out


# --------------------------------------------------------------------------------------------- judge (pure)
def judge(facts, probe_out=None, passive_reason=""):
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    apis = facts["apis"]
    res.finding("autoscaling/v2 served", facts["v2"], "horizontalpodautoscalers in autoscaling/v2")
    for kind in ("resource", "custom", "external"):
        res.finding("%s Available" % apis[kind]["name"], apis[kind]["available"], apis[kind]["detail"] or "Available")
    accel = accelerator_metrics(facts["pod_metrics"])
    res.add_evidence("metrics APIs", [dict(api, kind=kind) for kind, api in sorted(apis.items())], "yaml")
    if facts["pod_metrics"] or facts["external_metrics"]:
        listed = {"pods": facts["pod_metrics"][:50], "external": facts["external_metrics"][:50]}
        res.add_evidence("custom and external metrics listed", listed, "yaml")
    resource_only = apis["resource"]["available"]
    scalable = apis["custom"]["available"] or apis["external"]["available"]
    if not facts["v2"]:
        res.set(NOT_IMPLEMENTED, "autoscaling/v2 is not served")
        res.note("HorizontalPodAutoscaler autoscaling/v2 (GA since Kubernetes 1.23) is needed for custom metrics.")
        return res.to_dict()
    if not scalable and not resource_only:
        res.set(NOT_IMPLEMENTED, "no metrics API is available: no HPA can scale on anything")
        res.note("Install metrics-server (metrics.k8s.io) and a custom or external metrics adapter (prometheus-adapter, "
                 "KEDA) serving an accelerator metric for pods.")
        return res.to_dict()
    if not scalable:
        res.set(PARTIAL, "only resource metrics (CPU/memory) are available to HPAs")
        res.note("Only metrics.k8s.io is Available, so pods scale on CPU/memory only. Install prometheus-adapter "
                 "(custom.metrics.k8s.io) or KEDA (external.metrics.k8s.io) with an accelerator metric. " + EXPORTED_POD_NOTE)
        return res.to_dict()
    if not facts["accelerators"]:
        res.set(NOT_APPLICABLE, "the cluster has no accelerators")
        res.note("No node advertises accelerators, so accelerator pods cannot be autoscaled here; custom metrics "
                 "autoscaling is available (%s)." % ", ".join(apis[k]["name"] for k in ("custom", "external") if apis[k]["available"]))
        return res.to_dict()
    res.finding("accelerator pod metric listed", True if accel else None,
                ", ".join(accel) if accel else "none listed now (adapters list a metric once a workload produces it)")
    base = PARTIAL
    if passive_reason:
        res.finding("scaled up and down on an accelerator metric", None, passive_reason)
        res.set(PARTIAL, "custom metrics autoscaling is available; accelerator pod scaling was not shown (passive)")
        res.note("Passive mode does not scale anything; run in active mode to show an HPA scaling accelerator pods on "
                 "an accelerator metric.")
        if not accel:
            res.note("No accelerator pod metric is listed in custom.metrics.k8s.io right now. " + EXPORTED_POD_NOTE)
        elif all(name.startswith("DCGM_FI_") for name in accel):
            res.note("Only raw DCGM series are listed for pods; they are attributed to the exporter's pods unless "
                     "relabelled. " + EXPORTED_POD_NOTE)
        return res.to_dict()
    out = probe_out or {}
    if out.get("skipped"):
        res.finding("scaled up and down on an accelerator metric", None, out["skipped"])
        res.set(PARTIAL, "external metrics autoscaling is available; accelerator pod scaling was not shown")
        res.note("Only external.metrics.k8s.io (KEDA or another external adapter) serves non-resource metrics; this "
                 "check scales through custom.metrics.k8s.io, so verify a ScaledObject/HPA on an accelerator metric by hand.")
        return res.to_dict()
    if out.get("timeline"):
        res.add_evidence("timeline", "\n".join(out["timeline"]), "text")
    if out.get("events"):
        res.add_evidence("HPA events", "\n".join(out["events"]), "text")
    if out.get("hpa"):
        res.add_evidence("HPA status", (out["hpa"].get("status") or {}), "yaml")
    if out.get("plan", {}).get("warning"):
        res.note("Probe: %s." % out["plan"]["warning"])
    res.finding("accelerator metric served for the probe pod", bool(out.get("metric")),
                "%s = %s" % (out["metric"], ", ".join(str(i.get("value")) for i in out.get("metric_values") or ()))
                if out.get("metric") else "no accelerator pod metric appeared for the load pod")
    res.finding("scaled up to 2 replicas", out.get("scaled_up", False), _last_line(out, "scaled up"))
    res.finding("scaled back down to 1 replica", out.get("scaled_down", False), _last_line(out, "scaled down"))
    if out.get("timed_out"):
        res.note(out["timed_out"])
    if out.get("cleanup"):
        res.note(out["cleanup"])
    if out.get("scaled_up") and out.get("scaled_down"):
        res.set(IMPLEMENTED, "accelerator pods scaled 1 -> 2 -> 1 on the custom metric %s" % out["metric"])
    elif out.get("scaled_up"):
        res.set(PARTIAL, "accelerator pods scaled up on %s but not back down" % out["metric"])
    elif out.get("metric"):
        res.set(base if resource_only else NOT_IMPLEMENTED, "the HPA did not scale accelerator pods on %s" % out["metric"])
    else:
        res.set(base if resource_only else NOT_IMPLEMENTED,
                "no accelerator pod metric is served by the custom metrics API" + (
                    " (pods scale on CPU/memory only)" if resource_only else ""))
        res.note(EXPORTED_POD_NOTE)
    return res.to_dict()


def _last_line(out, prefix):
    lines = [line for line in out.get("timeline") or () if prefix in line]
    return lines[-1].strip() if lines else "not reached"


def deadline_seconds(opts):
    return 6 * opts.wait_timeout + int(opts.get("load_seconds", 300)) + int(opts.get("scale_down_window", 60)) + 180


def run(cluster, opts):
    facts = observe(cluster, opts)
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason())
    apis = facts["apis"]
    if not facts["v2"] or not facts["accelerators"] or not apis["custom"]["available"]:
        skipped = "custom.metrics.k8s.io is not Available" if facts["v2"] and facts["accelerators"] and \
            apis["external"]["available"] else ""
        return judge(facts, probe_out={"skipped": skipped} if skipped else {})
    deadline = cl.Deadline(deadline_seconds(opts))
    return judge(facts, probe(cluster, opts, facts, deadline))
