# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""ai_service_metrics: the platform's monitoring discovers an AI service and collects its metrics.

observe (read-only) -> probe (active only) -> judge (pure). Rules: ../shared/spec/requirements.md,
ai_service_metrics.

* Passive: the Prometheus Operator stack (each `Prometheus`, its ServiceMonitor/PodMonitor selectors and
  namespace selectors, whether its pods run), alternative stacks (Google Managed Prometheus, VictoriaMetrics,
  OpenTelemetry Collector, Azure managed Prometheus) and annotation discovery; which Prometheus would select
  a monitor for a new workload, and with which labels.
* Active: a vLLM-style server (Deployment + Service) in a fresh probe namespace, a ServiceMonitor carrying the
  labels the chosen Prometheus selects, K completions through the service proxy, then through that
  Prometheus' own HTTP API (pods proxy) the target is `up` in /api/v1/targets and
  `sum(vllm:request_success_total{namespace=<probe ns>}) >= K`. Prometheus objects in probe namespaces
  (started by a probe) are never used.
"""
from __future__ import absolute_import, division, print_function

import json
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, Result)

__metaclass__ = type

REQUIREMENT_ID = "ai_service_metrics"
MONITORING_V1 = "monitoring.coreos.com/v1"
ALTERNATIVES = {
    "monitoring.googleapis.com": "Google Managed Prometheus (PodMonitoring / ClusterPodMonitoring)",
    "azmonitoring.coreos.com": "Azure Monitor managed Prometheus (ServiceMonitor / PodMonitor)",
    "operator.victoriametrics.com": "VictoriaMetrics operator (VMServiceScrape / VMPodScrape)",
    "opentelemetry.io": "OpenTelemetry Operator (OpenTelemetryCollector with a Prometheus receiver)",
}
SERVER_PORT = 8000
METRIC = "vllm:request_success_total"
APP_LABEL = "k8s-ai-conformance-ai-service"

ARG_SPEC = {
    "requests": {"type": "int", "default": 10},
    "server_image": {"type": "str", "default": "ghcr.io/llm-d/llm-d-inference-sim:v0.5.1"},
    "model": {"type": "str", "default": "k8s-ai-conformance/probe-model"},
    "monitor_labels": {"type": "dict"},
    "prometheus": {"type": "str"},
}


# --------------------------------------------------------------------------------------------- selection (pure)
def selector_matches(selector, labels):
    """metav1.LabelSelector semantics as the Prometheus operator applies them: None selects nothing."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for exp in selector.get("matchExpressions") or ():
        key, op, values = exp.get("key"), exp.get("operator"), exp.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def plan_monitor_labels(prom, namespace_labels, extra=None):
    """(labels, None) a ServiceMonitor in a namespace with `namespace_labels` needs so `prom` selects it, or
    (None, reason) when no labels can make it (nil selector, namespace not covered, unsatisfiable expressions)."""
    spec = prom.get("spec") or {}
    name = "%s/%s" % (prom["metadata"]["namespace"], prom["metadata"]["name"])
    selector = spec.get("serviceMonitorSelector")
    if selector is None:
        return None, ("Prometheus %s has no serviceMonitorSelector, so it selects no ServiceMonitor at all; set "
                      "spec.serviceMonitorSelector ({} selects every one)" % name)
    ns_selector = spec.get("serviceMonitorNamespaceSelector")
    if ns_selector is None:
        return None, ("Prometheus %s has no serviceMonitorNamespaceSelector, so it only reads ServiceMonitors in its own "
                      "namespace %s; set spec.serviceMonitorNamespaceSelector ({} for every namespace)"
                      % (name, prom["metadata"]["namespace"]))
    if not selector_matches(ns_selector, namespace_labels):
        return None, ("Prometheus %s reads ServiceMonitors only in namespaces matching %s; a new workload's namespace "
                      "must carry those labels" % (name, json.dumps(ns_selector, sort_keys=True)))
    labels = dict(extra or {})
    labels.update(selector.get("matchLabels") or {})
    for exp in selector.get("matchExpressions") or ():
        if exp.get("operator") in ("In",) and exp.get("values") and exp.get("key") not in labels:
            labels[exp["key"]] = exp["values"][0]
        elif exp.get("operator") == "Exists" and exp.get("key") not in labels:
            labels[exp["key"]] = "true"
    if not selector_matches(selector, labels):
        return None, "no labels satisfy Prometheus %s's serviceMonitorSelector %s" % (name, json.dumps(selector, sort_keys=True))
    return labels, None


