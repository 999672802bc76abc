# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""advanced_inference_ingress: the Gateway API Inference Extension (GAIE) routes OpenAI requests through a Gateway
to an InferencePool, and its endpoint picker (EPP) makes the routing decisions (KAR-0011, SHOULD from 1.36).

observe(): the GAIE CRDs (inferencepools in inference.networking.k8s.io v1 and the older
inference.networking.x-k8s.io v1alpha2, inferenceobjectives / inferencemodels) with their bundle version, a bounded
sample of InferencePools (selector, target ports, endpoint picker, status parents Accepted/ResolvedRefs), HTTPRoutes
whose backendRefs are InferencePools, and the Gateway API facts of ai_inference (CRDs, GatewayClasses).
probe(): in a fresh namespace, `replicas` OpenAI-compatible model servers (llm-d-inference-sim, which names the pod
that answered in the `x-inference-pod` header), an EPP with the upstream default plugins (queue, KV-cache and
prefix-cache scorers) logging its picks, an InferencePool, a Gateway on an Accepted class and an HTTPRoute whose
backendRef is the pool; then from an in-cluster curl pod `requests` completions with distinct prompts and
`prefix_requests` completions sharing a long prompt prefix. Deleting the namespace deletes everything.
judge(): pure. Implemented needs: pool and route accepted with resolved references, answers 200 from pool pods,
the EPP's logged picks accounting for every answer (so the Gateway really asked the picker), more than one endpoint
used, and the shared-prefix prompts kept on one endpoint (prefix-cache-aware routing). CRDs only -> Partially.
"""
from __future__ import annotations

import json
import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import ai_inference as gw
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "advanced_inference_ingress"
GROUP_V1 = "inference.networking.k8s.io"
GROUP_X = "inference.networking.x-k8s.io"
POOL_APIS = ((GROUP_V1, "v1"), (GROUP_X, "v1alpha2"))
CRD_API = "apiextensions.k8s.io/v1"
BUNDLE_VERSION = GROUP_V1 + "/bundle-version"
SAMPLE = 50
ROUTE_SAMPLE = 200
SERVER_PORT = 8000
EPP_PORT = 9002
MAX_ERROR_SHARE = 0.01
PREFIX_SHARE = 0.8
MODEL_LABEL = "aic-inference-model"
MARK = re.compile(r"^(distinct|prefix) (\S+)(?: (\S+))?")
PICK_MESSAGE = "Request handled"
EPP_PLUGINS = """apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: prefix-cache-scorer
"""
SHARED_PREFIX = ("You are a support assistant for a Kubernetes platform team. Answer briefly and cite the relevant "
                 "object kinds. The cluster runs an inference gateway in front of several model server replicas, and "
                 "every replica keeps a prefix cache of the prompts it has processed recently, so that requests that "
                 "share a long system prompt like this one can reuse the cached key and value tensors instead of "
                 "computing them again. Question")

ARG_SPEC = {
    "gateway_class": {"type": "str"},
    "requests": {"type": "int", "default": 30},
    "prefix_requests": {"type": "int", "default": 10},
    "replicas": {"type": "int", "default": 3},
    "model": {"type": "str", "default": "k8s-ai-conformance/probe-model"},
    "server_image": {"type": "str", "default": "ghcr.io/llm-d/llm-d-inference-sim:v0.5.1"},
    "epp_image": {"type": "str", "default": "registry.k8s.io/gateway-api-inference-extension/epp:v1.0.0"},
    "client_image": {"type": "str", "default": "curlimages/curl:8.11.1"},
    "gateway_timeout": {"type": "int", "default": 300},
    "route_timeout": {"type": "int", "default": 60},
}


# --------------------------------------------------------------------------------------------- pure helpers
def conditions_of(items):
    return {c.get("type"): c for c in items or [] if isinstance(c, dict)}


def parents_ready(parents):
    """Does any status parent have Accepted and ResolvedRefs True?"""
    for parent in parents or []:
        conds = conditions_of(parent.get("conditions"))
        if all((conds.get(t) or {}).get("status") == "True" for t in ("Accepted", "ResolvedRefs")):
            return True
    return False


def kind_refused(route):
    """Has an implementation answered ResolvedRefs=False, InvalidKind for the route's generation (it does not
    support InferencePool backends)? That answer does not change by waiting."""
    generation = ((route or {}).get("metadata") or {}).get("generation")
    for parent in ((route or {}).get("status") or {}).get("parents") or []:
        cond = conditions_of(parent.get("conditions")).get("ResolvedRefs") or {}
        if cond.get("status") == "False" and cond.get("reason") == "InvalidKind" and \
                cond.get("observedGeneration") in (None, generation):
            return True
    return False


def pool_summary(pool, group):
    """What a pool says, for either API version."""
    spec = pool.get("spec") or {}
    status = pool.get("status") or {}
    selector = spec.get("selector") or {}
    labels = selector.get("matchLabels") if isinstance(selector.get("matchLabels"), dict) else selector
    if spec.get("targetPorts"):
        ports = [p.get("number") for p in spec["targetPorts"]]
    else:
        ports = [spec["targetPortNumber"]] if spec.get("targetPortNumber") else []
    picker = spec.get("endpointPickerRef") or spec.get("extensionRef") or {}
    port = (picker.get("port") or {}).get("number") if isinstance(picker.get("port"), dict) else picker.get("portNumber")
    parents = status.get("parents") if group == GROUP_V1 else status.get("parent")
    return {"name": pool["metadata"]["name"], "namespace": pool["metadata"].get("namespace"), "group": group,
            "selector": dict(labels or {}), "target_ports": ports,
            "endpoint_picker": {"name": picker.get("name"), "kind": picker.get("kind") or "Service", "port": port,
                                "failureMode": picker.get("failureMode") or "FailClose"},
            "parents": [{"gateway": "%s/%s" % ((p.get("parentRef") or {}).get("namespace") or "",
                                               (p.get("parentRef") or {}).get("name")),
                         "conditions": {t: "%s (%s)" % (c.get("status"), c.get("reason"))
                                        for t, c in conditions_of(p.get("conditions")).items()}}
                        for p in parents or []],
            "ready": parents_ready(parents)}


def pool_refs(route):
    """The InferencePool backendRefs of an HTTPRoute: [(group, namespace, name)]."""
    namespace = route["metadata"].get("namespace")
    out = []
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if ref.get("kind") == "InferencePool" and ref.get("group") in (GROUP_V1, GROUP_X):
                out.append((ref["group"], ref.get("namespace") or namespace, ref.get("name")))
    return out


def route_summary(route):
    parents = (route.get("status") or {}).get("parents") or []
    return {"name": route["metadata"]["name"], "namespace": route["metadata"].get("namespace"),
            "pools": ["%s/%s (%s)" % (ns, name, group) for group, ns, name in pool_refs(route)],
            "ready": parents_ready(parents),
            "parents": [{"controller": p.get("controllerName"),
                         "conditions": {t: "%s (%s)" % (c.get("status"), c.get("reason"))
                                        for t, c in conditions_of(p.get("conditions")).items()}} for p in parents]}


def pool_group(facts):
    """The API group/version the probe uses for its InferencePool: v1 when served, else v1alpha2, else None."""
    for group, version in POOL_APIS:
        if version in (facts.get("pool_versions") or {}).get(group, []):
            return group, version
    return None


def client_script(address, model, requests, prefix_requests):
    """`requests` completions with distinct prompts, then `prefix_requests` sharing SHARED_PREFIX; one line each:
    `<kind> <http code> <x-inference-pod>`."""
    host = ("[%s]" % address) if ":" in address else address
    url = "http://%s/v1/completions" % host
    curl = ("curl -s -o /dev/null -m 20 -w '%{http_code} %header{x-inference-pod}\\n' -H 'Content-Type: "
            "application/json' -d '{\"model\":\"MODEL\",\"max_tokens\":5,\"prompt\":\"PROMPT\"}' URL || echo error-$?"
            .replace("MODEL", model).replace("URL", url))
    distinct = curl.replace("PROMPT", "'$i' is a distinct question number about the inference gateway probe, answer briefly")
    prefix = curl.replace("PROMPT", SHARED_PREFIX + " '$i'")
    return "; ".join([
        "for i in $(seq %d); do printf 'distinct '; %s; done" % (requests, distinct),
        "for i in $(seq %d); do printf 'prefix '; %s; done" % (prefix_requests, prefix),
        "echo done"])


def tally(log):
    """{"distinct"|"prefix": {"codes": {code: n}, "pods": {pod: n}}} from the client's log."""
    out = {"distinct": {"codes": {}, "pods": {}}, "prefix": {"codes": {}, "pods": {}}}
    for line in (log or "").splitlines():
        match = MARK.match(line.strip())
        if not match:
            continue
        kind, code, pod = match.groups()
        if code.startswith("error-") or code == "000":
            code = "error"
        codes = out[kind]["codes"]
        codes[code] = codes.get(code, 0) + 1
        if code == "200":
            pod = pod if pod and not pod.startswith("error-") else "(no x-inference-pod header)"
            out[kind]["pods"][pod] = out[kind]["pods"].get(pod, 0) + 1
    return out


