# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""accelerator_metrics: per-accelerator utilisation and memory metrics in Prometheus format, reacting to load.

observe(): accelerator nodes and how many accelerators each has; the vendor's exporter pods (DCGM exporter
for NVIDIA, by the labels the GPU operator and the exporter's own manifests set); every accelerator node's
exporter pod is scraped through the API server's pod proxy (no port-forward) and parsed with
prometheus_client. Each node must expose, per accelerator (distinct UUID label), a utilisation and a
memory-usage series; temperature, power, energy and interconnect metrics are reported when present, each
mapped to its OpenTelemetry hardware metric name.
probe(): a one-accelerator load pod on a scraped node; scrapes before and during the load must show the
utilisation of the probe's accelerator rise.
"""
from __future__ import annotations

import json
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra_mod
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import ai_service_metrics as asm
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "accelerator_metrics"
ARG_SPEC = {
    "load_seconds": {"type": "int", "default": 90},
    "load_image": {"type": "str"},
    "load_command": {"type": "str"},
    "exporter_selector": {"type": "str"},
}
MAX_NODES_SCRAPED = 50
# Exporter pods one list request reads, and owner DaemonSets read when that is not all of them.
EXPORTER_SAMPLE = 1000
MAX_DAEMONSETS = 3
UTILIZATION_RISE = 10.0
AUX_METRICS = ("memory_free", "memory_total")


# --------------------------------------------------------------------------------------------- analysis (pure)
def _uuid(entry, labels):
    for name in entry["metrics"]["uuid_labels"]:
        if labels.get(name):
            return labels[name]
    return None


def _first_label(labels, names):
    for name in names:
        if labels.get(name):
            return labels[name]
    return None


def analyze_scrape(entry, scrape):
    """What one exporter scrape offers: per metric kind the metric used and its value per accelerator.

    {"kinds": {kind: {"metric", "otel", "by_uuid": {uuid: value}, "unlabelled": n}},
     "accelerators": {uuid: {"index", "model", "pods": [...]}}, "metric_count": n}
    Series without a UUID label are counted as `unlabelled` (aggregate-only exposure).
    """
    kinds = {}
    accelerators = {}
    metrics_cfg = entry["metrics"]
    for kind in acc.CORE_METRICS + acc.OPTIONAL_METRICS + AUX_METRICS:
        names = acc.metric_names(entry, kind)
        present = [n for n in names if scrape.find(n)]
        if not present:
            continue
        metric = present[0]
        by_uuid, unlabelled = {}, 0
        for sample in scrape.find(metric):
            uuid = _uuid(entry, sample.labels)
            if uuid is None:
                unlabelled += 1
                continue
            value = acc.utilization_percent(entry, metric, sample.value) if kind == "utilization" else sample.value
            by_uuid.setdefault(uuid, value)
            info = accelerators.setdefault(uuid, {"index": _first_label(sample.labels, metrics_cfg["index_labels"]),
                                                  "model": _first_label(sample.labels, metrics_cfg["model_labels"]),
                                                  "pods": []})
            pod = _first_label(sample.labels, metrics_cfg["pod_labels"])
            if pod and pod not in info["pods"]:
                info["pods"].append(pod)
        kinds[kind] = {"metric": metric, "also": present[1:], "otel": acc.otel_name(entry, metric), "by_uuid": by_uuid,
                       "unlabelled": unlabelled}
    return {"kinds": kinds, "accelerators": accelerators, "metric_count": len(scrape.names())}


def node_verdict(analysis, expected):
    """Pure: (ok, problems) for one node: utilisation and memory usage per accelerator for all of them."""
    problems = []
    for kind, label in (("utilization", "utilisation"), ("memory_used", "memory usage")):
        item = analysis["kinds"].get(kind)
        if not item:
            problems.append("no %s metric" % label)
            continue
        count = len(item["by_uuid"])
        if count == 0:
            problems.append("%s (%s) only as an aggregate without accelerator UUID labels" % (label, item["metric"]))
        elif expected and count < expected:
            problems.append("%s (%s) for %d of %d accelerators" % (label, item["metric"], count, expected))
    return not problems, problems


# --------------------------------------------------------------------------------------------- observe
def _exporter_pods(cluster, entry, selector_override):
    """(pods, selectors, sampled): the exporter pods, at most EXPORTER_SAMPLE per selector (one request each);
    `sampled` when a selector matched more (a DaemonSet on thousands of nodes)."""
    selectors = [selector_override] if selector_override else list(entry["exporter"]["selectors"])
    pods, seen, sampled = [], set(), False
    for selector in selectors:
        page, token, _remaining = cluster.list_page("v1", "pods", label_selector=selector, limit=EXPORTER_SAMPLE)
        sampled = sampled or bool(token)
        for pod in page:
            uid = pod["metadata"].get("uid") or (pod["metadata"].get("namespace"), pod["metadata"]["name"])
            if uid not in seen:
                seen.add(uid)
                pods.append(pod)
    return pods, selectors, sampled


def _exporter_daemonsets(cluster, pods):
    """[{name, desired, ready}] of the DaemonSets that own the exporter pods (at most MAX_DAEMONSETS): how many
    nodes should run an exporter and on how many it is ready, which covers the nodes no scrape looked at."""
    owners = []
    for pod in pods:
        for ref in pod["metadata"].get("ownerReferences") or ():
            key = (pod["metadata"].get("namespace"), ref.get("name"))
            if ref.get("kind") == "DaemonSet" and key not in owners:
                owners.append(key)
    out = []
    for namespace, name in owners[:MAX_DAEMONSETS]:
        try:
            ds = cluster.get("apps/v1", "daemonsets", name, namespace, missing_ok=True)
        except cl.ForbiddenError:
            return []   # the pods and scrapes still decide
        status = (ds or {}).get("status") or {}
        if ds:
            out.append({"name": "%s/%s" % (namespace, name), "desired": int(status.get("desiredNumberScheduled") or 0),
                        "ready": int(status.get("numberReady") or 0)})
    return out


# Seconds observe() waits for exporter pods that are still starting on accelerator nodes.
STARTING_WAIT = 60


def _starting(pods, expected):
    """Names of exporter pods on accelerator nodes that are on their way to Ready (probe.pod_starting)."""
    return [pod["metadata"]["name"] for pod in pods
            if (pod.get("spec") or {}).get("nodeName") in expected and pr.pod_starting(pod)]


def _metrics_port(pod, entry):
    exporter = entry["exporter"]
    fallback = None
    for ctr in (pod.get("spec") or {}).get("containers") or []:
        for port in ctr.get("ports") or []:
            if port.get("name") in exporter["port_names"]:
                return port.get("containerPort")
            if port.get("containerPort") == exporter["port"]:
                fallback = exporter["port"]
    return fallback or exporter["port"]


def scrape_pod(cluster, entry, pod):
    """Scrape one exporter pod, on the port its spec declares for metrics."""
    meta = pod["metadata"]
    return scrape(cluster, entry, meta.get("namespace"), meta["name"], _metrics_port(pod, entry))


MAX_SCRAPE_BYTES = 16 * 1024 * 1024   # a DCGM exporter of 8 GPUs answers about 100 KiB


def scrape(cluster, entry, namespace, name, port):
    """GET the exporter's metrics through the API server pod proxy and analyse them. The target's own
    failures (refused, 5xx, malformed text) end up in `error`; API errors (403) raise."""
    out = {"pod": name, "namespace": namespace, "port": port, "status": None, "error": "", "analysis": None,
           "raw_excerpt": ""}
    try:
        status, text = cluster.proxy_get("pod", namespace, name, port, entry["exporter"]["path"],
                                         max_bytes=MAX_SCRAPE_BYTES)
    except cl.ResponseTooLarge as err:
        out["error"] = "the exporter's answer is too large: %s" % err
        return out
    out["status"] = status
    if status != 200:
        out["error"] = "GET /api/v1/namespaces/%s/pods/%s:%s/proxy%s answered %s: %s" % (
            namespace, name, port, entry["exporter"]["path"], status, text[:200])
        return out
    not_utf8 = "\ufffd" in text
    try:
        parsed = promtext.parse(text)
    except promtext.ExpositionError as err:
        out["error"] = "malformed metrics exposition%s: %s" % (
            " (the body is not UTF-8 text, which the Prometheus text format requires)" if not_utf8 else "",
            _clip(str(err), 300))
        out["raw_excerpt"] = _clip(text, 400)
        return out
    out["analysis"] = analyze_scrape(entry, parsed)
    out["raw_excerpt"] = _clip("\n".join(text.splitlines()[:12]), 2000)
    return out


def _clip(text, limit):
    return text if len(text) <= limit else text[:limit] + "... (%d characters cut)" % (len(text) - limit)


def _expected_counts(nodes, slices, driver):
    counts = {n["name"]: n["physical"] or n["count"] for n in nodes}
    for sl in slices:
        if sl["driver"] == driver and sl["node"] and not counts.get(sl["node"]):
            counts[sl["node"]] = counts.get(sl["node"], 0) + len(sl["devices"])
    return counts


def observe(cluster, opts):
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    dra = dra_mod.observe_dra(cluster)
    if opts.vendor == "auto" and not accel["nodes"] and dra["drivers"]:
        accel["vendor"] = acc.resolve_vendor("auto", [], dra["drivers"])[0]
    entry = acc.vendor(accel["vendor"])
    driver = next((d for d in dra["drivers"] if d in entry["dra"]["drivers"]), None)
    expected = _expected_counts(accel["nodes"], dra["slices"], driver)
    facts = {"vendor": accel["vendor"], "vendor_reason": accel["vendor_reason"], "expected": expected,
             "other": accel["other"], "exporter_pods": [], "selectors": [], "nodes": {}, "unscraped": 0,
             "device_plugin_nodes": [n["name"] for n in accel["nodes"] if n.get("allocatable")],
             "dra": {"ready": bool(driver and dra["version"]), "version": dra["version"],
                     "device_class": dra_mod.class_for_driver(dra["device_classes"], [driver], entry["dra"]["device_class"])
                     if driver else None}}
    if not expected:
        return facts
    pods, facts["selectors"], facts["exporter_pods_sampled"] = _exporter_pods(cluster, entry, opts.get("exporter_selector"))
    end = time.monotonic() + min(opts.wait_timeout, STARTING_WAIT)
    while _starting(pods, expected) and time.monotonic() < end:
        # a node that just joined (an autoscaler adding one while the checks run) has an exporter pod that is
        # still starting: scraping it now would count the node against the cluster; wait for it, bounded
        time.sleep(opts.wait_sleep)
        pods, facts["selectors"], facts["exporter_pods_sampled"] = _exporter_pods(cluster, entry,
                                                                                  opts.get("exporter_selector"))
    facts["exporter_pods"] = [{"name": p["metadata"]["name"], "namespace": p["metadata"].get("namespace"),
                               "node": (p.get("spec") or {}).get("nodeName"), "ready": pr.pod_ready(p)} for p in pods]
    by_node = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (node not in by_node or (pr.pod_ready(pod) and not pr.pod_ready(by_node[node]))):
            by_node[node] = pod
    candidates = sorted(expected)
    if facts["exporter_pods_sampled"]:
        # the other nodes' pods were not read: scrape nodes whose pod the sample holds, and let the exporter
        # DaemonSets' counts say whether every node runs a ready exporter
        candidates = [n for n in candidates if n in by_node] or candidates
        facts["exporter_daemonsets"] = _exporter_daemonsets(cluster, pods)
    for index, node in enumerate(candidates):
        if index >= MAX_NODES_SCRAPED:
            facts["unscraped"] = len(expected) - MAX_NODES_SCRAPED
            break
        pod = by_node.get(node)
        if pod is None:
            facts["nodes"][node] = {"expected": expected[node], "scrape": None}
            continue
        facts["nodes"][node] = {"expected": expected[node], "scrape": scrape_pod(cluster, entry, pod),
                                "pod_ready": pr.pod_ready(pod)}
    facts["platform_prometheus"] = observe_platform_prometheus(
        cluster, entry, {p["name"] for p in facts["exporter_pods"] if p["ready"]}, min(opts.wait_timeout, 60),
        opts.wait_sleep, sum(info["expected"] for info in facts["nodes"].values()))
    return facts


def stored_query(entry):
    """PromQL counting, per metric name, the core accelerator series a Prometheus stores (carlory's query)."""
    names = [name for kind in acc.CORE_METRICS for name in acc.metric_names(entry, kind)]
    return 'count by (__name__) ({__name__=~"%s"})' % "|".join(names)


def observe_platform_prometheus(cluster, entry, exporter_pods, settle=60, sleep=2.0, accelerators=0):
    """[{prometheus, stored: {metric: series}, error}] for each running platform Prometheus (Prometheus Operator),
    [] when there is none: then the verdict rests on the exporters alone, as before. A Prometheus that does not
    yet store series for all `accelerators` while it is still catching up (targets not scraped yet, health
    "unknown", or exporter pods its discovery has not turned into targets yet, e.g. just installed or a node
    that just joined) is asked again for up to `settle` seconds."""
    if not cluster.discovery().has(asm.MONITORING_V1, "prometheuses"):
        return []
    out = []
    for prom in asm.list_prometheuses(cluster):
        if prom["probe_owned"] or not prom["ready_pods"]:
            continue
        end = time.monotonic() + settle
        while True:
            data = asm.prometheus_get(cluster, prom, "/api/v1/query", [("query", stored_query(entry))])
            stored_now = _stored(data)
            complete = stores_core_series(entry, stored_now, accelerators) if accelerators else bool(stored_now)
            if complete or time.monotonic() > end or not _still_starting(cluster, prom, exporter_pods):
                break
            time.sleep(sleep)
        out.append({"prometheus": "%s/%s" % (prom["namespace"], prom["name"]), "stored": _stored(data),
                    "error": "" if data is not None else "the query API did not answer"})
    return out


def _stored(data):
    """{metric name: series count} from the answer to stored_query()."""
    stored = {}
    for sample in (data or {}).get("result") or ():
        try:
            stored[sample["metric"]["__name__"]] = int(float(sample["value"][1]))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return stored


# --------------------------------------------------------------------------------------------- probe
def _load_node(facts):
    """A scraped node whose exporter answered, preferring device-plugin nodes (simplest request)."""
    good = [n for n, v in sorted(facts["nodes"].items()) if v["scrape"] and v["scrape"]["analysis"]]
    for node in good:
        if node in facts["device_plugin_nodes"]:
            return node, "device-plugin"
    if good and facts["dra"]["ready"] and facts["dra"]["device_class"]:
        return good[0], "dra"
    return None, None


def _load_pod(facts, opts, entry, node, mechanism):
    seconds = int(opts.get("load_seconds", 90))
    load = entry.get("load") or {}
    image = opts.get("load_image") or load.get("image")
    command = (opts.get("load_command") or load.get("command") or "").format(seconds=seconds)
    script = "%s; %s" % (entry["listing"]["command"], command)
    if mechanism == "device-plugin":
        ctr = pr.container("load", image, script, limits={entry["resources"][0]: 1})
        return pr.pod_manifest("aic-load", [ctr], opts, entry, node=node)
    ctr = pr.container("load", image, script, claims=["gpu"])
    return pr.pod_manifest("aic-load", [ctr], opts, entry, node=node,
                           resource_claims=[{"name": "gpu", "resourceClaimTemplateName": "aic-one"}])


def _probe_uuid(analysis, listed):
    """The accelerator the load pod got: by the exporter's pod attribution, else by its own listing."""
    for uuid, info in analysis["accelerators"].items():
        if "aic-load" in info["pods"]:
            return uuid, "pod attribution label"
    if listed:
        return listed[0]["uuid"], "the load pod's %s output" % "listing"
    return None, ""


def probe(cluster, opts, facts, deadline):
    entry = acc.vendor(facts["vendor"])
    node, mechanism = _load_node(facts)
    outcome = {"node": node, "mechanism": mechanism, "namespace": None, "swept": [], "cleanup": "", "timed_out": ""}
    if not node:
        outcome["skipped"] = "no accelerator node with a scrapeable exporter to load"
        return outcome
    if not (opts.get("load_image") or entry.get("load")):
        outcome["skipped"] = "no load workload is known for %s accelerators; set load_image and load_command" % entry["display"]
        return outcome
    exporter = facts["nodes"][node]["scrape"]
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep,
                           cleanup_timeout=opts.wait_timeout) as ns:
        outcome["namespace"], outcome["swept"] = ns.name, ns.swept
        if ns.swept:
            # an interrupted earlier run's load was still running when the baseline was scraped: scrape again
            fresh = scrape(cluster, entry, exporter["namespace"], exporter["pod"], exporter["port"])
            if fresh["analysis"]:
                exporter = dict(exporter, analysis=fresh["analysis"])
        if mechanism == "dra":
            version = facts["dra"]["version"]
            cluster.create("%s/%s" % (dra_mod.GROUP, version), "resourceclaimtemplates", dra_mod.claim_template(
                version, "aic-one", [dra_mod.device_request(version, "gpu", facts["dra"]["device_class"])]), ns.name)
        cluster.create("v1", "pods", _load_pod(facts, opts, entry, node, mechanism), ns.name)
        try:
            pod = cluster.wait_for_object("the load pod to start", "v1", "pods", "aic-load", ns.name, pr.pod_started,
                                          opts.wait_timeout, opts.wait_sleep, deadline, pr.summarize_pod)
        except cl.WaitTimeout as err:
            outcome["timed_out"] = str(err)
            outcome["pod_state"] = pr.summarize_pod(err.last)
            return outcome
        outcome["pod_state"] = pr.summarize_pod(pod)
        outcome.update(_measure(cluster, opts, entry, exporter, ns.name, deadline))
    outcome["cleanup"] = ns.cleanup_note
    return outcome


