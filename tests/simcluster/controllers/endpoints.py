"""Endpoints and EndpointSlice controllers: which pods back a Service, on which ports.

For every Service with a selector, the pods in its namespace that match it and have an IP become
endpoints:
* EndpointSlices (discovery.k8s.io/v1, `<service>-xxxxx`, labels `kubernetes.io/service-name` and
  `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the Service),
  at most 100 endpoints each, one group of slices per distinct set of resolved ports (a named
  targetPort is looked up in each pod's container ports); conditions ready (Ready, or any when
  publishNotReadyAddresses), serving (Ready), terminating (deletionTimestamp set);
* core Endpoints `<service>` with ready `addresses` and `notReadyAddresses` (terminating pods left
  out unless publishNotReadyAddresses), labelled `endpointslice.kubernetes.io/skip-mirror: "true"`.
Services without a selector are left alone (their endpoints are the user's). When a Service goes, its
Endpoints go (slices follow through the garbage collector).
"""
from __future__ import annotations

import copy

from ..errors import ApiError
from ..selectors import label_selector_predicate
from . import podutil
from .manager import NODES, PODS, Controller

SERVICES = ("", "services")
ENDPOINTS = ("", "endpoints")
SLICES = ("discovery.k8s.io", "endpointslices")
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MANAGER = "endpointslice-controller.k8s.io"
MAX_PER_SLICE = 100


def _resolve_port(port, pod):
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or ():
        for declared in container.get("ports") or ():
            if declared.get("name") == target and (declared.get("protocol") or "TCP") == \
                    (port.get("protocol") or "TCP"):
                return int(declared["containerPort"])
    return None


