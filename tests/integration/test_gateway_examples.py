"""The Gateway API project's own example manifests (../shared/fixtures/upstream/objects/gateway-api) on the simulated
Envoy Gateway data plane: each behaves as its guide or conformance test says, for traffic sent from a curl pod
inside the cluster to the Gateway's address.

Expected answers come from the manifests' comments and guides (site-src/guides/http-routing.md and
traffic-splitting.md, the conformance tests HTTPRouteHeaderMatching and HTTPRouteWeight) and the spec's
matching precedence, not from the simulator. Changes made to the manifests: gatewayClassName (a placeholder in
the examples) becomes envoy-gateway, and the traffic-splitting guide's routes, whose snippets omit parentRefs,
get the guide's Gateway prod-web as parent.
"""
from __future__ import annotations

import copy
import math
import os
import time

import pytest
import kubernetes.client
import yaml
from kubernetes import config, dynamic

from checks_support import ROOT, SPEED

EXAMPLES = os.path.join(ROOT, "..", "shared", "fixtures", "upstream", "objects", "gateway-api")
CLASS = "envoy-gateway"


def manifests(*parts):
    with open(os.path.join(EXAMPLES, *parts), encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from simcluster.cluster import SimCluster

    cluster = SimCluster("kuberay-no-webhook", speed=SPEED,
                         kubeconfig=os.path.join(str(tmp_path_factory.mktemp("gw-examples")), "kubeconfig"))
    cluster.start()
    try:
        cluster.wait_settled(30)
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def client(sim):
    return dynamic.DynamicClient(config.new_client_from_config(sim.kubeconfig))


def apply(client, obj, namespace):
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = namespace
    res = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        current = res.get(name=obj["metadata"]["name"], namespace=namespace)
        obj["metadata"]["resourceVersion"] = current.metadata.resourceVersion
        return res.replace(body=obj, namespace=namespace)
    except dynamic.exceptions.NotFoundError:
        return res.create(body=obj, namespace=namespace)


def wait(what, fetch, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if predicate(last):
            return last
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s; last: %s" % (what, last))


def setup_namespace(client, namespace, backends, gateway, agnhost=False):
    """Backends answering their own name (http-echo), or agnhost netexec (which echoes request headers)."""
    apply(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, None)
    for name in backends:
        container = {"name": "echo", "image": "hashicorp/http-echo:1.0", "args": ["-text=%s" % name, "-listen=:8080"],
                     "ports": [{"containerPort": 8080}]}
        if agnhost:
            container = {"name": "netexec", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                         "args": ["netexec", "--http-port=8080"], "ports": [{"containerPort": 8080}]}
        apply(client, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
                       "spec": {"containers": [container]}}, namespace)
        apply(client, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                       "spec": {"selector": {"app": name}, "ports": [{"port": 8080, "targetPort": 8080}]}}, namespace)
    gateway = copy.deepcopy(gateway)
    gateway["spec"]["gatewayClassName"] = CLASS
    apply(client, gateway, namespace)
    gateways = client.resources.get(api_version="gateway.networking.k8s.io/v1", kind="Gateway")
    found = wait("Gateway %s/%s to get an address" % (namespace, gateway["metadata"]["name"]),
                 lambda: gateways.get(name=gateway["metadata"]["name"], namespace=namespace),
                 lambda g: (g.status or {}).get("addresses"))
    pods = client.resources.get(api_version="v1", kind="Pod")
    for name in backends:
        wait("pod %s ready" % name, lambda n=name: pods.get(name=n, namespace=namespace),
             lambda p: any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])))
    return found.status.addresses[0].value


def wait_route_accepted(client, namespace, name):
    routes = client.resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")
    wait("HTTPRoute %s/%s Accepted" % (namespace, name), lambda: routes.get(name=name, namespace=namespace),
         lambda r: any(c.type == "Accepted" and c.status == "True" and c.observedGeneration == r.metadata.generation
                       for p in ((r.status or {}).get("parents") or []) for c in p.conditions))


def send(client, namespace, address, requests, name):
    """requests: [(label, host, path, {header: value}, count)]; returns {label: {answer: count}} ("none" = empty
    body, e.g. Envoy's 404)."""
    lines = []
    for label, host, path, headers, count in requests:
        flags = " ".join("-H '%s: %s'" % item for item in sorted(headers.items()))
        lines.append("for i in $(seq %d); do r=$(curl -s -H 'Host: %s' %s http://%s%s); echo \"%s ${r:-none}\"; done"
                     % (count, host, flags, address, path, label))
    pods = client.resources.get(api_version="v1", kind="Pod")
    pods.create(namespace=namespace, body={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "curl", "image": "curlimages/curl:8.11.1",
                                                           "command": ["sh", "-c", "; ".join(lines)]}]}})
    wait("client %s to finish" % name, lambda: pods.get(name=name, namespace=namespace),
         lambda p: p.status.phase in ("Succeeded", "Failed"), timeout=60)
    log = kubernetes.client.CoreV1Api(client.client).read_namespaced_pod_log(name, namespace)
    out = {}
    for line in log.splitlines():
        label, _sep, answer = line.partition(" ")
        out.setdefault(label, {}).setdefault(answer, 0)
        out[label][answer] += 1
    return out


