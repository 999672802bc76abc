"""The Prometheus operator (quay.io/prometheus-operator/prometheus-operator), as kube-prometheus-stack runs it.

What the real operator (prometheus-operator/prometheus-operator, pkg/prometheus/server and
pkg/alertmanager) does that the prometheus role and the checks rely on, and how far this app follows it:

* For every Prometheus it creates a StatefulSet `prometheus-<name>` (one per shard; shard 0 only here)
  with `spec.replicas` pods labelled `app.kubernetes.io/name=prometheus`, `app.kubernetes.io/instance`,
  `app.kubernetes.io/managed-by=prometheus-operator`, `operator.prometheus.io/name=<name>`,
  `operator.prometheus.io/shard=0` and `prometheus=<name>` (what the chart's Service selects), running
  `spec.image` on port `spec.portName` (9090) plus the config-reloader on `reloader-web` (8080); and the
  governing headless Service `prometheus-operated` (port `web`, 9090).
* For every Alertmanager the same with `alertmanager-<name>`, label `alertmanager=<name>`, port 9093,
  and Service `alertmanager-operated` (ports `web` 9093, `tcp-mesh` 9094).
* The StatefulSets are owned by their custom resource (garbage-collected with it). The resource's status
  gets `replicas`/`availableReplicas`/`updatedReplicas` and the `Available` and `Reconciled` conditions.
* Not modelled: configuration generation from ServiceMonitors/rules (the Secret and rule ConfigMaps),
  web TLS, sharding beyond shard 0, Thanos sidecars. What the Prometheus server then serves is up to the
  app registered for its image.
"""
from __future__ import annotations

import copy

from ..errors import ApiError

IMAGE_PATTERN = "*/prometheus-operator/prometheus-operator"
STATEFULSETS = ("apps", "statefulsets")
SERVICES = ("", "services")
RECONCILE_SECONDS = 5.0
RELOADER_IMAGE = "quay.io/prometheus-operator/prometheus-config-reloader"

# kind -> (group-resource, object prefix, label key, governing service, ports [(name, port)], default image)
KINDS = {
    "Prometheus": (("monitoring.coreos.com", "prometheuses"), "prometheus", "prometheus", "prometheus-operated",
                   [("web", 9090)], "quay.io/prometheus/prometheus"),
    "Alertmanager": (("monitoring.coreos.com", "alertmanagers"), "alertmanager", "alertmanager", "alertmanager-operated",
                     [("web", 9093), ("tcp-mesh", 9094)], "quay.io/prometheus/alertmanager"),
}


def _labels(kind, name):
    _gr, prefix, key, _svc, _ports, _image = KINDS[kind]
    labels = {"app.kubernetes.io/name": prefix, "app.kubernetes.io/instance": name,
              "app.kubernetes.io/managed-by": "prometheus-operator", key: name}
    if kind == "Prometheus":
        labels.update({"operator.prometheus.io/name": name, "operator.prometheus.io/shard": "0"})
    return labels


def statefulset_for(kind, obj, operator_version):
    """The StatefulSet the operator makes for a Prometheus or Alertmanager resource."""
    _gr, prefix, _key, service, ports, default_image = KINDS[kind]
    meta, spec = obj["metadata"], obj.get("spec") or {}
    name = meta["name"]
    labels = _labels(kind, name)
    pod_meta = spec.get("podMetadata") or {}
    image = spec.get("image") or "%s:%s" % (default_image, spec.get("version") or "latest")
    port_name = spec.get("portName") or "web"
    container_ports = [{"name": port_name if pname == "web" else pname, "containerPort": port, "protocol": "TCP"}
                       for pname, port in ports]
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "%s-%s" % (prefix, name), "namespace": meta["namespace"], "labels": dict(labels),
                     "ownerReferences": [{"apiVersion": obj["apiVersion"], "kind": kind, "name": name, "uid": meta["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "serviceName": service,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(pod_meta.get("labels") or {}, **labels),
                             "annotations": dict(pod_meta.get("annotations") or {})},
                "spec": {
                    "serviceAccountName": spec.get("serviceAccountName") or "default",
                    "nodeSelector": copy.deepcopy(spec.get("nodeSelector") or {}),
                    "tolerations": copy.deepcopy(spec.get("tolerations") or []),
                    "containers": [
                        {"name": prefix, "image": image, "ports": container_ports,
                         "resources": copy.deepcopy(spec.get("resources") or {})},
                        {"name": "config-reloader", "image": "%s:%s" % (RELOADER_IMAGE, operator_version),
                         "ports": [{"name": "reloader-web", "containerPort": 8080, "protocol": "TCP"}]},
                    ],
                },
            },
        },
    }


