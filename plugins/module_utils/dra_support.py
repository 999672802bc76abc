# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""dra_support: Dynamic Resource Allocation APIs, and whether a driver's devices really allocate.

observe(): which resource.k8s.io versions are served, whether the four DRA resources are listable in
the best one, the DeviceClasses and the ResourceSlices drivers publish.
probe(): in a fresh namespace, a ResourceClaimTemplate (shaped for the served version) and a Job running
the vendor's listing command must get a device allocated and complete; a claim selecting a seen product
by CEL must allocate too, and one selecting a product that does not exist must leave its pod Pending.
judge(): the verdict rules of requirements.md, per Kubernetes minor.

The DRA helpers here (versions, slice normalisation, claim shapes) are shared with
secure_accelerator_access, which probes isolation through DRA as well.
"""
from __future__ import annotations

import random
import string
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "dra_support"
GROUP = "resource.k8s.io"
VERSION_ORDER = ("v1", "v1beta2", "v1beta1", "v1alpha3")
DRA_RESOURCES = ("deviceclasses", "resourceclaims", "resourceclaimtemplates", "resourceslices")
FLAT_REQUEST_VERSIONS = ("v1beta1", "v1alpha3")   # deviceClassName directly on the request

# Options only this check has (paired with the module's DOCUMENTATION).
ARG_SPEC = {
    "unschedulable_window": {"type": "int", "default": 60},
}


# --------------------------------------------------------------------------------------------- DRA helpers
def best_version(served):
    """The most mature served resource.k8s.io version we know, or None."""
    for version in VERSION_ORDER:
        if version in served:
            return version
    return None


def attribute_value(attr):
    """A DeviceAttribute ({"string": x} | {"int": n} | {"bool": b} | {"version": v}) as a plain value."""
    if not isinstance(attr, dict):
        return attr
    for key in ("string", "int", "bool", "version"):
        if key in attr:
            return attr[key]
    return None


def summarize_device(device):
    """Name, attributes and capacity of one slice device; v1beta1 nests them under `basic`."""
    body = device.get("basic") if isinstance(device.get("basic"), dict) else device
    attributes = {name: attribute_value(value) for name, value in (body.get("attributes") or {}).items()}
    capacity = {}
    for name, value in (body.get("capacity") or {}).items():
        capacity[name] = value.get("value") if isinstance(value, dict) else value
    return {"name": device.get("name"), "attributes": attributes, "capacity": capacity}


def summarize_slice(obj):
    spec = obj.get("spec") or {}
    return {
        "name": (obj.get("metadata") or {}).get("name"),
        "driver": spec.get("driver"),
        "node": spec.get("nodeName") or ("all nodes" if spec.get("allNodes") else ""),
        "pool": (spec.get("pool") or {}).get("name"),
        "devices": [summarize_device(d) for d in spec.get("devices") or []],
    }


def device_attribute(device, domain, name):
    """An attribute by its CEL address device.attributes["<domain>"].<name>: the qualified form
    "<domain>/<name>", or the bare name (bare names live in the driver's own domain)."""
    attributes = device.get("attributes") or {}
    if "%s/%s" % (domain, name) in attributes:
        return attributes["%s/%s" % (domain, name)]
    return attributes.get(name)


def device_request(version, name, device_class, selectors=None, count=1):
    """One claim request, in the shape the served version wants."""
    body = {"deviceClassName": device_class, "allocationMode": "ExactCount", "count": int(count)}
    if selectors:
        body["selectors"] = [{"cel": {"expression": expr}} for expr in selectors]
    if version in FLAT_REQUEST_VERSIONS:
        out = {"name": name}
        out.update(body)
        return out
    return {"name": name, "exactly": body}


def claim_template(version, name, requests):
    return {"apiVersion": "%s/%s" % (GROUP, version), "kind": "ResourceClaimTemplate",
            "metadata": {"name": name}, "spec": {"spec": {"devices": {"requests": requests}}}}


def cel_equals(domain, attribute, value):
    """A CEL selector comparing one device attribute with a literal."""
    if isinstance(value, bool):
        literal = "true" if value else "false"
    elif isinstance(value, int):
        literal = str(value)
    else:
        literal = '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')
    return 'device.attributes["%s"].%s == %s' % (domain, attribute, literal)


