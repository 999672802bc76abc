"""Event recording (core/v1 Event objects) with the real correlator's aggregation, and their TTL.

Like client-go's EventRecorder, a repeat of the same (source, object, type, reason, message) updates
`count` and `lastTimestamp` of the first event instead of creating a new object. Events expire after
an hour of simulated time, as the API server's event TTL does. Writing an event never fails the
caller: a namespace that is terminating refuses new events, and that is simply dropped.
"""
from __future__ import annotations

import collections
import threading

from ..errors import ApiError
from .manager import Controller

EVENTS = ("", "events")
EVENT_TTL = 3600.0


class EventRecorder(object):
    def __init__(self, manager):
        self.manager = manager
        self.store = manager.store
        self.clock = manager.clock
        self._lock = threading.Lock()
        self._seen = {}                     # correlation key -> (namespace, name)
        self.ttl = EventTTL(manager, self)

    def event(self, obj, etype, reason, message, component, host=None, field_path=None, action=None):
        """Record an event about `obj` (a stored object dict)."""
        if EVENTS not in self.store.types:
            return
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        involved = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta["name"],
                    "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        if meta.get("namespace"):
            involved["namespace"] = meta["namespace"]
        if field_path:
            involved["fieldPath"] = field_path
        key = (component, host, meta.get("uid"), field_path, etype, reason, message)
        now = self.clock.now()
        try:
            if not self._bump(key, now):
                self._create(key, namespace, involved, etype, reason, message, component, host, action, now)
        except ApiError:
            pass

    def _bump(self, key, now):
        with self._lock:
            ref = self._seen.get(key)
        if ref is None:
            return False
        try:
            ev = self.store.get(EVENTS, ref[0], ref[1])
        except ApiError:
            with self._lock:
                self._seen.pop(key, None)
            return False
        ev["count"] = int(ev.get("count") or 1) + 1
        ev["lastTimestamp"] = self.clock.timestamp(now)
        self.store.update(EVENTS, ev, force=True)
        self.ttl.track(ref, now)
        return True

    def _create(self, key, namespace, involved, etype, reason, message, component, host, action, now):
        name = "%s.%x" % (involved["name"], int(now * 1e9))
        stamp = self.clock.timestamp(now)
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": etype,
            "source": {"component": component},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "eventTime": None,
            "reportingComponent": component, "reportingInstance": host or "",
        }
        if host:
            ev["source"]["host"] = host
        if action:
            ev["action"] = action
        try:
            self.store.create(EVENTS, ev)
        except ApiError as exc:
            if exc.code != 409:
                raise
            ev["metadata"]["name"] = "%s.%x" % (involved["name"], int(now * 1e9) + 1)
            self.store.create(EVENTS, ev)
        with self._lock:
            self._seen[key] = (namespace, ev["metadata"]["name"])
            if len(self._seen) > 50000:
                self._seen.clear()
        self.ttl.track((namespace, ev["metadata"]["name"]), now)


class EventTTL(Controller):
    """Deletes events an hour (simulated) after their last update."""

    name = "event-ttl"

    def __init__(self, manager, recorder):
        super().__init__(manager)
        self.recorder = recorder
        self._expiry = collections.deque()
        self._latest = {}
        self._lock = threading.Lock()

    def track(self, ref, now):
        with self._lock:
            self._latest[ref] = now
            self._expiry.append((now + EVENT_TTL, ref))
        self.enqueue_after(EVENT_TTL, "expire")

    def reconcile(self, key):
        now = self.clock.now()
        due = []
        with self._lock:
            while self._expiry and self._expiry[0][0] <= now:
                ref = self._expiry.popleft()[1]
                last = self._latest.get(ref)
                if last is not None and last + EVENT_TTL <= now:
                    del self._latest[ref]
                    due.append(ref)
            nxt = self._expiry[0][0] - now if self._expiry else None
        for namespace, name in due:
            try:
                self.store.delete(EVENTS, namespace, name)
            except ApiError:
                pass
        if nxt is not None:
            self.enqueue_after(nxt, "expire")