def _measure(cluster, opts, entry, exporter, namespace, deadline):
    """Scrape until the probe's accelerator shows the load (or the load time is over)."""
    before = exporter["analysis"]
    end = time.monotonic() + deadline.bound(int(opts.get("load_seconds", 90)) + opts.wait_sleep)
    during, uuid, how, listed = None, None, "", []
    while True:
        log = cluster.pod_logs(namespace, "aic-load", "load")
        listed = acc.parse_listing(entry, log)
        current = scrape(cluster, entry, exporter["namespace"], exporter["pod"], exporter["port"])
        if current["analysis"]:
            during = current["analysis"]
            uuid, how = _probe_uuid(during, listed)
            if uuid and _rise(before, during, uuid) >= UTILIZATION_RISE:
                break
        if time.monotonic() >= end:
            break
        time.sleep(max(0.01, min(opts.wait_sleep, end - time.monotonic())))
    return {"uuid": uuid, "identified_by": how, "listed": listed,
            "before": _values(before, uuid), "during": _values(during, uuid) if during else None,
            "rise": _rise(before, during, uuid) if during and uuid else None}


def _value(analysis, kind, uuid):
    return ((analysis or {}).get("kinds", {}).get(kind) or {}).get("by_uuid", {}).get(uuid)


def _values(analysis, uuid):
    return {"utilization_percent": _value(analysis, "utilization", uuid),
            "memory_used": _value(analysis, "memory_used", uuid)}