def claim_allocations(claim):
    """[{request, driver, pool, device}] from status.allocation.devices.results."""
    results = (((claim or {}).get("status") or {}).get("allocation") or {}).get("devices", {}).get("results") or []
    return [{"request": r.get("request"), "driver": r.get("driver"), "pool": r.get("pool"),
             "device": r.get("device")} for r in results]


def claim_owner_pod(claim):
    for ref in (claim.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Pod":
            return ref.get("name")
    return None


def class_for_driver(device_classes, drivers, preferred):
    """The DeviceClass to request: the vendor's own if it exists, else one whose CEL selector names a
    driver that publishes devices. None when no class can reach a published device."""
    names = [c["name"] for c in device_classes]
    if preferred in names:
        return preferred
    for cls in device_classes:
        text = " ".join(cls.get("selectors") or [])
        for driver in drivers:
            if driver in text:
                return cls["name"]
    return None


# --------------------------------------------------------------------------------------------- observe
# ResourceSlices one list request reads (see observe_dra).
SLICE_SAMPLE = 1000


def observe_dra(cluster):
    """Served versions, listability of the four resources, DeviceClasses and ResourceSlices."""
    served = cluster.discovery().served_versions(GROUP)
    version = best_version(served)
    facts = {"served": served, "version": version, "resources": {}, "device_classes": [], "slices": [],
             "drivers": []}
    if not version:
        return facts
    api_version = "%s/%s" % (GROUP, version)
    table = cluster.discovery().resources(GROUP, version)
    for resource in DRA_RESOURCES:
        entry = {"served": resource in table, "listable": False, "count": None, "error": ""}
        if entry["served"]:
            try:
                items, token, remaining = cluster.list_page(api_version, resource, limit=1)
                entry["listable"] = True
                entry["count"] = len(items) + (remaining or 0) if not token or remaining is not None else None
            except cl.MissingApiError as err:
                entry["error"] = str(err)
        facts["resources"][resource] = entry
    if facts["resources"]["deviceclasses"]["listable"]:
        for obj in cluster.list(api_version, "deviceclasses"):
            spec = obj.get("spec") or {}
            facts["device_classes"].append({
                "name": obj["metadata"]["name"],
                "selectors": [((s.get("cel") or {}).get("expression") or "").strip() for s in spec.get("selectors") or []],
                "extendedResourceName": spec.get("extendedResourceName"),
            })
    if facts["resources"]["resourceslices"]["listable"]:
        # a bounded sample: drivers publish one slice per node (and pool), so the first SLICE_SAMPLE name the
        # drivers and show their devices without reading every slice of a cluster of thousands of nodes
        sample = cluster.list(api_version, "resourceslices", limit=SLICE_SAMPLE, max_items=SLICE_SAMPLE)
        facts["slices"] = [summarize_slice(s) for s in sample]
    facts["drivers"] = sorted(set(s["driver"] for s in facts["slices"] if s["driver"] and s["devices"]))
    return facts


def observe(cluster, opts):
    version = cluster.version()
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    dra = observe_dra(cluster)
    if opts.vendor == "auto" and not accel["nodes"] and dra["drivers"]:
        accel["vendor"] = acc.resolve_vendor("auto", [], dra["drivers"])[0]
        accel["vendor_reason"] = "detected from the DRA driver publishing devices"
    return {"minor": version.get("minor_int"), "git_version": version.get("gitVersion", ""),
            "vendor": accel["vendor"], "vendor_reason": accel["vendor_reason"], "dra": dra,
            "accelerator_nodes": [n["name"] for n in accel["nodes"]]}


# --------------------------------------------------------------------------------------------- probe
def _rand(length=6):
    rng = random.SystemRandom()
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for dummy in range(length))


