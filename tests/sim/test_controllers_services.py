"""Services of the simulated cluster: EndpointSlices and Endpoints following pod readiness, and a
probe-like pod that reaches a Service through cluster DNS and the runtime's HTTP routing."""
from __future__ import annotations

from simcluster.controllers.testing import core, custom, pods, wait_for, wait_until

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"

GATED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend}
spec:
  replicas: 2
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      readinessGates: [{conditionType: example.com/warm}]
      containers:
      - name: web
        image: %s
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  selector: {app: backend}
  ports: [{name: web, port: 80, targetPort: http}]
""" % AGNHOST


def _slice_endpoints(sim, ns, service):
    slices = custom(sim).list_namespaced_custom_object("discovery.k8s.io", "v1", ns, "endpointslices",
                                                       label_selector="kubernetes.io/service-name=%s" % service)
    return slices["items"]


def _by_pod(slices):
    return {e["targetRef"]["name"]: e for s in slices for e in s.get("endpoints") or []}


def test_endpoint_slices_follow_readiness(sim_cluster, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", stdin=GATED)
    # running pods whose readiness gate is not set yet: endpoints, but not ready and not serving
    slices = wait_until(lambda: _slice_endpoints(sim_cluster, namespace, "backend"), lambda s: len(_by_pod(s)) == 2,
                        "two endpoints")
    assert len(slices) == 1
    eps = slices[0]
    assert eps["addressType"] == "IPv4"
    assert eps["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert eps["metadata"]["name"].startswith("backend-")
    assert eps["metadata"]["ownerReferences"][0]["kind"] == "Service"
    # the named targetPort is resolved to the container port, under the service port's name
    assert eps["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert all(e["conditions"] == {"ready": False, "serving": False, "terminating": False}
               for e in _by_pod(slices).values())
    ips = {p.metadata.name: p.status.pod_ip for p in pods(sim_cluster, namespace)}
    assert {n: e["addresses"] for n, e in _by_pod(slices).items()} == {n: [ip] for n, ip in ips.items()}
    endpoints = core(sim_cluster).read_namespaced_endpoints("backend", namespace)
    assert endpoints.subsets[0].addresses is None and len(endpoints.subsets[0].not_ready_addresses) == 2

    warm = sorted(ips)[0]
    core(sim_cluster).patch_namespaced_pod_status(warm, namespace, {"status": {"conditions": [
        {"type": "example.com/warm", "status": "True"}]}})
    wait_for(lambda: _by_pod(_slice_endpoints(sim_cluster, namespace, "backend"))[warm]["conditions"]["ready"],
             "the warmed pod's endpoint to be ready")
    by_pod = _by_pod(_slice_endpoints(sim_cluster, namespace, "backend"))
    assert by_pod[warm]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert [n for n, e in by_pod.items() if not e["conditions"]["ready"]] == [n for n in ips if n != warm]
    endpoints = wait_until(lambda: core(sim_cluster).read_namespaced_endpoints("backend", namespace),
                           lambda e: e.subsets[0].addresses, "a ready address")
    assert [a.ip for a in endpoints.subsets[0].addresses] == [ips[warm]]
    assert endpoints.subsets[0].ports[0].port == 8080
    assert endpoints.metadata.labels["endpointslice.kubernetes.io/skip-mirror"] == "true"

    # services/proxy reaches the only ready endpoint
    text = core(sim_cluster).connect_get_namespaced_service_proxy_with_path("backend:web", namespace, "hostname")
    assert text == warm

    kubectl("delete", "service", "backend", "-n", namespace)
    wait_for(lambda: _slice_endpoints(sim_cluster, namespace, "backend") == [], "the slices to follow the service")
    wait_for(lambda: not [e for e in core(sim_cluster).list_namespaced_endpoints(namespace).items
                          if e.metadata.name == "backend"], "the Endpoints to follow the service")


PROBE = """
apiVersion: v1
kind: Pod
metadata: {name: probe}
spec:
  restartPolicy: Never
  containers:
  - name: curl
    image: curlimages/curl:8.11.0
    command:
    - sh
    - -c
    - |
      until curl -sf http://echo.%(ns)s.svc.cluster.local/hostname > /dev/null; do sleep 1; done
      curl -s http://echo.%(ns)s.svc.cluster.local/hostname; echo
      code=$(curl -s -o /dev/null -w '%%{http_code}' "http://echo/echo?msg=hi")
      echo "code=$code"
      curl -s http://echo/echo?msg=from-short-name; echo
      curl -sS -m 5 http://nothing-here:80/ || echo "exit=$?"
      curl -sS http://empty/ || echo "exit=$?"
"""

SERVERS = """
apiVersion: v1
kind: Pod
metadata: {name: echo-server, labels: {app: echo}}
spec:
  containers:
  - {name: web, image: %(image)s, args: [netexec, --http-port=8080], ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nobody}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_probe_pod_curls_a_service(sim_cluster, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", stdin=PROBE % {"ns": namespace})
    kubectl("apply", "-n", namespace, "-f", "-", stdin=SERVERS % {"image": AGNHOST})
    wait_for(lambda: core(sim_cluster).read_namespaced_pod("probe", namespace).status.phase == "Succeeded",
             "the probe pod to finish")
    logs = kubectl("logs", "-n", namespace, "probe").stdout.splitlines()
    assert logs == ["echo-server", "code=200", "from-short-name",
                    "curl: (6) Could not resolve host: nothing-here", "exit=6",
                    "curl: (7) Failed to connect to empty port 80 after 0 ms: Couldn't connect to server",
                    "exit=7"]


def test_services_without_selector_keep_their_endpoints(sim_cluster, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", stdin="""
apiVersion: v1
kind: Service
metadata: {name: external}
spec:
  ports: [{port: 443}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: external}
subsets: [{addresses: [{ip: 192.0.2.10}], ports: [{port: 443}]}]
""")
    # a selector-less Service next to one with a selector: once the latter has its slice, the first
    # has been looked at too (one worker, keys in order) and was left alone
    kubectl("apply", "-n", namespace, "-f", "-", stdin=SERVERS % {"image": AGNHOST})
    wait_for(lambda: _slice_endpoints(sim_cluster, namespace, "echo"), "the echo service's slice")
    endpoints = core(sim_cluster).read_namespaced_endpoints("external", namespace)
    assert [a.ip for a in endpoints.subsets[0].addresses] == ["192.0.2.10"]
    assert _slice_endpoints(sim_cluster, namespace, "external") == []
