"""Envoy Gateway (docker.io/envoyproxy/gateway): its certgen job and the GatewayClass part of its controller.

What the real program (envoyproxy/gateway, internal/cmd/certgen.go and internal/provider/kubernetes) does
that the gateway_api role relies on, and how far this app follows it:

* `envoy-gateway certgen` (the chart's pre-install hook Job) creates the TLS Secrets the control plane and
  the proxies use, `envoy-gateway`, `envoy`, `envoy-rate-limit` (ca.crt, tls.crt, tls.key) and
  `envoy-oidc-hmac` (hmac-secret), in ENVOY_GATEWAY_NAMESPACE, leaving existing ones alone, then exits 0.
* `envoy-gateway server --config-path=...` reads `gateway.controllerName` from its EnvoyGateway config and
  accepts every GatewayClass with that controllerName: condition Accepted=True, reason Accepted,
  message "Valid GatewayClass", observedGeneration = generation.
* The gateway-api provider and infrastructure manager (internal/gatewayapi, internal/infrastructure/kubernetes):
  for every Gateway on an accepted class, an Envoy proxy Deployment and a LoadBalancer Service named
  `envoy-<namespace>-<name>-<hash>` in ENVOY_GATEWAY_NAMESPACE, labelled gateway.envoyproxy.io/owning-gateway-
  name/-namespace, removed with the Gateway (which releases its address). Gateway status with the real
  reasons and messages: Accepted ("The Gateway has been scheduled by Envoy Gateway"); Programmed True
  ("Address assigned to the Gateway, n/m envoy replicas available"), or False with AddressNotAssigned ("No
  addresses have been assigned to the Gateway") or NoResources ("Envoy replicas unavailable");
  status.addresses from the Service's load-balancer ingress; per listener supportedKinds, attachedRoutes and
  Accepted/Programmed/ResolvedRefs.
* HTTPRoute status per parent of this controller: Accepted ("Route is accepted"; NotAllowedByListeners when
  the listeners' allowedRoutes refuse the route's namespace; UnsupportedValue for a filter type it does not
  implement) and ResolvedRefs ("Resolved all the Object references for the Route"; BackendNotFound for a
  missing Service, RefNotPermitted for a cross-namespace Service without a ReferenceGrant, InvalidKind for a
  backendRef that is not a Service).
* The Envoy proxies (app for */envoyproxy/envoy): each serves its Gateway's HTTP listeners on the
  container ports Envoy Gateway maps them to (port + 10000 below 1024) with the accepted routes, following
  the standard channel's HTTPRoute semantics (gateway_dataplane.py), and forwards to the backend Services
  through the cluster network.
* The cloud's load-balancer controller is not Envoy Gateway's, but a Gateway has no address without one:
  this module also assigns LoadBalancer Services of the proxies an ingress IP from 172.18.255.200-250
  (as MetalLB or cloud-provider-kind would) and makes that IP reachable from pods. Scenario switches
  (settings.gatewayApi): loadBalancer: false (no LB controller: Gateways stay AddressNotAssigned);
  dataPlane.ignoreWeights (proxies send everything to a rule's first backend) and dataPlane.ignoreHeaders
  (proxies never program header matches), which break the data plane while every status looks fine.
* Gateway API Inference Extension (Envoy Gateway v1.5+): HTTPRoute backendRefs of kind InferencePool resolve when
  the pool exists, the pool gets status.parents (Accepted, ResolvedRefs) for each Gateway, and the proxies ask the
  pool's endpoint picker which endpoint to use (inference_extension.py). Switches: settings.gatewayApi.inferencePool:
  false (not supported: InvalidKind), dataPlane.bypassEndpointPicker (the proxies pick at random).
"""
from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import math
import random
import os
import urllib.parse

import yaml

from . import gateway_dataplane as dp
from . import inference_extension as gaie
from ..errors import ApiError
from ..tls import ServingCerts