def _plan(facts, entry):
    """Which class, driver and attribute the probe uses, or {"skipped": reason}."""
    dra = facts["dra"]
    if not dra["version"]:
        return {"skipped": "resource.k8s.io is not served, nothing to allocate"}
    if not dra["resources"].get("resourceclaimtemplates", {}).get("served"):
        return {"skipped": "resourceclaimtemplates are not served in %s/%s" % (GROUP, dra["version"])}
    if not dra["drivers"]:
        return {"skipped": "no DRA driver publishes devices in ResourceSlices, so no claim can be allocated"}
    dra_entry = entry["dra"]
    device_class = class_for_driver(dra["device_classes"], dra["drivers"], dra_entry["device_class"])
    if not device_class:
        return {"skipped": "no DeviceClass selects the devices of driver(s) %s" % ", ".join(dra["drivers"])}
    driver = next((d for d in dra["drivers"] if d in dra_entry["drivers"]), dra["drivers"][0])
    domain = dra_entry["attribute_domain"] if driver in dra_entry["drivers"] else driver
    attribute, value = None, None
    for sl in dra["slices"]:
        if sl["driver"] != driver:
            continue
        for device in sl["devices"]:
            for name in (dra_entry["product_attribute"],) + tuple(sorted(device["attributes"])):
                candidate = device_attribute(device, domain, name)
                if isinstance(candidate, str) and candidate and "/" not in name:
                    attribute, value = name, candidate
                    break
            if attribute:
                break
        if attribute:
            break
    return {"skipped": None, "device_class": device_class, "driver": driver, "domain": domain,
            "attribute": attribute, "value": value}


def _claims_seen(cluster, namespace, api_version, seen):
    """Record every allocation visible now, keyed by owning pod (claims generated from templates may
    be deleted once their pod is done, so they are read while the probe runs)."""
    for claim in cluster.list(api_version, "resourceclaims", namespace=namespace):
        allocations = claim_allocations(claim)
        owner = claim_owner_pod(claim) or claim["metadata"]["name"]
        if allocations:
            seen[owner] = {"claim": claim["metadata"]["name"], "allocations": allocations,
                           "reserved_for": [r.get("name") for r in (claim.get("status") or {}).get("reservedFor") or []]}
        else:
            seen.setdefault(owner, {"claim": claim["metadata"]["name"], "allocations": [], "reserved_for": []})


def _job_pod(cluster, namespace, job_name):
    for selector in ("batch.kubernetes.io/job-name=%s" % job_name, "job-name=%s" % job_name):
        pods = cluster.list("v1", "pods", namespace=namespace, label_selector=selector)
        if pods:
            return pods[0]
    return None


def probe(cluster, opts, facts, deadline):
    """Run the allocation and CEL probes; returns the outcome dict judge() reads (never raises for an
    unmet requirement; cluster errors such as 403 propagate)."""
    entry = acc.vendor(facts["vendor"])
    plan = _plan(facts, entry)
    outcome = {"plan": plan, "namespace": None, "swept": [], "cleanup": ""}
    if plan["skipped"]:
        return outcome
    version = facts["dra"]["version"]
    api_version = "%s/%s" % (GROUP, version)
    window = int(opts.get("unschedulable_window", 60))
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep,
                           cleanup_timeout=opts.wait_timeout) as ns:
        outcome["namespace"], outcome["swept"] = ns.name, ns.swept
        impossible = "aic-no-such-product-%s" % _rand()
        templates = {"aic-one": [device_request(version, "gpu", plan["device_class"])]}
        if plan["attribute"]:
            templates["aic-cel-match"] = [device_request(version, "gpu", plan["device_class"],
                                                         [cel_equals(plan["domain"], plan["attribute"], plan["value"])])]
            templates["aic-cel-none"] = [device_request(version, "gpu", plan["device_class"],
                                                        [cel_equals(plan["domain"], plan["attribute"], impossible)])]
        for name, requests in templates.items():
            cluster.create(api_version, "resourceclaimtemplates", claim_template(version, name, requests), ns.name)
        # A claim generated for a pod is released once the pod is done, so the probes keep running (and
        # holding their claim) after printing, until this check has read the allocation; the namespace
        # deletion at the end stops them. A fixed short hold would race with slow polls.
        script = "%s; sleep %d" % (pr.probe_script(entry), opts.wait_timeout + 120)
        claim_ref = [{"name": "gpu", "resourceClaimTemplateName": "aic-one"}]
        pod_spec = pr.pod_manifest("aic-dra-job", [pr.container("probe", opts.probe_image, script, claims=["gpu"])],
                                   opts, entry, resource_claims=claim_ref)
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "aic-dra-job"},
               "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": pod_spec["metadata"]["labels"]},
                                                        "spec": pod_spec["spec"]}}}
        cluster.create("batch/v1", "jobs", job, ns.name)
        if plan["attribute"]:
            for name in ("aic-cel-match", "aic-cel-none"):
                pod = pr.pod_manifest(name, [pr.container("probe", opts.probe_image, script, claims=["gpu"])], opts,
                                      entry, resource_claims=[{"name": "gpu", "resourceClaimTemplateName": name}])
                cluster.create("v1", "pods", pod, ns.name)
        outcome.update(_watch(cluster, opts, ns.name, api_version, plan, window, deadline, impossible))
    outcome["cleanup"] = ns.cleanup_note
    return outcome


