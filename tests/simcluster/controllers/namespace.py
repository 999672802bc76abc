"""Namespace controller: empties a Terminating namespace, then finalizes it.

When a namespace has a deletionTimestamp and the `kubernetes` finalizer in spec.finalizers, every
namespaced object of every served type in it (custom resources included) is deleted with background
propagation (pods gracefully, through the kubelet). The status conditions report progress as the real
controller words them (NamespaceDeletionDiscoveryFailure, NamespaceDeletionGroupVersionParsingFailure,
NamespaceDeletionContentFailure, NamespaceContentRemaining, NamespaceFinalizersRemaining). Once
nothing is left, `kubernetes` is removed from spec.finalizers (what the finalize subresource does)
and the namespace disappears.
"""
from __future__ import annotations

import copy

from ..errors import ApiError
from . import podutil
from .manager import NAMESPACES, Controller

RECHECK = 5.0


class NamespaceController(Controller):
    name = "namespace"
    component = "namespace-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {NAMESPACES: self._on_namespace, None: self._on_any}
        self._terminating = set()

    def initial_keys(self):
        keys = []
        for ns in self.store.list(NAMESPACES)[0]:
            if ns["metadata"].get("deletionTimestamp"):
                self._terminating.add(ns["metadata"]["name"])
                keys.append(ns["metadata"]["name"])
        return keys

    def _on_namespace(self, event):
        name = event.obj["metadata"]["name"]
        if event.type == "DELETED":
            self._terminating.discard(name)
        elif event.obj["metadata"].get("deletionTimestamp"):
            if name not in self._terminating:
                self._terminating.add(name)
                self.enqueue(name)

    def _on_any(self, event):
        namespace = event.obj["metadata"].get("namespace")
        if namespace and namespace in self._terminating and event.gr != ("", "events"):
            if event.type == "DELETED" or event.obj["metadata"].get("finalizers") != \
                    (event.old or {}).get("metadata", {}).get("finalizers"):
                self.enqueue(namespace)

    def reconcile(self, key):
        ns = self.read(NAMESPACES, "", key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if "kubernetes" not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        remaining, finalizers = self._delete_content(key)
        if not remaining:
            fresh = copy.deepcopy(ns)
            fresh["spec"]["finalizers"] = [f for f in fresh["spec"]["finalizers"] if f != "kubernetes"]
            self.store.update(NAMESPACES, fresh)
            return
        self._report(ns, remaining, finalizers)
        self.enqueue_after(RECHECK, key)

    def _delete_content(self, namespace):
        """Delete what is left; return ({resource label: count}, {finalizer: count}) still present."""
        remaining, finalizers = {}, {}
        for gr in self.store.namespaces_in_use(namespace):
            items = list(self.store.list(gr, namespace=namespace)[0])
            if not items:
                continue
            label = "%s.%s" % (gr[1], gr[0])
            for obj in items:
                if not obj["metadata"].get("deletionTimestamp"):
                    try:
                        removed = self.store.delete(gr, namespace, obj["metadata"]["name"],
                                                    propagation="Background")[1]
                    except ApiError as exc:
                        if exc.code == 404:
                            continue
                        raise
                    if removed:
                        continue
                remaining[label] = remaining.get(label, 0) + 1
                current = self.read(gr, namespace, obj["metadata"]["name"])
                for finalizer in (current or {}).get("metadata", {}).get("finalizers") or ():
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
        return remaining, finalizers

    def _report(self, ns, remaining, finalizers):
        stamp = self.clock.timestamp()
        conditions = copy.deepcopy((ns.get("status") or {}).get("conditions") or [])
        podutil.set_condition(conditions, "NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
                              "All resources successfully discovered", stamp)
        podutil.set_condition(conditions, "NamespaceDeletionGroupVersionParsingFailure", "False",
                              "ParsedGroupVersions", "All legacy kube types successfully parsed", stamp)
        podutil.set_condition(conditions, "NamespaceDeletionContentFailure", "False", "ContentDeleted",
                              "All content successfully deleted, may be waiting on finalization", stamp)
        podutil.set_condition(conditions, "NamespaceContentRemaining", "True", "SomeResourcesRemain",
                              "Some resources are remaining: %s" % ", ".join(
                                  "%s has %d resource instances" % item for item in sorted(remaining.items())),
                              stamp)
        if finalizers:
            podutil.set_condition(conditions, "NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                                  "Some content in the namespace has finalizers remaining: %s" % ", ".join(
                                      "%s in %d resource instances" % item for item in sorted(finalizers.items())),
                                  stamp)
        else:
            podutil.set_condition(conditions, "NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
                                  "All content-preserving finalizers finished", stamp)
        status = dict(ns.get("status") or {})
        status["phase"] = "Terminating"
        status["conditions"] = conditions
        self.write_status(NAMESPACES, ns, status)