def how_to_be_selected(prom):
    """One sentence: what a workload's monitor needs for `prom` to pick it up."""
    spec = prom.get("spec") or {}
    name = "%s/%s" % (prom["metadata"]["namespace"], prom["metadata"]["name"])
    selector = spec.get("serviceMonitorSelector")
    if selector is None:
        return "Prometheus %s selects no ServiceMonitor (serviceMonitorSelector is not set)" % name
    match = selector.get("matchLabels") or {}
    if not match and not selector.get("matchExpressions"):
        what = "every ServiceMonitor"
    else:
        what = "ServiceMonitors labelled %s" % json.dumps(selector, sort_keys=True)
    ns_selector = spec.get("serviceMonitorNamespaceSelector")
    where = ("in its own namespace only" if ns_selector is None else
             "in every namespace" if not (ns_selector.get("matchLabels") or ns_selector.get("matchExpressions"))
             else "in namespaces matching %s" % json.dumps(ns_selector, sort_keys=True))
    return "Prometheus %s selects %s %s" % (name, what, where)


# --------------------------------------------------------------------------------------------- observe
def observe(cluster, opts):
    del opts                    # the read-only part has no options (same signature as the other checks)
    disc = cluster.discovery()
    facts = {"operator": disc.has(MONITORING_V1, "prometheuses") and disc.has(MONITORING_V1, "servicemonitors"),
             "alternatives": [], "prometheuses": [], "servicemonitors": 0, "podmonitors": 0, "annotated": [],
             "minor": (cluster.version() or {}).get("minor_int")}
    groups = disc.groups()
    for group, label in sorted(ALTERNATIVES.items()):
        if group in groups:
            facts["alternatives"].append(label)
    if facts["operator"]:
        facts["prometheuses"] = list_prometheuses(cluster)
        facts["servicemonitors"] = len(cluster.list(MONITORING_V1, "servicemonitors"))
        if disc.has(MONITORING_V1, "podmonitors"):
            facts["podmonitors"] = len(cluster.list(MONITORING_V1, "podmonitors"))
    for svc in cluster.list("v1", "services"):
        annotations = svc["metadata"].get("annotations") or {}
        if annotations.get("prometheus.io/scrape") == "true":
            facts["annotated"].append("%s/%s" % (svc["metadata"]["namespace"], svc["metadata"]["name"]))
    return facts


def list_prometheuses(cluster):
    """Every Prometheus Operator `Prometheus`: selectors, ready pods, web port, and whether it runs in a probe
    namespace (then it was started by a probe and never counts). The caller checks that the API is served."""
    probe_namespaces = {ns["metadata"]["name"] for ns in cluster.list(
        "v1", "namespaces", label_selector="%s=%s" % (cl.MANAGED_BY_LABEL, cl.MANAGED_BY_VALUE))}
    out = []
    for prom in cluster.list(MONITORING_V1, "prometheuses"):
        meta = prom["metadata"]
        pods = cluster.list("v1", "pods", namespace=meta["namespace"],
                            label_selector="operator.prometheus.io/name=%s" % meta["name"])
        out.append({"namespace": meta["namespace"], "name": meta["name"], "spec": _selector_spec(prom.get("spec") or {}),
                    "ready_pods": sorted(p["metadata"]["name"] for p in pods if pr.pod_ready(p)),
                    "not_ready": sorted("%s (%s)" % (p["metadata"]["name"], pr.summarize_pod(p))
                                        for p in pods if not pr.pod_ready(p))[:3],
                    "probe_owned": meta["namespace"] in probe_namespaces, "port": _web_port(pods)})
    return out


def _pod_story(prom):
    """`ns/name: <its pods that are not ready and why>` for the note of a Prometheus without a ready pod."""
    where = "%s/%s" % (prom["namespace"], prom["name"])
    if not prom.get("not_ready"):
        return "%s has no pods" % where
    return "%s: %s" % (where, ", ".join(prom["not_ready"]))


def _selector_spec(spec):
    keys = ("serviceMonitorSelector", "serviceMonitorNamespaceSelector", "podMonitorSelector", "podMonitorNamespaceSelector")
    return {key: spec.get(key) for key in keys}