def epp_picks(log):
    """The endpoints (ip:port) of the EPP's "Request handled" log lines (zap JSON), in order."""
    picks = []
    for line in (log or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("msg") == PICK_MESSAGE and doc.get("endpoint"):
            picks.extend(e.strip() for e in str(doc["endpoint"]).split(",")[:1])
    return picks


def picks_account_for(picks, served, pod_ips):
    """(ok, detail): every answer's pod was picked by the EPP as often as it answered (picks >= answers per IP)."""
    picked = {}
    for endpoint in picks:
        ip = endpoint.rpartition(":")[0].strip("[]")
        picked[ip] = picked.get(ip, 0) + 1
    missing = {}
    for pod, count in served.items():
        ip = pod_ips.get(pod)
        if ip is None or picked.get(ip, 0) < count:
            missing[pod] = "%d answered, %d picked" % (count, picked.get(ip, 0) if ip else 0)
    outside = sorted(ip for ip in picked if ip not in pod_ips.values())
    ok = bool(served) and not missing and not outside
    detail = "EPP picks by pod IP %s; answers by pod %s" % (picked, served)
    if missing:
        detail += "; not accounted for: %s" % missing
    if outside:
        detail += "; picks outside the pool: %s" % outside
    return ok, detail


# --------------------------------------------------------------------------------------------- observe
def observe(cluster):
    facts = gw.observe(cluster)
    crds = []
    versions = {}
    for crd in cluster.list(CRD_API, "customresourcedefinitions"):
        spec = crd.get("spec") or {}
        if spec.get("group") not in (GROUP_V1, GROUP_X):
            continue
        conditions = conditions_of((crd.get("status") or {}).get("conditions"))
        served = [v["name"] for v in spec.get("versions") or [] if v.get("served")]
        plural = (spec.get("names") or {}).get("plural")
        crds.append({"name": crd["metadata"]["name"], "group": spec["group"], "plural": plural, "served": served,
                     "established": (conditions.get("Established") or {}).get("status") == "True",
                     "bundle_version": (crd["metadata"].get("annotations") or {}).get(BUNDLE_VERSION)})
        if plural == "inferencepools":
            versions[spec["group"]] = served
    facts["gaie_crds"] = crds
    facts["pool_versions"] = versions
    pools = []
    for group, version in POOL_APIS:
        if version in versions.get(group, []):
            for pool in cluster.list("%s/%s" % (group, version), "inferencepools", limit=SAMPLE, max_items=SAMPLE):
                pools.append(pool_summary(pool, group))
    facts["pools"] = pools
    objectives = {}
    for crd in crds:
        if crd["plural"] in ("inferenceobjectives", "inferencemodels") and crd["served"]:
            items = cluster.list("%s/%s" % (crd["group"], crd["served"][0]), crd["plural"], limit=SAMPLE, max_items=SAMPLE)
            objectives[crd["plural"]] = len(items)
    facts["objectives"] = objectives
    routes = []
    if any(c["plural"] == "httproutes" and "v1" in c["served"] for c in facts.get("crds") or []):
        for route in cluster.list(gw.API, "httproutes", limit=ROUTE_SAMPLE, max_items=ROUTE_SAMPLE):
            if pool_refs(route):
                routes.append(route_summary(route))
    facts["routes"] = routes
    return facts


# --------------------------------------------------------------------------------------------- manifests
def model_pod(name, namespace, opts):
    labels = {"app": MODEL_LABEL, pr.PROBE_LABEL: name}
    spec = {"automountServiceAccountToken": False, "terminationGracePeriodSeconds": 5, "containers": [{
        "name": "server", "image": opts.get("server_image", ARG_SPEC["server_image"]["default"]),
        "args": ["--model", opts.get("model", ARG_SPEC["model"]["default"]), "--port", str(SERVER_PORT)],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [{"name": "http", "containerPort": SERVER_PORT}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": SERVER_PORT}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False}}]}
    if opts.node_selector:
        spec["nodeSelector"] = dict(opts.node_selector)
    if opts.tolerations is not None:
        spec["tolerations"] = opts.tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": spec}


def pool_manifest(name, namespace, group, version, epp):
    if group == GROUP_V1:
        spec = {"targetPorts": [{"number": SERVER_PORT}], "selector": {"matchLabels": {"app": MODEL_LABEL}},
                "endpointPickerRef": {"name": epp, "kind": "Service", "port": {"number": EPP_PORT},
                                      "failureMode": "FailClose"}}
    else:
        spec = {"targetPortNumber": SERVER_PORT, "selector": {"app": MODEL_LABEL},
                "extensionRef": {"name": epp, "kind": "Service", "portNumber": EPP_PORT, "failureMode": "FailClose"}}
    return {"apiVersion": "%s/%s" % (group, version), "kind": "InferencePool",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def epp_objects(name, namespace, pool, group, opts):
    """The EPP as the upstream manifest deploys it (config/manifests/inferencepool-resources.yaml), as a pod:
    ServiceAccount, Role/RoleBinding to read pods and pools, plugins ConfigMap, pod, Service."""
    labels = {"app": name, pr.PROBE_LABEL: name}
    meta = {"name": name, "namespace": namespace}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)}
    # the upstream Role: the EPP watches its pool, the InferenceObjectives that name it, and the pool's pods
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta), "rules": [
        {"apiGroups": [GROUP_X], "resources": ["inferenceobjectives", "inferencepools"], "verbs": ["get", "watch", "list"]},
        {"apiGroups": [GROUP_V1], "resources": ["inferencepools"], "verbs": ["get", "watch", "list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta), "data": {"default-plugins.yaml": EPP_PLUGINS}}
    spec = {"serviceAccountName": name, "terminationGracePeriodSeconds": 5, "containers": [{
        "name": "epp", "image": opts.get("epp_image", ARG_SPEC["epp_image"]["default"]), "imagePullPolicy": "IfNotPresent",
        "args": ["--pool-name", pool, "--pool-namespace", namespace, "--pool-group", group, "--v", "4",
                 "--zap-encoder", "json", "--grpc-port", str(EPP_PORT), "--grpc-health-port", "9003",
                 "--config-file", "/config/default-plugins.yaml"],
        "ports": [{"containerPort": EPP_PORT}, {"containerPort": 9003}, {"name": "metrics", "containerPort": 9090}],
        "readinessProbe": {"grpc": {"port": 9003, "service": "inference-extension"}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [{"name": "plugins-config", "mountPath": "/config"}],
        "securityContext": {"allowPrivilegeEscalation": False}}],
        "volumes": [{"name": "plugins-config", "configMap": {"name": name}}]}
    if opts.node_selector:
        spec["nodeSelector"] = dict(opts.node_selector)
    if opts.tolerations is not None:
        spec["tolerations"] = opts.tolerations
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": dict(meta, labels=labels), "spec": spec}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta), "spec": {
        "selector": labels, "ports": [{"protocol": "TCP", "port": EPP_PORT, "targetPort": EPP_PORT, "appProtocol": "http2"}]}}
    return account, role, binding, config, pod, service


def route_manifest(name, namespace, gateway, group, pool):
    return {"apiVersion": gw.API, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway}],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"group": group, "kind": "InferencePool", "name": pool}]}]}}