def _rise(before, during, uuid):
    now = _value(during, "utilization", uuid)
    if now is None:
        return 0.0
    return float(now) - float(_value(before, "utilization", uuid) or 0.0)


# --------------------------------------------------------------------------------------------- judge
def judge(facts, probe_out=None, passive_reason=""):
    """Pure: facts (+ probe outcome) -> result dict. Rules: requirements.md, accelerator_metrics."""
    entry = acc.vendor(facts["vendor"])
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    if not facts["expected"]:
        return _no_accelerators(res, facts, entry)
    res.finding("accelerator nodes", True, ", ".join("%s (%s)" % (n, c) for n, c in sorted(facts["expected"].items())))
    pods = facts["exporter_pods"]
    res.finding("%s pods" % entry["exporter"]["name"], bool(pods),
                "%d found by %s" % (len(pods), " or ".join(facts["selectors"])) if pods else
                "none found by label selector %s" % " or ".join(facts["selectors"]))
    if not pods:
        res.set(NOT_IMPLEMENTED, "no accelerator metrics exporter runs on the cluster")
        res.note("No %s pod was found (labels %s). Install it (%s) or pass exporter_selector if yours is "
                 "labelled differently." % (entry["exporter"]["name"], " or ".join(facts["selectors"]),
                                            entry["exporter"]["install"]))
        return res.to_dict()
    good, problems = _node_findings(res, facts, entry)
    for ds in facts.get("exporter_daemonsets") or ():
        ok = ds["desired"] > 0 and ds["ready"] >= ds["desired"]
        res.finding("exporter DaemonSet %s ready on every node it targets" % ds["name"], ok,
                    "%d of %d pods ready" % (ds["ready"], ds["desired"]))
        if not ok:
            problems.append("DaemonSet %s: %d of %d exporter pods ready" % (ds["name"], ds["ready"], ds["desired"]))
    if facts.get("exporter_pods_sampled"):
        res.note("The cluster runs more than %d exporter pods: a sample of them was read and scraped, and the "
                 "exporter DaemonSets' counts stand for the rest." % EXPORTER_SAMPLE)
    _scrape_evidence(res, facts, entry)
    serving = [n for n, v in facts["nodes"].items() if (v["scrape"] or {}).get("analysis")]
    if not serving:
        res.set(NOT_IMPLEMENTED, "no accelerator node serves a Prometheus-format metrics endpoint")
        res.note("Problems per node: %s." % "; ".join(problems))
        return res.to_dict()
    if not any(((facts["nodes"][n]["scrape"]["analysis"].get("kinds") or {}).get(kind) or {}).get("by_uuid")
               for n in serving for kind in acc.CORE_METRICS):
        # an endpoint that answers but exports no per-accelerator utilisation or memory is no implementation
        res.set(NOT_IMPLEMENTED, "no accelerator node serves any per-accelerator utilisation or memory metric")
        res.note("Problems per node: %s." % "; ".join(problems))
        return res.to_dict()
    if problems or not good:
        res.set(PARTIAL, "not every accelerator node serves per-accelerator utilisation and memory metrics")
        res.note("Problems per node: %s." % "; ".join(problems))
    else:
        res.set(IMPLEMENTED, "every accelerator node serves per-accelerator utilisation and memory metrics")
    _optional_findings(res, facts, entry)
    _platform_prometheus(res, facts, entry)
    if facts.get("unscraped"):
        res.note("Only the first %d accelerator nodes were scraped (%d more not checked)."
                 % (MAX_NODES_SCRAPED, facts["unscraped"]))
    _judge_load(res, probe_out, passive_reason)
    return res.to_dict()


