# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""ai_inference: Gateway API for inference traffic, proven with traffic rather than with statuses.

observe(): the gateway.networking.k8s.io CRDs (served versions, Established/NamesAccepted, the bundle's
bundle-version and channel annotations), the GatewayClasses with their controllers (IMPLEMENTATIONS) and
Accepted condition, and optionally a service mesh and the Inference Extension's InferencePool.
probe(): in a fresh namespace, two backends that answer with their identity, a Gateway (HTTP listener) on
an Accepted class, an HTTPRoute with an OpenAI-style header match (x-model: model-b -> v2) and an 80/20
weighted default (v1/v2); then, from an in-cluster curl pod, `requests` plain requests, requests with the
header, and requests with another value of the header. Deleting the namespace deletes the Gateway; the
check then waits for the implementation to release the Gateway's address (Envoy Gateway: its proxy
Service), bounded.
judge(): pure; the tolerance of the split is a binomial bound (split_tolerance()).
"""
from __future__ import annotations

import math
import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "ai_inference"
GROUP = "gateway.networking.k8s.io"
API = GROUP + "/v1"
CRD_API = "apiextensions.k8s.io/v1"
BUNDLE_VERSION = GROUP + "/bundle-version"
CHANNEL = GROUP + "/channel"
REQUIRED_V1 = ("gatewayclasses", "gateways", "httproutes")
OPTIONAL_V1 = ("grpcroutes",)
HEADER = "x-model"
HEADER_VALUE = "model-b"
OTHER_VALUE = "model-a"
WEIGHTS = (80, 20)
Z_SCORE = 3.29     # two-sided 99.9 %: a correct 80/20 data plane fails the check once in a thousand runs
HEADER_REQUESTS = 20
MAX_ERROR_SHARE = 0.01
MARK = re.compile(r"^(plain|header|other) (\S+)$")
EG_OWNING_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"

ARG_SPEC = {
    "gateway_class": {"type": "str"},
    "requests": {"type": "int", "default": 200},
    "client_image": {"type": "str", "default": "curlimages/curl:8.11.1"},
    "backend_image": {"type": "str", "default": "hashicorp/http-echo:1.0"},
    "gateway_timeout": {"type": "int", "default": 300},
    "route_timeout": {"type": "int", "default": 60},
}

# Gateway API implementations by controllerName prefix (informational).
IMPLEMENTATIONS = (
    ("gateway.envoyproxy.io/", "Envoy Gateway"),
    ("istio.io/gateway-controller", "Istio"),
    ("kgateway.dev/kgateway", "kgateway"),
    ("gateway.nginx.org/", "NGINX Gateway Fabric"),
    ("traefik.io/gateway-controller", "Traefik"),
    ("io.cilium/gateway-controller", "Cilium"),
    ("openshift.io/gateway-controller", "OpenShift (OSSM/Istio)"),
    ("networking.gke.io/gateway", "GKE Gateway"),
    ("gateway.k8s.aws/", "AWS Load Balancer Controller"),
    ("konghq.com/", "Kong"),
)
MESH_GROUPS = (("networking.istio.io", "Istio"), ("policy.linkerd.io", "Linkerd"))
INFERENCE_GROUPS = ("inference.networking.k8s.io", "inference.networking.x-k8s.io")


def implementation(controller_name):
    for prefix, name in IMPLEMENTATIONS:
        if (controller_name or "").startswith(prefix):
            return name
    return "unknown"


def split_tolerance(requests, share=WEIGHTS[1] / float(sum(WEIGHTS)), z=Z_SCORE):
    """Half-width of the acceptance band for the observed v2 share: z standard deviations of a binomial
    proportion, sqrt(p(1-p)/n). 200 requests at p=0.2: +-9.3 percentage points."""
    return z * math.sqrt(share * (1 - share) / max(1, requests))


def condition_true(obj, ctype):
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in ((obj or {}).get("status") or {}).get("conditions") or [])


# --------------------------------------------------------------------------------------------- observe
def observe(cluster):
    crds = [c for c in cluster.list(CRD_API, "customresourcedefinitions") if (c.get("spec") or {}).get("group") == GROUP]
    summary = []
    for crd in crds:
        meta, spec = crd["metadata"], crd.get("spec") or {}
        conditions = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
        summary.append({"name": meta["name"], "plural": (spec.get("names") or {}).get("plural"),
                        "served": [v["name"] for v in spec.get("versions") or [] if v.get("served")],
                        "established": conditions.get("Established") == "True",
                        "names_accepted": conditions.get("NamesAccepted") == "True",
                        "bundle_version": (meta.get("annotations") or {}).get(BUNDLE_VERSION),
                        "channel": (meta.get("annotations") or {}).get(CHANNEL)})
    classes = []
    if any(c["plural"] == "gatewayclasses" and "v1" in c["served"] for c in summary):
        for gc in cluster.list(API, "gatewayclasses"):
            accepted = next((c for c in (gc.get("status") or {}).get("conditions") or [] if c.get("type") == "Accepted"), {})
            classes.append({"name": gc["metadata"]["name"], "controller": (gc.get("spec") or {}).get("controllerName"),
                            "implementation": implementation((gc.get("spec") or {}).get("controllerName")),
                            "accepted": accepted.get("status") == "True",
                            "reason": accepted.get("reason"),
                            "supported_features": [f.get("name") if isinstance(f, dict) else f
                                                   for f in (gc.get("status") or {}).get("supportedFeatures") or []]})
    groups = set(cluster.discovery().groups())
    return {"crds": summary, "classes": classes,
            "mesh": [name for group, name in MESH_GROUPS if group in groups],
            "inference_extension": [group for group in INFERENCE_GROUPS if group in groups]}


def choose_class(classes, wanted=None):
    """The GatewayClass to probe: the one asked for, else an Accepted class of a known implementation."""
    accepted = [c for c in classes if c["accepted"]]
    if wanted:
        return next((c for c in accepted if c["name"] == wanted), None)
    known = [c for c in accepted if c["implementation"] != "unknown"]
    return (known or accepted or [None])[0]


# --------------------------------------------------------------------------------------------- manifests
def backend_objects(name, namespace, image):
    labels = {pr.PROBE_LABEL: name}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
           "spec": {"automountServiceAccountToken": False, "terminationGracePeriodSeconds": 5, "containers": [{
               "name": "echo", "image": image, "args": ["-text=%s" % name, "-listen=:8080"],
               "ports": [{"name": "http", "containerPort": 8080}],
               "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 2},
               "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
               "securityContext": {"allowPrivilegeEscalation": False}}]}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
               "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}}
    return pod, service


def gateway_manifest(name, namespace, gateway_class):
    return {"apiVersion": API, "kind": "Gateway", "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": gateway_class,
                     "listeners": [{"name": "http", "protocol": "HTTP", "port": 80,
                                    "allowedRoutes": {"namespaces": {"from": "Same"}}}]}}


def route_manifest(name, namespace, gateway, v1, v2):
    return {"apiVersion": API, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": [{"name": gateway}],
                     "rules": [{"matches": [{"headers": [{"name": HEADER, "value": HEADER_VALUE}],
                                             "path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": v2, "port": 8080}]},
                               {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": v1, "port": 8080, "weight": WEIGHTS[0]},
                                                {"name": v2, "port": 8080, "weight": WEIGHTS[1]}]}]}}


def client_script(address, requests):
    """Plain requests, requests with the model header, requests with another header value; one line each."""
    url = "http://%s/" % (("[%s]" % address) if ":" in address else address)
    one = "printf '%%s ' %s; curl -s -m 5 %s%s || echo error-$?"
    return "; ".join([
        "for i in $(seq %d); do %s; done" % (requests, one % ("plain", "", url)),
        "for i in $(seq %d); do %s; done" % (HEADER_REQUESTS, one % ("header", "-H '%s: %s' " % (HEADER, HEADER_VALUE), url)),
        "for i in $(seq %d); do %s; done" % (HEADER_REQUESTS, one % ("other", "-H '%s: %s' " % (HEADER, OTHER_VALUE), url)),
        "echo done"])


def tally(log):
    """{"plain"|"header"|"other": {answer: count}} from the client's log."""
    out = {"plain": {}, "header": {}, "other": {}}
    for line in (log or "").splitlines():
        match = MARK.match(line.strip())
        if match:
            kind, answer = match.groups()
            out[kind][answer] = out[kind].get(answer, 0) + 1
    return out