# --------------------------------------------------------------------------------------------- probe
def probe(cluster, opts, chosen, group, version, deadline):
    out = {"class": chosen["name"], "api": "%s/%s" % (group, version), "error": ""}
    replicas = max(1, int(opts.get("replicas", 3)))
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep) as namespace:
        ns = out["namespace"] = namespace.name
        models = ["aic-model-%d" % i for i in range(replicas)]
        for name in models:
            cluster.create("v1", "pods", model_pod(name, ns, opts), namespace=ns)
        account, role, binding, config, epp, service = epp_objects("aic-pool-epp", ns, "aic-pool", group, opts)
        cluster.create("v1", "serviceaccounts", account, namespace=ns)
        cluster.create("rbac.authorization.k8s.io/v1", "roles", role, namespace=ns)
        cluster.create("rbac.authorization.k8s.io/v1", "rolebindings", binding, namespace=ns)
        cluster.create("v1", "configmaps", config, namespace=ns)
        cluster.create("v1", "pods", epp, namespace=ns)
        cluster.create("v1", "services", service, namespace=ns)
        pool_api = "%s/%s" % (group, version)
        cluster.create(pool_api, "inferencepools", pool_manifest("aic-pool", ns, group, version, "aic-pool-epp"),
                       namespace=ns)
        cluster.create(gw.API, "gateways", gw.gateway_manifest("aic-gateway", ns, chosen["name"]), namespace=ns)
        cluster.create(gw.API, "httproutes", route_manifest("aic-route", ns, "aic-gateway", group, "aic-pool"),
                       namespace=ns)
        out.update(wait_ready(cluster, opts, ns, pool_api, group, models, deadline))
        if out["gateway"].get("programmed") and out["route"]["ready"] and out.get("pods_ready"):
            address = out["gateway"]["addresses"][0]
            out["tally"], out["client"] = run_client(cluster, opts, ns, address, deadline)
            out["picks"] = epp_picks(cluster.pod_logs(ns, "aic-pool-epp"))
            out["pod_ips"] = {}
            for name in models:
                pod = cluster.get("v1", "pods", name, namespace=ns) or {}
                out["pod_ips"][name] = (pod.get("status") or {}).get("podIP")
    out["cleanup_note"] = namespace.cleanup_note
    out["release"] = gw.wait_released(cluster, out, opts, deadline) if chosen["implementation"] == "Envoy Gateway" else None
    return out


