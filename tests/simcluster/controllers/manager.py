"""The controller manager: work queues, a timer heap on the simulated clock, shared indexes.

Every controller follows the client-go pattern: the store's subscription callback (which runs under
the store lock) only maps an event to keys and enqueues them; a worker thread per controller takes
keys off its de-duplicating queue and reconciles the object to its desired state, level-triggered
(it reads the current state, never the event). Delayed work (a container that exits in 30 s, a job's
back-off) goes into one timer heap measured on `sim.clock`, so tests that speed the clock up speed
everything up. Errors are logged and retried with exponential back-off; they never stop a worker.

The shared `Index` keeps what the controllers would otherwise rescan the store for: every object by
uid, dependents by owner uid, pods by node. It is updated inside the subscription callback, so it is
always consistent with the store at the moment a worker reads it under the store lock.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import threading
import time
import traceback

from ..errors import ApiError

PODS = ("", "pods")
NODES = ("", "nodes")
NAMESPACES = ("", "namespaces")

_MAX_WAIT = 0.25          # real seconds: the longest a sleeping thread waits before re-checking
_BACKOFF_BASE = 0.005     # real seconds for the first retry after an error
_BACKOFF_MAX = 5.0


class WorkQueue(object):
    """A de-duplicating FIFO of keys (client-go's workqueue semantics).

    A key added while it is being processed is processed again once `done()` is called, never by two
    workers at the same time.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._queue = collections.deque()
        self._dirty = set()
        self._processing = set()
        self._shutdown = False

    def add(self, key):
        with self._cond:
            if self._shutdown or key in self._dirty:
                return
            self._dirty.add(key)
            if key in self._processing:
                return
            self._queue.append(key)
            self._cond.notify()

    def get(self, timeout):
        """The next key, or None after `timeout` real seconds or on shutdown."""
        with self._cond:
            if not self._queue and not self._shutdown:
                self._cond.wait(timeout)
            if self._shutdown or not self._queue:
                return None
            key = self._queue.popleft()
            self._dirty.discard(key)
            self._processing.add(key)
            return key

    def done(self, key):
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutdown:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self):
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def __len__(self):
        with self._cond:
            return len(self._queue)


class Timers(object):
    """Delayed enqueues on the simulated clock, run by one thread.

    Only the earliest pending due time per (queue, key) is kept: a reconcile always reschedules what it
    still needs, so later requests for a key that already has an earlier wake-up are dropped. The thread
    waits at most `_MAX_WAIT` real seconds at a time so that `clock.advance()` jumps are noticed.
    """

    def __init__(self, clock):
        self.clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._heap = []
        self._due = {}
        self._seq = itertools.count()
        self._stopped = False
        self._thread = None

    def add(self, delay, queue, key):
        due = self.clock.now() + max(0.0, float(delay))
        ident = (id(queue), key)
        with self._cond:
            current = self._due.get(ident)
            if current is not None and current <= due:
                return
            self._due[ident] = due
            heapq.heappush(self._heap, (due, next(self._seq), queue, key))
            if self._heap[0][0] == due:
                self._cond.notify()

    def start(self):
        self._thread = threading.Thread(target=self._run, name="simcluster-timers", daemon=True)
        self._thread.start()

    def stop(self):
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(2)

    def pending(self):
        with self._cond:
            return len(self._due)

    def _run(self):
        while True:
            fire = []
            with self._cond:
                if self._stopped:
                    return
                now = self.clock.now()
                while self._heap and self._heap[0][0] <= now:
                    due, _seq, queue, key = heapq.heappop(self._heap)
                    ident = (id(queue), key)
                    if self._due.get(ident) == due:
                        del self._due[ident]
                        fire.append((queue, key))
                if not fire:
                    wait = _MAX_WAIT
                    if self._heap:
                        wait = min(wait, self.clock.real_seconds(self._heap[0][0] - now))
                    self._cond.wait(max(wait, 0.001))
            for queue, key in fire:
                queue.add(key)


