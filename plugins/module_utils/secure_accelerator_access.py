# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""secure_accelerator_access: a container sees exactly the accelerators granted to it, and no others.

observe(): accelerator nodes, how accelerators are requested (device plugin resource, DRA driver and
DeviceClass), the `nvidia` RuntimeClass and the GPU operator's toolkit settings (the
NVIDIA_VISIBLE_DEVICES env-var leak switch).
probe(): the upstream test plan's cases as unprivileged pods in a fresh namespace, by device plugin and
by DRA where each is available:
  T1a  a pod without a request, on an accelerator node, sees no device;
  T1b  the same with NVIDIA_VISIBLE_DEVICES=all (and runtimeClassName nvidia when it exists);
  T2   a pod requesting one accelerator sees exactly one;
  T4   a pod whose first container requests one and whose second does not: the second sees none;
  T3   two one-accelerator pods on the same node (>= 2 free there) see different accelerators, and
       neither sees the other's device node. Skipped, with a note, when no node has two free.
Each container prints the upstream test's `RESULT: ACCELERATOR_FOUND|MISSING` line, the device nodes and
the listing command's output; judge() reads only that text and the pod states.
"""
from __future__ import annotations

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc
from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support as dra_mod
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "secure_accelerator_access"
ARG_SPEC = {}
ENVVAR_SWITCH = "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED"
MAX_NODES_INSPECTED = 10


# --------------------------------------------------------------------------------------------- observe
def _env_value(env_list, name):
    for item in env_list or []:
        if item.get("name") == name:
            return str(item.get("value", ""))
    return None


def observe_gpu_operator(cluster):
    """Toolkit/CDI settings from the GPU operator's ClusterPolicy, when its CRD is served."""
    if not cluster.discovery().has("nvidia.com/v1", "clusterpolicies"):
        return None
    policies = cluster.list("nvidia.com/v1", "clusterpolicies")
    if not policies:
        return {"found": False}
    spec = policies[0].get("spec") or {}
    return {
        "found": True,
        "name": policies[0]["metadata"]["name"],
        "cdi_enabled": (spec.get("cdi") or {}).get("enabled"),
        "envvar_when_unprivileged": _env_value((spec.get("toolkit") or {}).get("env"), ENVVAR_SWITCH),
        "device_list_strategy": _env_value((spec.get("devicePlugin") or {}).get("env"), "DEVICE_LIST_STRATEGY"),
    }


def observe(cluster, opts):
    version = cluster.version()
    accel = pr.observe_accelerators(cluster, opts.vendor, opts.vendor_reason)
    dra = dra_mod.observe_dra(cluster)
    if opts.vendor == "auto" and not accel["nodes"] and dra["drivers"]:
        accel["vendor"] = acc.resolve_vendor("auto", [], dra["drivers"])[0]
    entry = acc.vendor(accel["vendor"])
    runtime_class = None
    if entry.get("runtime_class") and cluster.discovery().has("node.k8s.io/v1", "runtimeclasses"):
        if cluster.get("node.k8s.io/v1", "runtimeclasses", entry["runtime_class"]):
            runtime_class = entry["runtime_class"]
    dra_driver = next((d for d in dra["drivers"] if d in entry["dra"]["drivers"]), None)
    dra_class = dra_mod.class_for_driver(dra["device_classes"], [dra_driver], entry["dra"]["device_class"]) \
        if dra_driver else None
    dra_ready = bool(dra_driver and dra_class and dra["resources"].get("resourceclaimtemplates", {}).get("served"))
    return {
        "minor": version.get("minor_int"),
        "vendor": accel["vendor"],
        "vendor_reason": accel["vendor_reason"],
        "nodes": accel["nodes"],
        "other": accel["other"],
        "device_plugin": any(n.get("allocatable") for n in accel["nodes"]),
        "dra": {"version": dra["version"], "driver": dra_driver, "device_class": dra_class, "ready": dra_ready,
                "devices_by_node": _dra_devices_by_node(dra["slices"], dra_driver)},
        "runtime_class": runtime_class,
        "gpu_operator": observe_gpu_operator(cluster) if accel["vendor"] == "nvidia" else None,
    }


def _dra_devices_by_node(slices, driver):
    counts = {}
    for sl in slices:
        if sl["driver"] == driver and sl["node"]:
            counts[sl["node"]] = counts.get(sl["node"], 0) + len(sl["devices"])
    return counts


# --------------------------------------------------------------------------------------------- probe
def _schedulable(nodes):
    return [n for n in nodes if not n["unschedulable"]]