def _web_port(pods):
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or ():
            for port in container.get("ports") or ():
                if port.get("name") in ("web", "http-web") or port.get("containerPort") == 9090:
                    return int(port["containerPort"])
    return 9090


def choose_prometheus(facts, namespace_labels, wanted=None, extra_labels=None):
    """(prometheus fact, monitor labels, reasons): the platform Prometheus a new workload's monitor can reach."""
    reasons = []
    for prom in facts["prometheuses"]:
        ref = "%s/%s" % (prom["namespace"], prom["name"])
        if wanted and wanted not in (ref, prom["name"]):
            continue
        if prom["probe_owned"]:
            reasons.append("Prometheus %s runs in a probe namespace (started by a probe): it never counts" % ref)
            continue
        if not prom["ready_pods"]:
            reasons.append("Prometheus %s has no ready pod" % ref)
            continue
        labels, why = plan_monitor_labels({"metadata": {"namespace": prom["namespace"], "name": prom["name"]},
                                           "spec": prom["spec"]}, namespace_labels, extra_labels)
        if labels is None:
            reasons.append(why)
            continue
        return prom, labels, reasons
    if wanted and not any(wanted in ("%s/%s" % (p["namespace"], p["name"]), p["name"]) for p in facts["prometheuses"]):
        reasons.append("no Prometheus named %s exists" % wanted)
    return None, None, reasons


