"""Subresources: status, scale, pods/log, pods|services|nodes/proxy, pods/binding, pods/eviction,
serviceaccounts/token and namespaces/finalize.

Logs and proxies delegate to the simulated container runtime (`sim.runtime.logs` and
`sim.runtime.http`), which decides what a container printed and what an app answers.
"""
from __future__ import annotations

import copy
import json
import time

from . import streaming
from .errors import ApiError
from .patch import TypeInfo, apply_patch
from .routing import RouteError, pod_ready, resolve_service
from .selectors import label_selector_predicate, selector_to_string


def serve(server, req, ctx):
    handler = {"status": _status, "scale": _scale, "log": _log, "proxy": _proxy, "binding": _binding,
               "eviction": _eviction, "token": _token, "finalize": _finalize, "exec": streaming.serve,
               "attach": streaming.serve, "portforward": streaming.serve}.get(ctx.subresource)
    if handler is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return handler(server, req, ctx)


def _require(req, *methods):
    if req.command not in methods:
        raise ApiError.method_not_allowed()


# ----------------------------------------------------------------------------------------- status

def _status(server, req, ctx):
    _require(req, "GET", "HEAD", "PUT", "PATCH")
    if req.command in ("GET", "HEAD"):
        return server._get(req, ctx)  # pylint: disable=protected-access
    if req.command == "PUT":
        return server._update(req, ctx)  # pylint: disable=protected-access
    return server._patch(req, ctx)  # pylint: disable=protected-access


# ----------------------------------------------------------------------------------------- scale

def _scale_paths(rtype, version):
    per_version = getattr(rtype, "version_subresources", None)
    if per_version is None:
        return ".spec.replicas", ".status.replicas", None
    scale = per_version(version).get("scale") or {}
    return scale.get("specReplicasPath", ".spec.replicas"), scale.get("statusReplicasPath", ".status.replicas"), \
        scale.get("labelSelectorPath")


def _get_path(obj, path):
    cur = obj
    for part in (path or "").strip(".").split("."):
        if not part:
            continue
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj, path, value):
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def scale_of(rtype, version, obj):
    spec_path, status_path, selector_path = _scale_paths(rtype, version)
    meta = obj["metadata"]
    if selector_path:
        selector = _get_path(obj, selector_path) or ""
    else:
        selector = (obj.get("spec") or {}).get("selector")
        selector = selector_to_string(selector) if isinstance(selector, dict) else (selector or "")
    status = {"replicas": _get_path(obj, status_path) or 0}
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": _get_path(obj, spec_path) or 0}, "status": status}


