"""Gateway API Inference Extension (GAIE): the Endpoint Picker (EPP, registry.k8s.io/gateway-api-inference-extension/
epp) and the InferencePool semantics a Gateway implementation applies (used by envoy_gateway.py).

What the real components do (kubernetes-sigs/gateway-api-inference-extension: docs/proposals/004-endpoint-picker-
protocol, pkg/epp/requestcontrol/director.go, the InferencePool CRDs in ../shared/fixtures/upstream/crds/
gateway-api-inference-extension) and how far this module follows it:

* InferencePool (inference.networking.k8s.io/v1, and the older inference.networking.x-k8s.io/v1alpha2 whose fields
  are `targetPortNumber` and `extensionRef`): a label selector over model-server pods, their target port(s) and a
  reference to the EPP Service (`endpointPickerRef`: name, port.number, failureMode FailClose|FailOpen, default
  FailClose). pool_spec() reads either version.
* A Gateway implementation that supports InferencePool backends resolves an HTTPRoute backendRef of kind
  InferencePool, and writes `status.parents[]` on the pool for each Gateway whose accepted routes reference it:
  Accepted (reason Accepted) and ResolvedRefs (reason ResolvedRefs, or InvalidExtensionRef when the EPP Service does
  not exist) - pool_parent_status().
* For each request, the proxy asks the EPP (Envoy ext_proc over gRPC on the EPP's --grpc-port, 9002) which endpoint to
  use; the EPP answers with the header `x-gateway-destination-endpoint: <ip:port>` and the proxy forwards there.
  Here the ext_proc exchange is modelled as one in-cluster HTTP request to the EPP Service port carrying the client's
  headers and body; the answer carries the same header (or an immediate 4xx/5xx the proxy returns as is). When the EPP
  cannot be reached the proxy applies failureMode: FailClose answers 503, FailOpen picks any pool endpoint.
* The EPP (`--pool-name`, `--pool-namespace`, `--pool-group`, `--grpc-port`, `--v`) reads its pool and the Ready pods
  it selects, parses the OpenAI request body (a request without `model` gets 400 "model not found in request body"),
  and schedules with the default plugins (queue-scorer, kv-cache-utilization-scorer, prefix-cache-scorer): the
  prompt is hashed in blocks of 64 characters; each endpoint scores the share of the prompt's leading blocks it has
  served before (prefix cache) and, second, how few requests it holds (queue); ties are broken at random. The pick
  is logged as the real director does at verbosity >= 3 ("Request handled" with `endpoint` ip:port), as zap JSON.
* Not modelled: real gRPC, metrics scraping of the model servers (idle simulated servers score equally), LoRA,
  InferenceObjective priorities, flow control.

Scenario switches (settings.gatewayApi): `inferencePool: false` (the implementation does not support InferencePool
backends: such a backendRef gets ResolvedRefs False InvalidKind, as an implementation without GAIE support answers)
and `dataPlane.bypassEndpointPicker: true` (the proxies accept the pool and forward to a random pool endpoint without
asking the EPP: every status looks fine but no endpoint picking happens).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import random

from ..errors import ApiError

IMAGE_PATTERN = "*/gateway-api-inference-extension/epp"
GROUP_V1 = "inference.networking.k8s.io"
GROUP_X = "inference.networking.x-k8s.io"
POOLS = {GROUP_V1: (GROUP_V1, "inferencepools"), GROUP_X: (GROUP_X, "inferencepools")}
PODS = ("", "pods")
SERVICES = ("", "services")
DESTINATION_HEADER = "x-gateway-destination-endpoint"
BLOCK_SIZE = 64
DEFAULT_GRPC_PORT = 9002


def is_pool_ref(ref):
    """Is an HTTPRoute backendRef an InferencePool of either API group?"""
    return (ref or {}).get("kind") == "InferencePool" and (ref or {}).get("group") in POOLS


def pool_spec(pool):
    """{selector: {label: value}, ports: [int], picker: {name, port, failureMode}} of a v1 or v1alpha2 pool."""
    spec = (pool or {}).get("spec") or {}
    selector = spec.get("selector") or {}
    if "matchLabels" in selector or "matchExpressions" in selector:
        labels = dict(selector.get("matchLabels") or {})
    else:
        labels = dict(selector)
    if spec.get("targetPorts"):
        ports = [int(p.get("number")) for p in spec["targetPorts"] if p.get("number")]
    else:
        ports = [int(spec["targetPortNumber"])] if spec.get("targetPortNumber") else []
    ref = spec.get("endpointPickerRef") or spec.get("extensionRef") or {}
    port = (ref.get("port") or {}).get("number") if isinstance(ref.get("port"), dict) else ref.get("portNumber")
    picker = {"name": ref.get("name"), "kind": ref.get("kind") or "Service", "port": int(port or DEFAULT_GRPC_PORT),
              "failureMode": ref.get("failureMode") or "FailClose"}
    return {"selector": labels, "ports": ports, "picker": picker}


def get_pool(store, ref, namespace):
    gr = POOLS.get((ref or {}).get("group"))
    if gr is None or gr not in store.types:
        return None
    return store.try_get(gr, (ref or {}).get("namespace") or namespace, ref.get("name"))


def pool_endpoints(store, pool):
    """["ip:port", ...] of the Ready, running pods the pool selects (first target port), sorted."""
    spec = pool_spec(pool)
    if not spec["selector"] or not spec["ports"]:
        return []
    out = []
    for pod in store.list(PODS, namespace=pool["metadata"]["namespace"])[0]:
        labels = pod["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in spec["selector"].items()) or pod["metadata"].get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready and status.get("podIP"):
            out.append("%s:%d" % (status["podIP"], spec["ports"][0]))
    return sorted(out)


def pool_parent_status(store, pool, gateways, controller_name, clock, previous=None):
    """status.parents entries of this controller for `gateways` [(namespace, name)], other controllers' kept."""
    spec = pool_spec(pool)
    namespace = pool["metadata"]["namespace"]
    picker_ok = spec["picker"]["kind"] == "Service" and store.try_get(SERVICES, namespace, spec["picker"]["name"]) is not None
    if picker_ok:
        resolved = ("ResolvedRefs", "True", "ResolvedRefs", "Resolved ExtensionRef")
    else:
        resolved = ("ResolvedRefs", "False", "InvalidExtensionRef",
                    "Endpoint picker %s %s/%s not found" % (spec["picker"]["kind"], namespace, spec["picker"]["name"]))
    accepted = ("Accepted", "True", "Accepted", "InferencePool has been Accepted by controller %s" % controller_name)
    before = {}
    for parent in previous or []:
        ref = parent.get("parentRef") or {}
        before[(ref.get("namespace"), ref.get("name"))] = {c.get("type"): c for c in parent.get("conditions") or []}
    generation = pool["metadata"].get("generation")
    out = []
    for gw_namespace, gw_name in sorted(gateways):
        old = before.get((gw_namespace, gw_name)) or {}
        conditions = []
        for ctype, status, reason, message in (accepted, resolved):
            prev = old.get(ctype) or {}
            when = prev.get("lastTransitionTime") if prev.get("status") == status else None
            conditions.append({"type": ctype, "status": status, "reason": reason, "message": message,
                               "observedGeneration": generation, "lastTransitionTime": when or clock.timestamp()})
        out.append({"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name,
                                  "namespace": gw_namespace}, "conditions": conditions})
    return out


