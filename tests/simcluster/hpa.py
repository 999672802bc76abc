"""kube-controller-manager's horizontal pod autoscaler (pkg/controller/podautoscaler) for autoscaling/v2.

Every `SYNC_SECONDS` (the real --horizontal-pod-autoscaler-sync-period, 15 s) each HPA is reconciled:

* Its scale target (a Deployment, StatefulSet or ReplicaSet) and the pods its selector picks.
* Each metric through the aggregated metrics APIs the cluster serves (the APIService's backend app, so an
  absent or stopped metrics-server / prometheus-adapter really leaves the HPA without metrics):
  `Resource` (metrics.k8s.io pod usage against the containers' requests, Utilization or AverageValue),
  `Pods` (custom.metrics.k8s.io `pods/*/<metric>`, averaged), `Object` (custom.metrics.k8s.io of the
  described object) and `External` (external.metrics.k8s.io). The replica count of each is
  ceil(ratio x current) unless the ratio is within the 0.1 tolerance; the largest wins.
* min/max replicas, and `behavior` stabilization windows (scale up: default 0 s; scale down: default 300 s,
  the highest recommendation of the window wins). Scaling policies (Percent/Pods per period) are not
  modelled.
* Status (currentReplicas, desiredReplicas, currentMetrics, lastScaleTime), the conditions AbleToScale,
  ScalingActive and ScalingLimited, and the events SuccessfulRescale / FailedGet*Metric, worded as the real
  controller writes them.
"""
from __future__ import annotations

import json
import math
import urllib.parse

from . import quantity
from .aggregator import Aggregator
from .controllers.manager import Controller
from .errors import ApiError
from .routing import RouteError
from .selectors import label_selector_predicate

HPAS = ("autoscaling", "horizontalpodautoscalers")
PODS = ("", "pods")
TARGETS = {"Deployment": ("apps", "deployments"), "StatefulSet": ("apps", "statefulsets"),
           "ReplicaSet": ("apps", "replicasets")}
SYNC_SECONDS = 15.0
TOLERANCE = 0.1
DEFAULT_DOWN_WINDOW = 300.0


class MetricError(Exception):
    def __init__(self, reason, message):
        super(MetricError, self).__init__(message)
        self.reason = reason


