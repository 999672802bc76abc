"""How the API server reaches a Service's pods: for services/proxy, admission webhooks and aggregated APIs.

A Service resolves to a ready endpoint pod and a target port the way kube-proxy would route: the pods its
selector matches that are Ready and not terminating (or, for a Service without a selector, the ready
addresses of its EndpointSlices), and the port's targetPort (a number, or a container port name).
"""
from __future__ import annotations

from .errors import ApiError


class RouteError(Exception):
    """Why a service could not be reached, in the words the real API server uses."""


def pod_ready(pod):
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _service_port(service, port):
    ports = (service.get("spec") or {}).get("ports") or []
    if not ports:
        raise RouteError('service "%s" has no ports' % service["metadata"]["name"])
    if port in (None, ""):
        return ports[0]
    for entry in ports:
        if str(entry.get("port")) == str(port) or entry.get("name") == str(port):
            return entry
    raise RouteError('no service port %s found for service "%s"' % (port, service["metadata"]["name"]))


def _container_port(pod, target):
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target:
                return int(cport["containerPort"])
    return None


def _selected_pods(store, namespace, selector):
    pods = store.list(("", "pods"), namespace=namespace)[0]
    return [p for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]


def _slice_pods(store, namespace, name):
    if ("discovery.k8s.io", "endpointslices") not in store.types:
        return []
    out = []
    for eps in store.list(("discovery.k8s.io", "endpointslices"), namespace=namespace)[0]:
        if (eps["metadata"].get("labels") or {}).get("kubernetes.io/service-name") != name:
            continue
        for endpoint in eps.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            if ref.get("kind") == "Pod" and (endpoint.get("conditions") or {}).get("ready", True):
                pod = store.try_get(("", "pods"), namespace, ref.get("name"))
                if pod is not None:
                    out.append(pod)
    return out


def resolve_service(store, namespace, name, port=None):
    """(pod, container port) of a ready endpoint of Service namespace/name; raises RouteError."""
    try:
        service = store.get(("", "services"), namespace, name, copy_=False)
    except ApiError:
        raise RouteError('service "%s" not found' % name)
    sport = _service_port(service, port)
    selector = (service.get("spec") or {}).get("selector")
    candidates = _selected_pods(store, namespace, selector) if selector else _slice_pods(store, namespace, name)
    target = sport.get("targetPort", sport.get("port"))
    for pod in sorted(candidates, key=lambda p: p["metadata"]["name"]):
        if not pod_ready(pod):
            continue
        cport = _container_port(pod, target)
        if cport is not None:
            return pod, cport
    raise RouteError('no endpoints available for service "%s"' % name)


def service_url(namespace, name, port, path):
    return "https://%s.%s.svc:%s%s" % (name, namespace, port, path or "/")