# --------------------------------------------------------------------------------------------- probe
def _manifests(namespace, opts, monitor_labels):
    labels = {"app": APP_LABEL}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP_LABEL, "namespace": namespace, "labels": dict(labels)},
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)},
                              "spec": {"containers": [{
                                  "name": "server", "image": opts.get("server_image", ARG_SPEC["server_image"]["default"]),
                                  "args": ["--model", opts.get("model", ARG_SPEC["model"]["default"]), "--port", str(SERVER_PORT)],
                                  "ports": [{"name": "http", "containerPort": SERVER_PORT}],
                                  "readinessProbe": {"httpGet": {"path": "/health", "port": SERVER_PORT}},
                                  "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}},
    }
    if opts.node_selector:
        deployment["spec"]["template"]["spec"]["nodeSelector"] = dict(opts.node_selector)
    if opts.tolerations is not None:
        deployment["spec"]["template"]["spec"]["tolerations"] = opts.tolerations
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": APP_LABEL, "namespace": namespace, "labels": dict(labels)},
               "spec": {"selector": dict(labels), "ports": [{"name": "http", "port": SERVER_PORT, "targetPort": "http"}]}}
    monitor = {"apiVersion": MONITORING_V1, "kind": "ServiceMonitor",
               "metadata": {"name": APP_LABEL, "namespace": namespace, "labels": dict(monitor_labels)},
               "spec": {"selector": {"matchLabels": dict(labels)},
                        "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}]}}
    return deployment, service, monitor


def prometheus_get(cluster, prom, path, query):
    """GET the chosen Prometheus' own HTTP API through the API server's pods proxy; the parsed `data` or None."""
    url = "/api/v1/namespaces/%s/pods/%s:%d/proxy%s" % (prom["namespace"], prom["ready_pods"][0], prom["port"], path)
    ctx = {"verb": "get", "api_version": "v1", "resource": "pods", "namespace": prom["namespace"],
           "name": prom["ready_pods"][0], "subresource": "proxy"}
    try:
        _status, text = cluster.request("GET", url, query=query, context=ctx, headers={"Accept": "application/json"})
        doc = json.loads(text)
    except (cl.ApiRequestError, ValueError):
        return None
    return doc.get("data") if isinstance(doc, dict) and doc.get("status") == "success" else None


def probe_target(data, namespace):
    """The active target of the probe namespace in /api/v1/targets data, or None."""
    for target in (data or {}).get("activeTargets") or ():
        if (target.get("labels") or {}).get("namespace") == namespace:
            return target
    return None


def counter_value(data):
    """sum(...) query data -> float, or None when there is no sample."""
    result = (data or {}).get("result") or []
    if not result:
        return None
    try:
        return float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def probe(cluster, opts, facts, deadline):
    """Run the active probe; returns its outcome dict (never raises for unmet requirements)."""
    out = {"plan": {}, "requests_sent": 0, "requests_ok": 0, "target": None, "counter": None, "timed_out": "",
           "cleanup": "", "monitor": None, "namespace": None, "queries": []}
    want = int(opts.get("requests", 10))
    out["plan"]["requests"] = want
    ns = cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep)
    ns_labels = ns.manifest()["metadata"]["labels"]
    prom, labels, reasons = choose_prometheus(facts, ns_labels, opts.get("prometheus"), opts.get("monitor_labels"))
    out["plan"]["reasons"] = reasons
    if prom is None:
        out["plan"]["skipped"] = "no platform Prometheus would select a ServiceMonitor in a new namespace"
        return out
    out["plan"]["prometheus"] = "%s/%s" % (prom["namespace"], prom["name"])
    with ns:
        out["namespace"] = ns.name
        deployment, service, monitor = _manifests(ns.name, opts, labels)
        out["monitor"] = monitor
        try:
            cluster.create("apps/v1", "deployments", deployment, namespace=ns.name)
            cluster.create("v1", "services", service, namespace=ns.name)
            cluster.create(MONITORING_V1, "servicemonitors", monitor, namespace=ns.name)
            cluster.wait_for_object("the probe AI server Deployment %s/%s to be available" % (ns.name, APP_LABEL),
                                    "apps/v1", "deployments", APP_LABEL, ns.name,
                                    lambda d: bool(d) and (d.get("status") or {}).get("availableReplicas", 0) >= 1,
                                    opts.wait_timeout, opts.wait_sleep, deadline)
            path = "/api/v1/namespaces/%s/services/%s:http/proxy/v1/completions" % (ns.name, APP_LABEL)
            body = {"model": opts.get("model", ARG_SPEC["model"]["default"]), "prompt": "What runs AI workloads?", "max_tokens": 5}
            for _index in range(want):
                out["requests_sent"] += 1
                try:
                    status, _text = cluster.request("POST", path, body=body, content_type="application/json")
                    out["requests_ok"] += 1 if status == 200 else 0
                except cl.ApiRequestError:
                    pass
            target = cl.wait_until(
                "the probe's target in Prometheus %s/api/v1/targets to be up" % out["plan"]["prometheus"],
                lambda: probe_target(prometheus_get(cluster, prom, "/api/v1/targets", [("state", "active")]), ns.name),
                lambda t: bool(t) and t.get("health") == "up", opts.wait_timeout, opts.wait_sleep, deadline,
                summarize=lambda t: "no target of namespace %s" % ns.name if not t else "health %s: %s" % (
                    t.get("health"), t.get("lastError")))
            out["target"] = {k: target.get(k) for k in ("scrapePool", "scrapeUrl", "health", "labels", "lastError")}
            query = 'sum(%s{namespace="%s"})' % (METRIC, ns.name)
            out["queries"].append(query)
            out["counter"] = counter_value(cl.wait_until(
                "%s >= %d in Prometheus %s" % (query, out["requests_ok"] or want, out["plan"]["prometheus"]),
                lambda: prometheus_get(cluster, prom, "/api/v1/query", [("query", query)]),
                lambda d: (counter_value(d) or 0) >= (out["requests_ok"] or want), opts.wait_timeout, opts.wait_sleep,
                deadline, summarize=lambda d: "value %s" % counter_value(d)))
        except cl.WaitTimeout as err:
            out["timed_out"] = str(err)
            if err.last is not None and "targets" in str(err):
                out["target"] = {k: err.last.get(k) for k in ("scrapePool", "health", "labels", "lastError")} if err.last else None
            elif err.last is not None:
                out["counter"] = counter_value(err.last)
    out["cleanup"] = ns.cleanup_note
    return out


# --------------------------------------------------------------------------------------------- judge (pure)
def judge(facts, probe_out=None, passive_reason=""):
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    proms = facts["prometheuses"]
    res.finding("Prometheus Operator API served", facts["operator"],
                "monitoring.coreos.com/v1 prometheuses and servicemonitors" + ("" if facts["operator"] else " not served"))
    platform = [p for p in proms if not p["probe_owned"]]
    running = [p for p in platform if p["ready_pods"]]
    rows = [{"prometheus": "%s/%s" % (p["namespace"], p["name"]), "ready_pods": len(p["ready_pods"]),
             "probe_owned": p["probe_owned"], "selects": how_to_be_selected({"metadata": p, "spec": p["spec"]})} for p in proms]
    if rows:
        res.add_evidence("Prometheus objects and their monitor selectors", rows, "yaml")
    if facts["alternatives"]:
        res.add_evidence("other monitoring stacks (API groups served)", facts["alternatives"], "yaml")
    if facts["annotated"]:
        res.add_evidence("Services with prometheus.io/scrape annotations", facts["annotated"][:20], "yaml")
    res.finding("platform Prometheus running", bool(running),
                "%d of %d Prometheus objects have a ready pod" % (len(running), len(platform)))
    if not facts["operator"] or not platform:
        if facts["alternatives"]:
            res.set(PARTIAL, "no Prometheus Operator Prometheus; another monitoring stack is installed")
            res.note("Found %s; this check verifies discovery through the Prometheus Operator only, so verify that stack "
                     "discovers a new AI service by hand." % "; ".join(facts["alternatives"]))
        else:
            res.set(NOT_IMPLEMENTED, "no monitoring stack that discovers workloads was found")
            res.note("Install a monitoring stack that discovers workloads (for example the collection's prometheus role: "
                     "kube-prometheus-stack) so AI services' metrics are collected.")
        return res.to_dict()
    if not running:
        res.set(NOT_IMPLEMENTED, "no platform Prometheus is running")
        res.note("No Prometheus pod is ready: %s. Fix what keeps them from Ready (kubectl describe pod), or, without "
                 "pods, the Prometheus' replicas and the Prometheus Operator that creates its StatefulSet."
                 % "; ".join(_pod_story(p) for p in platform))
        return res.to_dict()
    if passive_reason:
        res.finding("AI service metrics collected", None, passive_reason)
        res.set(PARTIAL, "a platform Prometheus runs; discovery of a new AI service was not verified (passive)")
        res.note("Passive mode cannot show that a new AI service's metrics are collected; run in active mode. %s."
                 % "; ".join(r["selects"] for r in rows if not r["probe_owned"]))
        return res.to_dict()
    plan = (probe_out or {}).get("plan") or {}
    for reason in plan.get("reasons") or ():
        res.note(reason + ".")
    if plan.get("skipped"):
        res.finding("probe ServiceMonitor selected", False, plan["skipped"])
        res.set(NOT_IMPLEMENTED, "no platform Prometheus would discover a new AI service")
        return res.to_dict()
    res.finding("probe ServiceMonitor selected", True, "labels %s chosen for Prometheus %s"
                % (json.dumps(probe_out["monitor"]["metadata"]["labels"], sort_keys=True), plan.get("prometheus")))
    res.add_evidence("probe ServiceMonitor", probe_out["monitor"], "yaml")
    res.finding("requests served", probe_out["requests_ok"] == plan.get("requests"),
                "%d of %d completions answered 200" % (probe_out["requests_ok"], plan.get("requests")))
    target = probe_out.get("target")
    up = bool(target) and target.get("health") == "up"
    res.finding("target discovered and up", up, json.dumps(target, sort_keys=True) if target else "no target for the probe namespace")
    if target:
        res.add_evidence("probe target in /api/v1/targets", target, "yaml")
    counter = probe_out.get("counter")
    enough = counter is not None and counter >= max(probe_out["requests_ok"], 1) and probe_out["requests_ok"] > 0
    res.finding("request counter reflects traffic", enough, "%s = %s after %d requests" % (
        (probe_out.get("queries") or ["sum(%s)" % METRIC])[0], counter, probe_out["requests_ok"]))
    if probe_out.get("timed_out"):
        res.note(probe_out["timed_out"])
    if probe_out.get("cleanup"):
        res.note(probe_out["cleanup"])
    if up and enough:
        res.set(IMPLEMENTED, "Prometheus %s discovered the probe AI service and its request counter reached %d"
                % (plan.get("prometheus"), int(counter)))
        labels = probe_out["monitor"]["metadata"]["labels"]
        if labels:
            res.note("New workloads' ServiceMonitors must carry %s to be selected." % json.dumps(labels, sort_keys=True))
    elif up:
        res.set(PARTIAL, "the probe AI service was discovered but its request counter did not reflect the traffic")
    else:
        res.set(NOT_IMPLEMENTED, "Prometheus %s did not discover the probe AI service" % plan.get("prometheus"))
    return res.to_dict()


def deadline_seconds(opts):
    return 3 * opts.wait_timeout + 120


def run(cluster, opts):
    facts = observe(cluster, opts)
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason())
    deadline = cl.Deadline(deadline_seconds(opts))
    return judge(facts, probe(cluster, opts, facts, deadline))


def now():
    return time.time()