class Index(object):
    """Cross-type lookups kept current from store events (all methods run under the store lock).

    uids:       uid -> (gr, namespace, name) of every stored object
    dependents: owner uid -> {(gr, namespace, name)} of objects naming it in ownerReferences
    pods_by_node: node name -> {(namespace, name)} of pods bound to it
    """

    def __init__(self):
        self.uids = {}
        self.dependents = collections.defaultdict(set)
        self.pods_by_node = collections.defaultdict(set)

    def add(self, gr, obj):
        meta = obj["metadata"]
        ref = (gr, meta.get("namespace") or "", meta["name"])
        self.uids[meta["uid"]] = ref
        for owner in meta.get("ownerReferences") or ():
            self.dependents[owner.get("uid")].add(ref)
        if gr == PODS:
            node = (obj.get("spec") or {}).get("nodeName")
            if node:
                self.pods_by_node[node].add(ref[1:])

    def remove(self, gr, obj):
        meta = obj["metadata"]
        ref = (gr, meta.get("namespace") or "", meta["name"])
        if self.uids.get(meta["uid"]) == ref:
            del self.uids[meta["uid"]]
        for owner in meta.get("ownerReferences") or ():
            deps = self.dependents.get(owner.get("uid"))
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self.dependents[owner.get("uid")]
        if gr == PODS:
            node = (obj.get("spec") or {}).get("nodeName")
            if node and node in self.pods_by_node:
                self.pods_by_node[node].discard(ref[1:])
                if not self.pods_by_node[node]:
                    del self.pods_by_node[node]

    def apply(self, event):
        if event.old is not None:
            self.remove(event.gr, event.old)
        if event.type != "DELETED":
            self.add(event.gr, event.obj)

    def drop_type(self, gr):
        """Forget every object of a type the store stopped serving; returns their uids."""
        gone = [uid for uid, ref in self.uids.items() if ref[0] == gr]
        for uid in gone:
            del self.uids[uid]
        for owner_uid in list(self.dependents):
            deps = self.dependents[owner_uid]
            for ref in [r for r in deps if r[0] == gr]:
                deps.discard(ref)
            if not deps:
                del self.dependents[owner_uid]
        return gone


class Controller(object):
    """Base class: one work queue, one worker thread, retries with back-off.

    Subclasses set `name`, fill `self.routes` ({gr: handler(event)}) in __init__ and implement
    `reconcile(key)`; `initial_keys()` yields the keys to sync when the manager starts.
    Handlers run under the store lock: they may only compute keys and call `self.enqueue`.
    """

    name = "controller"

    def __init__(self, manager):
        self.manager = manager
        self.store = manager.store
        self.clock = manager.clock
        self.queue = WorkQueue()
        self.routes = {}
        self._failures = {}
        self._thread = None
        self.reconciles = 0         # statistics for benchmarks and debugging
        self.busy_seconds = 0.0

    # ----------------------------------------------------------------------------- plumbing
    def enqueue(self, key):
        self.queue.add(key)

    def enqueue_after(self, sim_seconds, key):
        if sim_seconds <= 0:
            self.queue.add(key)
        else:
            self.manager.timers.add(sim_seconds, self.queue, key)

    def initial_keys(self):
        return ()

    def reconcile(self, key):
        raise NotImplementedError

    def start(self):
        self._thread = threading.Thread(target=self._work, name="simcluster-" + self.name, daemon=True)
        self._thread.start()

    def join(self, timeout):
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self):
        while not self.manager.stopping:
            key = self.queue.get(_MAX_WAIT)
            if key is None:
                continue
            began = time.monotonic()
            try:
                self.reconcile(key)
                self._failures.pop(key, None)
            except ApiError as exc:
                self._retry(key, exc, quiet=exc.code in (404, 409))
            except Exception as exc:  # pylint: disable=broad-except
                self._retry(key, exc, quiet=False)
            finally:
                self.queue.done(key)
                self.reconciles += 1
                self.busy_seconds += time.monotonic() - began

    def _retry(self, key, exc, quiet):
        """Log and requeue with exponential back-off (real seconds, converted to the sim clock)."""
        if self.manager.stopping:
            return
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        if not quiet or count > 5:
            detail = traceback.format_exc() if not isinstance(exc, ApiError) else str(exc)
            self.manager.log("%s: reconcile %r failed (attempt %d): %s" % (self.name, key, count, detail))
        delay = min(_BACKOFF_BASE * (2 ** (count - 1)), _BACKOFF_MAX)
        self.enqueue_after(delay * self.clock.speed, key)

    # ----------------------------------------------------------------------------- store helpers
    def read(self, gr, namespace, name):
        """The stored object (read-only) or None."""
        try:
            return self.store.get(gr, namespace, name, copy_=False)
        except ApiError:
            return None

    def served(self, gr):
        return gr in self.store.types

    def owned(self, owner, gr):
        """Stored objects of type `gr` whose ownerReferences name `owner` (by uid)."""
        with self.store.lock:
            refs = [r for r in self.manager.index.dependents.get(owner["metadata"]["uid"], ()) if r[0] == gr]
        out = []
        uid = owner["metadata"]["uid"]
        with self.store.lock:        # one lock hold for the whole walk (it is re-entrant)
            for _gr, namespace, name in refs:
                obj = self.read(gr, namespace, name)
                if obj is not None and any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or ()):
                    out.append(obj)
        return out

    def write_status(self, gr, obj, status):
        """Store `status` for the (read-only) stored `obj` when it changed; returns the stored object."""
        if (obj.get("status") or {}) == status:
            return obj
        fresh = dict(obj)           # shallow: the store deep-copies what it is given
        fresh["status"] = status
        return self.store.update(gr, fresh, subresource="status")

    def event(self, obj, etype, reason, message, component=None):
        self.manager.recorder.event(obj, etype, reason, message, component or self.component)

    component = "controller-manager"