# --------------------------------------------------------------------------------------------- probe
def probe(cluster, opts, chosen, deadline):
    out = {"class": chosen["name"], "gateway": None, "route": None, "tally": None, "error": ""}
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep) as namespace:
        ns = namespace.name
        out["namespace"] = ns
        v1, v2 = "aic-backend-v1", "aic-backend-v2"
        for name in (v1, v2):
            pod, service = backend_objects(name, ns, opts.get("backend_image", "hashicorp/http-echo:1.0"))
            cluster.create("v1", "pods", pod, namespace=ns)
            cluster.create("v1", "services", service, namespace=ns)
        cluster.create(API, "gateways", gateway_manifest("aic-gateway", ns, chosen["name"]), namespace=ns)
        cluster.create(API, "httproutes", route_manifest("aic-route", ns, "aic-gateway", v1, v2), namespace=ns)
        try:
            gateway = cluster.wait_for_object(
                "Gateway %s/aic-gateway to be Accepted and Programmed with an address" % ns, API, "gateways", "aic-gateway", ns,
                lambda g: condition_true(g, "Accepted") and condition_true(g, "Programmed") and
                (g.get("status") or {}).get("addresses"), deadline.bound(int(opts.get("gateway_timeout", 300))),
                opts.wait_sleep, deadline)
        except cl.WaitTimeout as err:
            gateway, out["error"] = err.last, "%s (option gateway_timeout)" % err
        gateway_seen = out["gateway"] = gateway_summary(gateway) or {}
        try:
            route = cluster.wait_for_object(
                "HTTPRoute %s/aic-route to be Accepted with ResolvedRefs" % ns, API, "httproutes", "aic-route", ns,
                route_ready, deadline.bound(int(opts.get("route_timeout", 60))), opts.wait_sleep, deadline)
        except cl.WaitTimeout as err:
            route = err.last
            out["error"] = out["error"] or "%s (option route_timeout)" % err
        route_seen = out["route"] = route_summary(route)
        address = (gateway_seen.get("addresses") or [None])[0]
        if address and gateway_seen.get("programmed") and route_seen["ready"]:
            try:
                for name in (v1, v2):
                    cluster.wait_for_object("backend pod %s/%s to be ready" % (ns, name), "v1", "pods", name, ns,
                                            lambda p: condition_true(p, "Ready"), deadline.bound(opts.wait_timeout),
                                            opts.wait_sleep, deadline, summarize=pr.summarize_pod)
                out["tally"], out["client"] = run_client(cluster, opts, ns, address, deadline)
            except cl.WaitTimeout as err:
                out["client"] = {"error": "%s (backend_image %s)" % (err, opts.get("backend_image"))}
    return finish(cluster, opts, chosen, out, namespace, deadline)


