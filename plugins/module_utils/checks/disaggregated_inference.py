# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""disaggregated_inference: prefill and decode served by separate pods, shown with one request (KAR-0041).

observe (read-only) -> probe (active and opted in) -> judge (pure). Rules: ../shared/spec/requirements.md,
disaggregated_inference.

* Passive (bounded: label-selected pod lists, one capped page per workload kind): llm-d pods labelled
  `llm-d.ai/role=prefill|decode` (decode pods carry the routing sidecar); Dynamo DynamoGraphDeployments
  (nvidia.com/v1alpha1) whose services have `subComponentType: prefill|decode`; workloads whose pod template
  runs `--disaggregation-mode prefill|decode` (SGLang, Dynamo 1.x workers), `--is-prefill-worker` or a vLLM KV
  connector with kv_producer/kv_consumer (Deployments, StatefulSets, LeaderWorkerSets, one page of each) and
  their pods; whether LeaderWorkerSet is served; the pods' images (simulators: llm-d-inference-sim);
  the front: a Gateway whose Accepted HTTPRoute sits in the deployment's namespace (else the `endpoint` option).
* Active (opt-in `request_test: true`, heavy: it needs the deployment's model loaded): from a curl pod in a fresh
  probe namespace, one completion with an explicit `x-request-id` through that front (or `endpoint`); then the
  id is looked for in the logs of the deployment's prefill and decode pods (the serving containers; a decode pod's
  routing sidecar does not count). Implemented needs the id in a prefill pod and a decode pod, distinct pods.
  Simulator images prove the wiring, not a KV transfer: at most Partially Implemented.