FRESH_PROMETHEUS_SECONDS = 30


def _still_starting(cluster, prom, exporter_pods):
    """True while `prom` may not have scraped the exporters yet: an exporter pod is a target never scraped
    (health unknown), or the server has no target at all and started less than FRESH_PROMETHEUS_SECONDS ago
    (by its own clock: runtimeinfo startTime vs time()); Prometheus applies discovered targets every 5 s."""
    targets = (asm.prometheus_get(cluster, prom, "/api/v1/targets", [("state", "active")]) or {}).get("activeTargets") or []
    mine = [t for t in targets if (t.get("labels") or {}).get("pod") in exporter_pods]
    if [t for t in mine if t.get("health") == "unknown"]:
        return True
    # the exporters are scraped (their monitor is selected) but discovery has not caught up with every pod yet
    if mine and set(exporter_pods) - {(t.get("labels") or {}).get("pod") for t in mine}:
        return True
    if targets:
        return False
    info = asm.prometheus_get(cluster, prom, "/api/v1/status/runtimeinfo", [])
    now = asm.counter_value(asm.prometheus_get(cluster, prom, "/api/v1/query", [("query", "vector(time())")]))
    started = cl.parse_rfc3339(str((info or {}).get("startTime") or "")[:19] + "Z") if info else None
    return started is not None and now is not None and now - started < FRESH_PROMETHEUS_SECONDS