def reconcile_pool_status(store, clock, controller_name, referenced):
    """Write status.parents on every pool in `referenced` {(group, namespace, name): {(gw ns, gw name)}}; pools
    this controller no longer serves lose their entries (the v1 field is `parents`, v1alpha2's `parent`)."""
    for group, gr in POOLS.items():
        if gr not in store.types:
            continue
        field = "parents" if group == GROUP_V1 else "parent"
        for pool in store.list(gr)[0]:
            meta = pool["metadata"]
            gateways = referenced.get((group, meta["namespace"], meta["name"])) or set()
            old = (pool.get("status") or {}).get(field) or []
            if not gateways and not old:
                continue
            parents = pool_parent_status(store, pool, gateways, controller_name, clock, old) if gateways else []
            if parents == old:
                continue
            updated = copy.deepcopy(pool)
            updated["status"] = dict(updated.get("status") or {}, **{field: parents})
            try:
                store.update(gr, updated, subresource="status")
            except ApiError:
                pass  # changed meanwhile: the next pass looks again


# ------------------------------------------------------------------------------------------- the data plane side
def forward_to_pool(proc, store, pool, req_method, path, query, headers, body, rng, bypass=False):
    """What an Envoy proxy does with a request routed to an InferencePool: ask the EPP (or, bypassing it, pick at
    random), then send the request to the chosen endpoint. Returns the runtime's request() tuple, or
    ("ok", status, headers, body) for an answer the proxy makes itself."""
    spec = pool_spec(pool)
    namespace = pool["metadata"]["namespace"]
    endpoint = None
    if bypass:
        endpoints = pool_endpoints(store, pool)
        endpoint = rng.choice(endpoints) if endpoints else None
    else:
        host = "%s.%s.svc.cluster.local" % (spec["picker"]["name"], namespace)
        answer = proc.runtime.request(proc, "POST", host, spec["picker"]["port"], "/envoy.service.ext_proc.v3."
                                      "ExternalProcessor/Process", "", dict(headers, **{":path": path}), body)
        if answer[0] == "ok" and answer[1] == 200:
            endpoint = {k.lower(): v for k, v in (answer[2] or {}).items()}.get(DESTINATION_HEADER)
        elif answer[0] == "ok":
            return answer
        elif spec["picker"]["failureMode"] == "FailOpen":
            endpoints = pool_endpoints(store, pool)
            endpoint = rng.choice(endpoints) if endpoints else None
    if not endpoint:
        return ("ok", 503, {"content-type": "text/plain"}, b"no healthy upstream")
    ip, _sep, port = endpoint.split(",")[0].rpartition(":")
    return proc.runtime.request(proc, req_method, ip, int(port), path, query, headers, body)