IMAGE_PATTERN = "*/envoyproxy/gateway"
GATEWAYCLASSES = ("gateway.networking.k8s.io", "gatewayclasses")
SECRETS = ("", "secrets")
DEFAULT_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
TLS_SECRETS = ("envoy-gateway", "envoy", "envoy-rate-limit")
RECONCILE_SECONDS = 5.0
GATEWAYS = ("gateway.networking.k8s.io", "gateways")
HTTPROUTES = ("gateway.networking.k8s.io", "httproutes")
REFERENCEGRANTS = ("gateway.networking.k8s.io", "referencegrants")
DEPLOYMENTS = ("apps", "deployments")
SERVICES = ("", "services")
NAMESPACES = ("", "namespaces")
GROUP = "gateway.networking.k8s.io"
ENVOY_IMAGE = "docker.io/envoyproxy/envoy:distroless-v1.36.2"
ENVOY_PATTERN = "*/envoyproxy/envoy"
OWNING_NAME = "gateway.envoyproxy.io/owning-gateway-name"
OWNING_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"
LB_POOL = [str(ipaddress.ip_address("172.18.255.200") + i) for i in range(51)]
SUPPORTED_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror")


def _b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def certgen(store, namespace):
    """Create the Secrets certgen makes, where missing."""
    certs = ServingCerts()
    wanted = [(name, {"ca.crt": certs.ca_pem, "tls.crt": certs.cert_pem, "tls.key": certs.key_pem}, "kubernetes.io/tls")
              for name in TLS_SECRETS]
    wanted.append(("envoy-oidc-hmac", {"hmac-secret": _b64(os.urandom(32))}, "Opaque"))
    for name, data, kind in wanted:
        if store.try_get(SECRETS, namespace, name) is not None:
            continue
        try:
            store.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "type": kind,
                                   "metadata": {"name": name, "namespace": namespace,
                                                "labels": {"control-plane": "envoy-gateway"}},
                                   "data": {key: _b64(value) for key, value in data.items()}})
        except ApiError:
            pass


def accept_classes(store, clock, controller_name):
    """Accepted=True on every GatewayClass this controller owns that does not say so yet."""
    if GATEWAYCLASSES not in store.types:
        return
    for gc in [copy.deepcopy(o) for o in store.list(GATEWAYCLASSES)[0]]:
        if (gc.get("spec") or {}).get("controllerName") != controller_name or gc["metadata"].get("deletionTimestamp"):
            continue
        generation = gc["metadata"].get("generation")
        conditions = (gc.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Accepted" and c.get("status") == "True" and c.get("observedGeneration") == generation
               for c in conditions):
            continue
        accepted = {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Valid GatewayClass",
                    "observedGeneration": generation, "lastTransitionTime": clock.timestamp()}
        gc.setdefault("status", {})["conditions"] = [c for c in conditions if c.get("type") != "Accepted"] + [accepted]
        try:
            store.update(GATEWAYCLASSES, gc, subresource="status")
        except ApiError:
            pass  # changed meanwhile: the next pass looks again


def _controller_name(proc):
    path = None
    for arg in proc.argv:
        if arg.startswith("--config-path="):
            path = arg.split("=", 1)[1]
    config = yaml.safe_load(proc.fs.read(path) or "") if path else None
    return ((config or {}).get("gateway") or {}).get("controllerName") or DEFAULT_CONTROLLER


def gateway_app(proc):
    args = [a for a in proc.argv if not a.startswith("-")]
    if proc.init or not args:
        return None
    if args[-1] == "certgen" or (len(args) > 1 and args[1] == "certgen"):
        return _certgen(proc)
    if "server" in args:
        return _server(proc)
    return None


def _certgen(proc):
    namespace = proc.env.get("ENVOY_GATEWAY_NAMESPACE") or proc.pod["metadata"]["namespace"]
    certgen(proc.runtime.sim.store, namespace)
    proc.write("generated certificates\n")
    return 0
    yield  # pylint: disable=unreachable