def stores_core_series(entry, stored, accelerators):
    """Pure: does a Prometheus that stores `stored` ({metric: series}) hold utilisation and memory usage for
    `accelerators` accelerators (one series each)?"""
    return all(any(stored.get(name, 0) >= accelerators for name in acc.metric_names(entry, kind)) for kind in acc.CORE_METRICS)


def _platform_prometheus(res, facts, entry):
    proms = facts.get("platform_prometheus") or []
    if not proms:
        return
    accelerators = sum(info["expected"] for info in facts["nodes"].values())
    good = [p["prometheus"] for p in proms if stores_core_series(entry, p["stored"], accelerators)]
    res.add_evidence("accelerator series stored by the platform Prometheus (%s)" % stored_query(entry),
                     [{"prometheus": p["prometheus"], "series": p["stored"], "error": p["error"]} for p in proms], "yaml")
    res.finding("platform Prometheus stores the accelerator series", bool(good),
                "%s stores utilisation and memory series for all %d accelerators" % (", ".join(good), accelerators) if good else
                "; ".join("%s: %s" % (p["prometheus"], p["error"] or json.dumps(p["stored"], sort_keys=True)) for p in proms))
    if not good:
        _lower(res, "The platform Prometheus (%s) does not store per-accelerator utilisation and memory series for all %d "
                    "accelerators: the exporter is not scraped by it. Make its serviceMonitorSelector select the exporter's "
                    "ServiceMonitor (kube-prometheus-stack selects only monitors labelled release=<release> unless "
                    "serviceMonitorSelectorNilUsesHelmValues=false) or add a ServiceMonitor for the exporter."
               % (", ".join(p["prometheus"] for p in proms), accelerators),
               "the exporters serve per-accelerator metrics but the platform Prometheus does not store them")