class ControllerManager(object):
    """Builds the controllers, routes store events to them and runs their workers.

    `cluster.py` constructs it with the SimCluster and calls `start()` / `stop()`. Tests and later
    issues reach individual controllers as attributes (`scheduler`, `kubelet`, ...) or through
    `get(name)`.
    """

    def __init__(self, sim):
        # imported here: the controllers import this module for the base class
        from . import (daemonset, deployment, endpoints, events, gc, job, kubelet, namespace, replicaset,
                       scheduler, serviceaccount, statefulset)
        self.sim = sim
        self.store = sim.store
        self.clock = sim.clock
        self.stopping = False
        self.started = False
        self.timers = Timers(self.clock)
        self.index = Index()
        self.recorder = events.EventRecorder(self)
        self.scheduler = scheduler.Scheduler(self)
        self.kubelet = kubelet.Kubelet(self)
        self.controllers = [
            self.recorder.ttl,
            self.scheduler,
            self.kubelet,
            replicaset.ReplicaSetController(self),
            deployment.DeploymentController(self),
            daemonset.DaemonSetController(self),
            statefulset.StatefulSetController(self),
            job.JobController(self),
            endpoints.EndpointsController(self),
            namespace.NamespaceController(self),
            gc.GarbageCollector(self),
            serviceaccount.ServiceAccountController(self),
        ]
        self._routes = collections.defaultdict(list)
        self._all_types = []
        for ctrl in self.controllers:
            for gr, handler in ctrl.routes.items():
                if gr is None:
                    self._all_types.append(handler)
                else:
                    self._routes[gr].append(handler)

    def add_controller(self, ctrl):
        """Add a controller (a later issue's, e.g. the accelerators'); started at once if running."""
        self.controllers.append(ctrl)
        for gr, handler in ctrl.routes.items():
            (self._all_types if gr is None else self._routes[gr]).append(handler)
        if self.started:
            with self.store.lock:
                for key in ctrl.initial_keys():
                    ctrl.enqueue(key)
            ctrl.start()

    def get(self, name):
        for ctrl in self.controllers:
            if ctrl.name == name:
                return ctrl
        raise KeyError(name)

    def log(self, message):
        logger = getattr(self.sim, "log", None)
        if logger is not None:
            logger(message)

    def settings(self, section):
        settings = getattr(self.sim, "settings", None) or {}
        return settings.get(section) or {}

    # ----------------------------------------------------------------------------- lifecycle
    def start(self):
        """Index what the store holds, subscribe, queue an initial sync of every controller, run."""
        if self.started:
            return
        self.started = True
        with self.store.lock:
            for gr in list(self.store.types):
                items = self.store.list(gr)[0]
                for obj in items:
                    self.index.add(gr, obj)
            self.store.subscribe(self._on_event)
            self.store.on_type_change(self._on_type_change)
            for ctrl in self.controllers:
                for key in ctrl.initial_keys():
                    ctrl.enqueue(key)
        self.timers.start()
        for ctrl in self.controllers:
            ctrl.start()

    def stop(self):
        """Stop every worker promptly; pending work is dropped (the store keeps its state)."""
        self.stopping = True
        for ctrl in self.controllers:
            ctrl.queue.shutdown()
        self.timers.stop()
        for ctrl in self.controllers:
            ctrl.join(2)

    def _on_event(self, event):
        if self.stopping:
            return
        self.index.apply(event)
        for handler in self._routes.get(event.gr, ()):
            handler(event)
        for handler in self._all_types:
            handler(event)

    def _on_type_change(self, what, rtype):
        if self.stopping or what != "unregistered":
            return
        with self.store.lock:
            gone = self.index.drop_type(rtype.gr)
            for ctrl in self.controllers:
                hook = getattr(ctrl, "on_type_removed", None)
                if hook is not None:
                    hook(rtype.gr, gone)

    def stats(self):
        """{controller name: (reconciles, busy real seconds, queued keys)} - for benchmarks."""
        return {c.name: (c.reconciles, round(c.busy_seconds, 3), len(c.queue)) for c in self.controllers}

    def idle(self):
        """True when no controller has queued work (timers may still be pending)."""
        return all(len(ctrl.queue) == 0 for ctrl in self.controllers)