def plan(cluster, facts, entry):
    """Where the probes go: `target` (the accelerator node with the most free accelerators; T1 pods are
    pinned there), `same_node`/`same_mechanism` for T3 (a node with two free device-plugin accelerators,
    else a DRA node with two devices; None when there is none) and `shared` (time-slicing/MPS nodes,
    where T3's equal UUIDs would be expected)."""
    nodes = _schedulable(facts["nodes"])
    dra = facts["dra"]
    if not nodes and dra["ready"]:
        nodes = [{"name": n, "allocatable": 0} for n in sorted(dra["devices_by_node"])]
    free = {}
    for node in nodes[:MAX_NODES_INSPECTED]:
        free[node["name"]] = pr.free_accelerators(cluster, entry, node) if node.get("allocatable") else 0
    target = max(nodes[:MAX_NODES_INSPECTED], key=lambda n: free.get(n["name"], 0))["name"] if nodes else None
    # Time-sliced/MPS nodes advertise replicas: two pods there may legitimately get the same GPU, so T3 uses an
    # unshared node; `shared` says T3 found none (only shared nodes have two free accelerators).
    shared_nodes = set(n["name"] for n in facts["nodes"] if n.get("shared"))
    same_node, same_mech = None, None
    if facts["device_plugin"]:
        same_node = next((n for n, f in sorted(free.items(), key=lambda kv: -kv[1])
                          if f >= 2 and n not in shared_nodes), None)
        same_mech = "device-plugin" if same_node else None
    if not same_node and dra["ready"]:
        same_node = next((n for n, c in sorted(dra["devices_by_node"].items()) if c >= 2), None)
        same_mech = "dra" if same_node else None
    shared = not same_node and any(f >= 2 for n, f in free.items() if n in shared_nodes)
    return {"target": target, "free": free, "same_node": same_node, "same_mechanism": same_mech, "shared": shared}


def _pods(facts, the_plan, opts, entry):
    """(pod manifests, tests) for the plan. Tests: [{id, mechanism, kind, checks: [(pod, container, expected)]}].

    T3's pods keep running after printing (until their namespace is deleted): two pods only prove
    anything about sharing while both hold their accelerator at the same time.
    """
    script = pr.probe_script(entry)
    holding = "%s; sleep %d" % (script, opts.wait_timeout + 120)
    image = opts.probe_image
    resource = entry["resources"][0]
    dra = facts["dra"]
    target = the_plan["target"]
    pods, tests = [], []

    def add(test_id, mechanism, kind, manifests, checks):
        pods.extend(manifests)
        tests.append({"id": test_id, "mechanism": mechanism, "kind": kind, "checks": checks})

    add("T1a", "none", "negative", [pr.pod_manifest("aic-none", [pr.container("probe", image, script)], opts, entry,
                                                    node=target)], [("aic-none", "probe", 0)])
    env_name = entry["devices"].get("visible_env")
    if env_name:
        add("T1b", "none", "negative", [pr.pod_manifest(
            "aic-none-env", [pr.container("probe", image, script, env={env_name: "all"})], opts, entry, node=target,
            runtime_class=facts["runtime_class"])], [("aic-none-env", "probe", 0)])
    mechanisms = []
    if facts["device_plugin"]:
        mechanisms.append("device-plugin")
    if dra["ready"]:
        mechanisms.append("dra")
    for mech in mechanisms:
        short = "dp" if mech == "device-plugin" else "dra"

        def one(name, node=None, mech=mech, text=script):
            if mech == "device-plugin":
                return pr.pod_manifest(name, [pr.container("probe", image, text, limits={resource: 1})], opts, entry,
                                       node=node)
            return pr.pod_manifest(name, [pr.container("probe", image, text, claims=["gpu"])], opts, entry,
                                   node=node, resource_claims=[{"name": "gpu", "resourceClaimTemplateName": "aic-one"}])
        add("T2", mech, "positive", [one("aic-%s-one" % short)], [("aic-%s-one" % short, "probe", 1)])
        if mech == "device-plugin":
            multi = pr.pod_manifest("aic-dp-multi", [pr.container("with", image, script, limits={resource: 1}),
                                                     pr.container("without", image, script)], opts, entry)
        else:
            multi = pr.pod_manifest("aic-dra-multi", [pr.container("with", image, script, claims=["gpu"]),
                                                      pr.container("without", image, script)], opts, entry,
                                    resource_claims=[{"name": "gpu", "resourceClaimTemplateName": "aic-one"}])
        add("T4", mech, "multi-container", [multi],
            [(multi["metadata"]["name"], "with", 1), (multi["metadata"]["name"], "without", 0)])
        if the_plan["same_mechanism"] == mech:
            names = ["aic-%s-same-a" % short, "aic-%s-same-b" % short]
            add("T3", mech, "distinct", [one(n, the_plan["same_node"], text=holding) for n in names],
                [(n, "probe", 1) for n in names])
    return pods, tests