def wait_ready(cluster, opts, ns, pool_api, group, models, deadline):
    out = {"error": ""}
    try:
        gateway = cluster.wait_for_object(
            "Gateway %s/aic-gateway to be Accepted and Programmed with an address" % ns, gw.API, "gateways", "aic-gateway",
            ns, lambda g: gw.condition_true(g, "Accepted") and gw.condition_true(g, "Programmed") and
            (g.get("status") or {}).get("addresses"), deadline.bound(int(opts.get("gateway_timeout", 300))),
            opts.wait_sleep, deadline)
    except cl.WaitTimeout as err:
        gateway, out["error"] = err.last, "%s (option gateway_timeout)" % err
    out["gateway"] = gw.gateway_summary(gateway) or {}
    try:
        route = cluster.wait_for_object(
            "HTTPRoute %s/aic-route to be Accepted with ResolvedRefs" % ns, gw.API, "httproutes", "aic-route", ns,
            lambda r: gw.route_ready(r) or kind_refused(r), deadline.bound(int(opts.get("route_timeout", 60))),
            opts.wait_sleep, deadline)
    except cl.WaitTimeout as err:
        route = err.last
        out["error"] = out["error"] or "%s (option route_timeout)" % err
    out["route"] = gw.route_summary(route)
    field = "parents" if group == GROUP_V1 else "parent"
    if out["route"]["ready"]:
        try:
            pool = cluster.wait_for_object(
                "InferencePool %s/aic-pool to be Accepted with ResolvedRefs by its Gateway" % ns, pool_api,
                "inferencepools", "aic-pool", ns, lambda p: parents_ready(((p or {}).get("status") or {}).get(field)),
                deadline.bound(int(opts.get("route_timeout", 60))), opts.wait_sleep, deadline)
        except cl.WaitTimeout as err:
            pool = err.last
    else:   # a pool gets status.parents once a Gateway has accepted a route to it: no use waiting
        pool = cluster.get(pool_api, "inferencepools", "aic-pool", namespace=ns)
    out["pool"] = pool_summary(pool, group) if pool else None
    try:
        for name in models + ["aic-pool-epp"]:
            cluster.wait_for_object("pod %s/%s to be ready" % (ns, name), "v1", "pods", name, ns,
                                    lambda p: gw.condition_true(p, "Ready"), deadline.bound(opts.wait_timeout),
                                    opts.wait_sleep, deadline, summarize=pr.summarize_pod)
        out["pods_ready"] = True
    except cl.WaitTimeout as err:
        out["pods_ready"] = False
        out["error"] = out["error"] or "%s (options server_image, epp_image)" % err
    return out