def _summarize_probes(state):
    """Where the job's pod and the matching CEL pod are stuck (for the timeout message)."""
    parts = ["job pod: %s" % pr.summarize_pod(state.get("job_pod"))]
    if state.get("match") is not None:
        parts.append("aic-cel-match: %s" % pr.summarize_pod(state["match"]))
    return "; ".join(parts)


def _watch(cluster, opts, namespace, api_version, plan, window, deadline, impossible):
    """Poll the probe objects until the job and the matching pod are done and the unschedulable window
    has passed (or time runs out), recording allocations and binding as they happen."""
    seen = {}
    state = {"job": None, "job_pod": None, "job_log": "", "match": None, "match_log": "", "none": None,
             "none_bound": False}

    def read_log(pod, key):
        # the log once the probe has printed its listing (it then holds its claim until the namespace goes)
        if pod and pr.pod_started(pod) and pr.LISTING_MARK not in state[key]:
            state[key] = cluster.pod_logs(namespace, pod["metadata"]["name"], "probe")
    started = time.monotonic()
    budget = deadline.bound(max(opts.wait_timeout, window + 2 * opts.wait_sleep))

    def fetch():
        _claims_seen(cluster, namespace, api_version, seen)
        state["job"] = cluster.get("batch/v1", "jobs", "aic-dra-job", namespace)
        state["job_pod"] = _job_pod(cluster, namespace, "aic-dra-job") or state["job_pod"]
        read_log(state["job_pod"], "job_log")
        if plan["attribute"]:
            state["match"] = cluster.get("v1", "pods", "aic-cel-match", namespace)
            read_log(state["match"], "match_log")
            state["none"] = cluster.get("v1", "pods", "aic-cel-none", namespace)
            state["none_bound"] = state["none_bound"] or pr.pod_bound(state["none"])
        return state

    def probed(pod, log_key, done):
        # done: the probe printed its listing while its claim's allocation was seen, or it ended
        name = (pod or {}).get("metadata", {}).get("name")
        return done or (pr.LISTING_MARK in state[log_key] and bool((seen.get(name) or {}).get("allocations")))

    def finished(st):
        if not probed(st["job_pod"], "job_log", pr.job_done(st["job"])):
            return False
        if not plan["attribute"]:
            return True
        return probed(st["match"], "match_log", pr.pod_done(st["match"])) and \
            (time.monotonic() - started >= window or st["none_bound"])

    timed_out = ""
    try:
        cl.wait_until("the DRA probes (job, matching and impossible CEL claims)", fetch, finished, budget,
                      opts.wait_sleep, summarize=_summarize_probes)
    except cl.WaitTimeout as err:
        timed_out = str(err)
    elapsed = round(time.monotonic() - started, 1)
    job_pod = state["job_pod"]
    out = {"timed_out": timed_out, "elapsed": elapsed, "impossible_value": impossible}
    out["job"] = {
        "complete": bool(pr.condition(state["job"], "Complete") and
                         pr.condition(state["job"], "Complete").get("status") == "True"),
        "failed": bool(pr.condition(state["job"], "Failed") and
                       pr.condition(state["job"], "Failed").get("status") == "True"),
        "pod": (job_pod or {}).get("metadata", {}).get("name"),
        "node": (job_pod or {}).get("spec", {}).get("nodeName"),
        "pod_state": pr.summarize_pod(job_pod),
        "log": state["job_log"] or (cluster.pod_logs(namespace, job_pod["metadata"]["name"], "probe")
                                    if pr.pod_started(job_pod) else ""),
        "allocations": (seen.get((job_pod or {}).get("metadata", {}).get("name")) or {}).get("allocations", []),
    }
    if plan["attribute"]:
        match = state["match"]
        out["cel_match"] = {
            "done": pr.pod_done(match), "phase": (match or {}).get("status", {}).get("phase"),
            "log": state["match_log"],
            "pod_state": pr.summarize_pod(match),
            "allocations": (seen.get("aic-cel-match") or {}).get("allocations", []),
        }
        none = state["none"]
        events = cluster.events_for("Pod", "aic-cel-none", namespace) if none else []
        out["cel_none"] = {
            "bound": state["none_bound"], "unschedulable": pr.pod_unschedulable(none),
            "phase": (none or {}).get("status", {}).get("phase"), "pod_state": pr.summarize_pod(none),
            "allocations": (seen.get("aic-cel-none") or {}).get("allocations", []),
            "failed_scheduling": [e.get("message", "") for e in events if e.get("reason") == "FailedScheduling"][:3],
            "observed_seconds": elapsed, "window": window,
        }
    return out