def _scale(server, req, ctx):
    _require(req, "GET", "HEAD", "PUT", "PATCH")
    current = server.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
    live = server.out(ctx, current)
    scale = scale_of(ctx.rtype, ctx.version, live)
    if req.command in ("GET", "HEAD"):
        return req.send_body(200, _dumps(scale))
    body = server._decode(req, ctx)  # pylint: disable=protected-access
    if req.command == "PUT":
        new_scale = body
    else:
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type == "application/apply-patch+yaml":
            new_scale = dict(scale, spec=dict(scale["spec"], **((body or {}).get("spec") or {})))
        else:
            new_scale = apply_patch(content_type, scale, body, TypeInfo(ctx.rtype, ctx.version))
    replicas = (new_scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        message = "Invalid value: %r: must be greater than or equal to 0" % (replicas,)
        raise ApiError.invalid("autoscaling", "Scale", ctx.name, [("spec.replicas", message)])
    expected_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
    if expected_rv and expected_rv != current["metadata"]["resourceVersion"]:
        raise ApiError.conflict(ctx.rtype.group, ctx.rtype.resource, ctx.name, "the object has been modified; please "
                                "apply your changes to the latest version and try again")
    updated = copy.deepcopy(live)
    _set_path(updated, _scale_paths(ctx.rtype, ctx.version)[0], replicas)
    stored = server.admit_and_update(ctx, updated, current)
    req.send_body(200, _dumps(scale_of(ctx.rtype, ctx.version, server.out(ctx, stored))))


# ----------------------------------------------------------------------------------------- logs

def _pick_container(pod, name):
    spec = pod.get("spec") or {}
    containers = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    pod_name = pod["metadata"]["name"]
    if name:
        if name not in containers + init:
            raise ApiError.bad_request("container %s is not valid for pod %s" % (name, pod_name))
        return name
    if len(containers) == 1:
        return containers[0]
    message = "a container name must be specified for pod %s, choose one of: [%s]" % (pod_name, " ".join(containers))
    if init:
        message += " or one of the init containers: [%s]" % " ".join(init)
    raise ApiError.bad_request(message)


def _container_state(pod, container):
    status = pod.get("status") or {}
    for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if entry.get("name") == container:
            return entry
    return None


def _check_started(pod, container, previous):
    entry = _container_state(pod, container)
    pod_name = pod["metadata"]["name"]
    if previous:
        if entry is None or not entry.get("lastState", {}).get("terminated"):
            raise ApiError.bad_request('previous terminated container "%s" in pod "%s" not found'
                                       % (container, pod_name))
        return
    if entry is None:
        raise ApiError.bad_request('container "%s" in pod "%s" is waiting to start: ContainerCreating'
                                   % (container, pod_name))
    waiting = (entry.get("state") or {}).get("waiting")
    if waiting and not entry.get("lastState", {}).get("terminated"):
        raise ApiError.bad_request('container "%s" in pod "%s" is waiting to start: %s'
                                   % (container, pod_name, waiting.get("reason", "ContainerCreating")))


def _running(runtime, pod, container):
    """Is the container still running (the runtime knows best; else the kubelet's status says)?"""
    if hasattr(runtime, "container_running"):
        return runtime.container_running(pod["metadata"]["namespace"], pod["metadata"]["name"], container)
    entry = _container_state(pod, container)
    return not (entry and (entry.get("state") or {}).get("terminated"))


def _log(server, req, ctx):
    _require(req, "GET", "HEAD")
    if ctx.rtype.gr != ("", "pods"):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    pod = server.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
    container = _pick_container(pod, ctx.q("container"))
    previous = ctx.q("previous") in ("true", "1")
    _check_started(pod, container, previous)
    tail = ctx.q("tailLines")
    tail = int(tail) if tail not in (None, "") else None
    limit = ctx.q("limitBytes")
    text = server.sim.runtime.logs(ctx.namespace, ctx.name, container, previous=previous, tail_lines=tail) or ""
    since = ctx.q("sinceSeconds")
    if ctx.q("follow") not in ("true", "1") or previous:
        data = text.encode()
        if limit:
            data = data[:int(limit)]
        return req.send_body(200, data, "text/plain")
    # what was sent and what the follow loop compares against come from one read, so no line printed in
    # between is lost
    full = server.sim.runtime.logs(ctx.namespace, ctx.name, container) or ""
    if tail is not None:
        lines = full.splitlines(True)
        text = "".join(lines[-tail:]) if tail > 0 else ""
    else:
        text = full
    req.start_chunked(200, "text/plain")
    try:
        _follow(server, req, ctx, container, text, since, full)
        req.end_chunked()
    except OSError:
        req.close_connection = True


def _follow(server, req, ctx, container, text, since, sent):
    """Stream what the container prints until it ends (or the pod goes, or the server stops)."""
    del since
    req.write_chunk(text.encode())
    deadline = time.monotonic() + float(server.sim.settings["api"]["watchTimeoutSeconds"])
    while not server.stopping.is_set() and time.monotonic() < deadline:
        pod = server.store.try_get(ctx.gr, ctx.namespace, ctx.name)
        current = server.sim.runtime.logs(ctx.namespace, ctx.name, container) or ""
        if current.startswith(sent) and len(current) > len(sent):
            req.write_chunk(current[len(sent):].encode())
        sent = current
        if pod is None or not _running(server.sim.runtime, pod, container):
            return
        if req.client_gone():
            raise ConnectionResetError("log client went away")
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------- proxy

def _split_target(name):
    """`[scheme:]name[:port]` -> (scheme, name, port)."""
    parts = name.split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        if parts[0] in ("http", "https"):
            return parts[0], parts[1], ""
        return "", parts[0], parts[1]
    return "", parts[0], ""


def _proxy(server, req, ctx):
    resource = ctx.rtype.gr
    scheme, name, port = _split_target(ctx.name)
    del scheme
    path = "/" + ctx.rest if ctx.rest else "/"
    query = req.path.split("?", 1)[1] if "?" in req.path else ""
    if resource == ("", "services"):
        try:
            pod, target_port = resolve_service(server.store, ctx.namespace, name, port or None)
        except RouteError as exc:
            raise ApiError.service_unavailable(str(exc))
    elif resource == ("", "pods"):
        pod = server.store.get(ctx.gr, ctx.namespace, name, copy_=False)
        if not (pod.get("status") or {}).get("podIP") and not pod_ready(pod):
            raise ApiError.service_unavailable('pod "%s" does not have a host assigned' % name)
        target_port = int(port) if port and port.isdigit() else _named_port(pod, port) or 80
    else:
        raise ApiError.service_unavailable("node proxying is not simulated")
    headers = {k: v for k, v in req.headers.items() if k.lower() not in ("authorization", "host")}
    status, resp_headers, body = server.sim.runtime.http(pod, target_port, req.command, path, query, headers,
                                                         req.read_body() if req.command not in ("GET", "HEAD")
                                                         else b"")
    hop = ("content-type", "content-length", "transfer-encoding", "connection")
    extra = [(k, v) for k, v in (resp_headers or {}).items() if k.lower() not in hop]
    req.send_body(status, body or b"", (resp_headers or {}).get("Content-Type", "text/plain"), extra)


def _named_port(pod, name):
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cport in container.get("ports") or []:
            if name and cport.get("name") == name:
                return int(cport["containerPort"])
    return None


# ----------------------------------------------------------------------------------------- pod actions

def _binding(server, req, ctx):
    _require(req, "POST")
    body = server._decode(req, ctx)  # pylint: disable=protected-access
    target = (body or {}).get("target") or {}
    if not target.get("name"):
        raise ApiError.invalid("", "Binding", ctx.name, [("target.name", "Required value", "FieldValueRequired")])
    for _unused in range(5):
        pod = server.store.get(ctx.gr, ctx.namespace, ctx.name)
        if (pod.get("spec") or {}).get("nodeName"):
            raise ApiError.conflict("", "pods/binding", ctx.name, "pod %s is already assigned to node \"%s\""
                                    % (ctx.name, pod["spec"]["nodeName"]))
        pod["spec"]["nodeName"] = target["name"]
        try:
            server.store.update(ctx.gr, pod, dry_run=ctx.dry_run)
            break
        except ApiError as exc:
            if exc.code != 409:
                raise
    req.send_body(201, _dumps(_success()))


def _eviction(server, req, ctx):
    _require(req, "POST")
    body = server._decode(req, ctx) or {}  # pylint: disable=protected-access
    pod = server.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
    labels = pod["metadata"].get("labels") or {}
    if ("policy", "poddisruptionbudgets") in server.store.types and \
            (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
        for pdb in server.store.list(("policy", "poddisruptionbudgets"), namespace=ctx.namespace)[0]:
            selector = (pdb.get("spec") or {}).get("selector")
            if selector and label_selector_predicate(selector)(labels) and \
                    int((pdb.get("status") or {}).get("disruptionsAllowed", 0)) <= 0:
                raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption "
                               "budget.", {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget "
                                                       "%s needs %s healthy pods and has %s currently" % (
                                                           pdb["metadata"]["name"],
                                                           pdb.get("status", {}).get("desiredHealthy", 0),
                                                           pdb.get("status", {}).get("currentHealthy", 0))}]})
    grace = ((body.get("deleteOptions") or {}).get("gracePeriodSeconds"))
    server.store.delete(ctx.gr, ctx.namespace, ctx.name, grace_period=grace, dry_run=ctx.dry_run)
    req.send_body(201, _dumps(_success()))