def _no_accelerators(res, facts, entry):
    if facts["other"]:
        res.set(PARTIAL, "accelerators outside the vendor table need manual verification")
        res.note("Nodes carry accelerators this collection has no vendor entry for (%s); check their metrics "
                 "exporter manually or add the vendor to the table." % ", ".join(sorted(
                     set(r for v in facts["other"].values() for r in v))))
        return res.to_dict()
    res.finding("accelerator nodes", None, "none")
    res.set(NOT_APPLICABLE, "the cluster has no accelerators")
    res.note("No node advertises %s accelerators (no device plugin resource, no feature-discovery labels, no DRA "
             "devices), so there are no accelerator metrics to expose; the requirement applies once accelerator "
             "nodes join." % entry["display"])
    return res.to_dict()


def _node_findings(res, facts, entry):
    good, problems = [], []
    for node, info in sorted(facts["nodes"].items()):
        scrape = info["scrape"]
        if scrape is None:
            problems.append("%s: no exporter pod on the node" % node)
            res.finding("metrics on %s" % node, False, "no %s pod runs on this node" % entry["exporter"]["name"])
            continue
        if scrape["error"]:
            problems.append("%s: %s" % (node, scrape["error"]))
            res.finding("metrics on %s" % node, False, "pod %s/%s: %s" % (scrape["namespace"], scrape["pod"], scrape["error"]))
            continue
        ok, node_problems = node_verdict(scrape["analysis"], info["expected"])
        kinds = scrape["analysis"]["kinds"]
        detail = "pod %s/%s port %s: %s" % (scrape["namespace"], scrape["pod"], scrape["port"], ", ".join(
            "%s=%s (%s, %d accelerators)" % (k, kinds[k]["metric"], kinds[k]["otel"], len(kinds[k]["by_uuid"]))
            for k in acc.CORE_METRICS if k in kinds) or "no core metric")
        if node_problems:
            detail += "; " + "; ".join(node_problems)
            problems.append("%s: %s" % (node, "; ".join(node_problems)))
        else:
            good.append(node)
        res.finding("metrics on %s (%d accelerators)" % (node, info["expected"]), ok, detail)
    return good, problems


