"""API aggregation: APIServices backed by a Service (custom.metrics.k8s.io from prometheus-adapter, ...).

Requests under /apis/<group>/<version> of such an APIService are proxied to the Service's ready endpoint
pod through the simulated runtime (`sim.runtime.http`), with the caller's identity in the
X-Remote-User / X-Remote-Group headers as the real aggregator sends them. Discovery asks the backend
for its APIResourceList; a backend that does not answer shows as a Stale group version, which makes
clients report "the server is currently unable to handle the request" as they do on real clusters.
Each APIService's Available condition is derived on the same terms.
"""
from __future__ import annotations

import json

from . import discovery
from .errors import ApiError
from .routing import RouteError, resolve_service

APISERVICES = ("apiregistration.k8s.io", "apiservices")


class Aggregator(object):
    def __init__(self, sim):
        self.sim = sim
        self.store = sim.store

    def _remote(self):
        if APISERVICES not in self.store.types:
            return []
        return [a for a in self.store.list(APISERVICES)[0] if (a.get("spec") or {}).get("service")]

    def _lookup(self, group, version):
        for apiservice in self._remote():
            spec = apiservice["spec"]
            if spec.get("group") == group and spec.get("version") == version:
                return apiservice
        return None

    def serves(self, group, version):
        return bool(group) and self._lookup(group, version) is not None

    def groups(self):
        out = {}
        for apiservice in self._remote():
            out.setdefault(apiservice["spec"]["group"], []).append(apiservice["spec"]["version"])
        return out

    def _call(self, apiservice, method, path, query, headers, body):
        service = apiservice["spec"]["service"]
        pod, port = resolve_service(self.store, service.get("namespace"), service.get("name"), service.get("port", 443))
        return self.sim.runtime.http(pod, port, method, path, query, headers, body)

    def _get_resource_list(self, apiservice):
        """The backend's APIResourceList or None; RouteError when no endpoint can be reached."""
        spec = apiservice["spec"]
        path = "/apis/%s/%s" % (spec["group"], spec["version"])
        status, _unused, body = self._call(apiservice, "GET", path, "", {"Accept": "application/json"}, b"")
        if status != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def _resource_list(self, apiservice):
        try:
            return self._get_resource_list(apiservice)
        except RouteError:
            return None

    def discovery(self):
        """{group: {version: [aggregated discovery entries] or None when the backend does not answer}}."""
        out = {}
        for apiservice in self._remote():
            spec = apiservice["spec"]
            doc = self._resource_list(apiservice)
            entries = None if doc is None else discovery.remote_resources_to_discovery(spec["group"], spec["version"],
                                                                                       doc)
            out.setdefault(spec["group"], {})[spec["version"]] = entries
        return out

    def available(self, apiservice):
        """(status, reason, message) of the Available condition for a remote APIService."""
        spec = apiservice["spec"]
        try:
            resource_list = self._get_resource_list(apiservice)
        except RouteError as exc:
            reason = "ServiceNotFound" if "not found" in str(exc) else "MissingEndpoints"
            return "False", reason, str(exc)
        if resource_list is None:
            return "False", "FailedDiscoveryCheck", "failing or missing response from %s" % spec["service"]["name"]
        return "True", "Passed", "all checks passed"

    def refresh_status(self):
        """Bring every remote APIService's Available condition up to date (called periodically)."""
        for apiservice in self._remote():
            status, reason, message = self.available(apiservice)
            current = next((c for c in (apiservice.get("status") or {}).get("conditions") or []
                            if c.get("type") == "Available"), {})
            if current.get("status") == status and current.get("reason") == reason:
                continue
            updated = dict(apiservice, status={"conditions": [{
                "type": "Available", "status": status, "reason": reason, "message": message,
                "lastTransitionTime": self.sim.clock.timestamp()}]})
            try:
                self.store.update(APISERVICES, updated, subresource="status")
            except ApiError:
                continue

    def proxy(self, req, user, group, version, path, raw_query):
        apiservice = self._lookup(group, version)
        available = next((c for c in (apiservice.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Available"), {})
        if available.get("status") == "False":
            # kube-aggregator's proxy handler: `if !handlingInfo.serviceAvailable { proxyError(w, req,
            # "service unavailable", http.StatusServiceUnavailable) }`, a plain-text 503 while the availability
            # controller finds the backend failing (a scenario's APIService without status is taken as checked)
            req.send_body(503, b"service unavailable\n", "text/plain; charset=utf-8")
            return
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("authorization", "host")}
        headers["X-Remote-User"] = user["username"]
        headers["X-Remote-Group"] = ",".join(user["groups"])
        try:
            status, resp_headers, body = self._call(apiservice, req.command, path, raw_query, headers,
                                                    req.read_body())
        except RouteError as exc:
            raise ApiError.service_unavailable("the server is currently unable to handle the request (%s)" % exc)
        content_type = (resp_headers or {}).get("Content-Type", "application/json")
        req.send_body(status, body or b"", content_type)