# --------------------------------------------------------------------------------------------- judge
def _api_findings(res, dra):
    served = dra["served"]
    res.finding("resource.k8s.io served", bool(served),
                "served versions: %s" % (", ".join(served) if served else "none (GET /apis/resource.k8s.io: not found)"))
    if not dra["version"]:
        return False
    all_listable = True
    for resource in DRA_RESOURCES:
        item = dra["resources"].get(resource) or {}
        ok = bool(item.get("listable"))
        all_listable = all_listable and ok
        if not item.get("served"):
            detail = "not served in %s/%s" % (GROUP, dra["version"])
        elif ok:
            detail = "listable cluster-wide in %s/%s" % (GROUP, dra["version"]) + \
                (" (%s items)" % item["count"] if item.get("count") is not None else "")
        else:
            detail = item.get("error") or "list failed"
        res.finding("%s listable" % resource, ok, detail)
    classes = [c["name"] for c in dra["device_classes"]]
    res.finding("DeviceClasses", None, ", ".join(classes) if classes else "none")
    drivers = dra["drivers"]
    res.finding("DRA driver publishes devices", bool(drivers) or None,
                "drivers: %s (%d ResourceSlices%s, %d devices in them)" % (
                    ", ".join(drivers), len(dra["slices"]),
                    " read, a sample" if len(dra["slices"]) >= SLICE_SAMPLE else "",
                    sum(len(s["devices"]) for s in dra["slices"]))
                if drivers else "no ResourceSlice lists any device")
    return all_listable


def _functional(res, probe_out, entry):
    """Findings for the probes; returns (allocated_and_ran, cel_ok, explanation)."""
    job = probe_out["job"]
    allocated = bool(job["allocations"])
    listing_exit = pr.parse_probe_output(entry, job["log"])["listing_exit"]
    # The probe holds its claim after the listing (see probe()), so "ran" is the listing's success, or a
    # Job that completed (a probe image whose shell ends early).
    ran = job["complete"] or listing_exit == 0
    listed = acc.parse_listing(entry, job["log"]) if job["log"] else []
    if job["complete"]:
        state = "Complete"
    elif listing_exit == 0:
        state = "ran its listing (exit 0) while holding the claim"
    elif job["failed"]:
        state = "Failed"
    else:
        state = "not finished" if listing_exit is None else "listing exited %d" % listing_exit
    detail = "claim allocated %s; job %s; pod %s" % (
        ", ".join("%s/%s/%s" % (a["driver"], a["pool"], a["device"]) for a in job["allocations"]) or "nothing",
        state, job["pod_state"])
    if listed:
        detail += "; listing: %s" % "; ".join("%s %s" % (d["name"], d["uuid"]) for d in listed)
    res.finding("claim from a ResourceClaimTemplate allocates and the workload runs", allocated and ran, detail)
    cel_ok = True
    if "cel_match" in probe_out:
        match = probe_out["cel_match"]
        ok = bool(match["allocations"]) and (
            match["phase"] == "Succeeded" or pr.parse_probe_output(entry, match.get("log", ""))["listing_exit"] == 0)
        cel_ok = ok
        res.finding("CEL selector on a device attribute allocates", ok,
                    "%s; allocated %s" % (match["pod_state"], ", ".join(a["device"] for a in match["allocations"]) or "nothing"))
        none = probe_out["cel_none"]
        held = not none["bound"] and not none["allocations"] and none["observed_seconds"] >= none["window"]
        cel_ok = cel_ok and held
        res.finding("CEL selector matching no device keeps the pod Pending", held,
                    "unbound for %ss (window %ss), unschedulable=%s%s" % (
                        none["observed_seconds"], none["window"], none["unschedulable"],
                        "; FailedScheduling: %s" % none["failed_scheduling"][-1] if none["failed_scheduling"] else ""))
    else:
        res.finding("CEL selectors (beyond counts)", None, "no string attribute on the devices to select by")
    return allocated and ran, cel_ok


