"""ServiceAccount and root-CA publisher controllers: every active namespace gets the `default`
ServiceAccount and the `kube-root-ca.crt` ConfigMap (recreated if deleted, as the real ones do)."""
from __future__ import annotations

import copy

from ..errors import ApiError
from .manager import NAMESPACES, Controller

SERVICEACCOUNTS = ("", "serviceaccounts")
CONFIGMAPS = ("", "configmaps")
ROOT_CA = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


class ServiceAccountController(Controller):
    name = "serviceaccount"
    component = "serviceaccount-controller"

    def __init__(self, manager):
        super().__init__(manager)
        self.routes = {NAMESPACES: self._on_namespace, SERVICEACCOUNTS: self._on_owned, CONFIGMAPS: self._on_owned}

    def initial_keys(self):
        return [ns["metadata"]["name"] for ns in self.store.list(NAMESPACES)[0]]

    def _on_namespace(self, event):
        if event.type == "ADDED":
            self.enqueue(event.obj["metadata"]["name"])

    def _on_owned(self, event):
        name = event.obj["metadata"]["name"]
        if name in ("default", ROOT_CA) and event.type != "ADDED":
            self.enqueue(event.obj["metadata"]["namespace"])

    def reconcile(self, key):
        ns = self.read(NAMESPACES, "", key)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return
        if self.served(SERVICEACCOUNTS) and self.read(SERVICEACCOUNTS, key, "default") is None:
            self._create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": "default", "namespace": key}})
        if self.served(CONFIGMAPS):
            data = {"ca.crt": getattr(self.manager.sim, "ca_pem", "") or ""}
            current = self.read(CONFIGMAPS, key, ROOT_CA)
            if current is None:
                self._create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": ROOT_CA, "namespace": key,
                                                       "annotations": {"kubernetes.io/description": DESCRIPTION}},
                                          "data": data})
            elif current.get("data") != data:
                fresh = copy.deepcopy(current)
                fresh["data"] = data
                self.store.update(CONFIGMAPS, fresh)

    def _create(self, gr, obj):
        try:
            self.store.create(gr, obj)
        except ApiError as exc:
            if exc.code not in (403, 409):     # 403: the namespace started terminating meanwhile
                raise