def _optional_findings(res, facts, entry):
    found = {}
    for info in facts["nodes"].values():
        analysis = (info["scrape"] or {}).get("analysis")
        for kind in acc.OPTIONAL_METRICS:
            item = (analysis or {}).get("kinds", {}).get(kind)
            if item:
                found.setdefault(kind, set()).update([item["metric"]] + list(item["also"]))
    for kind in acc.OPTIONAL_METRICS:
        res.finding("optional %s metrics" % kind, None,
                    "%s -> %s" % (", ".join(sorted(found[kind])), acc.OTEL[kind]) if kind in found else "not exposed")


def _judge_load(res, probe_out, passive_reason):
    if passive_reason:
        res.finding("metrics react to load", None, passive_reason)
        _lower(res, "Whether the metrics react to load was not shown (%s); run in active mode." % passive_reason,
               "per-accelerator metrics are served; their reaction to load was not shown (read-only run)")
        return
    if not probe_out or probe_out.get("skipped"):
        reason = (probe_out or {}).get("skipped", "not run")
        res.finding("metrics react to load", None, "skipped: %s" % reason)
        _lower(res, "Whether the metrics react to load was not shown: %s." % reason,
               "per-accelerator metrics are served; their reaction to load was not shown")
        return
    if probe_out.get("cleanup"):
        res.note(probe_out["cleanup"])
    if probe_out.get("timed_out"):
        res.finding("metrics react to load", False, "load pod did not start: %s" % probe_out.get("pod_state", ""))
        _lower(res, "The load pod did not start (%s)." % probe_out["timed_out"],
               "per-accelerator metrics are served; the load probe could not run")
        return
    rise = probe_out.get("rise")
    ok = rise is not None and rise >= UTILIZATION_RISE
    detail = "node %s, accelerator %s (%s): utilisation %s%% -> %s%%, memory used %s -> %s" % (
        probe_out["node"], probe_out.get("uuid") or "not identified", probe_out.get("identified_by") or "-",
        (probe_out.get("before") or {}).get("utilization_percent"),
        (probe_out.get("during") or {}).get("utilization_percent"),
        (probe_out.get("before") or {}).get("memory_used"), (probe_out.get("during") or {}).get("memory_used"))
    res.finding("metrics react to load", ok, detail)
    res.add_evidence("load probe (namespace %s)" % probe_out.get("namespace"), {
        "node": probe_out["node"], "mechanism": probe_out["mechanism"], "accelerator": probe_out.get("uuid"),
        "identified_by": probe_out.get("identified_by"), "before": probe_out.get("before"),
        "during": probe_out.get("during")}, "yaml")
    if not ok:
        _lower(res, "The utilisation of the load pod's accelerator did not rise by %d points within the load time; "
               "the exporter may be stale or not attributing the device." % UTILIZATION_RISE,
               "per-accelerator metrics are served but did not react to load")


