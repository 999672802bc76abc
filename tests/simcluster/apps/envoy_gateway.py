"""Envoy Gateway (docker.io/envoyproxy/gateway): its certgen job and the GatewayClass part of its controller.

What the real program (envoyproxy/gateway, internal/cmd/certgen.go and internal/provider/kubernetes) does
that the gateway_api role relies on, and how far this app follows it:

* `envoy-gateway certgen` (the chart's pre-install hook Job) creates the TLS Secrets the control plane and
  the proxies use, `envoy-gateway`, `envoy`, `envoy-rate-limit` (ca.crt, tls.crt, tls.key) and
  `envoy-oidc-hmac` (hmac-secret), in ENVOY_GATEWAY_NAMESPACE, leaving existing ones alone, then exits 0.
* `envoy-gateway server --config-path=...` reads `gateway.controllerName` from its EnvoyGateway config and
  accepts every GatewayClass with that controllerName: condition Accepted=True, reason Accepted,
  message "Valid GatewayClass", observedGeneration = generation.
* Not modelled here: Gateways, routes and the Envoy proxies they get (the data plane), which belong to the
  Gateway API simulation the ai_inference check uses.
"""
from __future__ import annotations

import base64
import copy
import os

import yaml

from ..errors import ApiError
from ..tls import ServingCerts

IMAGE_PATTERN = "*/envoyproxy/gateway"
GATEWAYCLASSES = ("gateway.networking.k8s.io", "gatewayclasses")
SECRETS = ("", "secrets")
DEFAULT_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
TLS_SECRETS = ("envoy-gateway", "envoy", "envoy-rate-limit")
RECONCILE_SECONDS = 5.0


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
    while True:  # like the real controller: runs until the pod stops
        accept_classes(sim.store, sim.clock, controller_name)
        yield RECONCILE_SECONDS


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, gateway_app)