def finish(cluster, opts, chosen, out, namespace, deadline):
    """After the probe namespace: its cleanup note, and whether the Gateway's address was released."""
    out["cleanup_note"] = namespace.cleanup_note
    out["release"] = wait_released(cluster, out, opts, deadline) if chosen["implementation"] == "Envoy Gateway" else None
    return out


def run_client(cluster, opts, namespace, address, deadline):
    requests = int(opts.get("requests", 200))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "aic-client", "namespace": namespace,
                                                           "labels": {pr.PROBE_LABEL: "aic-client"}},
           "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "curl", "image": opts.get("client_image", "curlimages/curl:8.11.1"),
                                    "command": ["sh", "-c", client_script(address, requests)],
                                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                                    "securityContext": {"allowPrivilegeEscalation": False}}]}}
    cluster.create("v1", "pods", pod, namespace=namespace)
    try:
        done = cluster.wait_for_object("client pod %s/aic-client to finish its requests" % namespace, "v1", "pods",
                                       "aic-client", namespace, pr.pod_done, deadline.bound(opts.wait_timeout),
                                       opts.wait_sleep, deadline, summarize=pr.summarize_pod)
    except cl.WaitTimeout as err:
        return None, {"error": str(err)}
    log = cluster.pod_logs(namespace, "aic-client")
    return tally(log), {"phase": (done.get("status") or {}).get("phase"), "log_tail": log.splitlines()[-5:]}


