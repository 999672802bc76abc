"""Server-side printing: meta.k8s.io/v1 Table responses (what `kubectl get` asks for) and
PartialObjectMetadata. Columns follow kube-apiserver's printers for the types people look at;
custom resources use their additionalPrinterColumns (default: Age); everything else NAME and AGE.
"""
from __future__ import annotations

import re

from .clock import parse_timestamp
from .selectors import selector_to_string


def partial(obj):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def human_duration(seconds):
    """kubectl's duration.HumanDuration (5s, 3m20s, 2d3h, ...)."""
    seconds = int(max(0, seconds))
    if seconds < 120:
        return "%ds" % seconds
    minutes = seconds // 60
    if minutes < 10:
        return "%dm%ds" % (minutes, seconds % 60) if seconds % 60 else "%dm" % minutes
    if minutes < 180:
        return "%dm" % minutes
    hours = minutes // 60
    if hours < 8:
        return "%dh%dm" % (hours, minutes % 60) if minutes % 60 else "%dh" % hours
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        return "%dd%dh" % (hours // 24, hours % 24) if hours % 24 else "%dd" % (hours // 24)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    return "%dy" % (hours // (24 * 365))


def _age(obj, clock):
    created = parse_timestamp(obj["metadata"].get("creationTimestamp"))
    return "<unknown>" if created is None else human_duration(clock.now() - created)


def _col(name, ctype="string", priority=0, fmt="", description=""):
    return {"name": name, "type": ctype, "format": fmt, "description": description or name, "priority": priority}


NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE = _col("Age", description="CreationTimestamp is a timestamp representing the server time when this object "
                              "was created.")


def _pod_row(pod, clock):
    """printPod (pkg/printers/internalversion/printers.go): READY, STATUS and RESTARTS as kubectl shows them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    counts = _PodCounts(spec)
    reason = _pod_reason(spec, status, counts)
    if pod["metadata"].get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    restarts = str(counts.restarts)
    if counts.restarts and counts.last_restart is not None:
        restarts = "%d (%s ago)" % (counts.restarts, human_duration(clock.now() - counts.last_restart))
    pod_ips = status.get("podIPs") or [{}]
    return [pod["metadata"]["name"], "%d/%d" % (counts.ready, counts.total), reason, restarts, _age(pod, clock),
            pod_ips[0].get("ip") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", _readiness_gates(spec, status)]


class _PodCounts(object):
    """Ready containers, restarts and the last restart time, as printPod adds them up."""

    def __init__(self, spec):
        self.total = len(spec.get("containers") or []) + sum(1 for c in spec.get("initContainers") or []
                                                             if c.get("restartPolicy") == "Always")
        self.ready = 0
        self.restarts = 0
        self.last_restart = None

    def add_restarts(self, cstatus):
        self.restarts += int(cstatus.get("restartCount") or 0)
        finished = parse_timestamp(((cstatus.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (self.last_restart is None or finished > self.last_restart):
            self.last_restart = finished


def _pod_reason(spec, status, counts):
    """The STATUS column: the phase or status.reason, then what the init containers and the containers say."""
    reason = status.get("reason") or status.get("phase") or ""
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if (conditions.get("PodScheduled") or {}).get("reason") == "SchedulingGated":
        reason = "SchedulingGated"
    sidecar_counts = _PodCounts({})
    init_reason = _init_reason(spec, status, counts, sidecar_counts)
    if init_reason is not None:
        reason = init_reason
    if init_reason is None or (conditions.get("Initialized") or {}).get("status") == "True":
        # only the restarts of sidecars (restartable init containers) count once initialised
        counts.restarts, counts.last_restart = sidecar_counts.restarts, sidecar_counts.last_restart
        reason = _containers_reason(status, counts, reason, (conditions.get("Ready") or {}).get("status") == "True")
    return reason


def _init_reason(spec, status, counts, sidecar_counts):
    """Init:<reason>, Init:ExitCode:N or Init:i/n while initialising (None once the init containers are done)."""
    inits = spec.get("initContainers") or []
    sidecars = {c.get("name") for c in inits if c.get("restartPolicy") == "Always"}
    for index, cstatus in enumerate(status.get("initContainerStatuses") or []):
        counts.add_restarts(cstatus)
        if cstatus.get("name") in sidecars:
            sidecar_counts.add_restarts(cstatus)
        state = cstatus.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if cstatus.get("name") in sidecars and cstatus.get("started"):
            if cstatus.get("ready"):
                counts.ready += 1
            continue
        if terminated is not None:
            return "Init:" + (terminated.get("reason") or _exit_text(terminated))
        if waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return "Init:" + waiting["reason"]
        return "Init:%d/%d" % (index, len(inits))
    return None


def _containers_reason(status, counts, reason, pod_ready):
    """The containers from the last to the first: a waiting or terminated reason wins; Completed while a
    container still runs reads Running (NotReady without the Ready condition)."""
    running = False
    for cstatus in reversed(status.get("containerStatuses") or []):
        counts.add_restarts(cstatus)
        state = cstatus.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if waiting is not None and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None:
            reason = terminated.get("reason") or _exit_text(terminated)
        elif cstatus.get("ready") and state.get("running") is not None:
            running = True
            counts.ready += 1
    if reason == "Completed" and running:
        reason = "Running" if pod_ready else "NotReady"
    return reason


def _exit_text(terminated):
    signal = int(terminated.get("signal") or 0)
    return "Signal:%d" % signal if signal else "ExitCode:%d" % int(terminated.get("exitCode") or 0)


def _readiness_gates(spec, status):
    gates = spec.get("readinessGates") or []
    if not gates:
        return "<none>"
    conditions = {}
    for cond in status.get("conditions") or []:
        conditions.setdefault(cond.get("type"), cond.get("status"))
    return "%d/%d" % (sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True"), len(gates))


def _node_row(node, clock):
    status = node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (node["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/")) or ["<none>"]
    info = status.get("nodeInfo") or {}
    internal = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "<none>")
    external = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "ExternalIP"), "<none>")
    return [node["metadata"]["name"], state, ",".join(roles), _age(node, clock), info.get("kubeletVersion", ""),
            internal, external, info.get("osImage", ""), info.get("kernelVersion", ""),
            info.get("containerRuntimeVersion", "")]


def _deployment_row(obj, clock):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = (spec.get("template", {}).get("spec") or {}).get("containers") or []
    return [obj["metadata"]["name"], "%d/%d" % (status.get("readyReplicas", 0), spec.get("replicas", 0)),
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), _age(obj, clock),
            ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers),
            selector_to_string(spec.get("selector") or {})]


def _ports(service):
    out = []
    for port in (service.get("spec") or {}).get("ports") or []:
        text = "%s" % port.get("port")
        if port.get("nodePort"):
            text += ":%s" % port["nodePort"]
        out.append("%s/%s" % (text, port.get("protocol", "TCP")))
    return ",".join(out) or "<none>"


def _service_row(obj, clock):
    spec = obj.get("spec") or {}
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or \
        ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    return [obj["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), external,
            _ports(obj), _age(obj, clock), selector_to_string({"matchLabels": spec.get("selector") or {}}) or "<none>"]


def _job_row(obj, clock):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    state = "Running"
    if conditions.get("Complete") == "True":
        state = "Complete"
    elif conditions.get("Failed") == "True":
        state = "Failed"
    elif spec.get("suspend"):
        state = "Suspended"
    completions = spec.get("completions")
    done = "%d/%s" % (status.get("succeeded", 0), completions if completions is not None else 1)
    start, end = parse_timestamp(status.get("startTime")), parse_timestamp(status.get("completionTime"))
    duration = "" if start is None else human_duration((end or clock.now()) - start)
    return [obj["metadata"]["name"], state, done, duration, _age(obj, clock)]


def _simple(fields):
    """A printer from (column, getter) pairs; getters take (obj, clock)."""
    def row(obj, clock):
        return [obj["metadata"]["name"]] + [getter(obj, clock) for _unused, getter in fields] + [_age(obj, clock)]
    return row


def _status(key, default=0):
    return lambda obj, clock: (obj.get("status") or {}).get(key, default)


def _spec(key, default=0):
    return lambda obj, clock: (obj.get("spec") or {}).get(key, default)


PRINTERS = {
    ("", "pods"): ([NAME, _col("Ready"), _col("Status"), _col("Restarts", "string"), AGE, _col("IP", priority=1),
                    _col("Node", priority=1), _col("Nominated Node", priority=1),
                    _col("Readiness Gates", priority=1)], _pod_row),
    ("", "nodes"): ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version"), _col("Internal-IP", priority=1),
                     _col("External-IP", priority=1), _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
                     _col("Container-Runtime", priority=1)], _node_row),
    ("apps", "deployments"): ([NAME, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), AGE,
                               _col("Containers", priority=1), _col("Images", priority=1),
                               _col("Selector", priority=1)], _deployment_row),
    ("", "services"): ([NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE,
                        _col("Selector", priority=1)], _service_row),
    ("batch", "jobs"): ([NAME, _col("Status"), _col("Completions"), _col("Duration"), AGE], _job_row),
}

_SIMPLE = {
    ("", "namespaces"): [("Status", lambda o, c: (o.get("status") or {}).get("phase", "Active"))],
    ("", "configmaps"): [("Data", lambda o, c: len(o.get("data") or {}) + len(o.get("binaryData") or {}))],
    ("", "secrets"): [("Type", lambda o, c: o.get("type", "Opaque")), ("Data", lambda o, c: len(o.get("data") or {}))],
    ("", "serviceaccounts"): [("Secrets", lambda o, c: len(o.get("secrets") or []))],
    ("", "persistentvolumeclaims"): [("Status", _status("phase", "")), ("Volume", _spec("volumeName", "")),
                                     ("StorageClass", _spec("storageClassName", ""))],
    ("apps", "replicasets"): [("Desired", _spec("replicas")), ("Current", _status("replicas")),
                              ("Ready", _status("readyReplicas"))],
    ("apps", "statefulsets"): [("Ready", lambda o, c: "%d/%d" % (_status("readyReplicas")(o, c),
                                                                 _spec("replicas")(o, c)))],
    ("apps", "daemonsets"): [("Desired", _status("desiredNumberScheduled")),
                             ("Current", _status("currentNumberScheduled")), ("Ready", _status("numberReady")),
                             ("Up-to-date", _status("updatedNumberScheduled")),
                             ("Available", _status("numberAvailable")),
                             ("Node Selector", lambda o, c: ",".join(
                                 "%s=%s" % kv for kv in ((o.get("spec") or {}).get("template", {}).get("spec", {})
                                                         .get("nodeSelector") or {}).items()) or "<none>")],
    ("scheduling.k8s.io", "priorityclasses"): [("Value", lambda o, c: o.get("value", 0)),
                                               ("Global-Default", lambda o, c: bool(o.get("globalDefault")))],
    ("autoscaling", "horizontalpodautoscalers"): [
        ("Reference", lambda o, c: "%s/%s" % ((o.get("spec") or {}).get("scaleTargetRef", {}).get("kind", ""),
                                              (o.get("spec") or {}).get("scaleTargetRef", {}).get("name", ""))),
        ("MinPods", _spec("minReplicas", 1)), ("MaxPods", _spec("maxReplicas")),
        ("Replicas", _status("currentReplicas"))],
    ("apiregistration.k8s.io", "apiservices"): [("Service", lambda o, c: _apiservice_service(o)),
                                                ("Available", lambda o, c: _apiservice_available(o))],
}


def _apiservice_service(obj):
    service = (obj.get("spec") or {}).get("service")
    return "%s/%s" % (service.get("namespace", ""), service.get("name", "")) if service else "Local"


def _apiservice_available(obj):
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Available":
            if cond.get("status") == "True":
                return "True"
            return "%s (%s)" % (cond.get("status"), cond.get("reason", ""))
    return "Unknown"


def _columns_for(rtype, version):
    key = (rtype.group, rtype.resource)
    if key in PRINTERS:
        return PRINTERS[key]
    if key in _SIMPLE:
        fields = _SIMPLE[key]
        return [NAME] + [_col(name) for name, _unused in fields] + [AGE], _simple(fields)
    if key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        return [NAME, _col("Created At", "date")], \
            lambda o, c: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]
    if key == ("", "events"):
        return [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")], _event_row
    columns_fn = getattr(rtype, "printer_columns", None)
    if columns_fn is not None:
        return _custom_columns(columns_fn(version))
    return [NAME, AGE], lambda o, c: [o["metadata"]["name"], _age(o, c)]


def _event_row(obj, clock):
    last = obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    when = parse_timestamp(last)
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    return [human_duration(clock.now() - when) if when else "<unknown>", obj.get("type", ""), obj.get("reason", ""),
            "%s/%s" % ((involved.get("kind") or "").lower(), involved.get("name", "")),
            obj.get("message") or obj.get("note") or ""]


def _json_path(obj, path):
    """Evaluate the simple JSONPath subset printer columns use (.a.b, .a[0].b, .a[?(@.type=="X")].status)."""
    cur = [obj]
    for token in _tokens(path):
        nxt = []
        for value in cur:
            if isinstance(token, int):
                if isinstance(value, list) and -len(value) <= token < len(value):
                    nxt.append(value[token])
            elif isinstance(token, tuple):
                key, want = token
                if isinstance(value, list):
                    nxt.extend(v for v in value if isinstance(v, dict) and str(v.get(key)) == want)
            elif token == "*":
                if isinstance(value, list):
                    nxt.extend(value)
            elif isinstance(value, dict) and token in value:
                nxt.append(value[token])
        cur = nxt
    return cur


def _tokens(path):
    tokens = []
    for part in re.findall(r"\[[^\]]*\]|[^.\[\]]+", path.strip().lstrip("{").rstrip("}")):
        if part.startswith("["):
            inner = part[1:-1]
            match = re.match(r"^\?\(@\.(\w+)\s*==\s*['\"]([^'\"]*)['\"]\)$", inner)
            if match:
                tokens.append((match.group(1), match.group(2)))
            elif inner == "*":
                tokens.append("*")
            else:
                try:
                    tokens.append(int(inner))
                except ValueError:
                    tokens.append(inner.strip("'\""))
        else:
            tokens.append(part)
    return tokens


def _custom_columns(columns):
    defs = [NAME]
    for column in columns:
        defs.append(_col(column["name"], column.get("type", "string"), column.get("priority", 0),
                         column.get("format", ""), column.get("description", "")))
    if not columns:
        defs.append(AGE)

    def row(obj, clock):
        cells = [obj["metadata"]["name"]]
        for column in columns:
            values = _json_path(obj, column.get("jsonPath", ""))
            if not values:
                cells.append(None)
            elif column.get("type") == "date":
                cells.append(values[0])
            else:
                cells.append(values[0] if len(values) == 1 else ",".join(str(v) for v in values))
        if not columns:
            cells.append(_age(obj, clock))
        return cells
    return defs, row


def table(rtype, version, objects, clock, include_object, list_meta):
    """A meta.k8s.io/v1 Table for objects already converted to `version`."""
    columns, row_fn = _columns_for(rtype, version)
    rows = []
    for obj in objects:
        row = {"cells": row_fn(obj, clock)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial(obj)
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns,
            "rows": rows}
