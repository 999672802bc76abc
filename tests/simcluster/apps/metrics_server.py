"""metrics-server (registry.k8s.io/metrics-server/metrics-server): the resource metrics API metrics.k8s.io/v1beta1.

What the real server (kubernetes-sigs/metrics-server, pkg/api) serves and how far this app follows it:

* On `--secure-port` (10250 in its manifests/chart): discovery of `metrics.k8s.io/v1beta1` (`nodes`, `pods`,
  kind NodeMetrics / PodMetrics, verbs get and list), `GET .../nodes[/<name>]`, `GET .../pods`,
  `GET .../namespaces/<ns>/pods[/<name>]`, with `timestamp`, `window` (the scrape resolution, 15 s... as it
  reports "20s" for the kubelet's 10 s summary windows) and per-container `usage` (cpu in nanocores `n`, memory
  in `Ki`), for Running pods only.
* Usage is synthetic (no cgroups here): every Running container uses 10% of its CPU request (1m when it
  requests none) and a quarter of its memory request (8Mi when none); a node uses the sum of its pods plus a
  system baseline. Enough for the HPA's Resource metrics and `kubectl top`; not a load model.
* The APIService `v1beta1.metrics.k8s.io` is Available only while this app answers (apiservices.py).
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from .. import quantity
from ..selectors import parse_label_selector

IMAGE_PATTERN = "*/metrics-server/metrics-server"
GV = "metrics.k8s.io/v1beta1"
PREFIX = "/apis/metrics.k8s.io/v1beta1"


def _flags(argv):
    out = {}
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            out[key] = value
    return out


def _value(text, default):
    try:
        return float(quantity.parse(str(text))[0])
    except (quantity.QuantityError, ValueError):
        return default


def container_usage(container):
    requests = ((container.get("resources") or {}).get("requests") or {})
    cpu = _value(requests.get("cpu"), 0.0) * 0.1 or 0.001
    memory = _value(requests.get("memory"), 0.0) * 0.25 or 8 * 1024 * 1024
    return {"cpu": "%dn" % int(cpu * 1e9), "memory": "%dKi" % int(memory // 1024)}


def _json(status, doc):
    return status, {"Content-Type": "application/json"}, json.dumps(doc)


class MetricsServer(object):
    def __init__(self, proc):
        self.proc = proc
        self.sim = proc.runtime.sim
        self.port = int(_flags(proc.argv).get("secure-port", 10250))

    def _pods(self, namespace=None):
        pods = self.sim.store.list(("", "pods"), namespace=namespace)[0]
        return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]

    def pod_metrics(self, pod):
        stamp = self.sim.clock.timestamp()
        return {"kind": "PodMetrics", "apiVersion": GV,
                "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
                             "labels": dict(pod["metadata"].get("labels") or {}), "creationTimestamp": stamp},
                "timestamp": stamp, "window": "20s",
                "containers": [{"name": c["name"], "usage": container_usage(c)} for c in (pod.get("spec") or {}).get("containers") or ()]}

    def node_metrics(self, node):
        pods = [p for p in self._pods() if (p.get("spec") or {}).get("nodeName") == node["metadata"]["name"]]
        cpu = 0.25 + sum(_value(container_usage(c)["cpu"], 0) for p in pods for c in p["spec"].get("containers") or ())
        memory = 512 * 1024 * 1024 + sum(_value(container_usage(c)["memory"], 0) for p in pods for c in p["spec"].get("containers") or ())
        stamp = self.sim.clock.timestamp()
        return {"kind": "NodeMetrics", "apiVersion": GV,
                "metadata": {"name": node["metadata"]["name"], "labels": dict(node["metadata"].get("labels") or {}),
                             "creationTimestamp": stamp},
                "timestamp": stamp, "window": "20s", "usage": {"cpu": "%dn" % int(cpu * 1e9), "memory": "%dKi" % int(memory // 1024)}}

    def handle(self, req):
        path = req.path.rstrip("/")
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, {"Content-Type": "text/plain"}, "ok"
        if path == PREFIX:
            return _json(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV, "resources": [
                {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
                {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]}]})
        label = (parse_qs(getattr(req, "query", "") or "").get("labelSelector") or [""])[0]
        selects = parse_label_selector(label) if label else (lambda labels: True)
        if path == PREFIX + "/nodes":
            items = [self.node_metrics(n) for n in self.sim.store.list(("", "nodes"))[0]
                     if selects(n["metadata"].get("labels") or {})]
            return _json(200, {"kind": "NodeMetricsList", "apiVersion": GV, "metadata": {}, "items": items})
        match = re.match(r"^%s/nodes/([^/]+)$" % re.escape(PREFIX), path)
        if match:
            node = self.sim.store.try_get(("", "nodes"), None, match.group(1))
            if node is None:
                return _not_found("nodes", match.group(1))
            return _json(200, self.node_metrics(node))
        match = re.match(r"^%s(?:/namespaces/([^/]+))?/pods(?:/([^/]+))?$" % re.escape(PREFIX), path)
        if match:
            namespace, name = match.groups()
            pods = self._pods(namespace)
            if name:
                found = [p for p in pods if p["metadata"]["name"] == name]
                return _json(200, self.pod_metrics(found[0])) if found else _not_found("pods", name)
            return _json(200, {"kind": "PodMetricsList", "apiVersion": GV, "metadata": {},
                               "items": [self.pod_metrics(p) for p in pods if selects(p["metadata"].get("labels") or {})]})
        return _not_found("", "")


def _not_found(resource, name):
    return _json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                       "message": '%s.metrics.k8s.io "%s" not found' % (resource, name)})


def metrics_server_app(proc):
    if proc.init:
        return None
    return _serve(proc)


def _serve(proc):
    server = MetricsServer(proc)
    proc.listen(server.port, server.handle)
    proc.write('I0000 00:00:00.000000       1 secure_serving.go:213] Serving securely on [::]:%d\n' % server.port)
    yield float("inf")


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, metrics_server_app)