def wait_released(cluster, out, opts, deadline):
    """Envoy Gateway: the Gateway's proxy Service (which holds its address) is gone after the namespace."""
    selector = "%s=%s" % (EG_OWNING_NAMESPACE, out.get("namespace"))
    try:
        cl.wait_until("Envoy Gateway to delete the probe Gateway's proxy Service (its address)",
                      lambda: cluster.list("v1", "services", label_selector=selector), lambda items: not items,
                      deadline.bound(60), opts.wait_sleep, deadline)
        return {"released": True}
    except cl.WaitTimeout as err:
        return {"released": False, "error": str(err)}


def gateway_summary(gateway):
    if not gateway:
        return None
    status = gateway.get("status") or {}
    return {"accepted": condition_true(gateway, "Accepted"), "programmed": condition_true(gateway, "Programmed"),
            "addresses": [a.get("value") for a in status.get("addresses") or []],
            "conditions": [{k: c.get(k) for k in ("type", "status", "reason", "message")} for c in status.get("conditions") or []]}


def route_ready(route):
    parents = ((route or {}).get("status") or {}).get("parents") or []
    return any(all(any(c.get("type") == t and c.get("status") == "True" for c in p.get("conditions") or [])
                   for t in ("Accepted", "ResolvedRefs")) for p in parents)


def route_summary(route):
    parents = ((route or {}).get("status") or {}).get("parents") or []
    return {"ready": route_ready(route),
            "parents": [{"controller": p.get("controllerName"),
                         "conditions": [{k: c.get(k) for k in ("type", "status", "reason", "message")}
                                        for c in p.get("conditions") or []]} for p in parents]}