"""
from __future__ import annotations

import json
import random
import re
import string

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "disaggregated_inference"
ROLE_LABEL = "llm-d.ai/role"
ROLES = ("prefill", "decode")
DYNAMO_API = "nvidia.com/v1alpha1"
DYNAMO_PLURAL = "dynamographdeployments"
LWS_API = "leaderworkerset.x-k8s.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
SIMULATOR_IMAGE = re.compile(r"inference-sim|vllm-sim|llm-d-sim|mock", re.IGNORECASE)
SIDECAR_IMAGE = re.compile(r"routing-sidecar|routing-proxy", re.IGNORECASE)
DISAGG_MODE = re.compile(r"--disaggregation-mode(?:=|\s+)(prefill|decode)")
KV_ROLE = re.compile(r"\"kv_role\"\s*:\s*\"kv_(producer|consumer)\"")
MAX_PODS = 100            # pods per label-selected list
MAX_WORKLOADS = 200       # one page of Deployments / StatefulSets / LeaderWorkerSets
MAX_TEMPLATED = 10        # workloads found by their pod template whose pods are listed
MAX_LOG_PODS = 5          # pods per role whose logs are read
LOG_TAIL = 5000           # lines per container
STATUS_MARK = "HTTP_STATUS: "

ARG_SPEC = {
    "request_test": {"type": "bool", "default": False},
    "endpoint": {"type": "str"},
    "namespace": {"type": "str"},
    "model": {"type": "str"},
    "request_timeout": {"type": "int", "default": 600},
    "client_image": {"type": "str", "default": "curlimages/curl:8.11.1"},
}

ENABLE_NOTE = ("Set request_test: true (role option disaggregated_inference_request_test) to send one completion "
               "with an explicit x-request-id through the deployment's gateway and look for it in a prefill and a "
               "decode pod's logs; it needs the model loaded and request logging on (vLLM --enable-log-requests).")
DEPLOY_NOTE = ("Deploy a disaggregated serving stack: llm-d's pd-disaggregation guide (prefill and decode vLLM pods "
               "labelled llm-d.ai/role, the routing sidecar and the inference scheduler behind a Gateway), an NVIDIA "
               "Dynamo DynamoGraphDeployment with prefill and decode workers, or SGLang with --disaggregation-mode.")


# --------------------------------------------------------------------------------------------- pure helpers
def pod_ready(pod):
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return not meta.get("deletionTimestamp") and status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def _args(container):
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def template_role(template_spec):
    """prefill/decode from a pod spec's flags, else None: `--disaggregation-mode prefill|decode` (SGLang, and
    Dynamo's workers since 1.x), Dynamo's older `--is-prefill-worker`, or vLLM's KV connector with
    `"kv_role":"kv_producer"` (prefill) / `"kv_consumer"` (decode). kv_both says nothing about the role."""
    for container in (template_spec or {}).get("containers") or ():
        text = " ".join(_args(container))
        match = DISAGG_MODE.search(text)
        if match:
            return match.group(1)
        if "--is-prefill-worker" in text:
            return "prefill"
        match = KV_ROLE.search(text)
        if match:
            return "prefill" if match.group(1) == "producer" else "decode"
    return None


def template_framework(template_spec):
    """Which server a pod spec runs, for the findings: dynamo, sglang, vllm, else "P/D flags"."""
    text = " ".join(" ".join(_args(c)) + " " + str(c.get("image") or "")
                    for c in (template_spec or {}).get("containers") or ()).lower()
    for name in ("dynamo", "sglang", "vllm"):
        if name in text:
            return name
    return "P/D flags"


def is_simulator(image):
    return bool(SIMULATOR_IMAGE.search(image or ""))


def is_sidecar(container):
    return bool(SIDECAR_IMAGE.search(container.get("image") or "")) or container.get("name") == "routing-proxy"


def model_of(pod):
    """The served model from a serving container's flags (--served-model-name, --model, --model-path, or
    `vllm serve MODEL`), also inside a `sh -c` script."""
    for container in (pod.get("spec") or {}).get("containers") or ():
        text = " ".join(_args(container))
        for flag in ("served-model-name", "model", "model-path"):
            match = re.search(r"--%s(?:=|\s+)([^\s;'\"]+)" % flag, text)
            if match:
                return match.group(1)
        match = re.search(r"(?:^|\s)serve\s+([^-\s][^\s;'\"]*)", text)
        if match:
            return match.group(1)
    return None


def pod_summary(pod, role, framework):
    spec = pod.get("spec") or {}
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    return {"name": pod["metadata"]["name"], "namespace": pod["metadata"].get("namespace"), "role": role,
            "framework": framework, "ready": pod_ready(pod), "node": spec.get("nodeName"),
            "labels": dict(pod["metadata"].get("labels") or {}),
            "images": [c.get("image") for c in containers],
            "containers": [c["name"] for c in spec.get("containers") or () if not is_sidecar(c)],
            "sidecar": any(is_sidecar(c) for c in containers),
            "simulator": any(is_simulator(c.get("image")) for c in spec.get("containers") or () if not is_sidecar(c)),
            "model": model_of(pod)}


def dynamo_summary(dgd):
    services = (dgd.get("spec") or {}).get("services") or {}
    roles = {}
    for name, svc in services.items():
        sub = str((svc or {}).get("subComponentType") or "").lower()
        main = (((svc or {}).get("extraPodSpec") or {}).get("mainContainer")) or {}
        if sub not in ROLES and (svc or {}).get("componentType") == "worker":
            sub = template_role({"containers": [main]}) or ("decode" if "decode" in name.lower() else "")
        if sub in ROLES:
            roles.setdefault(sub, []).append({"service": name, "replicas": (svc or {}).get("replicas", 1)})
    status = dgd.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    return {"name": dgd["metadata"]["name"], "namespace": dgd["metadata"].get("namespace"), "roles": roles,
            "state": status.get("state"), "ready": ready or str(status.get("state")).lower() == "successful"}


def deployments(workers):
    """The P/D deployments: workers grouped by (framework, namespace), with their ready prefill/decode pods."""
    groups = {}
    for worker in workers:
        key = (worker["framework"], worker["namespace"])
        group = groups.setdefault(key, {"framework": key[0], "namespace": key[1], "prefill": [], "decode": []})
        group[worker["role"]].append(worker)
    out = []
    for group in groups.values():
        group["ready_prefill"] = [w["name"] for w in group["prefill"] if w["ready"]]
        group["ready_decode"] = [w["name"] for w in group["decode"] if w["ready"]]
        group["healthy"] = bool(group["ready_prefill"] and group["ready_decode"] and
                                set(group["ready_prefill"]).isdisjoint(group["ready_decode"]))
        group["simulator"] = any(w["simulator"] for w in group["prefill"] + group["decode"])
        group["sidecar"] = any(w["sidecar"] for w in group["decode"])
        out.append(group)
    return sorted(out, key=lambda g: (not g["healthy"], g["framework"], g["namespace"] or ""))


def choose_front(routes, gateways):
    """Where the request goes: (url base, description): a Gateway with an address whose HTTPRoute (in the
    deployment's namespace) is Accepted. A Service is not guessed: one that selects the decode pods would skip
    the router that pairs them with prefill pods (llm-d's scheduler, SGLang's router); `endpoint` names it."""
    by_name = {(g["metadata"].get("namespace"), g["metadata"]["name"]): g for g in gateways}
    for route in routes:
        ns = route["metadata"].get("namespace")
        for ref in (route.get("spec") or {}).get("parentRefs") or ():
            gw = by_name.get((ref.get("namespace") or ns, ref.get("name")))
            status = (gw or {}).get("status") or {}
            addresses = [a.get("value") for a in status.get("addresses") or () if a.get("value")]
            if not gw or not addresses:
                continue
            listeners = [item for item in (gw.get("spec") or {}).get("listeners") or ()
                         if item.get("protocol") in ("HTTP", None) and
                         (ref.get("sectionName") in (None, item.get("name")))]
            if not listeners:
                continue
            port = int(listeners[0].get("port") or 80)
            host = addresses[0] if ":" not in addresses[0] else "[%s]" % addresses[0]
            where = "Gateway %s/%s (HTTPRoute %s/%s)" % (gw["metadata"].get("namespace"), gw["metadata"]["name"], ns,
                                                         route["metadata"]["name"])
            return "http://%s%s" % (host, "" if port == 80 else ":%d" % port), where
    return None, "no Gateway with an address and an Accepted HTTPRoute in the deployment's namespace"


def request_id(rng=None):
    rng = rng or random.SystemRandom()
    return "aic-pd-" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _i in range(16))


def completion_url(base):
    base = base.rstrip("/")
    return base if base.endswith("/completions") else base + "/v1/completions"


def client_script(url, rid, model, timeout):
    body = {"prompt": "Disaggregated inference splits prefill and decode because", "max_tokens": 16,
            "temperature": 0}
    if model:
        body["model"] = model
    payload = json.dumps(body).replace("'", "")
    return ("curl -s -m %d -H 'Content-Type: application/json' -H 'x-request-id: %s' -d '%s' "
            "-w '\\n%s%%{http_code}\\n' '%s' || echo 'CURL_EXIT: '$?") % (int(timeout), rid, payload, STATUS_MARK, url)


def parse_client(log):
    """(http status or None, body head) from the client pod's log."""
    status, body = None, []
    for line in (log or "").splitlines():
        if line.startswith(STATUS_MARK):
            try:
                status = int(line[len(STATUS_MARK):].strip())
            except ValueError:
                status = None
        elif line.strip():
            body.append(line)
    return status, "\n".join(body)[:400]


def log_hits(text, rid):
    return [line.strip()[:300] for line in (text or "").splitlines() if rid in line][:3]


# --------------------------------------------------------------------------------------------- observe
def observe(cluster, opts):
    disc = cluster.discovery()
    namespace = opts.get("namespace")
    facts = {"workers": [], "dynamo": [], "lws": disc.has(LWS_API, "leaderworkersets"), "errors": [],
             "dynamo_served": disc.has(DYNAMO_API, DYNAMO_PLURAL), "gateway_api": disc.has(GATEWAY_API, "httproutes")}
    for pod in cluster.list("v1", "pods", namespace=namespace, label_selector="%s in (prefill,decode)" % ROLE_LABEL,
                            limit=MAX_PODS, max_items=MAX_PODS):
        facts["workers"].append(pod_summary(pod, pod["metadata"]["labels"][ROLE_LABEL], "llm-d"))
    if facts["dynamo_served"]:
        for dgd in cluster.list(DYNAMO_API, DYNAMO_PLURAL, namespace=namespace, limit=MAX_WORKLOADS,
                                max_items=MAX_WORKLOADS):
            summary = dynamo_summary(dgd)
            if summary["roles"]:
                facts["dynamo"].append(summary)
    workers, workloads = _templated_workers(cluster, namespace, facts["lws"])
    facts["workers"].extend(workers)
    facts["templated_workloads"] = workloads
    return facts


def _templated_workers(cluster, namespace, lws):
    """Pods of the Deployments, StatefulSets and LeaderWorkerSets (one page of each) whose pod template has a
    prefill/decode flag (template_role) and no llm-d role label (those pods are listed by label already)."""
    kinds = [("apps/v1", "deployments"), ("apps/v1", "statefulsets")] + ([(LWS_API, "leaderworkersets")] if lws else [])
    found = []
    for api, plural in kinds:
        for obj in cluster.list(api, plural, namespace=namespace, limit=MAX_WORKLOADS, max_items=MAX_WORKLOADS):
            spec = obj.get("spec") or {}
            if plural == "leaderworkersets":
                tmpl = (spec.get("leaderWorkerTemplate") or {})
                template = tmpl.get("leaderTemplate") or tmpl.get("workerTemplate") or {}
                selector = {"leaderworkerset.sigs.k8s.io/name": obj["metadata"]["name"]}
            else:
                template = spec.get("template") or {}
                selector = (spec.get("selector") or {}).get("matchLabels") or {}
            role = template_role(template.get("spec"))
            if role and selector and not ((template.get("metadata") or {}).get("labels") or {}).get(ROLE_LABEL):
                found.append((obj["metadata"].get("namespace"), selector, role,
                              "%s/%s" % (obj.get("kind") or plural, obj["metadata"]["name"])))
    workers = []
    for ns, selector, role, unused_name in found[:MAX_TEMPLATED]:
        expr = ",".join("%s=%s" % item for item in sorted(selector.items()))
        for pod in cluster.list("v1", "pods", namespace=ns, label_selector=expr, limit=MAX_PODS,
                                max_items=MAX_PODS):
            workers.append(pod_summary(pod, template_role(pod.get("spec")) or role,
                                       template_framework(pod.get("spec"))))
    workloads = [{"namespace": item[0], "workload": item[3], "role": item[2]} for item in found[:50]]
    return workers, workloads


def observe_front(cluster, group, facts):
    """The Gateway in front of the deployment (HTTPRoutes of its namespace, their parent Gateways)."""
    ns = group["namespace"]
    routes, gateways = [], []
    if facts["gateway_api"]:
        routes = [r for r in cluster.list(GATEWAY_API, "httproutes", namespace=ns, limit=MAX_WORKLOADS,
                                          max_items=MAX_WORKLOADS) if _route_accepted(r)]
        gateway_ns = {ref.get("namespace") or ns for r in routes
                      for ref in (r.get("spec") or {}).get("parentRefs") or ()}
        for gns in sorted(gateway_ns)[:5]:
            gateways.extend(cluster.list(GATEWAY_API, "gateways", namespace=gns, limit=MAX_WORKLOADS,
                                         max_items=MAX_WORKLOADS))
    return choose_front(routes, gateways)


def _route_accepted(route):
    return any(c.get("type") == "Accepted" and c.get("status") == "True"
               for p in ((route.get("status") or {}).get("parents") or ()) for c in p.get("conditions") or ())


# --------------------------------------------------------------------------------------------- probe
def probe(cluster, opts, group, url, deadline):
    rid = request_id()
    model = opts.get("model") or next((w["model"] for w in group["decode"] if w.get("model")), None)
    timeout = int(opts.get("request_timeout", 600))
    out = {"request_id": rid, "url": url, "model": model, "status": None, "body": "", "error": "",
           "prefill_hits": {}, "decode_hits": {}, "cleanup": ""}
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep) as namespace:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "aic-pd-client", "namespace": namespace.name,
                            "labels": {pr.PROBE_LABEL: "aic-pd-client"}},
               "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                        "terminationGracePeriodSeconds": 5,
                        "containers": [{"name": "curl", "image": opts.get("client_image", "curlimages/curl:8.11.1"),
                                        "command": ["sh", "-c", client_script(url, rid, model, timeout)],
                                        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                                        "securityContext": {"allowPrivilegeEscalation": False}}]}}
        cluster.create("v1", "pods", pod, namespace=namespace.name)
        try:
            cluster.wait_for_object("client pod %s/aic-pd-client to finish its request" % namespace.name, "v1", "pods",
                                    "aic-pd-client", namespace.name, pr.pod_done,
                                    deadline.bound(timeout + opts.wait_timeout), opts.wait_sleep, deadline,
                                    summarize=pr.summarize_pod)
            out["status"], out["body"] = parse_client(cluster.pod_logs(namespace.name, "aic-pd-client"))
        except cl.WaitTimeout as err:
            out["error"] = "%s (option request_timeout)" % err
    out["cleanup"] = namespace.cleanup_note
    if out["status"] is not None:
        for role in ROLES:
            out[role + "_hits"] = search_logs(cluster, group[role], rid)
    return out