def _server(proc):
    sim = proc.runtime.sim
    controller_name = _controller_name(proc)
    proc.write('{"level":"info","logger":"provider","msg":"Starting EventSource","controller":"gatewayclass"}\n')
    for port in [int(p["containerPort"]) for p in proc.container.get("ports") or () if p.get("containerPort")]:
        proc.listen(port, lambda req: (200, {"Content-Type": "text/plain"}, "ok"))
    namespace = proc.env.get("ENVOY_GATEWAY_NAMESPACE") or proc.pod["metadata"]["namespace"]
    settings = (getattr(sim, "settings", None) or {}).get("gatewayApi") or {}
    while True:  # like the real controller: runs until the pod stops
        accept_classes(sim.store, sim.clock, controller_name)
        pools = settings.get("inferencePool", True) is not False
        for step in (lambda: reconcile_gateways(sim.store, sim.clock, controller_name, namespace),
                     lambda: reconcile_routes(sim.store, sim.clock, controller_name, inference_pools=pools),
                     lambda: reconcile_inference_pools(sim.store, sim.clock, controller_name) if pools else None):
            try:
                step()
            except ApiError:
                pass  # changed meanwhile: the next pass looks again
        if settings.get("loadBalancer", True):
            assign_lb_addresses(sim.store)
        yield RECONCILE_SECONDS


# ------------------------------------------------------------------------------------------- gateways
def _conditions(old, new, clock, generation):
    """Merge condition dicts (type, status, reason, message): lastTransitionTime moves on status change."""
    before = {c.get("type"): c for c in old or []}
    out = []
    for ctype, status, reason, message in new:
        prev = before.get(ctype) or {}
        when = prev.get("lastTransitionTime") if prev.get("status") == status else None
        out.append({"type": ctype, "status": status, "reason": reason, "message": message,
                    "observedGeneration": generation, "lastTransitionTime": when or clock.timestamp()})
    return out


def _owned_classes(store, controller_name):
    if GATEWAYCLASSES not in store.types:
        return set()
    out = set()
    for gc in store.list(GATEWAYCLASSES)[0]:
        accepted = any(c.get("type") == "Accepted" and c.get("status") == "True"
                       for c in (gc.get("status") or {}).get("conditions") or [])
        if (gc.get("spec") or {}).get("controllerName") == controller_name and accepted:
            out.add(gc["metadata"]["name"])
    return out


def infra_name(gateway):
    meta = gateway["metadata"]
    digest = hashlib.sha256(("%s/%s" % (meta["namespace"], meta["name"])).encode()).hexdigest()[:8]
    base = "envoy-%s-%s" % (meta["namespace"], meta["name"])
    return "%s-%s" % (base[:63 - 9], digest)


def container_port(port):
    """Envoy Gateway binds privileged listener ports 10000 higher (it runs without NET_BIND_SERVICE)."""
    port = int(port)
    return port + 10000 if port < 1024 else port


def _infra_labels(gateway):
    return {"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy",
            "app.kubernetes.io/managed-by": "envoy-gateway",
            OWNING_NAME: gateway["metadata"]["name"], OWNING_NAMESPACE: gateway["metadata"]["namespace"]}


def _infra_objects(gateway, namespace):
    name = infra_name(gateway)
    labels = _infra_labels(gateway)
    listeners = (gateway.get("spec") or {}).get("listeners") or []
    ports = sorted({int(listener["port"]) for listener in listeners})
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": {
                     "containers": [{
                         "name": "envoy", "image": ENVOY_IMAGE, "imagePullPolicy": "IfNotPresent",
                         "args": ["--service-cluster", "%s/%s" % (gateway["metadata"]["namespace"], gateway["metadata"]["name"]),
                                  "--log-level", "warn"],
                         "ports": [{"name": "http-%d" % port, "containerPort": container_port(port), "protocol": "TCP"}
                                   for port in ports] + [{"name": "metrics", "containerPort": 19001, "protocol": "TCP"}],
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 19001}, "periodSeconds": 5},
                         "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}}}],
                     "terminationGracePeriodSeconds": 5}}}}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": dict(labels),
                 "ports": [{"name": "http-%d" % port, "port": port, "targetPort": container_port(port), "protocol": "TCP"}
                           for port in ports]}}
    return deployment, service


