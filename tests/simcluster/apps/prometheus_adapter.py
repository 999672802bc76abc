"""prometheus-adapter (registry.k8s.io/prometheus-adapter/prometheus-adapter): the custom metrics API server.

What the real adapter (kubernetes-sigs/prometheus-adapter, pkg/custom-provider and pkg/naming) does, and how
far this app follows it:

* It serves `custom.metrics.k8s.io/v1beta1` on `--secure-port` for the APIService the chart registers.
  Discovery (`GET /apis/custom.metrics.k8s.io/v1beta1`) lists, for every series a rule's `seriesQuery`
  finds in Prometheus (`/api/v1/series`, relisted every `--metrics-relist-interval`), the metric (named by
  the rule's `name.matches`/`as`) once per resource its labels map to: `pods/<metric>` and
  `namespaces/<metric>` for the usual namespace/pod overrides.
* A metric value request (`.../namespaces/<ns>/pods/<name or *>/<metric>?labelSelector=...`) runs the rule's
  `metricsQuery` with `<<.Series>>`, `<<.LabelMatchers>>` and `<<.GroupBy>>` filled in against
  `/api/v1/query` and answers a MetricValueList.
* Prometheus is asked through the simulated runtime at `--prometheus-url`. When nothing there answers the
  Prometheus HTTP API, discovery lists no metrics (the API is still served, as the real adapter does with
  an empty Prometheus) and value requests answer 404 "the server could not find the metric".
"""
from __future__ import annotations

import datetime
import json
import math
import re
import urllib.parse

import yaml

from ..errors import ApiError

IMAGE_PATTERN = "*/prometheus-adapter/prometheus-adapter"
GROUP_VERSION = "custom.metrics.k8s.io/v1beta1"
PREFIX = "/apis/custom.metrics.k8s.io/v1beta1"


def _flags(argv):
    out = {}
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            out[key] = value
    return out