def judge(facts, probe_out=None, passive_reason=""):
    """Pure: facts (+ probe outcome) -> result dict. Rules: requirements.md, dra_support."""
    dra = facts["dra"]
    minor = facts.get("minor") or 0
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    all_listable = _api_findings(res, dra)
    _evidence(res, facts)
    has_v1 = "v1" in dra["served"]
    beta_only = bool(dra["served"]) and not has_v1
    functional = None
    if passive_reason:
        res.finding("allocation probes", None, passive_reason)
    elif probe_out and probe_out["plan"].get("skipped"):
        res.finding("allocation probes", None, "skipped: %s" % probe_out["plan"]["skipped"])
    elif probe_out:
        functional = _functional(res, probe_out, acc.vendor(facts["vendor"]))
        _probe_evidence(res, probe_out)
        if probe_out.get("timed_out"):
            res.note("Probes ran out of time: %s" % probe_out["timed_out"])
        if probe_out.get("cleanup"):
            res.note(probe_out["cleanup"])
    if not dra["served"]:
        res.set(NOT_IMPLEMENTED, "resource.k8s.io is not served")
        res.note("The DRA API group resource.k8s.io is not served. Kubernetes 1.34+ serves resource.k8s.io/v1 by "
                 "default; on 1.33 enable the DynamicResourceAllocation feature gate on the API server, controller "
                 "manager, scheduler and kubelets and --runtime-config=resource.k8s.io/v1beta1=true (or v1beta2).")
    elif has_v1:
        _judge_v1(res, all_listable, dra, functional, acc.vendor(facts["vendor"]))
    elif minor >= 34:
        res.set(NOT_IMPLEMENTED, "resource.k8s.io/v1 is not served on Kubernetes 1.%d" % minor)
        res.note("Only %s served; from Kubernetes 1.34 the checklist requires the GA API resource.k8s.io/v1 (on "
                 "by default), so it has been switched off on this cluster (--runtime-config)." % ", ".join(dra["served"]))
    else:
        _judge_beta(res, all_listable, dra, functional, passive_reason)
    if beta_only and minor < 34:
        res.note("On Kubernetes 1.%d resource.k8s.io/v1 does not exist yet; DRA is served as %s (beta)."
                 % (minor, ", ".join(dra["served"])))
    if minor >= 36:
        res.note("dra_support is not part of the 1.36 checklist (Kubernetes conformance covers the DRA API from "
                 "1.35); this result is informational.")
    return res.to_dict()


def _judge_v1(res, all_listable, dra, functional, entry):
    if not all_listable:
        res.set(PARTIAL, "resource.k8s.io/v1 is served but not all four DRA resources are listable")
        res.note("The KAR-0051 test plan needs deviceclasses, resourceclaims, resourceclaimtemplates and "
                 "resourceslices listable in resource.k8s.io/v1.")
        return
    res.set(IMPLEMENTED, "resource.k8s.io/v1 is served and its four resources are listable")
    if not dra["drivers"]:
        res.note("No DRA driver publishes devices, so allocation was not exercised; install a DRA driver (for "
                 "%s accelerators %s) to request them through DRA." % (entry["display"], entry["dra"]["driver_name"]))
    elif functional is None:
        res.note("A DRA driver publishes devices; allocation was not exercised in this run (active mode does).")
    elif not functional[0]:
        res.lower_to(PARTIAL, "A DRA driver publishes devices but a claim from a ResourceClaimTemplate did not get a "
                     "device allocated and run; check the driver's kubelet plugin and the scheduler's DRA support.")
        res.summary = "DRA API served, but claims do not allocate"
    elif not functional[1]:
        res.lower_to(PARTIAL, "Claims allocate by count, but CEL selectors on device attributes did not behave "
                     "(a matching selector must allocate, an impossible one must stay Pending).")
        res.summary = "DRA API served, allocation works, attribute selection does not"