# --------------------------------------------------------------------------------------------- judge
def judge(facts, probes=None, passive_reason="", requested_class=None):
    result = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    crds = {c["plural"]: c for c in facts.get("crds") or []}
    result.add_evidence("Gateway API CRDs", facts.get("crds") or [], kind="yaml")
    missing = [p for p in REQUIRED_V1 if "v1" not in (crds.get(p) or {}).get("served", [])]
    unhealthy = [c["name"] for c in crds.values() if not (c["established"] and c["names_accepted"])]
    bundles = sorted({"%s (%s)" % (c["bundle_version"], c["channel"]) for c in crds.values() if c["bundle_version"]})
    result.finding("Gateway API CRDs at v1 (gatewayclasses, gateways, httproutes)", not missing and not unhealthy,
                   "missing at v1: %s; not established: %s" % (", ".join(missing) or "none", ", ".join(unhealthy) or "none")
                   if missing or unhealthy else "bundle %s" % (", ".join(bundles) or "without bundle annotations"))
    for plural in OPTIONAL_V1 + ("referencegrants",):
        if plural not in crds:
            result.finding("%s served" % plural, None, "not installed (optional for this requirement)")
    if missing:
        result.note("The Gateway API CRDs are not served at v1 (%s missing). Install the standard channel CRDs and an "
                    "implementation, as the collection's gateway_api role does." % ", ".join(missing))
        return result.set(NOT_IMPLEMENTED, "the Gateway API is not installed").to_dict()
    classes = facts.get("classes") or []
    result.add_evidence("GatewayClasses", pr.text_table(
        ["name", "controller", "implementation", "accepted", "supportedFeatures"],
        [[c["name"], c["controller"], c["implementation"], c["accepted"], len(c["supported_features"])] for c in classes]),
        kind="table")
    if facts.get("mesh") or facts.get("inference_extension"):
        result.finding("service mesh / Inference Extension", None, "mesh: %s; InferencePool groups: %s" % (
            ", ".join(facts.get("mesh") or []) or "none", ", ".join(facts.get("inference_extension") or []) or "none"))
    chosen = choose_class(classes, requested_class)
    if not result.finding("an Accepted GatewayClass", chosen is not None,
                          chosen and "%s (%s, %s)" % (chosen["name"], chosen["controller"], chosen["implementation"]) or
                          ("GatewayClass %s is not Accepted or does not exist" % requested_class if requested_class else
                           "no GatewayClass is Accepted (%d found)" % len(classes))):
        result.note("No GatewayClass is Accepted by a controller: install a Gateway API implementation (the gateway_api role "
                    "installs Envoy Gateway) or fix the one installed.")
        return result.set(NOT_IMPLEMENTED, "no Gateway API implementation accepts a GatewayClass").to_dict()
    if unhealthy:
        result.note("Gateway API CRDs not Established: %s." % ", ".join(unhealthy))
    if passive_reason:
        result.finding("traffic through a Gateway (weights, header match)", None, passive_reason)
        result.note("The Gateway API is installed and %s accepts GatewayClass %s, but only an active run proves that "
                    "traffic is routed by weight and by header (run with mode=active)." % (chosen["implementation"], chosen["name"]))
        return result.set(PARTIAL, "Gateway API v1 with an Accepted class; traffic not exercised (passive)").to_dict()
    return judge_traffic(result, chosen, probes or {}, unhealthy)


def judge_traffic(result, chosen, probes, unhealthy):
    gateway, route, counts = probes.get("gateway") or {}, probes.get("route") or {}, probes.get("tally")
    result.add_evidence("probe Gateway status", gateway, kind="yaml")
    result.add_evidence("probe HTTPRoute status", route, kind="yaml")
    programmed = result.finding("probe Gateway Accepted and Programmed with an address",
                                bool(gateway.get("accepted") and gateway.get("programmed") and gateway.get("addresses")),
                                "addresses %s; %s" % (gateway.get("addresses"), "; ".join(
                                    "%s=%s (%s: %s)" % (c["type"], c["status"], c["reason"], c.get("message"))
                                    for c in gateway.get("conditions") or [])) if gateway else probes.get("error") or "no status")
    routed = result.finding("probe HTTPRoute Accepted with ResolvedRefs", bool(route.get("ready")), "; ".join(
        "%s=%s (%s)" % (c["type"], c["status"], c["reason"]) for p in route.get("parents") or [] for c in p["conditions"])
        or probes.get("error") or "no status")
    release = probes.get("release")
    if release is not None:
        result.finding("probe Gateway's address released at cleanup", bool(release.get("released")),
                       release.get("error") or "the proxy Service holding the address was deleted")
    if probes.get("cleanup_note"):
        result.note(probes["cleanup_note"])
    traffic_ok = False
    if counts is not None:
        traffic_ok = judge_counts(result, counts)
    elif programmed and routed:
        detail = (probes.get("client") or {}).get("error") or "the client did not run"
        result.finding("traffic through the Gateway", False, detail)
        result.note("No traffic could be measured: %s." % detail)
    else:
        result.finding("traffic through the Gateway", False, "not sent: the Gateway or the route never became ready")
    if traffic_ok and programmed and routed:
        status = IMPLEMENTED
        result.set(status, "%s routes traffic by weight and by header through Gateway API v1" % chosen["implementation"])
        if unhealthy:
            result.lower_to(PARTIAL, "Some Gateway API CRDs are not Established.")
        return result.to_dict()
    if not programmed:
        result.note("GatewayClass %s is Accepted but the probe Gateway was not Programmed with an address (%s): no data plane "
                    "could be reached. On clusters without a cloud load balancer install one (MetalLB, cloud-provider-kind) "
                    "or configure the implementation for ClusterIP/NodePort." % (chosen["name"], probes.get("error") or
                                                                                 "see its conditions"))
    elif not routed:
        result.note("The probe HTTPRoute was not Accepted with ResolvedRefs: %s." % (probes.get("error") or "see its conditions"))
    return result.set(PARTIAL, "the Gateway API is Accepted but its data plane did not route as configured").to_dict()