def run_client(cluster, opts, namespace, address, deadline):
    script = client_script(address, opts.get("model", ARG_SPEC["model"]["default"]), int(opts.get("requests", 30)),
                           int(opts.get("prefix_requests", 10)))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "aic-client", "namespace": namespace,
                                                           "labels": {pr.PROBE_LABEL: "aic-client"}},
           "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "curl", "image": opts.get("client_image", ARG_SPEC["client_image"]["default"]),
                                    "command": ["sh", "-c", script],
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


# --------------------------------------------------------------------------------------------- judge
def judge(facts, probes=None, passive_reason="", requested_class=None):
    result = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    crds = facts.get("gaie_crds") or []
    result.add_evidence("Gateway API Inference Extension CRDs", crds, kind="yaml")
    api = pool_group(facts)
    bundles = sorted({c["bundle_version"] for c in crds if c.get("bundle_version")})
    if not result.finding("InferencePool CRD served", api is not None,
                          "%s/%s (bundle %s)" % (api[0], api[1], ", ".join(bundles) or "not annotated") if api else
                          "neither inferencepools.%s (v1) nor inferencepools.%s (v1alpha2) is served" % (GROUP_V1, GROUP_X)):
        result.note("The Gateway API Inference Extension is not installed: install its CRDs (InferencePool "
                    "inference.networking.k8s.io/v1) and a Gateway implementation that supports InferencePool backends "
                    "(Envoy Gateway with Envoy AI Gateway, kgateway/agentgateway, Istio, NGINX Gateway Fabric, GKE).")
        return result.set(NOT_IMPLEMENTED, "the Gateway API Inference Extension is not installed").to_dict()
    if api[0] == GROUP_X:
        result.note("Only the older inference.networking.x-k8s.io/v1alpha2 InferencePool is served; GAIE v1.0 made "
                    "inference.networking.k8s.io/v1 the stable API: upgrade the CRDs.")
    objectives = facts.get("objectives") or {}
    result.finding("InferenceObjectives / InferenceModels", None, ", ".join(
        "%s: %d" % (k, v) for k, v in sorted(objectives.items())) or "CRD not installed (optional)")
    pools, routes = facts.get("pools") or [], facts.get("routes") or []
    result.add_evidence("InferencePools (sample)", pools, kind="yaml")
    result.add_evidence("HTTPRoutes with InferencePool backends (sample)", routes, kind="yaml")
    result.finding("InferencePools accepted by a Gateway", None, "%d of %d sampled pools Accepted with ResolvedRefs" % (
        sum(1 for p in pools if p["ready"]), len(pools)) if pools else "no InferencePool exists yet")
    classes = facts.get("classes") or []
    chosen = gw.choose_class(classes, requested_class)
    gateway_ok = "v1" in next((c["served"] for c in facts.get("crds") or [] if c["plural"] == "httproutes"), [])
    if passive_reason:
        result.finding("OpenAI traffic routed through an InferencePool by its endpoint picker", None, passive_reason)
        result.note("The Inference Extension CRDs are installed, but only an active run proves that a Gateway routes "
                    "requests to an InferencePool through its endpoint picker (run with mode=active).")
        return result.set(PARTIAL, "Inference Extension CRDs installed; routing not exercised (passive)").to_dict()
    if not gateway_ok or chosen is None:
        result.finding("an Accepted GatewayClass", False, "Gateway API HTTPRoute v1 not served" if not gateway_ok else
                       ("GatewayClass %s is not Accepted or does not exist" % requested_class if requested_class else
                        "no GatewayClass is Accepted (%d found)" % len(classes)))
        result.note("The Inference Extension CRDs are installed but there is no Gateway API implementation to route "
                    "through: install one that supports InferencePool backends.")
        return result.set(PARTIAL, "Inference Extension CRDs only: no Gateway implementation to route through").to_dict()
    result.finding("an Accepted GatewayClass", True, "%s (%s, %s)" % (chosen["name"], chosen["controller"],
                                                                      chosen["implementation"]))
    return judge_probe(result, chosen, probes or {})