def _lower(res, note, summary):
    """Partially Implemented with `note`; the summary changes only when the verdict did (an earlier, more
    specific problem keeps its own summary)."""
    before = res.status
    res.lower_to(PARTIAL, note)
    if res.status != before:
        res.summary = summary
    else:
        res.note(note)


def _scrape_evidence(res, facts, entry):
    rows = []
    for node, info in sorted(facts["nodes"].items()):
        analysis = (info["scrape"] or {}).get("analysis")
        if not analysis:
            continue
        kinds = analysis["kinds"]
        for uuid, acc_info in sorted(analysis["accelerators"].items(), key=lambda kv: str(kv[1]["index"])):
            rows.append([node, acc_info["index"], uuid, acc_info["model"],
                         _value(analysis, "utilization", uuid), _value(analysis, "memory_used", uuid),
                         ", ".join(acc_info["pods"]) or "-"])
        res.add_evidence("metric names on %s (OpenTelemetry mapping)" % node, pr.text_table(
            ["KIND", "METRIC", "OTEL"], [[k, v["metric"], v["otel"]] for k, v in sorted(kinds.items())]), "table")
        if info["scrape"]["raw_excerpt"]:
            res.add_evidence("raw exposition excerpt from %s/%s" % (info["scrape"]["namespace"], info["scrape"]["pod"]),
                             info["scrape"]["raw_excerpt"], "text")
    if rows:
        res.add_evidence("per-accelerator values", pr.text_table(
            ["NODE", "GPU", "UUID", "MODEL", "UTIL %", "MEMORY USED", "PODS"], rows), "table")


# --------------------------------------------------------------------------------------------- run
def run(cluster, opts):
    facts = observe(cluster, opts)
    ready = facts["expected"] and any((v["scrape"] or {}).get("analysis") for v in facts["nodes"].values())
    if not opts.active or not ready:
        return judge(facts, passive_reason=opts.passive_reason() if not opts.active else "",
                     probe_out=None if not opts.active else {"skipped": "no exporter answered, nothing to load"})
    deadline = cl.Deadline(2 * opts.wait_timeout + int(opts.get("load_seconds", 90)) + 120)
    return judge(facts, probe(cluster, opts, facts, deadline))