def judge_counts(result, counts):
    """Findings on the tallies; True when the split and the header routing are both as configured."""
    v1, v2 = "aic-backend-v1", "aic-backend-v2"
    plain, header, other = counts.get("plain") or {}, counts.get("header") or {}, counts.get("other") or {}
    sent = sum(plain.values())
    answered = plain.get(v1, 0) + plain.get(v2, 0)
    result.add_evidence("request tallies (answer: count)", counts, kind="yaml")
    errors_ok = result.finding("plain requests answered by a backend", sent > 0 and answered >= sent * (1 - MAX_ERROR_SHARE),
                               "%d of %d answered by v1/v2 (%s)" % (answered, sent, plain))
    share = plain.get(v2, 0) / float(answered) if answered else 0.0
    expected = WEIGHTS[1] / float(sum(WEIGHTS))
    tolerance = split_tolerance(answered or 1)
    split_ok = result.finding("80/20 weighted split observed", bool(answered) and abs(share - expected) <= tolerance,
                              "v2 share %.1f %% of %d, expected %.0f %% +- %.1f pp (binomial, z=%.2f)" % (
                                  100 * share, answered, 100 * expected, 100 * tolerance, Z_SCORE))
    header_sent = sum(header.values())
    header_ok = result.finding("header %s: %s routed to v2 (100 %%)" % (HEADER, HEADER_VALUE),
                               header_sent > 0 and header.get(v2, 0) == header_sent,
                               "%d of %d to v2 (%s)" % (header.get(v2, 0), header_sent, header))
    other_sent = sum(other.values())
    other_ok = result.finding("another header value takes the default split", other_sent > 0 and other.get(v1, 0) > 0,
                              "%s" % other)
    if not split_ok:
        result.note("The weighted split was not observed (v2 got %.1f %% of %d plain requests, expected 20 %%): the data plane "
                    "does not honour backendRefs weights." % (100 * share, answered))
    if not header_ok:
        result.note("Requests with %s: %s did not all reach the header-matched backend: the data plane does not honour "
                    "HTTPRoute header matches." % (HEADER, HEADER_VALUE))
    if not errors_ok:
        result.note("Plain requests through the Gateway failed: %s." % plain)
    return errors_ok and split_ok and header_ok and other_ok


def run(cluster, opts):
    facts = observe(cluster)
    requested = opts.get("gateway_class")
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason(), requested_class=requested)
    chosen = choose_class(facts.get("classes") or [], requested)
    crds = {c["plural"]: c for c in facts.get("crds") or []}
    probes = None
    if chosen is not None and all("v1" in (crds.get(p) or {}).get("served", []) for p in REQUIRED_V1):
        deadline = cl.Deadline(int(opts.get("gateway_timeout", 300)) + int(opts.get("route_timeout", 60)) +
                               opts.wait_timeout + 300)
        probes = probe(cluster, opts, chosen, deadline)
    return judge(facts, probes, requested_class=requested)