class EndpointsController(Controller):
    name = "endpoints"
    component = "endpoint-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {SERVICES: self._on_service, PODS: self._on_pod}
        self._selectors = {}        # namespace -> {service name: predicate}

    def initial_keys(self):
        keys = []
        if not self.served(SERVICES):
            return keys
        for svc in self.store.list(SERVICES)[0]:
            self._remember(svc)
            keys.append((svc["metadata"]["namespace"], svc["metadata"]["name"]))
        return keys

    def _remember(self, svc, gone=False):
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        selector = (svc.get("spec") or {}).get("selector")
        if gone or not selector:
            self._selectors.get(ns, {}).pop(name, None)
        else:
            self._selectors.setdefault(ns, {})[name] = label_selector_predicate({"matchLabels": selector})

    def _on_service(self, event):
        self._remember(event.obj, gone=event.type == "DELETED")
        self.enqueue((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_pod(self, event):
        ns = event.obj["metadata"]["namespace"]
        services = self._selectors.get(ns)
        if not services:
            return
        if event.old is not None and event.type == "MODIFIED" and not _endpoint_relevant_change(event.old, event.obj):
            return
        for name, matches in services.items():
            if matches(event.obj["metadata"].get("labels")) or (
                    event.old is not None and matches(event.old["metadata"].get("labels"))):
                self.enqueue((ns, name))

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        svc = self.read(SERVICES, *key)
        if svc is None:
            self._drop_endpoints(key)
            return
        spec = svc.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return
        matches = label_selector_predicate({"matchLabels": spec["selector"]})
        pods = [p for p in self.store.list(PODS, namespace=key[0], label=matches)[0]
                if (p.get("status") or {}).get("podIP") and not podutil.is_terminal(p)]
        groups = self._groups(svc, pods)
        if self.served(SLICES):
            self._sync_slices(svc, groups)
        if self.served(ENDPOINTS):
            self._sync_endpoints(svc, groups)

    def _groups(self, svc, pods):
        """{(port tuple): [pods]}: pods grouped by the ports their named targetPorts resolve to."""
        ports = (svc.get("spec") or {}).get("ports") or []
        groups = {}
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            resolved = []
            for port in ports:
                number = _resolve_port(port, pod)
                if number is not None:
                    entry = {"name": port.get("name", ""), "port": number, "protocol": port.get("protocol", "TCP")}
                    if port.get("appProtocol"):
                        entry["appProtocol"] = port["appProtocol"]
                    resolved.append(entry)
            groups.setdefault(tuple(tuple(sorted(p.items())) for p in resolved), []).append(pod)
        return groups

    def _endpoint(self, svc, pod):
        publish = (svc.get("spec") or {}).get("publishNotReadyAddresses")
        ready = podutil.is_ready(pod)
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        endpoint = {"addresses": [pod["status"]["podIP"]],
                    "conditions": {"ready": bool(publish or (ready and not terminating)), "serving": ready,
                                   "terminating": terminating},
                    "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"],
                                  "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}}
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            endpoint["nodeName"] = node_name
            node = self.read(NODES, "", node_name)
            zone = ((node or {}).get("metadata", {}).get("labels") or {}).get("topology.kubernetes.io/zone")
            if zone:
                endpoint["zone"] = zone
        spec = pod.get("spec") or {}
        if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
            endpoint["hostname"] = spec["hostname"]
        return endpoint

    def _sync_slices(self, svc, groups):
        meta = svc["metadata"]
        desired = []
        for ports, pods in sorted(groups.items()):
            endpoints = [self._endpoint(svc, p) for p in pods]
            for start in range(0, max(len(endpoints), 1), MAX_PER_SLICE):
                desired.append(([dict(p) for p in ports], endpoints[start:start + MAX_PER_SLICE]))
        if not desired:
            desired.append(([], []))
        existing = sorted(self.store.list(SLICES, namespace=meta["namespace"], label=lambda labels: (
            labels or {}).get(SERVICE_NAME) == meta["name"] and (labels or {}).get(MANAGED_BY) == MANAGER)[0],
            key=lambda s: s["metadata"]["name"])
        labels = dict(meta.get("labels") or {})
        labels.update({SERVICE_NAME: meta["name"], MANAGED_BY: MANAGER})
        for index, (ports, endpoints) in enumerate(desired):
            body = {"addressType": "IPv4", "endpoints": endpoints, "ports": ports}
            if index < len(existing):
                current = existing[index]
                if all(current.get(k) == v for k, v in body.items()) and current["metadata"].get("labels") == labels:
                    continue
                fresh = copy.deepcopy(current)
                fresh.update(body)
                fresh["metadata"]["labels"] = labels
                fresh["metadata"].setdefault("annotations", {})["endpoints.kubernetes.io/last-change-trigger-time"] \
                    = self.clock.timestamp()
                self.store.update(SLICES, fresh)
            else:
                obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                       "metadata": {"generateName": meta["name"] + "-", "namespace": meta["namespace"],
                                    "labels": labels, "annotations": {
                                        "endpoints.kubernetes.io/last-change-trigger-time": self.clock.timestamp()},
                                    "ownerReferences": [podutil.owner_reference(svc, "v1", "Service")]}}
                obj.update(body)
                self.store.create(SLICES, obj)
        for extra in existing[len(desired):]:
            try:
                self.store.delete(SLICES, meta["namespace"], extra["metadata"]["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise

    def _sync_endpoints(self, svc, groups):
        meta = svc["metadata"]
        publish = (svc.get("spec") or {}).get("publishNotReadyAddresses")
        subsets = []
        for ports, pods in sorted(groups.items()):
            ready, not_ready = [], []
            for pod in pods:
                terminating = bool(pod["metadata"].get("deletionTimestamp"))
                if terminating and not publish:
                    continue
                address = {"ip": pod["status"]["podIP"],
                           "targetRef": {"kind": "Pod", "namespace": meta["namespace"],
                                         "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}}
                if (pod.get("spec") or {}).get("nodeName"):
                    address["nodeName"] = pod["spec"]["nodeName"]
                (ready if publish or podutil.is_ready(pod) else not_ready).append(address)
            if not ready and not not_ready:
                continue
            subset = {"ports": [{k: v for k, v in p if k != "appProtocol" or v} for p in ports]}
            for port in subset["ports"]:
                if not port.get("name"):
                    port.pop("name", None)
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            subsets.append(subset)
        labels = dict(meta.get("labels") or {})
        labels["endpointslice.kubernetes.io/skip-mirror"] = "true"
        current = self.read(ENDPOINTS, meta["namespace"], meta["name"])
        obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels}}
        if subsets:
            obj["subsets"] = subsets
        if current is None:
            self.store.create(ENDPOINTS, obj)
            return
        if current.get("subsets") == obj.get("subsets") and current["metadata"].get("labels") == labels:
            return
        fresh = copy.deepcopy(current)
        fresh["metadata"]["labels"] = labels
        fresh.pop("subsets", None)
        if subsets:
            fresh["subsets"] = subsets
        self.store.update(ENDPOINTS, fresh)

    def _drop_endpoints(self, key):
        if not self.served(ENDPOINTS):
            return
        current = self.read(ENDPOINTS, *key)
        if current is not None and (current["metadata"].get("labels") or {}).get(
                "endpointslice.kubernetes.io/skip-mirror") == "true":
            try:
                self.store.delete(ENDPOINTS, key[0], key[1])
            except ApiError as exc:
                if exc.code != 404:
                    raise


def _endpoint_relevant_change(old, new):
    """Only IPs, readiness, deletion, labels and node placement change endpoints."""
    def view(pod):
        status = pod.get("status") or {}
        return (status.get("podIP"), podutil.is_ready(pod), status.get("phase"),
                pod["metadata"].get("deletionTimestamp"), pod["metadata"].get("labels"),
                (pod.get("spec") or {}).get("nodeName"))
    return view(old) != view(new)
