"""Helpers shared by the controllers: pod state, resource requests, taints, node selectors, owners.

Each follows the upstream helper of the same purpose (k8s.io/component-helpers, pkg/api/v1/pod,
pkg/controller) as far as the simulator needs it.
"""
from __future__ import annotations

import copy
import decimal
import functools
import json

from kubernetes.utils import parse_quantity

from ..clock import parse_timestamp

TERMINAL_PHASES = ("Succeeded", "Failed")
ZERO = decimal.Decimal(0)


# --------------------------------------------------------------------------------- pod state
def is_terminal(pod):
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def is_active(pod):
    """Counts towards a controller's replicas: not finished and not being deleted."""
    return not is_terminal(pod) and not pod["metadata"].get("deletionTimestamp")


def get_condition(obj, ctype):
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond
    return None


def is_ready(pod):
    cond = get_condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def ready_since(pod):
    """lastTransitionTime of a True Ready condition (None when not ready)."""
    cond = get_condition(pod, "Ready")
    if cond and cond.get("status") == "True":
        return cond.get("lastTransitionTime")
    return None


def set_condition(conditions, ctype, status, reason=None, message=None, now=None, probe_time=False):
    """Insert or update a condition in place; lastTransitionTime moves only when status changes.

    Returns the list (a new one when `conditions` was None).
    """
    conditions = conditions if conditions is not None else []
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond["status"] = status
            _set_or_drop(cond, "reason", reason)
            _set_or_drop(cond, "message", message)
            return conditions
    cond = {"type": ctype, "status": status}
    if probe_time:
        cond["lastProbeTime"] = None
    cond["lastTransitionTime"] = now
    _set_or_drop(cond, "reason", reason)
    _set_or_drop(cond, "message", message)
    conditions.append(cond)
    return conditions


def _set_or_drop(cond, field, value):
    if value is None:
        cond.pop(field, None)
    else:
        cond[field] = value


# --------------------------------------------------------------------------------- resources
@functools.lru_cache(maxsize=4096)
def quantity(value):
    """A resource quantity string ("500m", "1Gi", 2) as a Decimal; bad values count as zero."""
    try:
        return parse_quantity(value)
    except (ValueError, TypeError):
        return ZERO


def _container_requests(container):
    resources = container.get("resources") or {}
    requests = dict(resources.get("limits") or {})     # the API defaults requests to limits
    requests.update(resources.get("requests") or {})
    return {name: quantity(value) for name, value in requests.items()}


def _add(into, other):
    for name, value in other.items():
        into[name] = into.get(name, ZERO) + value


def _maximum(into, other):
    for name, value in other.items():
        if value > into.get(name, ZERO):
            into[name] = value


def pod_requests(pod):
    """Effective requests of a pod as the scheduler computes them (resourcehelper.PodRequests):
    the sum of the containers and restartable (sidecar) init containers, or the largest
    init-container step if bigger, plus the pod overhead."""
    spec = pod.get("spec") or {}
    total = {}
    for container in spec.get("containers") or ():
        _add(total, _container_requests(container))
    init_max = {}
    sidecars = {}
    for container in spec.get("initContainers") or ():
        req = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            _add(total, req)
            _add(sidecars, req)
            step = dict(sidecars)
        else:
            step = dict(req)
            _add(step, sidecars)
        _maximum(init_max, step)
    _maximum(total, init_max)
    _add(total, {name: quantity(v) for name, v in (spec.get("overhead") or {}).items()})
    return total


def qos_class(pod):
    """Guaranteed / Burstable / BestEffort (pkg/apis/core/helper/qos)."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or ()) + list(spec.get("initContainers") or ())
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = dict(limits)
        requests.update(resources.get("requests") or {})
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or quantity(limits[name]) != quantity(requests.get(name, limits[name])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# --------------------------------------------------------------------------------- taints, selectors
def tolerates(tolerations, taint):
    """Does any toleration tolerate the taint (v1.Toleration.ToleratesTaint)?"""
    for tol in tolerations or ():
        effect = tol.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key")
        operator = tol.get("operator") or "Equal"
        if not key:
            if operator == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if operator == "Exists":
            return True
        if operator == "Equal" and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(tolerations, taints, effects=("NoSchedule", "NoExecute")):
    """The first taint with one of `effects` that no toleration tolerates, or None."""
    for taint in taints or ():
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


def _match_requirement(value, present, operator, values):
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if operator == "Gt" else have < want
    return False


def node_selector_term_matches(term, node):
    """A NodeSelectorTerm: every expression and field requirement must hold; an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    for req in exprs:
        key = req.get("key")
        if not _match_requirement(labels.get(key), key in labels, req.get("operator"), req.get("values") or []):
            return False
    for req in fields:
        if req.get("key") != "metadata.name":
            return False
        if not _match_requirement(node["metadata"]["name"], True, req.get("operator"), req.get("values") or []):
            return False
    return True