def reconcile_gateways(store, clock, controller_name, namespace):
    """Infrastructure and status of every Gateway on a class this controller accepted; stale infra removed."""
    if GATEWAYS not in store.types:
        return
    classes = _owned_classes(store, controller_name)
    wanted = set()
    for gateway in store.list(GATEWAYS)[0]:
        if (gateway.get("spec") or {}).get("gatewayClassName") not in classes or gateway["metadata"].get("deletionTimestamp"):
            continue
        name = infra_name(gateway)
        wanted.add(name)
        deployment, service = _infra_objects(gateway, namespace)
        existing = store.try_get(DEPLOYMENTS, namespace, name)
        if existing is None:
            store.create(DEPLOYMENTS, deployment)
        elif existing["spec"]["template"]["spec"]["containers"][0].get("ports") != \
                deployment["spec"]["template"]["spec"]["containers"][0]["ports"]:
            updated = copy.deepcopy(existing)
            updated["spec"]["template"] = deployment["spec"]["template"]
            store.update(DEPLOYMENTS, updated)
        svc = store.try_get(SERVICES, namespace, name)
        if svc is None:
            store.create(SERVICES, service)
        _gateway_status(store, clock, gateway, namespace, name)
    for gr in (DEPLOYMENTS, SERVICES):
        for obj in store.list(gr, namespace=namespace)[0]:
            labels = obj["metadata"].get("labels") or {}
            if OWNING_NAME in labels and obj["metadata"]["name"] not in wanted:
                store.delete(gr, namespace, obj["metadata"]["name"])


def _attached_routes(store, gateway, listener):
    count = 0
    for route in store.list(HTTPROUTES)[0] if HTTPROUTES in store.types else ():
        for parent in (route.get("status") or {}).get("parents") or []:
            ref = parent.get("parentRef") or {}
            if ref.get("name") == gateway["metadata"]["name"] and \
                    (ref.get("namespace") or route["metadata"]["namespace"]) == gateway["metadata"]["namespace"] and \
                    ref.get("sectionName") in (None, listener["name"]) and \
                    any(c.get("type") == "Accepted" and c.get("status") == "True" for c in parent.get("conditions") or []):
                count += 1
    return count


def _gateway_status(store, clock, gateway, namespace, name):
    generation = gateway["metadata"].get("generation")
    svc = store.try_get(SERVICES, namespace, name)
    deployment = store.try_get(DEPLOYMENTS, namespace, name)
    ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [{"type": "IPAddress", "value": i["ip"]} if i.get("ip") else {"type": "Hostname", "value": i["hostname"]}
                 for i in ingress if i.get("ip") or i.get("hostname")]
    want = ((deployment or {}).get("spec") or {}).get("replicas", 1)
    ready = ((deployment or {}).get("status") or {}).get("availableReplicas") or 0
    if not addresses:
        programmed = ("Programmed", "False", "AddressNotAssigned", "No addresses have been assigned to the Gateway")
    elif not ready:
        programmed = ("Programmed", "False", "NoResources", "Envoy replicas unavailable")
    else:
        programmed = ("Programmed", "True", "Programmed", "Address assigned to the Gateway, %d/%d envoy replicas available"
                      % (ready, want))
    old = gateway.get("status") or {}
    status = {"conditions": _conditions(old.get("conditions"), [
        ("Accepted", "True", "Accepted", "The Gateway has been scheduled by Envoy Gateway"), programmed], clock, generation)}
    if addresses:
        status["addresses"] = addresses
    old_listeners = {item.get("name"): item for item in old.get("listeners") or []}
    listeners = []
    for listener in (gateway.get("spec") or {}).get("listeners") or []:
        listeners.append({
            "name": listener["name"],
            "supportedKinds": [{"group": GROUP, "kind": "HTTPRoute"}, {"group": GROUP, "kind": "GRPCRoute"}],
            "attachedRoutes": _attached_routes(store, gateway, listener),
            "conditions": _conditions((old_listeners.get(listener["name"]) or {}).get("conditions"), [
                ("Programmed", "True", "Programmed", "Sending translated listener configuration to the data plane"),
                ("Accepted", "True", "Accepted", "Listener has been successfully translated"),
                ("ResolvedRefs", "True", "ResolvedRefs", "Listener references have been resolved")], clock, generation)})
    status["listeners"] = listeners
    if status == old:
        return
    updated = copy.deepcopy(gateway)
    updated["status"] = status
    store.update(GATEWAYS, updated, subresource="status")