def probe(cluster, opts, facts, deadline):
    entry = acc.vendor(facts["vendor"])
    the_plan = plan(cluster, facts, entry)
    outcome = {"plan": the_plan, "namespace": None, "swept": [], "cleanup": "", "tests": [], "timed_out": ""}
    if not the_plan["target"]:
        outcome["skipped"] = "no schedulable accelerator node to run probes on"
        return outcome
    pods, tests = _pods(facts, the_plan, opts, entry)
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep,
                           cleanup_timeout=opts.wait_timeout) as ns:
        outcome["namespace"], outcome["swept"] = ns.name, ns.swept
        if facts["dra"]["ready"]:
            version = facts["dra"]["version"]
            template = dra_mod.claim_template(version, "aic-one", [dra_mod.device_request(
                version, "gpu", facts["dra"]["device_class"])])
            cluster.create("%s/%s" % (dra_mod.GROUP, version), "resourceclaimtemplates", template, ns.name)
        for pod in pods:
            cluster.create("v1", "pods", pod, ns.name)
        states, logs = {}, {}
        try:
            cl.wait_until("the isolation probe pods to print their results",
                          lambda: _poll(cluster, ns.name, pods, states, logs), lambda done: done,
                          opts.wait_timeout, opts.wait_sleep, deadline,
                          lambda done: "; ".join("%s: %s" % (n, pr.summarize_pod(p)) for n, p in sorted(states.items())
                                                 if n not in logs))
        except cl.WaitTimeout as err:
            outcome["timed_out"] = str(err)
        outcome["tests"] = _read_tests(tests, states, logs, entry)
    outcome["cleanup"] = ns.cleanup_note
    return outcome


def _poll(cluster, namespace, pods, states, logs):
    """One round over the probe pods; True once every pod's output is in `logs`.

    A pod's output is taken when it has finished, or while it runs once every container printed its
    listing's exit status (the pods of T3 keep running)."""
    for pod in pods:
        name = pod["metadata"]["name"]
        if name in logs:
            continue
        states[name] = current = cluster.get("v1", "pods", name, namespace)
        if not pr.pod_started(current):
            continue
        texts = {c["name"]: cluster.pod_logs(namespace, name, c["name"]) for c in pod["spec"]["containers"]}
        if pr.pod_done(current) or all(pr.LISTING_MARK in text for text in texts.values()):
            logs[name] = texts
    return len(logs) == len(pods)


def _read_tests(tests, states, logs, entry):
    out = []
    for test in tests:
        checks = []
        for pod_name, container, expected in test["checks"]:
            pod = states.get(pod_name)
            log = (logs.get(pod_name) or {}).get(container, "")
            checks.append({"pod": pod_name, "container": container, "expected": expected,
                           "node": (pod or {}).get("spec", {}).get("nodeName"), "state": pr.summarize_pod(pod),
                           "ran": pr.LISTING_MARK in log, "log": log, "seen": pr.parse_probe_output(entry, log)})
        out.append(dict(test, checks=checks))
    return out


# --------------------------------------------------------------------------------------------- judge
def evaluate_check(check):
    """Pure: "pass", "leak" (sees more than granted) or "inconclusive" (did not run / saw too little)."""
    seen = check["seen"]
    if seen["visible"] > check["expected"] or (check["expected"] == 0 and seen["result"] == pr.RESULT_FOUND):
        return "leak"
    if not check["ran"] or seen["result"] is None:
        return "inconclusive"
    if check["expected"] == 0:
        return "pass" if seen["result"] == pr.RESULT_MISSING else "inconclusive"
    return "pass" if seen["result"] == pr.RESULT_FOUND and seen["visible"] == check["expected"] else "inconclusive"


def _identities(check):
    seen = check["seen"]
    return set(d["uuid"] for d in seen["listed"]) or set(seen["devices"])