def share_within(counts, backend, expected, total):
    """The observed share of `backend` lies within 3.29 binomial standard deviations of `expected`."""
    observed = counts.get(backend, 0) / float(total)
    return abs(observed - expected) <= 3.29 * math.sqrt(expected * (1 - expected) / total), observed


def test_http_routing_guide(client):
    """http-routing.md: foo.example.com/login -> foo-svc; bar.example.com with env: canary -> bar-svc-canary,
    other bar.example.com traffic -> bar-svc; nothing else is routed."""
    namespace = "http-routing"
    address = setup_namespace(client, namespace, ["foo-svc", "bar-svc", "bar-svc-canary"],
                              manifests("examples", "standard", "http-routing", "gateway.yaml")[0])
    for doc in ("foo-httproute.yaml", "bar-httproute.yaml"):
        route = manifests("examples", "standard", "http-routing", doc)[0]
        apply(client, route, namespace)
        wait_route_accepted(client, namespace, route["metadata"]["name"])
    got = send(client, namespace, address, [
        ("foo-login", "foo.example.com", "/login", {}, 3),
        ("foo-login-sub", "foo.example.com", "/login/form", {}, 2),
        ("foo-loginx", "foo.example.com", "/loginx", {}, 2),     # PathPrefix matches whole segments only
        ("foo-root", "foo.example.com", "/", {}, 2),
        ("bar", "bar.example.com", "/", {}, 3),
        ("bar-canary", "bar.example.com", "/", {"env": "canary"}, 3),
        ("bar-other-env", "bar.example.com", "/", {"env": "prod"}, 2),
        ("unknown-host", "baz.example.com", "/login", {}, 2),
    ], "client-routing")
    assert got == {"foo-login": {"foo-svc": 3}, "foo-login-sub": {"foo-svc": 2}, "foo-loginx": {"none": 2},
                   "foo-root": {"none": 2}, "bar": {"bar-svc": 3}, "bar-canary": {"bar-svc-canary": 3},
                   "bar-other-env": {"bar-svc": 2}, "unknown-host": {"none": 2}}


def test_traffic_splitting_guide(client):
    """traffic-splitting.md: the header canary (traffic: test -> foo-v2), then 90/10, then all to v2 (weight 0/1)."""
    namespace = "traffic-splitting"
    gateway = manifests("examples", "standard", "simple-gateway", "gateway.yaml")[0]
    address = setup_namespace(client, namespace, ["foo-v1", "foo-v2"], gateway)

    def route(doc):
        obj = manifests("examples", "standard", "traffic-splitting", doc)[0]
        obj["spec"]["parentRefs"] = [{"name": gateway["metadata"]["name"]}]
        apply(client, obj, namespace)
        wait_route_accepted(client, namespace, obj["metadata"]["name"])

    route("traffic-split-1.yaml")
    canary = send(client, namespace, address, [("plain", "foo.example.com", "/", {}, 5),
                                               ("test", "foo.example.com", "/", {"traffic": "test"}, 5)], "client-canary")
    assert canary == {"plain": {"foo-v1": 5}, "test": {"foo-v2": 5}}
    route("traffic-split-2.yaml")
    split = send(client, namespace, address, [("split", "foo.example.com", "/", {}, 200)], "client-split")["split"]
    assert sum(split.values()) == 200 and set(split) == {"foo-v1", "foo-v2"}
    ok, observed = share_within(split, "foo-v2", 0.10, 200)
    assert ok, "foo-v2 got %.1f %% of 200 requests, the route asks for 10 %%" % (100 * observed)
    route("traffic-split-3.yaml")
    final = send(client, namespace, address, [("final", "foo.example.com", "/", {}, 20)], "client-final")
    assert final == {"final": {"foo-v2": 20}}


def test_conformance_header_matching_and_weights(client):
    """HTTPRouteHeaderMatching and HTTPRouteWeight: header precedence (more headers win, then rule order) and
    a 70/30/0 split in which the weight-0 backend never answers."""
    namespace = "gateway-conformance-infra"
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "same-namespace"},
               "spec": {"gatewayClassName": CLASS, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                                                                  "allowedRoutes": {"namespaces": {"from": "Same"}}}]}}
    address = setup_namespace(client, namespace, ["infra-backend-v1", "infra-backend-v2", "infra-backend-v3"], gateway)
    route = manifests("conformance", "httproute-header-matching.yaml")[0]
    apply(client, route, namespace)
    wait_route_accepted(client, namespace, route["metadata"]["name"])
    cases = [("one", {"version": "one"}, "infra-backend-v1"), ("two", {"version": "two"}, "infra-backend-v2"),
             ("two-orange", {"version": "two", "color": "orange"}, "infra-backend-v1"),
             ("blue", {"color": "blue"}, "infra-backend-v1"), ("green", {"color": "green"}, "infra-backend-v1"),
             ("red", {"color": "red"}, "infra-backend-v2"), ("yellow", {"color": "yellow"}, "infra-backend-v2"),
             ("one-red", {"version": "one", "color": "red"}, "infra-backend-v1"),   # equal precedence: rule order
             ("orange", {"color": "orange"}, "none"), ("nothing", {}, "none")]
    got = send(client, namespace, address, [(label, "example.com", "/", headers, 2) for label, headers, dummy in cases],
               "client-headers")
    assert got == {label: {backend: 2} for label, dummy, backend in cases}
    client.resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute").delete(
        name=route["metadata"]["name"], namespace=namespace)
    weighted = manifests("conformance", "httproute-weight.yaml")[0]
    apply(client, weighted, namespace)
    wait_route_accepted(client, namespace, weighted["metadata"]["name"])
    split = send(client, namespace, address, [("w", "example.com", "/", {}, 200)], "client-weights")["w"]
    assert "infra-backend-v3" not in split and sum(split.values()) == 200
    ok, observed = share_within(split, "infra-backend-v2", 0.30, 200)
    assert ok, "infra-backend-v2 got %.1f %% of 200 requests, the route asks for 30 %%" % (100 * observed)


