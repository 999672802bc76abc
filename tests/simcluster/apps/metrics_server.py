"""metrics-server (registry.k8s.io/metrics-server/metrics-server): the resource metrics API behind `kubectl top`.

The real metrics-server (kubernetes-sigs/metrics-server) scrapes every kubelet's /metrics/resource and serves
`metrics.k8s.io/v1beta1` on `--secure-port` (10250 in its manifests) for the APIService
`v1beta1.metrics.k8s.io`: NodeMetrics (`/nodes`, `/nodes/NAME`) and PodMetrics (`/pods`,
`/namespaces/NS/pods[/NAME]`), each with `timestamp`, `window` and `usage` (cpu in nanocores, memory in Ki).
`kubectl top nodes|pods` reads them.

The simulator has no CPU or memory usage to scrape, so usage is modelled, not measured: a running
container uses its request (else its limit, else 1m CPU and 4Mi memory); a node uses what its running pods
use plus 100m CPU and 512Mi memory for the system daemons. Only pods whose containers are all running
are reported, as metrics-server reports only pods it scraped. Label selectors are honoured.
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from ..quantity import QuantityError, parse
from ..selectors import parse_label_selector

IMAGE_PATTERN = "*/metrics-server/metrics-server"
GROUP_VERSION = "metrics.k8s.io/v1beta1"
PREFIX = "/apis/metrics.k8s.io/v1beta1"
WINDOW = "20.047s"
IDLE = {"cpu": 0.001, "memory": 4 * 1024 * 1024}
SYSTEM = {"cpu": 0.1, "memory": 512 * 1024 * 1024}


def _json(status, doc):
    return status, {"Content-Type": "application/json"}, json.dumps(doc)


def _not_found(kind, name):
    return _json(404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound",
                       "code": 404, "message": '%s.metrics.k8s.io "%s" not found' % (kind, name),
                       "details": {"name": name, "group": "metrics.k8s.io", "kind": kind}})


def _amount(value):
    try:
        return float(parse(str(value))[0])
    except (QuantityError, ValueError, TypeError, ArithmeticError):
        return None


def _container_usage(container):
    resources = container.get("resources") or {}
    usage = {}
    for name in ("cpu", "memory"):
        value = None
        for source in ("requests", "limits"):
            value = _amount((resources.get(source) or {}).get(name)) if value is None else value
        usage[name] = value if value is not None else IDLE[name]
    return usage


def _quantities(usage):
    return {"cpu": "%dn" % round(usage["cpu"] * 1e9), "memory": "%dKi" % (int(usage["memory"]) // 1024)}


def _running(pod):
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    running = {s.get("name") for s in statuses if (s.get("state") or {}).get("running")}
    return status.get("phase") == "Running" and names and all(n in running for n in names)


class MetricsServer(object):
    def __init__(self, proc):
        self.proc = proc
        self.store = proc.runtime.store
        self.clock = proc.runtime.clock
        port = 10250
        for arg in proc.argv:
            match = re.match(r"^--secure-port=(\d+)$", arg)
            if match:
                port = int(match.group(1))
        self.port = port

    def _pods(self, namespace=None, selector=None):
        pods = self.store.list(("", "pods"), namespace=namespace)[0]
        return [p for p in pods if _running(p) and (selector is None or selector(p["metadata"].get("labels")))]

    def _pod_metrics(self, pod, stamp):
        meta = pod["metadata"]
        return {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "creationTimestamp": stamp,
                             "labels": meta.get("labels") or {}},
                "timestamp": stamp, "window": WINDOW,
                "containers": [{"name": c["name"], "usage": _quantities(_container_usage(c))}
                               for c in (pod.get("spec") or {}).get("containers") or []]}

    def _node_metrics(self, node, pods, stamp):
        usage = dict(SYSTEM)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") == node["metadata"]["name"]:
                for container in (pod.get("spec") or {}).get("containers") or []:
                    for name, value in _container_usage(container).items():
                        usage[name] += value
        meta = node["metadata"]
        return {"metadata": {"name": meta["name"], "creationTimestamp": stamp, "labels": meta.get("labels") or {}},
                "timestamp": stamp, "window": WINDOW, "usage": _quantities(usage)}

    def discovery(self):
        verbs = ["get", "list"]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [
            {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": verbs},
            {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": verbs}]}

    def handle(self, req):
        path = req.path.rstrip("/")
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, {"Content-Type": "text/plain"}, "ok"
        if path == PREFIX:
            return _json(200, self.discovery())
        if req.method != "GET" or not path.startswith(PREFIX + "/"):
            return _json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                               "code": 404, "message": "the server could not find the requested resource"})
        label = (parse_qs(req.query or "").get("labelSelector") or [""])[0]
        selector = parse_label_selector(label) if label else None
        stamp = self.clock.timestamp()
        rest = path[len(PREFIX) + 1:].split("/")
        if rest[0] == "nodes" and len(rest) <= 2:
            pods = self._pods()
            nodes = self.store.list(("", "nodes"))[0]
            if len(rest) == 2:
                node = next((n for n in nodes if n["metadata"]["name"] == rest[1]), None)
                if node is None:
                    return _not_found("NodeMetrics", rest[1])
                return _json(200, dict(self._node_metrics(node, pods, stamp), kind="NodeMetrics",
                                       apiVersion=GROUP_VERSION))
            items = [self._node_metrics(n, pods, stamp) for n in nodes
                     if selector is None or selector(n["metadata"].get("labels"))]
            return _json(200, {"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if rest[0] == "pods" and len(rest) <= 2:
            if len(rest) == 2:
                pod = next((p for p in self._pods(namespace) if p["metadata"]["name"] == rest[1]), None)
                if pod is None:
                    return _not_found("PodMetrics", rest[1])
                return _json(200, dict(self._pod_metrics(pod, stamp), kind="PodMetrics", apiVersion=GROUP_VERSION))
            items = [self._pod_metrics(p, stamp) for p in self._pods(namespace, selector)]
            return _json(200, {"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
        return _json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                           "message": "the server could not find the requested resource"})


def metrics_server_app(proc):
    if proc.init:
        return None
    return _serve(proc)


def _serve(proc):
    server = MetricsServer(proc)
    proc.listen(server.port, server.handle)
    proc.write('I0000 00:00:00.000000       1 serving.go:374] Generated self-signed cert (/tmp/apiserver.crt, '
               '/tmp/apiserver.key)\n')
    proc.write('I0000 00:00:00.000000       1 secure_serving.go:213] Serving securely on [::]:%d\n' % server.port)
    yield float("inf")


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, metrics_server_app)