def search_logs(cluster, workers, rid):
    """{pod: [matching lines]} over the serving containers of up to MAX_LOG_PODS ready pods."""
    hits = {}
    for worker in [w for w in workers if w["ready"]][:MAX_LOG_PODS]:
        for container in worker["containers"]:
            try:
                text = cluster.pod_logs(worker["namespace"], worker["name"], container=container, tail_lines=LOG_TAIL)
            except cl.ForbiddenError:
                raise
            except cl.ClusterError:
                continue
            lines = log_hits(text, rid)
            if lines:
                hits.setdefault(worker["name"], []).extend("[%s] %s" % (container, line) for line in lines)
    return hits


# --------------------------------------------------------------------------------------------- judge (pure)
def judge(facts, group=None, front=None, probe_out=None, passive_reason="", request_test=False):
    res = Result(REQUIREMENT_ID, mode="passive" if passive_reason or not probe_out else "active")
    groups = deployments(facts.get("workers") or [])
    if groups:
        res.add_evidence("prefill/decode pods", pr.text_table(
            ["framework", "namespace", "pod", "role", "ready", "node", "sidecar", "images"],
            [[w["framework"], w["namespace"], w["name"], w["role"], w["ready"], w["node"], w["sidecar"],
              ", ".join(w["images"])] for w in facts["workers"][:60]]), "table")
    if facts.get("dynamo"):
        res.add_evidence("Dynamo DynamoGraphDeployments", facts["dynamo"], "yaml")
    if facts.get("templated_workloads"):
        res.add_evidence("workloads with prefill/decode flags", facts["templated_workloads"], "yaml")
    res.finding("LeaderWorkerSet served", None, "leaderworkersets.leaderworkerset.x-k8s.io %s (informational)"
                % ("served" if facts.get("lws") else "not served"))
    dynamo_pd = [d for d in facts.get("dynamo") or () if all(r in d["roles"] for r in ROLES)]
    healthy = [g for g in groups if g["healthy"]]
    res.finding("prefill and decode in separate Ready pods", None if not groups and dynamo_pd else bool(healthy),
                "; ".join(_group_line(g) for g in groups) or
                ("Dynamo graphs with prefill and decode: %s" % ", ".join(d["name"] for d in dynamo_pd)
                 if dynamo_pd else "no pod labelled llm-d.ai/role, no workload with --disaggregation-mode, "
                                   "--is-prefill-worker or a kv_producer/kv_consumer KV connector"))
    if not healthy:
        if dynamo_pd:
            ready = [d for d in dynamo_pd if d["ready"]]
            res.finding("Dynamo graph with prefill and decode workers Ready", bool(ready),
                        ", ".join("%s/%s state=%s" % (d["namespace"], d["name"], d["state"]) for d in dynamo_pd))
            res.note("A DynamoGraphDeployment declares prefill and decode workers, but no Ready prefill and decode "
                     "pods were found by their labels or flags (--disaggregation-mode, --is-prefill-worker), so the "
                     "request test cannot run: send a request through the Dynamo frontend with an x-request-id and "
                     "look for it in a prefill and a decode worker's logs.")
            return res.set(PARTIAL if ready else NOT_IMPLEMENTED,
                           "Dynamo prefill/decode graph %s" % ("Ready" if ready else "not Ready")).to_dict()
        if groups or facts.get("templated_workloads"):
            missing = "; ".join([_missing(g) for g in groups] + [
                "%s %s in %s: no pods" % (w["role"], w["workload"], w["namespace"])
                for w in facts.get("templated_workloads") or ()
                if not any(g["namespace"] == w["namespace"] for g in groups)])
            res.note("Prefill and decode must run in separate Ready pods: %s. A decode pod alone serves requests "
                     "aggregated (llm-d's routing sidecar sends a request to the local decoder when the scheduler "
                     "names no prefill pod), so no request is disaggregated." % missing)
            return res.set(NOT_IMPLEMENTED, "no deployment has Ready prefill and decode pods (%s)" % missing).to_dict()
        res.note(DEPLOY_NOTE)
        return res.set(NOT_IMPLEMENTED, "no disaggregated (prefill/decode) serving deployment found").to_dict()
    group = group or healthy[0]
    if group["framework"] == "llm-d":
        res.finding("decode pods carry the routing sidecar", group["sidecar"] if group["sidecar"] else None,
                    "llm-d-routing-sidecar in %s" % ", ".join(w["name"] for w in group["decode"] if w["sidecar"])
                    if group["sidecar"] else "no routing sidecar on the decode pods (another P/D router may be in use)")
    res.finding("real model servers (not simulators)", not group["simulator"],
                "simulator images: %s" % ", ".join(_simulator_images(group)) if group["simulator"] else
                "no simulator image in the prefill/decode pods")
    ceiling = PARTIAL if group["simulator"] else IMPLEMENTED
    sim_note = ("The prefill and decode pods run a simulator (e.g. llm-d-inference-sim): the request test proves the "
                "routing between them, not a KV cache transfer; run the stack with a real model server (vLLM, SGLang) "
                "for Implemented.")
    if group["simulator"]:
        res.note(sim_note)
    if passive_reason or not request_test:
        why = passive_reason or "request_test is off (the opt-in request test sends a completion through the gateway)"
        res.finding("one request seen in a prefill and a decode pod", None, why)
        res.note(ENABLE_NOTE if not passive_reason else "Run in active mode with request_test: true. " + ENABLE_NOTE)
        return res.set(PARTIAL, "%s prefill/decode deployment in %s is Ready; the request test did not run" % (
            group["framework"], group["namespace"])).to_dict()
    return _judge_request(res, group, front, probe_out or {}, ceiling)