# ------------------------------------------------------------------------------------------- the EPP
def _flags(argv):
    out, key = {}, None
    for arg in argv:
        if arg.startswith("-"):
            name = arg.lstrip("-")
            if "=" in name:
                name, value = name.split("=", 1)
                out[name] = value
                key = None
            else:
                key = name
                out[key] = ""
        elif key is not None:
            out[key] = arg
            key = None
    return out


def prompt_of(doc):
    """The text the prefix-cache scorer hashes: `prompt` (completions) or the messages' contents (chat)."""
    if doc.get("prompt") is not None:
        return str(doc["prompt"])
    return "".join(str((m or {}).get("content", "")) for m in doc.get("messages") or ())


def prompt_blocks(prompt, model):
    """Chained hashes of the prompt's whole 64-character blocks (the model name seeds the chain)."""
    out, prev = [], hashlib.sha256(str(model).encode()).hexdigest()
    for start in range(0, len(prompt) - BLOCK_SIZE + 1, BLOCK_SIZE):
        prev = hashlib.sha256((prev + prompt[start:start + BLOCK_SIZE]).encode()).hexdigest()
        out.append(prev)
    return out


class Picker(object):
    """The default scheduling profile: prefix-cache score first, then the fewest requests held, then random."""

    def __init__(self, rng):
        self.rng = rng
        self.cache = {}      # endpoint -> set of block hashes it has served
        self.assigned = {}   # endpoint -> requests sent there

    def prefix_score(self, endpoint, blocks):
        cached = self.cache.get(endpoint) or set()
        matched = 0
        for block in blocks:
            if block not in cached:
                break
            matched += 1
        return matched / float(len(blocks)) if blocks else 0.0

    def pick(self, endpoints, blocks):
        if not endpoints:
            return None
        load = [self.assigned.get(e, 0) for e in endpoints]
        most = max(load) or 1
        scored = [(self.prefix_score(e, blocks) + (1.0 - self.assigned.get(e, 0) / float(most + 1)) * 0.5, e)
                  for e in endpoints]
        best = max(score for score, _e in scored)
        chosen = self.rng.choice([e for score, e in scored if math.isclose(score, best)])
        self.cache.setdefault(chosen, set()).update(blocks)
        self.assigned[chosen] = self.assigned.get(chosen, 0) + 1
        return chosen


def epp_app(proc):
    if proc.init:
        return None
    return _epp(proc)


def _log(proc, level, msg, **fields):
    doc = {"level": level, "ts": proc.runtime.clock.timestamp(), "logger": "epp", "msg": msg}
    doc.update(fields)
    proc.write(json.dumps(doc) + "\n")


def _epp(proc):
    sim = proc.runtime.sim
    flags = _flags(proc.argv)
    pool_name, pool_ns = flags.get("pool-name"), flags.get("pool-namespace") or proc.pod["metadata"]["namespace"]
    group = flags.get("pool-group") or GROUP_V1
    verbosity = int(flags.get("v") or 1)
    grpc_port = int(flags.get("grpc-port") or DEFAULT_GRPC_PORT)
    picker = Picker(random.Random(proc.pod["metadata"].get("uid")))
    _log(proc, "info", "Flags processed", flags=dict(flags))
    if not pool_name:
        _log(proc, "error", "Failed to validate flags", error="required \"pool-name\" flag not set")
        return 1

    def handle(req):
        pool = get_pool(sim.store, {"group": group, "name": pool_name}, pool_ns)
        if pool is None:
            _log(proc, "error", "Failed to get InferencePool", pool=pool_name, namespace=pool_ns)
            return 503, {"content-type": "text/plain"}, "failed to find endpoint candidates for serving the request"
        try:
            doc = json.loads(req.body or b"{}")
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("model"), str):
            return 400, {"content-type": "text/plain"}, "model not found in request body"
        endpoints = pool_endpoints(sim.store, pool)
        chosen = picker.pick(endpoints, prompt_blocks(prompt_of(doc), doc["model"]))
        if chosen is None:
            return 503, {"content-type": "text/plain"}, "failed to find endpoint candidates for serving the request"
        if verbosity >= 3:
            _log(proc, "Level(-3)", "Request handled", objectiveKey="", incomingModelName=doc["model"],
                 targetModel=doc["model"], endpoint=chosen)
        return 200, {DESTINATION_HEADER: chosen, "content-type": "application/grpc"}, ""

    proc.listen(grpc_port, handle)
    health = int(flags.get("grpc-health-port") or 9003)
    proc.listen(health, lambda req: (200, {"content-type": "text/plain"}, "SERVING"))

    def metrics(unused_req):
        pool = get_pool(sim.store, {"group": group, "name": pool_name}, pool_ns)
        ready = len(pool_endpoints(sim.store, pool)) if pool is not None else 0
        return 200, {"content-type": "text/plain"}, "inference_pool_ready_pods{name=\"%s\"} %d\n" % (pool_name, ready)
    proc.listen(9090, metrics)
    _log(proc, "info", "Starting ext-proc gRPC server", port=grpc_port)
    yield math.inf
    return 0


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, epp_app)