def evaluate_test(test):
    """Pure: (outcome, detail) of one test; outcome as evaluate_check, T3 also compares identities."""
    outcomes = [evaluate_check(c) for c in test["checks"]]
    details = []
    for check, result in zip(test["checks"], outcomes):
        seen = check["seen"]
        what = ", ".join(["%s (%s)" % (d["name"], d["uuid"]) for d in seen["listed"]] or seen["devices"]) or "nothing"
        details.append("%s/%s on %s: %s, saw %s (expected %d)" % (
            check["pod"], check["container"], check["node"] or "-", seen["result"] or check["state"], what,
            check["expected"]))
    if "leak" in outcomes:
        return "leak", "; ".join(details)
    if "inconclusive" in outcomes:
        return "inconclusive", "; ".join(details)
    if test["id"] == "T3":
        first, second = (_identities(c) for c in test["checks"])
        if first & second:
            return "leak", "; ".join(details) + "; both pods got the same accelerator %s" % ", ".join(sorted(first & second))
        return "pass", "; ".join(details) + "; accelerators differ"
    return "pass", "; ".join(details)


TEST_NAMES = {
    "T1a": "pod without a request sees no accelerator",
    "T1b": "pod without a request but NVIDIA_VISIBLE_DEVICES=all sees no accelerator",
    "T2": "pod requesting one accelerator sees exactly one",
    "T4": "second container without a request sees no accelerator",
    "T3": "two pods on one node get different accelerators",
}


def _observation_findings(res, facts):
    nodes = facts["nodes"]
    res.finding("accelerator nodes", bool(nodes) or None, ", ".join(
        "%s (%s x%s)" % (n["name"], n["product"] or facts["vendor"], n["physical"]) for n in nodes[:10]) or "none")
    res.finding("device plugin resource", facts["device_plugin"] or None,
                "allocatable %s on %d node(s)" % (acc.vendor(facts["vendor"])["resources"][0],
                                                  sum(1 for n in nodes if n.get("allocatable")))
                if facts["device_plugin"] else "no node advertises one")
    dra = facts["dra"]
    res.finding("DRA driver and DeviceClass", dra["ready"] or None,
                "driver %s, class %s" % (dra["driver"], dra["device_class"]) if dra["ready"] else
                "no DRA driver of the vendor publishes devices")
    gpu_op = facts.get("gpu_operator")
    if gpu_op and gpu_op.get("found"):
        value = gpu_op.get("envvar_when_unprivileged")
        leaky = str(value).lower() == "true"
        shown = value if value is not None else "(not set)"
        res.finding("toolkit ignores NVIDIA_VISIBLE_DEVICES from unprivileged pods", False if leaky else (True if value else None),
                    "ClusterPolicy %s: %s=%s, CDI enabled=%s" % (gpu_op["name"], ENVVAR_SWITCH, shown, gpu_op.get("cdi_enabled")))
    if facts.get("runtime_class"):
        res.finding("RuntimeClass %s" % facts["runtime_class"], None, "exists; T1b uses it")


def judge(facts, probe_out=None, passive_reason=""):
    """Pure: facts (+ probe outcome) -> result dict. Rules: requirements.md, secure_accelerator_access."""
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    _observation_findings(res, facts)
    if not facts["nodes"] and not facts["dra"]["ready"]:
        if facts["other"]:
            res.set(PARTIAL, "accelerators outside the vendor table need manual verification")
            res.note("Nodes carry accelerators this collection has no vendor entry for (%s); verify isolation "
                     "manually or add the vendor to the table." % ", ".join(sorted(
                         set(r for v in facts["other"].values() for r in v))))
            return res.to_dict()
        res.set(NOT_APPLICABLE, "the cluster has no accelerators")
        res.note("No node advertises %s accelerators (no device plugin resource, no feature-discovery labels, no "
                 "DRA devices), so there is no accelerator access to isolate; the requirement applies once "
                 "accelerator nodes join." % acc.vendor(facts["vendor"])["display"])
        return res.to_dict()
    gpu_op = facts.get("gpu_operator") or {}
    config_leak = str(gpu_op.get("envvar_when_unprivileged")).lower() == "true"
    if passive_reason or not probe_out:
        res.finding("isolation probes", None, passive_reason or "not run")
        if config_leak:
            res.set(NOT_IMPLEMENTED, "the container toolkit accepts NVIDIA_VISIBLE_DEVICES from unprivileged pods")
            res.note("Set %s=false in the GPU operator's toolkit settings: any pod can otherwise see every GPU by "
                     "setting NVIDIA_VISIBLE_DEVICES=all." % ENVVAR_SWITCH)
        else:
            res.set(PARTIAL, "isolation can only be shown by active probes")
            res.note("Run in active mode: pods with and without accelerator requests must be started to show "
                     "isolation; a read-only run cannot prove it.")
        return res.to_dict()
    return _judge_probes(res, facts, probe_out, config_leak)


