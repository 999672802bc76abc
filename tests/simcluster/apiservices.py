"""The kube-aggregator's availability controller: keeps each APIService's Available condition true to its
backend (prometheus-adapter's custom.metrics.k8s.io, Kueue's visibility API, ...).

An APIService backed by a Service is Available once a ready endpoint answers its discovery document;
otherwise False with the real reasons (ServiceNotFound, MissingEndpoints, FailedDiscoveryCheck). The real
controller re-checks on Service/Endpoint changes and periodically; so does this one (every few simulated
seconds), because a backend app may start answering without any object changing.
"""
from __future__ import annotations

from .aggregator import APISERVICES, Aggregator
from .controllers.manager import Controller

RECHECK_SECONDS = 5.0
KEY = "all"


class APIServiceAvailability(Controller):
    name = "apiservice-availability"

    def __init__(self, manager, sim):
        super(APIServiceAvailability, self).__init__(manager)
        self.aggregator = Aggregator(sim)
        for gr in (APISERVICES, ("", "services"), ("discovery.k8s.io", "endpointslices")):
            self.routes[gr] = self._on_change

    def _on_change(self, event):
        del event
        self.enqueue(KEY)

    def initial_keys(self):
        return (KEY,)

    def reconcile(self, key):
        self.aggregator.refresh_status()
        self.enqueue_after(RECHECK_SECONDS, key)