def route_conditions(client, namespace, name, want_generation=True):
    routes = client.resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")

    def current():
        obj = routes.get(name=name, namespace=namespace)
        parents = (obj.status or {}).get("parents") or []
        if not parents or (want_generation and any(c.observedGeneration != obj.metadata.generation
                                                   for c in parents[0].conditions)):
            return None
        return {c.type: (c.status, c.reason, c.message) for c in parents[0].conditions}
    return wait("HTTPRoute %s/%s status" % (namespace, name), current, lambda conds: conds is not None)


def test_route_status_reasons_and_reference_grants(client):
    """Envoy Gateway's reasons: BackendNotFound, RefNotPermitted until a ReferenceGrant allows the Service in
    another namespace (then traffic crosses namespaces), UnsupportedValue for a filter it does not implement,
    NotAllowedByListeners for a namespace the listener does not admit."""
    namespace, other = "status-reasons", "status-backends"
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
               "spec": {"gatewayClassName": CLASS, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
    address = setup_namespace(client, namespace, [], gateway)
    setup_namespace(client, other, ["remote"], dict(gateway, metadata={"name": "unused"}))

    def httproute(name, rule, route_namespace=namespace, parent_namespace=None):
        parent = {"name": "gw"}
        if parent_namespace:
            parent["namespace"] = parent_namespace
        apply(client, {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
                       "spec": {"parentRefs": [parent], "hostnames": ["%s.example.com" % name], "rules": [rule]}},
              route_namespace)
        return route_conditions(client, route_namespace, name)

    missing = httproute("missing", {"backendRefs": [{"name": "nope", "port": 8080}]})
    assert missing["ResolvedRefs"][:2] == ("False", "BackendNotFound")
    assert "service status-reasons/nope not found" in missing["ResolvedRefs"][2]
    remote = {"backendRefs": [{"name": "remote", "namespace": other, "port": 8080}]}
    denied = httproute("remote", remote)
    assert denied["ResolvedRefs"][:2] == ("False", "RefNotPermitted")
    apply(client, {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant", "metadata": {"name": "allow"},
                   "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": namespace}],
                            "to": [{"group": "", "kind": "Service"}]}}, other)
    wait("ResolvedRefs after the ReferenceGrant", lambda: route_conditions(client, namespace, "remote", False),
         lambda conds: conds["ResolvedRefs"][0] == "True")
    assert send(client, namespace, address, [("remote", "remote.example.com", "/", {}, 3)], "client-remote") == \
        {"remote": {"remote": 3}}
    unsupported = httproute("ext", {"filters": [{"type": "ExtensionRef", "extensionRef": {"group": "example.com", "kind": "X",
                                                                                          "name": "y"}}],
                                    "backendRefs": [{"name": "remote", "namespace": other, "port": 8080}]})
    assert unsupported["Accepted"][:2] == ("False", "UnsupportedValue")
    foreign = httproute("foreign", remote, route_namespace=other, parent_namespace=namespace)
    assert foreign["Accepted"][:2] == ("False", "NotAllowedByListeners")


def test_conformance_backend_request_header_modifier(client):
    """HTTPRouteRequestHeaderModifierBackendWeights: each backendRef's own RequestHeaderModifier sets the Backend
    header the chosen backend receives (agnhost netexec /header echoes it); weights 10/10 reach both."""
    namespace = "header-modifier"
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "same-namespace"},
               "spec": {"gatewayClassName": CLASS, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
    address = setup_namespace(client, namespace, ["infra-backend-v1", "infra-backend-v2"], gateway, agnhost=True)
    route = manifests("conformance", "httproute-request-header-modifier-backend-weights.yaml")[0]
    apply(client, route, namespace)
    wait_route_accepted(client, namespace, route["metadata"]["name"])
    got = send(client, namespace, address, [("seen", "example.com", "/header?key=Backend", {"Backend": "client"}, 40)],
               "client-modifier")["seen"]
    assert set(got) == {"infra-backend-v1", "infra-backend-v2"} and sum(got.values()) == 40, got