def _judge_request(res, group, front, out, ceiling):
    url, where = front or (None, "")
    res.finding("a front for the deployment", bool(url), "%s: %s" % (where, url) if url else where)
    if not url:
        res.note("No Gateway with an address and an Accepted HTTPRoute in namespace %s: set endpoint to the URL of "
                 "the deployment's router or gateway as a pod reaches it (llm-d: the inference gateway; SGLang: the "
                 "router's Service; Dynamo: the frontend's Service)." % group["namespace"])
        return res.set(PARTIAL, "prefill/decode pods are Ready but no gateway in front of them was found").to_dict()
    if out.get("cleanup"):
        res.note(out["cleanup"])
    rid = out.get("request_id")
    status = out.get("status")
    res.add_evidence("request", {"url": out.get("url"), "x-request-id": rid, "model": out.get("model"),
                                 "http_status": status, "response_head": out.get("body"), "error": out.get("error")},
                     "yaml")
    if not res.finding("completion through the front answered 2xx", status is not None and 200 <= status < 300,
                       "HTTP %s from %s%s" % (status, out.get("url"),
                                              (": " + out["error"]) if out.get("error") else "")):
        res.note("The completion request did not succeed (HTTP %s%s); check the model name (option model), the "
                 "model's load and the gateway route." % (status, ", " + out["error"] if out.get("error") else ""))
        return res.set(PARTIAL, "prefill/decode pods are Ready but a request through %s failed" % where).to_dict()
    prefill, decode = out.get("prefill_hits") or {}, out.get("decode_hits") or {}
    for role, hits in (("prefill", prefill), ("decode", decode)):
        res.finding("x-request-id %s in a %s pod's log" % (rid, role), bool(hits),
                    "; ".join("%s: %s" % (pod, " | ".join(lines)) for pod, lines in sorted(hits.items())) or
                    "not in the serving containers of %s" % ", ".join(group["ready_" + role][:5]))
    if prefill or decode:
        res.add_evidence("log lines with the request id", {"prefill": prefill, "decode": decode}, "yaml")
    distinct = bool(prefill and decode and set(prefill).isdisjoint(decode))
    if prefill and decode:
        res.finding("prefill and decode pods distinct", distinct,
                    "prefill %s, decode %s" % (sorted(prefill), sorted(decode)))
    if distinct:
        res.set(IMPLEMENTED, "request %s was prefilled in %s and decoded in %s (%s)" % (
            rid, sorted(prefill)[0], sorted(decode)[0], group["framework"]))
        return res.lower_to(ceiling, "Simulator images: wiring shown, KV transfer not.").to_dict()
    if decode and not prefill:
        res.note("The request was served by a decode pod alone: the router did not send it to a prefill pod "
                 "(llm-d: the "
                 "inference scheduler needs the pd-profile-handler with prefill and decode filters, and sets "
                 "x-prefiller-host-port for the routing sidecar).")
    elif not decode and not prefill:
        res.note("The request id is in no prefill or decode log: turn on request logging (vLLM --enable-log-requests, "
                 "SGLang --log-requests) or check that the front routes to this deployment.")
    elif not decode:
        res.note("The request id is in a prefill log but in no decode serving container's log: turn on request "
                 "logging on the decode servers.")
    return res.set(PARTIAL, "prefill/decode pods are Ready, but one request was not seen in both a prefill and a "
                            "decode pod").to_dict()