def judge_probe(result, chosen, probes):
    gateway, route, pool = probes.get("gateway") or {}, probes.get("route") or {}, probes.get("pool")
    result.add_evidence("probe Gateway status", gateway, kind="yaml")
    result.add_evidence("probe HTTPRoute status", route, kind="yaml")
    result.add_evidence("probe InferencePool", pool or {}, kind="yaml")
    if probes.get("cleanup_note"):
        result.note(probes["cleanup_note"])
    release = probes.get("release")
    if release is not None:
        result.finding("probe Gateway's address released at cleanup", bool(release.get("released")),
                       release.get("error") or "the proxy Service holding the address was deleted")
    programmed = result.finding("probe Gateway Accepted and Programmed with an address",
                                bool(gateway.get("programmed") and gateway.get("addresses")),
                                "addresses %s" % gateway.get("addresses") if gateway else probes.get("error") or "no status")
    conditions = sorted("%s=%s (%s: %s)" % (c["type"], c["status"], c["reason"], c.get("message"))
                        for p in route.get("parents") or [] for c in p["conditions"])
    routed = result.finding("probe HTTPRoute to the InferencePool Accepted with ResolvedRefs", bool(route.get("ready")),
                            "; ".join(conditions) or probes.get("error") or "no status")
    accepted = result.finding("probe InferencePool Accepted with ResolvedRefs by its Gateway (status.parents)",
                              bool(pool and pool["ready"]), "%s" % ((pool or {}).get("parents") or "no status.parents"))
    counts = probes.get("tally")
    if counts is None:
        detail = (probes.get("client") or {}).get("error") or probes.get("error") or \
            "not sent: the Gateway, the route or the pods never became ready"
        result.finding("OpenAI requests through the Gateway", False, detail)
        if not routed:
            result.note("The Gateway implementation (%s) did not accept an HTTPRoute whose backendRef is an "
                        "InferencePool: it does not support the Inference Extension (or not this API version). Only "
                        "the CRDs are installed." % chosen["implementation"])
        elif not programmed:
            result.note("The probe Gateway was not Programmed with an address: %s."
                        % (probes.get("error") or "see its conditions"))
        else:
            result.note("No traffic could be measured: %s." % detail)
        return result.set(PARTIAL, "Inference Extension CRDs installed; routing through an InferencePool not "
                                   "demonstrated").to_dict()
    result.add_evidence("answers (kind: codes and x-inference-pod)", counts, kind="yaml")
    result.add_evidence("EPP picks (Request handled endpoints)", probes.get("picks") or [], kind="yaml")
    ok = judge_traffic(result, probes, counts)
    if ok and programmed and routed and accepted:
        return result.set(IMPLEMENTED, "%s routes OpenAI requests to an InferencePool through its endpoint picker, with "
                                       "prefix-cache-aware picks" % chosen["implementation"]).to_dict()
    return result.set(PARTIAL, "the Inference Extension is installed but routing through the endpoint picker was not "
                               "demonstrated").to_dict()