def required_node_affinity(pod):
    spec = pod.get("spec") or {}
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    return affinity.get("requiredDuringSchedulingIgnoredDuringExecution")


def matches_node_selector_and_affinity(pod, node):
    """nodeSelector labels and required node affinity (terms are ORed)."""
    labels = node["metadata"].get("labels") or {}
    for key, value in ((pod.get("spec") or {}).get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = required_node_affinity(pod)
    if required is not None:
        terms = required.get("nodeSelectorTerms") or []
        if not any(node_selector_term_matches(term, node) for term in terms):
            return False
    return True


def preferred_node_affinity_score(pod, node):
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    score = 0
    for pref in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
        if node_selector_term_matches(pref.get("preference") or {}, node):
            score += int(pref.get("weight") or 0)
    return score


def node_ready(node):
    cond = get_condition(node, "Ready")
    return bool(cond and cond.get("status") == "True")


def node_condition_taints(node):
    """The taints the node lifecycle controller would add for the node's conditions and spec
    (TaintNodesByCondition): not-ready / unreachable and unschedulable."""
    taints = []
    cond = get_condition(node, "Ready")
    status = cond.get("status") if cond else "Unknown"
    if status == "False":
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    elif status != "True":
        taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
    return taints


def effective_taints(node):
    """The node's own taints plus the condition taints the real control plane would have added."""
    own = list((node.get("spec") or {}).get("taints") or [])
    keys = {(t.get("key"), t.get("effect")) for t in own}
    for taint in node_condition_taints(node):
        if (taint["key"], taint["effect"]) not in keys:
            own.append(taint)
    return own


# --------------------------------------------------------------------------------- owners and templates
def controller_ref(obj):
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner, api_version, kind):
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def pod_from_template(template, owner, api_version, kind, name=None, generate_name=None, labels=None,
                      annotations=None):
    """A new Pod object from a PodTemplateSpec, owned (controller reference) by `owner`."""
    template = copy.deepcopy(template or {})
    meta = template.get("metadata") or {}
    pod_meta = {"namespace": owner["metadata"]["namespace"],
                "labels": dict(meta.get("labels") or {}),
                "ownerReferences": [owner_reference(owner, api_version, kind)]}
    if meta.get("annotations") or annotations:
        pod_meta["annotations"] = dict(meta.get("annotations") or {})
        pod_meta["annotations"].update(annotations or {})
    if meta.get("finalizers"):
        pod_meta["finalizers"] = list(meta["finalizers"])
    pod_meta["labels"].update(labels or {})
    if name:
        pod_meta["name"] = name
    else:
        pod_meta["generateName"] = generate_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}


def template_for_compare(template, drop_labels=()):
    """A template without the labels a controller adds, for "does this revision match" checks.

    Null values and empty objects are dropped: in the API's Go types `"creationTimestamp": null` (which
    kubectl rollout undo sends) and an absent field decode to the same zero value."""
    template = _drop_empty(copy.deepcopy(template or {}))
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        for key in drop_labels:
            labels.pop(key, None)
    return template


def _drop_empty(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _drop_empty(item)
            if item is not None and item != {}:
                out[key] = item
        return out
    if isinstance(value, list):
        return [_drop_empty(item) for item in value]
    return value


def field(obj, key, default):
    """obj[key], or `default` when it is absent or null: the API defaults an explicit null field (a nil
    pointer in the Go types) the same way as a missing one, and charts do write `revisionHistoryLimit: null`."""
    value = (obj or {}).get(key)
    return default if value is None else value


def int_or_percent(value, total, round_up):
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        pct = decimal.Decimal(text[:-1])
        scaled = pct * total / 100
        rounding = decimal.ROUND_CEILING if round_up else decimal.ROUND_FLOOR
        return int(scaled.to_integral_value(rounding=rounding))
    return int(text)


def label_matches(selector_labels, labels):
    labels = labels or {}
    return all(labels.get(k) == v for k, v in (selector_labels or {}).items())


_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data):
    value = 0x811c9dc5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xffffffff
    return value


def safe_encode(text):
    """rand.SafeEncodeString: digits -> the alphabet Kubernetes uses for generated suffixes."""
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in text)


def template_hash(template, collision_count=None):
    """The pod-template-hash / controller-revision-hash of a template (FNV-32a, safe-encoded)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def drop_zero(status, fields):
    """Remove `omitempty` integer fields that are zero, as the Go API types serialise them."""
    for field in fields:
        if not status.get(field):
            status.pop(field, None)
    return status


def pod_available(pod, min_ready_seconds, now, clock):
    """(available, sim time it becomes available or None): ready for at least minReadySeconds."""
    since = ready_since(pod)
    if since is None:
        return False, None
    if not min_ready_seconds:
        return True, None
    start = parse_timestamp(since) or now
    due = start + float(min_ready_seconds)
    return (due <= now), (None if due <= now else due)