def _seconds(text):
    match = re.match(r"^(\d+)(ms|s|m|h)?$", str(text or "").strip())
    if not match:
        return 600.0
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def _rfc3339(epoch):
    return datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(text):
    """A sample value as the adapter writes it: a resource.Quantity (milli-units when not whole)."""
    value = float(text)
    if math.isnan(value) or math.isinf(value):
        return "0"
    milli = int(round(value * 1000))
    return str(milli // 1000) if milli % 1000 == 0 else "%dm" % milli


def _json(status, doc):
    return status, {"Content-Type": "application/json"}, json.dumps(doc)


class Adapter(object):
    """The adapter's state for one container: its rules and how to reach Prometheus."""

    def __init__(self, proc):
        self.proc = proc
        flags = _flags(proc.argv)
        self.port = int(flags.get("secure-port", 6443))
        url = urllib.parse.urlsplit(flags.get("prometheus-url", "http://prometheus.default.svc:9090"))
        host = (url.hostname or "").split(".")
        self.prom_service = (host[1] if len(host) > 1 else proc.pod["metadata"]["namespace"], host[0], url.port or 80)
        self.prom_path = url.path.rstrip("/")
        text = proc.fs.read(flags.get("config", "/etc/adapter/config.yaml")) or ""
        self.rules = (yaml.safe_load(text) or {}).get("rules") or []
        self.relist = _seconds(flags.get("metrics-relist-interval", "10m"))
        self.cache = None           # (simulated time of the last relist, discovered series)
        self.discovery_cache = None  # (the discovered series it was built from, the discovery response)

    # -- Prometheus through the simulated runtime
    def prometheus(self, path, params):
        runtime = self.proc.runtime
        namespace, name, port = self.prom_service
        try:
            pod, target = runtime.resolve_service(namespace, name, port)
        except ApiError:
            return None
        status, _headers, body = runtime.http(pod, target, "GET", self.prom_path + path, urllib.parse.urlencode(params, doseq=True),
                                              {}, b"")
        if status != 200:
            return None
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        return doc.get("data") if isinstance(doc, dict) and doc.get("status") == "success" else None

    # -- naming
    @staticmethod
    def metric_name(rule, series_name):
        naming = rule.get("name") or {}
        pattern = naming.get("matches") or "^(.*)$"
        match = re.search(pattern, series_name)
        if not match:
            return None
        template = naming.get("as") or ("$1" if match.groups() else "$0")
        return re.sub(r"\$\{?(\d+)\}?", lambda m: match.group(int(m.group(1))) or "", template)

    @staticmethod
    def resources(rule):
        """{label: resource} from the rule's overrides (or its template, for namespace/pod)."""
        res = rule.get("resources") or {}
        out = {label: (spec or {}).get("resource") for label, spec in (res.get("overrides") or {}).items()}
        if not out and res.get("template") == "<<.Resource>>":
            out = {"namespace": "namespace", "pod": "pod"}
        return out

    def discovered(self):
        """[(metric, rule, {label: resource})] for every series the rules find, relisted every
        --metrics-relist-interval (simulated time) as the real adapter does; an empty list is retried sooner."""
        now = self.proc.runtime.clock.now()
        if self.cache is not None and now - self.cache[0] < (self.relist if self.cache[1] else min(self.relist, 5.0)):
            return self.cache[1]
        self.cache = (now, self._relist())
        return self.cache[1]

    def _relist(self):
        out = []
        for rule in self.rules:
            data = self.prometheus("/api/v1/series", {"match[]": rule.get("seriesQuery", "")})
            for series in data or []:
                name = self.metric_name(rule, series.get("__name__", ""))
                if name and all(series.get(label) for label in self.resources(rule)):
                    out.append((name, rule, self.resources(rule)))
        return out

    def discovery_response(self):
        """The discovery document as served, rebuilt only after a relist (the aggregator asks for it often)."""
        found = self.discovered()
        if self.discovery_cache is None or self.discovery_cache[0] is not found:
            self.discovery_cache = (found, _json(200, self.discovery(found)))
        return self.discovery_cache[1]

    @staticmethod
    def discovery(found):
        names = set()
        for metric, _rule, labels in found:
            for resource in labels.values():
                names.add("%ss/%s" % (resource, metric))
        resources = [{"name": name, "singularName": "", "namespaced": not name.startswith("namespaces/"),
                      "kind": "MetricValueList", "verbs": ["get"]} for name in sorted(names)]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": resources}

    def values(self, namespace, names, metric):
        """MetricValueList items for pods `names` (None: all) in `namespace`."""
        for candidate, rule, labels in self.discovered():
            if candidate != metric or "pod" not in labels.values():
                continue
            pod_label = [label for label, res in labels.items() if res == "pod"][0]
            ns_label = [label for label, res in labels.items() if res == "namespace"]
            matchers = ['%s="%s"' % (ns_label[0], namespace)] if ns_label else []
            if names is not None:
                matchers.append('%s=~"%s"' % (pod_label, "|".join(re.escape(n) for n in names)))
            series = [s for s in (rule.get("seriesQuery") or "").split("{", 1)[0].strip().split() if s] or [metric]
            query = (rule.get("metricsQuery") or "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)") \
                .replace("<<.Series>>", series[0]).replace("<<.LabelMatchers>>", ",".join(matchers)) \
                .replace("<<.GroupBy>>", pod_label)
            data = self.prometheus("/api/v1/query", {"query": query})
            items = []
            for sample in (data or {}).get("result") or []:
                pod = sample.get("metric", {}).get(pod_label)
                if pod:
                    items.append({"describedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "apiVersion": "/v1"},
                                  "metricName": metric, "timestamp": _rfc3339(sample["value"][0]),
                                  "value": _quantity(sample["value"][1])})
            return items
        return None

    def handle(self, req):
        path = req.path.rstrip("/")
        if path == PREFIX:
            return self.discovery_response()
        match = re.match(r"^%s/namespaces/([^/]+)/pods/([^/]+)/([^/]+)$" % re.escape(PREFIX), path)
        if req.method == "GET" and match:
            namespace, name, metric = match.groups()
            items = self.values(namespace, None if name == "*" else [name], metric)
            if items is None or (name != "*" and not items):
                return _json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                                   "message": 'the server could not find the metric %s for pods %s' % (metric, name)})
            return _json(200, {"kind": "MetricValueList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, {"Content-Type": "text/plain"}, "ok"
        return _json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                           "message": "the server could not find the requested resource"})


def adapter_app(proc):
    if proc.init:
        return None
    return _adapter(proc)


def _adapter(proc):
    adapter = Adapter(proc)
    proc.listen(adapter.port, adapter.handle)
    proc.write('I0000 00:00:00.000000       1 serving.go:380] Generated self-signed cert (/tmp/cert/apiserver.crt, '
               '/tmp/cert/apiserver.key)\n')
    proc.write('I0000 00:00:00.000000       1 secure_serving.go:213] Serving securely on [::]:%d\n' % adapter.port)
    yield float("inf")


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, adapter_app)