def judge_traffic(result, probes, counts):
    pod_ips = {k: v for k, v in (probes.get("pod_ips") or {}).items() if v}
    served = {}
    sent = answered = 0
    for kind in ("distinct", "prefix"):
        sent += sum(counts[kind]["codes"].values())
        answered += counts[kind]["codes"].get("200", 0)
        for pod, count in counts[kind]["pods"].items():
            served[pod] = served.get(pod, 0) + count
    answered_ok = result.finding("OpenAI completions through the Gateway answered 200",
                                 sent > 0 and answered >= sent * (1 - MAX_ERROR_SHARE),
                                 "%d of %d (%s / %s)" % (answered, sent, counts["distinct"]["codes"],
                                                         counts["prefix"]["codes"]))
    strangers = sorted(p for p in served if p not in pod_ips)
    members = result.finding("every answer came from a pool pod (x-inference-pod)", bool(served) and not strangers,
                             "answers by pod %s%s" % (served, "; not pool pods: %s" % strangers if strangers else ""))
    picked, detail = picks_account_for(probes.get("picks") or [], served, pod_ips)
    picked = result.finding("the endpoint picker chose every serving endpoint (EPP log)", picked, detail)
    spread = len([p for p in counts["distinct"]["pods"] if p in pod_ips])
    several = result.finding("distinct prompts served by more than one endpoint", spread > 1 or len(pod_ips) < 2,
                             "%d endpoint(s): %s" % (spread, counts["distinct"]["pods"]))
    prefix = counts["prefix"]["pods"]
    top = max(prefix.values()) if prefix else 0
    total = sum(prefix.values())
    affinity = result.finding("shared-prefix prompts kept on one endpoint (prefix-cache-aware routing)",
                              total > 0 and top >= PREFIX_SHARE * total,
                              "%d of %d on one endpoint (need %.0f %%): %s" % (top, total, 100 * PREFIX_SHARE, prefix))
    if not answered_ok:
        result.note("Requests through the Gateway to the InferencePool failed: %s." % counts)
    if not members:
        result.note("Answers did not name a pool pod in x-inference-pod (server_image must be llm-d-inference-sim, "
                    "which sets it from POD_NAME).")
    if answered_ok and not picked:
        result.note("Requests reached the pool but the endpoint picker's log does not account for them: the Gateway "
                    "implementation forwards to the pool without asking its endpoint picker (or the EPP runs with "
                    "verbosity below 3). Routing is not inference-aware.")
    if answered_ok and picked and not affinity:
        result.note("The endpoint picker chose the endpoints but did not keep shared-prefix prompts together: no "
                    "prefix/KV-cache-aware routing was observed.")
    return answered_ok and members and picked and several and affinity


def run(cluster, opts):
    facts = observe(cluster)
    requested = opts.get("gateway_class")
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason(), requested_class=requested)
    api = pool_group(facts)
    chosen = gw.choose_class(facts.get("classes") or [], requested)
    probes = None
    gateway_ok = "v1" in next((c["served"] for c in facts.get("crds") or [] if c["plural"] == "httproutes"), [])
    if api is not None and chosen is not None and gateway_ok:
        deadline = cl.Deadline(int(opts.get("gateway_timeout", 300)) + 2 * int(opts.get("route_timeout", 60)) +
                               2 * opts.wait_timeout + 300)
        probes = probe(cluster, opts, chosen, api[0], api[1], deadline)
    return judge(facts, probes, requested_class=requested)