def _milli(value):
    """A Quantity (or a plain number) in thousandths, as a float."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value) * 1000
    try:
        return float(quantity.parse(str(value))[0]) * 1000
    except quantity.QuantityError:
        return float(value) * 1000


def _fmt_milli(milli):
    milli = int(round(milli))
    return str(milli // 1000) if milli % 1000 == 0 else "%dm" % milli


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"
    component = "horizontal-pod-autoscaler"

    def __init__(self, manager, sim):
        super(HorizontalPodAutoscalerController, self).__init__(manager)
        self.sim = sim
        self.aggregator = Aggregator(sim)
        self.recommendations = {}      # key -> [(sim time, replicas)]
        self.routes[HPAS] = self._on_change

    def _on_change(self, event):
        obj = event.obj if event.obj is not None else event.old
        if obj is not None and event.type == "ADDED":
            self.enqueue((obj["metadata"].get("namespace"), obj["metadata"]["name"]))

    def initial_keys(self):
        if not self.served(HPAS):
            return ()
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.store.list(HPAS)[0]]

    # ----------------------------------------------------------------------------- metrics APIs
    def _api(self, group, path, query=""):
        for version in ("v1beta1", "v1beta2"):
            apiservice = self.aggregator._lookup(group, version)  # pylint: disable=protected-access
            if apiservice is None:
                continue
            try:
                status, _headers, body = self.aggregator._call(  # pylint: disable=protected-access
                    apiservice, "GET", "/apis/%s/%s%s" % (group, version, path), query, {"Accept": "application/json"}, b"")
            except (RouteError, ApiError) as exc:
                raise MetricError("unavailable", 'the server is currently unable to handle the request (get %s): %s'
                                  % (group, exc)) from exc
            if status != 200:
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
                try:
                    text = json.loads(text).get("message") or text
                except (ValueError, AttributeError):
                    pass
                raise MetricError("status", text)
            return json.loads(body)
        raise MetricError("unserved", "no APIService serves %s" % group)

    # ----------------------------------------------------------------------------- one metric
    def _pods_metric(self, ns, metric, pods):
        selector = (metric.get("metric") or {}).get("selector")
        query = urllib.parse.urlencode({"metricLabelSelector": _selector_string(selector)}) if selector else ""
        doc = self._api("custom.metrics.k8s.io", "/namespaces/%s/pods/*/%s" % (ns, metric["metric"]["name"]), query)
        names = {p["metadata"]["name"] for p in pods}
        values = [_milli(item["value"]) for item in doc.get("items") or () if item["describedObject"]["name"] in names]
        if not values:
            raise MetricError("status", "no metrics returned from custom metrics API")
        return sum(values) / len(values), len(values)

    def _resource_metric(self, ns, name, pods, container=None):
        doc = self._api("metrics.k8s.io", "/namespaces/%s/pods" % ns)
        usage = {}
        for item in doc.get("items") or ():
            usage[item["metadata"]["name"]] = sum(
                _milli((c.get("usage") or {}).get(name, 0)) for c in item.get("containers") or ()
                if container is None or c.get("name") == container)
        total, requests, counted = 0.0, 0.0, 0
        for pod in pods:
            if pod["metadata"]["name"] not in usage:
                continue
            counted += 1
            total += usage[pod["metadata"]["name"]]
            for c in (pod.get("spec") or {}).get("containers") or ():
                if container is None or c.get("name") == container:
                    requests += _milli(((c.get("resources") or {}).get("requests") or {}).get(name, 0))
        if not counted:
            raise MetricError("status", "no metrics returned from resource metrics API")
        return total, requests, counted

    def _evaluate(self, hpa, metric, pods, current):
        """(desired replicas, currentMetric status entry, description) for one metric spec."""
        ns = hpa["metadata"]["namespace"]
        mtype = metric.get("type")
        if mtype == "Pods":
            spec = metric["pods"]
            avg, count = self._pods_metric(ns, spec, pods)
            target = _milli(spec["target"].get("averageValue"))
            ratio = avg / target if target else 0
            desired = current if abs(ratio - 1.0) <= TOLERANCE else int(math.ceil(ratio * count))
            status = {"type": "Pods", "pods": {"metric": dict(spec["metric"]), "current": {"averageValue": _fmt_milli(avg)}}}
            return desired, status, "pods metric %s" % spec["metric"]["name"]
        if mtype in ("Resource", "ContainerResource"):
            spec = metric.get("resource") or metric.get("containerResource")
            total, requests, count = self._resource_metric(ns, spec["name"], pods, spec.get("container"))
            target = spec["target"]
            if target.get("type") == "Utilization":
                if not requests:
                    raise MetricError("requests", "missing request for %s" % spec["name"])
                util = int(round(100.0 * total / requests))
                ratio = util / float(target.get("averageUtilization") or 100)
                current_entry = {"averageUtilization": util, "averageValue": _fmt_milli(total / count)}
            else:
                ratio = (total / count) / (_milli(target.get("averageValue")) or 1)
                current_entry = {"averageValue": _fmt_milli(total / count)}
            desired = current if abs(ratio - 1.0) <= TOLERANCE else int(math.ceil(ratio * count))
            key = "resource" if mtype == "Resource" else "containerResource"
            return desired, {"type": mtype, key: {"name": spec["name"], "current": current_entry}}, \
                "%s resource utilization (percentage of request)" % spec["name"]
        if mtype == "External":
            spec = metric["external"]
            selector = spec["metric"].get("selector")
            query = urllib.parse.urlencode({"labelSelector": _selector_string(selector)}) if selector else ""
            doc = self._api("external.metrics.k8s.io", "/namespaces/%s/%s" % (ns, spec["metric"]["name"]), query)
            total = sum(_milli(item["value"]) for item in doc.get("items") or ())
            if not doc.get("items"):
                raise MetricError("status", "no metrics returned from external metrics API")
            if spec["target"].get("averageValue") is not None:
                ratio = total / (_milli(spec["target"]["averageValue"]) * current or 1)
                entry = {"averageValue": _fmt_milli(total / max(current, 1))}
            else:
                ratio = total / (_milli(spec["target"].get("value")) or 1)
                entry = {"value": _fmt_milli(total)}
            desired = current if abs(ratio - 1.0) <= TOLERANCE else int(math.ceil(ratio * current))
            return desired, {"type": "External", "external": {"metric": dict(spec["metric"]), "current": entry}}, \
                "external metric %s" % spec["metric"]["name"]
        if mtype == "Object":
            spec = metric["object"]
            ref = spec["describedObject"]
            resource = {"Service": "services", "Deployment": "deployments", "Pod": "pods"}.get(ref["kind"], ref["kind"].lower() + "s")
            doc = self._api("custom.metrics.k8s.io", "/namespaces/%s/%s/%s/%s" % (ns, resource, ref["name"], spec["metric"]["name"]))
            items = doc.get("items") or [doc]
            value = _milli(items[0].get("value"))
            if spec["target"].get("averageValue") is not None:
                ratio = value / (_milli(spec["target"]["averageValue"]) * current or 1)
            else:
                ratio = value / (_milli(spec["target"].get("value")) or 1)
            desired = current if abs(ratio - 1.0) <= TOLERANCE else int(math.ceil(ratio * current))
            return desired, {"type": "Object", "object": {"metric": dict(spec["metric"]), "describedObject": dict(ref),
                                                          "current": {"value": _fmt_milli(value)}}}, \
                "%s metric %s" % (ref["kind"], spec["metric"]["name"])
        raise MetricError("invalid", "unknown metric source type %r" % mtype)

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        namespace, name = key
        hpa = self.read(HPAS, namespace, name)
        if hpa is None or hpa["metadata"].get("deletionTimestamp"):
            self.recommendations.pop(key, None)
            return
        self.enqueue_after(SYNC_SECONDS, key)
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        gr = TARGETS.get(ref.get("kind"))
        target = self.read(gr, namespace, ref.get("name")) if gr else None
        now = self.clock.now()
        old = hpa.get("status") or {}
        conditions = {c["type"]: c for c in old.get("conditions") or ()}
        if target is None:
            resource, group = (gr[1], gr[0]) if gr else (ref.get("kind", "").lower(), "")
            message = 'the HPA controller was unable to get the target\'s current scale: %s.%s "%s" not found' % (
                resource, group, ref.get("name"))
            self._set(hpa, old, conditions, now, [("AbleToScale", "False", "FailedGetScale", message)],
                      old.get("currentReplicas", 0), old.get("desiredReplicas", 0), old.get("currentMetrics"))
            self.event(hpa, "Warning", "FailedGetScale", '%s "%s" not found' % (ref.get("kind"), ref.get("name")))
            return
        current = int((target.get("spec") or {}).get("replicas", 1))
        selector = label_selector_predicate((target.get("spec") or {}).get("selector"))
        pods = [p for p in self.store.list(PODS, namespace=namespace)[0]
                if selector(p["metadata"].get("labels") or {}) and not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") == "Running"]
        low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
        if current == 0:
            self._set(hpa, old, conditions, now, [("ScalingActive", "False", "ScalingDisabled",
                                                   "scaling is disabled since the replica count of the target is zero")],
                      0, 0, None)
            return
        proposals, statuses, failure = [], [], None
        for metric in spec.get("metrics") or [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]:
            try:
                proposals.append(self._evaluate(hpa, metric, pods, current))
                statuses.append(proposals[-1][1])
            except MetricError as exc:
                failure = (metric, exc)
        if not proposals:
            metric, exc = failure
            reason, message = _failure_words(metric, exc)
            self.event(hpa, "Warning", reason, message)
            self._set(hpa, old, conditions, now, [("AbleToScale", "True", "SucceededGetScale",
                                                   "the HPA controller was able to get the target's current scale"),
                                                  ("ScalingActive", "False", reason,
                                                   "the HPA was unable to compute the replica count: %s" % message)],
                      current, current, None)
            return
        desired, _status, about = max(proposals, key=lambda p: p[0])
        limited = None
        if desired > high:
            desired, limited = high, ("True", "TooManyReplicas", "the desired replica count is more than the maximum replica count")
        elif desired < low:
            desired, limited = low, ("True", "TooFewReplicas", "the desired replica count is less than the minimum replica count")
        history = [(t, r) for t, r in self.recommendations.get(key, []) if now - t <= 3600] + [(now, desired)]
        self.recommendations[key] = history
        behavior = spec.get("behavior") or {}
        down_window = float(((behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds", DEFAULT_DOWN_WINDOW)))
        up_window = float(((behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds", 0)))
        stabilized = desired
        able = ("True", "ReadyForNewScale", "recommended size matches current size")
        if desired < current:
            stabilized = min(current, max(r for t, r in history if now - t <= down_window))
            if stabilized != desired:
                able = ("True", "ScaleDownStabilized",
                        "recent recommendations were higher than current one, applying the highest recent recommendation")
        elif desired > current:
            stabilized = max(current, min(r for t, r in history if now - t <= up_window))
            if stabilized != desired:
                able = ("True", "ScaleUpStabilized",
                        "recent recommendations were lower than current one, applying the lowest recent recommendation")
        last_scale = old.get("lastScaleTime")
        if stabilized != current:
            fresh = dict(target)
            fresh["spec"] = dict(target["spec"], replicas=stabilized)
            self.store.update(gr, fresh)
            reason = ("%s above target" % about) if stabilized > current else "All metrics below target"
            self.event(hpa, "Normal", "SuccessfulRescale", "New size: %d; reason: %s" % (stabilized, reason))
            able = ("True", "SucceededRescale", "the HPA controller was able to update the target scale to %d" % stabilized)
            last_scale = self.clock.timestamp()
        updates = [("AbleToScale",) + able,
                   ("ScalingActive", "True", "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from %s" % about),
                   ("ScalingLimited",) + (limited or ("False", "DesiredWithinRange", "the desired count is within the acceptable range"))]
        self._set(hpa, old, conditions, now, updates, current, stabilized, statuses, last_scale)

    def _set(self, hpa, old, conditions, now, updates, current, desired, metrics, last_scale=None):
        del now
        stamp = self.clock.timestamp()
        for ctype, status, reason, message in updates:
            prev = conditions.get(ctype)
            conditions[ctype] = {"type": ctype, "status": status, "reason": reason, "message": message,
                                 "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status
                                 else stamp}
        order = ("AbleToScale", "ScalingActive", "ScalingLimited")
        status = {"currentReplicas": current, "desiredReplicas": desired,
                  "conditions": [conditions[c] for c in order if c in conditions]}
        if metrics:
            status["currentMetrics"] = metrics
        if last_scale or old.get("lastScaleTime"):
            status["lastScaleTime"] = last_scale or old.get("lastScaleTime")
        status["observedGeneration"] = hpa["metadata"].get("generation", 1)
        self.write_status(HPAS, hpa, status)


def _selector_string(selector):
    parts = ["%s=%s" % kv for kv in sorted((selector.get("matchLabels") or {}).items())]
    for exp in selector.get("matchExpressions") or ():
        op = exp.get("operator")
        if op in ("In", "NotIn"):
            parts.append("%s %s (%s)" % (exp["key"], op.lower().replace("notin", "notin"), ",".join(exp.get("values") or [])))
        elif op == "Exists":
            parts.append(exp["key"])
        elif op == "DoesNotExist":
            parts.append("!" + exp["key"])
    return ",".join(parts)


def _failure_words(metric, exc):
    mtype = metric.get("type")
    if mtype == "Pods":
        name = metric["pods"]["metric"]["name"]
        return "FailedGetPodsMetric", "unable to get metric %s: unable to fetch metrics from custom metrics API: %s" % (name, exc)
    if mtype in ("Resource", "ContainerResource"):
        name = (metric.get("resource") or metric.get("containerResource"))["name"]
        return "FailedGetResourceMetric", ("failed to get %s utilization: unable to get metrics for resource %s: unable to "
                                           "fetch metrics from resource metrics API: %s" % (name, name, exc))
    if mtype == "External":
        name = metric["external"]["metric"]["name"]
        return "FailedGetExternalMetric", "unable to get external metric %s: %s" % (name, exc)
    if mtype == "Object":
        return "FailedGetObjectMetric", "unable to get metric %s: %s" % (metric["object"]["metric"]["name"], exc)
    return "InvalidMetricSourceType", str(exc)