def _token(server, req, ctx):
    _require(req, "POST")
    body = server._decode(req, ctx) or {}  # pylint: disable=protected-access
    account = server.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
    spec = dict(body.get("spec") or {})
    spec.setdefault("audiences", ["https://kubernetes.default.svc.cluster.local"])
    spec.setdefault("expirationSeconds", 3600)
    spec.setdefault("boundObjectRef", None)
    token = server.authn.issue_service_account_token(ctx.namespace, ctx.name, account["metadata"]["uid"])
    now = server.sim.clock.now()
    doc = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
           "metadata": {"name": ctx.name, "namespace": ctx.namespace, "creationTimestamp": server.sim.clock.timestamp()},
           "spec": spec, "status": {"token": token,
                                    "expirationTimestamp": server.sim.clock.timestamp(now + spec["expirationSeconds"])}}
    req.send_body(201, _dumps(doc))


def _finalize(server, req, ctx):
    _require(req, "PUT")
    body = server._body_object(req, ctx)  # pylint: disable=protected-access
    current = server.store.get(ctx.gr, None, ctx.name)
    current["spec"] = dict(current.get("spec") or {}, finalizers=list((body.get("spec") or {}).get("finalizers") or []))
    stored = server.store.update(ctx.gr, current, dry_run=ctx.dry_run)
    req.send_body(200, _dumps(server.out(ctx, stored)))


def _success():
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()