def _judge_beta(res, all_listable, dra, functional, passive_reason):
    if not all_listable:
        res.set(PARTIAL, "DRA beta API served, but not all four resources are listable")
        return
    if functional and functional[0] and functional[1]:
        res.set(IMPLEMENTED, "DRA beta API served and a driver's claims allocate and run")
        return
    res.set(PARTIAL, "DRA beta API served%s" % ("" if dra["drivers"] else " without a driver"))
    if not dra["drivers"]:
        res.note("No DRA driver publishes devices, so no claim can be allocated; install a DRA driver to show "
                 "allocation (gardener's 1.33 submission is Partially Implemented for the same reason).")
    elif functional is None:
        res.note("On a beta API the verdict needs a claim that allocates and runs: %s."
                 % (passive_reason or "run the check in active mode"))
    elif not functional[0]:
        res.note("A DRA driver publishes devices but the probe claim was not allocated and run.")
    else:
        res.note("Claims allocate, but CEL attribute selectors did not behave as required.")


def _evidence(res, facts):
    dra = facts["dra"]
    rows = [[GROUP + "/" + v, "yes" if v == dra["version"] else ""] for v in dra["served"]]
    res.add_evidence("resource.k8s.io versions served (Kubernetes %s)" % facts.get("git_version", ""),
                     pr.text_table(["API VERSION", "USED"], rows) if rows else "none", "table")
    if dra["version"]:
        rows = [[r, "yes" if dra["resources"][r]["served"] else "no", "yes" if dra["resources"][r]["listable"] else "no",
                 dra["resources"][r].get("count")] for r in DRA_RESOURCES]
        res.add_evidence("DRA resources in %s/%s" % (GROUP, dra["version"]),
                         pr.text_table(["NAME", "SERVED", "LISTABLE", "ITEMS"], rows), "table")
    if dra["device_classes"]:
        res.add_evidence("DeviceClasses", dra["device_classes"], "yaml")
    if dra["slices"]:
        excerpt = []
        for sl in dra["slices"][:3]:
            item = dict(sl)
            item["devices"] = sl["devices"][:2]
            if len(sl["devices"]) > 2:
                item["devices_not_shown"] = len(sl["devices"]) - 2
            excerpt.append(item)
        res.add_evidence("ResourceSlices (first %d of %d)" % (len(excerpt), len(dra["slices"])), excerpt, "yaml")


def _probe_evidence(res, probe_out):
    job = probe_out["job"]
    res.add_evidence("probe claim allocation (namespace %s)" % probe_out.get("namespace"),
                     {"job_pod": job["pod"], "node": job["node"], "allocations": job["allocations"]}, "yaml")
    if job["log"]:
        res.add_evidence("job log (%s)" % job["pod"], job["log"], "text")
    if "cel_match" in probe_out:
        plan = probe_out["plan"]
        res.add_evidence("CEL selector probes", {
            "matching_selector": cel_equals(plan["domain"], plan["attribute"], plan["value"]),
            "matching_result": probe_out["cel_match"],
            "impossible_selector": cel_equals(plan["domain"], plan["attribute"], probe_out["impossible_value"]),
            "impossible_result": probe_out["cel_none"],
        }, "yaml")


# --------------------------------------------------------------------------------------------- run
def deadline_seconds(opts):
    """Probe budget: setup, the longest wait (job or unschedulable window), cleanup, slack."""
    return 2 * opts.wait_timeout + max(opts.wait_timeout, int(opts.get("unschedulable_window", 60))) + 120


def run(cluster, opts):
    """observe -> probe (active only) -> judge; returns the result dict."""
    facts = observe(cluster, opts)
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason())
    deadline = cl.Deadline(deadline_seconds(opts))
    return judge(facts, probe(cluster, opts, facts, deadline))