def _simulator_images(group):
    return sorted({i for w in group["prefill"] + group["decode"] for i in w["images"] if is_simulator(i)})


def _group_line(group):
    return "%s in %s: prefill %d/%d Ready, decode %d/%d Ready" % (
        group["framework"], group["namespace"], len(group["ready_prefill"]), len(group["prefill"]),
        len(group["ready_decode"]), len(group["decode"]))


def _missing(group):
    parts = []
    for role in ROLES:
        if not group["ready_" + role]:
            parts.append("no Ready %s pod" % role if group[role] else "no %s pod" % role)
    return "%s in %s: %s" % (group["framework"], group["namespace"], ", ".join(parts) or "the same pods in both roles")


def run(cluster, opts):
    facts = observe(cluster, opts)
    request_test = bool(opts.get("request_test", False))
    healthy = [g for g in deployments(facts["workers"]) if g["healthy"]]
    if not healthy:
        return judge(facts, passive_reason=opts.passive_reason(), request_test=request_test)
    group = healthy[0]
    if not opts.active or not request_test:
        return judge(facts, group, passive_reason=opts.passive_reason(), request_test=request_test)
    if opts.get("endpoint"):
        front = (opts.get("endpoint"), "endpoint option")
    else:
        front = observe_front(cluster, group, facts)
    if not front[0]:
        return judge(facts, group, front, {}, request_test=True)
    deadline = cl.Deadline(int(opts.get("request_timeout", 600)) + 2 * opts.wait_timeout + 120)
    out = probe(cluster, opts, group, completion_url(front[0]), deadline)
    return judge(facts, group, front, out, request_test=True)