def assign_lb_addresses(store):
    """Stand-in for the cloud's load-balancer controller: an ingress IP for each proxy LoadBalancer Service."""
    services = store.list(SERVICES)[0]
    used = {i.get("ip") for s in services for i in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []}
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or OWNING_NAME not in (svc["metadata"].get("labels") or {}):
            continue
        if ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            continue
        free = [ip for ip in LB_POOL if ip not in used]
        if not free:
            return
        updated = copy.deepcopy(svc)
        updated["status"] = {"loadBalancer": {"ingress": [{"ip": free[0], "ipMode": "VIP"}]}}
        try:
            store.update(SERVICES, updated, subresource="status")
            used.add(free[0])
        except ApiError:
            pass


# ------------------------------------------------------------------------------------------- routes
def _parent_gateway(store, route, ref):
    if (ref.get("group") or GROUP) != GROUP or (ref.get("kind") or "Gateway") != "Gateway":
        return None
    return store.try_get(GATEWAYS, ref.get("namespace") or route["metadata"]["namespace"], ref.get("name"))


def _namespace_allowed(store, gateway, listener, route_namespace):
    allowed = ((listener.get("allowedRoutes") or {}).get("namespaces") or {})
    source = allowed.get("from") or "Same"
    if source == "All":
        return True
    if source == "Same":
        return route_namespace == gateway["metadata"]["namespace"]
    if source == "Selector":
        ns = store.try_get(NAMESPACES, None, route_namespace)
        selector = allowed.get("selector") or {}
        labels = (ns or {}).get("metadata", {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and \
            all(_expression(labels, e) for e in selector.get("matchExpressions") or [])
    return False


def _expression(labels, expr):
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def listeners_for(store, gateway, route, ref):
    """The gateway's listeners this parentRef attaches the route to."""
    out = []
    for listener in (gateway.get("spec") or {}).get("listeners") or []:
        if ref.get("sectionName") and ref["sectionName"] != listener.get("name"):
            continue
        if ref.get("port") and int(ref["port"]) != int(listener.get("port")):
            continue
        if listener.get("protocol") not in ("HTTP", "HTTPS"):
            continue
        if not _namespace_allowed(store, gateway, listener, route["metadata"]["namespace"]):
            continue
        out.append(listener)
    return out


def _grant_allows(store, route_namespace, target_namespace, kind, name):
    if REFERENCEGRANTS not in store.types:
        return False
    for grant in store.list(REFERENCEGRANTS, namespace=target_namespace)[0]:
        spec = grant.get("spec") or {}
        sources = any((f.get("group") == GROUP and f.get("kind") == "HTTPRoute" and f.get("namespace") == route_namespace)
                      for f in spec.get("from") or [])
        targets = any(((t.get("group") or "") == "" and t.get("kind") == kind and t.get("name") in (None, "", name))
                      for t in spec.get("to") or [])
        if sources and targets:
            return True
    return False


def resolve_refs(store, route, inference_pools=False):
    """(ResolvedRefs condition tuple, Accepted problem or None) of a route's rules."""
    namespace = route["metadata"]["namespace"]
    for r_index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        for f in rule.get("filters") or []:
            if f.get("type") not in SUPPORTED_FILTERS:
                return None, ("Accepted", "False", "UnsupportedValue", "Unsupported filter type: %s" % f.get("type"))
        for b_index, ref in enumerate(rule.get("backendRefs") or []):
            where = "Failed to process route rule %d backendRef %d" % (r_index, b_index)
            if inference_pools and gaie.is_pool_ref(ref):
                if (ref.get("namespace") or namespace) != namespace:
                    return ("ResolvedRefs", "False", "RefNotPermitted", "%s: cross-namespace InferencePool is not "
                            "supported." % where), None
                if gaie.get_pool(store, ref, namespace) is None:
                    return ("ResolvedRefs", "False", "BackendNotFound", "%s: InferencePool %s/%s not found." % (
                        where, namespace, ref.get("name"))), None
                continue
            if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
                return ("ResolvedRefs", "False", "InvalidKind", "%s: %s is not a supported backend kind." % (
                    where, ref.get("kind"))), None
            target_ns = ref.get("namespace") or namespace
            if target_ns != namespace and not _grant_allows(store, namespace, target_ns, "Service", ref.get("name")):
                return ("ResolvedRefs", "False", "RefNotPermitted", "%s: backendRef Service %s/%s not permitted by any "
                        "ReferenceGrant." % (where, target_ns, ref.get("name"))), None
            if store.try_get(SERVICES, target_ns, ref.get("name")) is None:
                return ("ResolvedRefs", "False", "BackendNotFound", "%s: service %s/%s not found." % (
                    where, target_ns, ref.get("name"))), None
    return ("ResolvedRefs", "True", "ResolvedRefs", "Resolved all the Object references for the Route"), None


def reconcile_routes(store, clock, controller_name, inference_pools=False):
    """status.parents of every HTTPRoute that points at a Gateway of an accepted class of this controller."""
    if HTTPROUTES not in store.types or GATEWAYS not in store.types:
        return
    classes = _owned_classes(store, controller_name)
    for route in store.list(HTTPROUTES)[0]:
        if route["metadata"].get("deletionTimestamp"):
            continue
        generation = route["metadata"].get("generation")
        old = route.get("status") or {}
        others = [p for p in old.get("parents") or [] if p.get("controllerName") != controller_name]
        mine_old = {_ref_key(route, p.get("parentRef") or {}): p for p in old.get("parents") or []
                    if p.get("controllerName") == controller_name}
        parents = []
        for ref in (route.get("spec") or {}).get("parentRefs") or []:
            gateway = _parent_gateway(store, route, ref)
            if gateway is None or (gateway.get("spec") or {}).get("gatewayClassName") not in classes:
                continue
            resolved, unsupported = resolve_refs(store, route, inference_pools)
            if unsupported:
                accepted = unsupported
                resolved = ("ResolvedRefs", "True", "ResolvedRefs", "Resolved all the Object references for the Route")
            elif not listeners_for(store, gateway, route, ref):
                accepted = ("Accepted", "False", "NotAllowedByListeners",
                            "No listeners included by this parent ref allowed this attachment.")
            else:
                accepted = ("Accepted", "True", "Accepted", "Route is accepted")
            previous = (mine_old.get(_ref_key(route, ref)) or {}).get("conditions")
            parents.append({"parentRef": copy.deepcopy(ref), "controllerName": controller_name,
                            "conditions": _conditions(previous, [accepted, resolved], clock, generation)})
        if not parents and not mine_old:
            continue
        status = {"parents": others + parents}
        if status == old:
            continue
        updated = copy.deepcopy(route)
        updated["status"] = status
        try:
            store.update(HTTPROUTES, updated, subresource="status")
        except ApiError:
            pass


def reconcile_inference_pools(store, clock, controller_name):
    """status.parents of the InferencePools that accepted routes of this controller's Gateways reference."""
    referenced = {}
    for route in store.list(HTTPROUTES)[0] if HTTPROUTES in store.types else ():
        namespace = route["metadata"]["namespace"]
        gateways = {((p.get("parentRef") or {}).get("namespace") or namespace, (p.get("parentRef") or {}).get("name"))
                    for p in (route.get("status") or {}).get("parents") or []
                    if p.get("controllerName") == controller_name and
                    any(c.get("type") == "Accepted" and c.get("status") == "True" for c in p.get("conditions") or [])}
        if not gateways or route["metadata"].get("deletionTimestamp"):
            continue
        for rule in (route.get("spec") or {}).get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if gaie.is_pool_ref(ref):
                    key = (ref["group"], ref.get("namespace") or namespace, ref.get("name"))
                    referenced.setdefault(key, set()).update(gateways)
    gaie.reconcile_pool_status(store, clock, controller_name, referenced)


def _ref_key(route, ref):
    return (ref.get("namespace") or route["metadata"]["namespace"], ref.get("name"), ref.get("sectionName"), ref.get("port"))


# ------------------------------------------------------------------------------------------- data plane
def envoy_app(proc):
    """An Envoy proxy of a Gateway: serves its listeners with the Gateway's accepted HTTPRoutes."""
    if proc.init:
        return None
    return _envoy(proc)


def _envoy(proc):
    cluster_name = None
    argv = list(proc.argv)
    for index, arg in enumerate(argv):
        if arg == "--service-cluster" and index + 1 < len(argv):
            cluster_name = argv[index + 1]
    labels = proc.pod["metadata"].get("labels") or {}
    gw_namespace, _sep, gw_name = (cluster_name or "").partition("/")
    gw_namespace, gw_name = gw_namespace or labels.get(OWNING_NAMESPACE), gw_name or labels.get(OWNING_NAME)
    sim = proc.runtime.sim
    settings = ((getattr(sim, "settings", None) or {}).get("gatewayApi") or {}).get("dataPlane") or {}
    rng = random.Random(proc.pod["metadata"].get("uid"))
    proc.write("[%s][info][main] starting main dispatch loop\n" % proc.runtime.clock.timestamp())
    proc.listen(19001, lambda req: (200, {"Content-Type": "text/plain"}, "LIVE") if req.path == "/ready"
                else (200, {"Content-Type": "text/plain"}, "envoy_server_live 1\n"))
    for port in [int(p["containerPort"]) for p in proc.container.get("ports") or () if p.get("name", "").startswith("http-")]:
        listener_port = port - 10000 if port >= 10000 and port - 10000 < 1024 else port
        proc.listen(port, _handler(proc, sim.store, gw_namespace, gw_name, listener_port, settings, rng))
    yield math.inf
    return 0


def _accepted_routes(store, gateway, listener, controller_routes=None):
    out = []
    for route in controller_routes if controller_routes is not None else store.list(HTTPROUTES)[0]:
        for parent in (route.get("status") or {}).get("parents") or []:
            ref = parent.get("parentRef") or {}
            if ref.get("name") != gateway["metadata"]["name"] or \
                    (ref.get("namespace") or route["metadata"]["namespace"]) != gateway["metadata"]["namespace"]:
                continue
            if ref.get("sectionName") not in (None, listener["name"]) or (ref.get("port") not in (None, listener["port"])):
                continue
            if any(c.get("type") == "Accepted" and c.get("status") == "True" for c in parent.get("conditions") or []):
                out.append(route)
                break
    return out


def _handler(proc, store, gw_namespace, gw_name, listener_port, settings, rng):
    def handle(req):
        gateway = store.try_get(GATEWAYS, gw_namespace, gw_name)
        listeners = [item for item in ((gateway or {}).get("spec") or {}).get("listeners") or []
                     if int(item.get("port")) == listener_port]
        if gateway is None or not listeners:
            return 404, {"server": "envoy", "content-length": "0"}, ""
        routes, listener = [], listeners[0]
        for item in listeners:
            found = _accepted_routes(store, gateway, item)
            if found:
                routes, listener = found, item
                break
        headers = dict(req.headers)
        query = urllib.parse.parse_qs(req.query, keep_blank_values=True)
        if settings.get("ignoreHeaders"):
            routes = [_without_header_matches(route) for route in routes]
        chosen = dp.select(routes, listener.get("hostname"), req.method, req.path, headers, query)
        if chosen is None:
            return 404, {"server": "envoy", "content-length": "0"}, ""
        route, rule, match = chosen
        return _forward(proc, route, rule, match, req, headers, settings, rng)
    return handle


def _without_header_matches(route):
    route = copy.deepcopy(route)
    for rule in (route.get("spec") or {}).get("rules") or []:
        if rule.get("matches"):
            rule["matches"] = [m for m in rule["matches"] if not m.get("headers")]
            if not rule["matches"]:
                rule["matches"] = [{"path": {"type": "Exact", "value": "/.well-known/never-programmed"}}]
    return route


def _forward(proc, route, rule, match, req, headers, settings, rng):
    path = req.path
    response_mod = None
    for f in rule.get("filters") or []:
        kind = f.get("type")
        if kind == "RequestRedirect":
            code, location = dp.redirect_location(f.get("requestRedirect") or {}, "http", headers.get("host", ""),
                                                  int((headers.get("host", "").split(":") + ["80"])[1] or 80), path, match)
            return code, {"location": location, "server": "envoy", "content-length": "0"}, ""
        if kind == "RequestHeaderModifier":
            headers = dp.modify_headers(headers, f.get("requestHeaderModifier"))
        elif kind == "ResponseHeaderModifier":
            response_mod = f.get("responseHeaderModifier")
        elif kind == "URLRewrite":
            rewrite = f.get("urlRewrite") or {}
            if rewrite.get("hostname"):
                headers["host"] = rewrite["hostname"]
            path = dp.rewrite_path(path, match, rewrite.get("path"))
        elif kind == "RequestMirror":
            mirror = (f.get("requestMirror") or {}).get("backendRef") or {}
            _send(proc, route, mirror, req.method, path, req.query, headers, req.body)
    ref = dp.choose_backend(rule.get("backendRefs"), rng, ignore_weights=settings.get("ignoreWeights"))
    if ref is None:
        return 500, {"server": "envoy", "content-length": "0"}, ""
    supported = ((getattr(proc.runtime.sim, "settings", None) or {}).get("gatewayApi") or {}).get("inferencePool", True)
    pool = gaie.get_pool(proc.runtime.sim.store, ref, route["metadata"]["namespace"]) \
        if gaie.is_pool_ref(ref) and supported is not False else None
    if gaie.is_pool_ref(ref) and pool is None:
        return 500, {"server": "envoy", "content-length": "0"}, ""
    for f in ref.get("filters") or []:
        if f.get("type") == "RequestHeaderModifier":
            headers = dp.modify_headers(headers, f.get("requestHeaderModifier"))
        elif f.get("type") == "ResponseHeaderModifier":
            response_mod = f.get("responseHeaderModifier")
    if pool is not None:
        result = gaie.forward_to_pool(proc, proc.runtime.sim.store, pool, req.method, path, req.query, headers, req.body,
                                      rng, bypass=settings.get("bypassEndpointPicker"))
    else:
        result = _send(proc, route, ref, req.method, path, req.query, headers, req.body)
    if result[0] != "ok":
        return 503, {"server": "envoy", "content-type": "text/plain"}, "upstream connect error or disconnect/reset before headers"
    status, out_headers, body = result[1:]
    out = {k.lower(): v for k, v in (out_headers or {}).items()}
    if response_mod:
        out = dp.modify_headers(out, response_mod)
    out["server"] = "envoy"
    return status, out, body


def _send(proc, route, ref, method, path, query, headers, body):
    namespace = ref.get("namespace") or route["metadata"]["namespace"]
    host = "%s.%s.svc.cluster.local" % (ref.get("name"), namespace)
    return proc.runtime.request(proc, method, host, int(ref.get("port") or 80), path, query, headers, body)


def lb_resolver(store, runtime):
    """Reach a proxy Service by its load-balancer ingress IP from inside the cluster."""
    def resolve(host, port, unused_proc):
        if host not in LB_POOL:
            return None
        for svc in store.list(SERVICES)[0]:
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if any(i.get("ip") == host for i in ingress):
                endpoints = runtime._service_endpoints(svc, port)  # pylint: disable=protected-access
                return endpoints[0] if endpoints else "refused"
        return "timeout"
    return resolve


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, gateway_app)
    sim.runtime.register_app(ENVOY_PATTERN, envoy_app)
    sim.runtime.register_resolver(lb_resolver(sim.store, sim.runtime))