def governing_service(kind, namespace):
    _gr, prefix, _key, service, ports, _image = KINDS[kind]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service, "namespace": namespace, "labels": {"operated-" + prefix: "true",
                                                                             "managed-by": "prometheus-operator"}},
            "spec": {"clusterIP": "None", "selector": {"app.kubernetes.io/name": prefix},
                     "ports": [{"name": pname, "port": port, "targetPort": pname if pname != "web" else port}
                               for pname, port in ports]}}


def status_for(obj, sts):
    """The resource's status from its StatefulSet, as the operator reports it."""
    want = int((obj.get("spec") or {}).get("replicas", 1))
    st = (sts or {}).get("status") or {}
    available = int(st.get("availableReplicas", st.get("readyReplicas", 0)) or 0)
    ok = sts is not None and available >= want
    generation = obj["metadata"].get("generation")
    conditions = [
        {"type": "Available", "status": "True" if ok else "False", "observedGeneration": generation,
         "reason": "" if ok else "NoPodReady" if available == 0 else "SomePodsNotReady",
         "message": "" if ok else "%d/%d replicas available" % (available, want)},
        {"type": "Reconciled", "status": "True", "observedGeneration": generation, "reason": "", "message": ""},
    ]
    return {"replicas": int(st.get("replicas", 0) or 0), "availableReplicas": available,
            "updatedReplicas": int(st.get("updatedReplicas", 0) or 0), "unavailableReplicas": max(want - available, 0),
            "paused": False, "conditions": conditions}


class Reconciler(object):
    def __init__(self, sim, operator_version):
        self.store = sim.store
        self.clock = sim.clock
        self.operator_version = operator_version

    def run(self):
        for kind, (gr, _prefix, _key, _svc, _ports, _image) in KINDS.items():
            if gr not in self.store.types:
                continue
            for obj in [copy.deepcopy(o) for o in self.store.list(gr)[0]]:
                if not obj["metadata"].get("deletionTimestamp"):
                    self._reconcile(kind, gr, obj)

    def _ensure(self, gr, obj):
        meta = obj["metadata"]
        live = self.store.try_get(gr, meta["namespace"], meta["name"])
        if live is None:
            try:
                live = self.store.create(gr, obj)
            except ApiError:
                return None
        return live

    def _reconcile(self, kind, gr, obj):
        namespace = obj["metadata"]["namespace"]
        self._ensure(SERVICES, governing_service(kind, namespace))
        desired = statefulset_for(kind, obj, self.operator_version)
        live = self._ensure(STATEFULSETS, desired)
        if live is not None and live["spec"].get("replicas") != desired["spec"]["replicas"]:
            live["spec"]["replicas"] = desired["spec"]["replicas"]
            try:
                live = self.store.update(STATEFULSETS, live)
            except ApiError:
                return
        status = status_for(obj, live)
        old = obj.get("status") or {}
        if all(old.get(k) == v for k, v in status.items() if k != "conditions") and \
                [(c["type"], c["status"], c.get("reason")) for c in old.get("conditions") or []] == \
                [(c["type"], c["status"], c.get("reason")) for c in status["conditions"]]:
            return
        stamp = self.clock.timestamp()
        for condition in status["conditions"]:
            condition["lastTransitionTime"] = stamp
        obj["status"] = status
        try:
            self.store.update(gr, obj, subresource="status")
        except ApiError:
            pass  # changed meanwhile: the next pass writes again


def operator_app(proc):
    """The image runs nothing but the operator (its entrypoint; the chart passes flags only)."""
    if proc.init:
        return None
    return _operator(proc)


def _operator(proc):
    image = proc.container.get("image") or ""
    version = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    reconciler = Reconciler(proc.runtime.sim, version)
    proc.write('level=info caller=main.go:218 msg="Starting Prometheus Operator" version="(version=%s)"\n' % version)
    for port in [int(p["containerPort"]) for p in proc.container.get("ports") or () if p.get("containerPort")]:
        proc.listen(port, lambda req: (200, {"Content-Type": "text/plain"}, "ok"))
    while True:  # like the real operator: runs until the pod stops
        reconciler.run()
        yield RECONCILE_SECONDS


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, operator_app)