def _judge_probes(res, facts, probe_out, config_leak):
    if probe_out.get("skipped"):
        res.finding("isolation probes", None, "skipped: %s" % probe_out["skipped"])
        res.set(PARTIAL, "isolation probes could not run")
        res.note("Probes were skipped: %s." % probe_out["skipped"])
        return res.to_dict()
    results = {}
    for test in probe_out["tests"]:
        outcome, detail = evaluate_test(test)
        results.setdefault(outcome, []).append(test)
        label = "%s %s%s" % (test["id"], TEST_NAMES[test["id"]],
                             " (%s)" % test["mechanism"] if test["mechanism"] != "none" else "")
        res.finding(label, {"pass": True, "leak": False}.get(outcome), ("LEAK: " if outcome == "leak" else "") + detail)
    the_plan = probe_out["plan"]
    if not any(t["id"] == "T3" for t in probe_out["tests"]):
        reason = ("the accelerators are shared (time-slicing/MPS), so two pods may legitimately get the same one"
                  if the_plan.get("shared") else "no node has two free accelerators")
        res.finding("T3 %s" % TEST_NAMES["T3"], None, "skipped: %s" % reason)
        res.note("Same-node isolation between two pods was not shown: %s." % reason)
    _probe_evidence(res, probe_out)
    if probe_out.get("timed_out"):
        res.note("Some probes did not finish: %s" % probe_out["timed_out"])
    if probe_out.get("cleanup"):
        res.note(probe_out["cleanup"])
    mechanisms = set(t["mechanism"] for t in probe_out["tests"]) - {"none"}
    if results.get("leak"):
        res.set(NOT_IMPLEMENTED, "a container saw accelerators it did not request")
        res.note("A container saw accelerators it was not granted (%s). Make sure only the device plugin or DRA "
                 "driver injects devices (CDI or volume-mounts device list strategy, %s=false, no privileged "
                 "defaults)." % (", ".join(sorted(set(t["id"] for t in results["leak"]))), ENVVAR_SWITCH))
    elif not mechanisms:
        res.set(NOT_IMPLEMENTED, "accelerators are not requestable through a device plugin or DRA")
        res.note("Accelerator nodes exist but neither a device plugin resource nor a DRA driver exposes the "
                 "accelerators, so access is not mediated by Kubernetes; install the vendor's device plugin or "
                 "DRA driver.")
    elif results.get("inconclusive"):
        res.set(PARTIAL, "some isolation probes did not run to a conclusion")
        res.note("Tests without a conclusion: %s; see the findings for the pods' states (free accelerators, "
                 "image pulls, taints)." % ", ".join(sorted(set(t["id"] for t in results["inconclusive"]))))
    else:
        res.set(IMPLEMENTED, "containers see exactly the accelerators granted to them")
    if config_leak and res.status != NOT_IMPLEMENTED:
        res.lower_to(NOT_IMPLEMENTED, "The GPU operator sets %s=true: unprivileged pods may request every GPU "
                     "by environment variable; set it to false." % ENVVAR_SWITCH)
        res.summary = "the container toolkit accepts NVIDIA_VISIBLE_DEVICES from unprivileged pods"
    return res.to_dict()


def _probe_evidence(res, probe_out):
    rows = []
    for test in probe_out["tests"]:
        for check in test["checks"]:
            seen = check["seen"]
            rows.append([test["id"], test["mechanism"], "%s/%s" % (check["pod"], check["container"]), check["node"] or "-",
                         check["expected"], seen["result"] or "-", ", ".join(d["uuid"] for d in seen["listed"]) or
                         ", ".join(seen["devices"]) or "-"])
    res.add_evidence("probe pods (namespace %s)" % probe_out["namespace"],
                     pr.text_table(["TEST", "MECHANISM", "POD/CONTAINER", "NODE", "REQUESTED", "RESULT", "SEES"], rows),
                     "table")
    for test in probe_out["tests"]:
        for check in test["checks"]:
            if check["log"]:
                res.add_evidence("%s %s/%s output" % (test["id"], check["pod"], check["container"]), check["log"], "text")


# --------------------------------------------------------------------------------------------- run
def run(cluster, opts):
    facts = observe(cluster, opts)
    if not opts.active or (not facts["nodes"] and not facts["dra"]["ready"]):
        return judge(facts, passive_reason=opts.passive_reason())
    deadline = cl.Deadline(3 * opts.wait_timeout + 120)
    return judge(facts, probe(cluster, opts, facts, deadline))
