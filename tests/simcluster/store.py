"""The simulated cluster's storage: what etcd plus the generic registry do in a real API server.

Objects are plain dicts (their JSON form) kept per (group, resource), namespace and name. Every write
bumps one global resourceVersion and appends an event to a bounded history, which serves watches,
resumes from a resourceVersion and the 410 "Expired" answer for stale continue tokens and watches.

Ownership rules that keep it fast at 100,000 objects:
  * A stored dict is never mutated after it is stored; every write stores a new dict.
  * `get()` returns a deep copy (safe to modify). `list()` returns the stored dicts themselves for
    reading only; copy one before changing it.

Per-type behaviour (defaults, validation, graceful deletion, status subresource semantics) comes
from the type's `Strategy`, so API requests and simulated controllers get the same semantics.
The HTTP layer (server.py) adds what only requests have: authentication, RBAC, admission webhooks,
patches, server-side apply and content negotiation.
"""
from __future__ import annotations

import base64
import bisect
import json
import random
import threading
import uuid

from .clock import Clock
from .errors import ApiError
from .objcopy import clone

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


class Strategy(object):
    """Per-type hooks. Subclass and override what a type needs; the defaults do nothing."""

    #: bump metadata.generation when anything outside metadata and status changes
    tracks_generation = False
    #: main-resource updates keep the old status; status updates keep everything but status
    has_status_subresource = False

    def normalize(self, obj):
        """Decode-time clean-up before anything else looks at a written object (in place)."""

    def prepare_create(self, store, obj):
        """Defaults and allocations before the first write (may raise ApiError)."""

    def prepare_update(self, store, new, old):
        """Defaults and immutable-field checks before an update (may raise ApiError)."""

    def validate(self, store, obj, old):
        """Raise ApiError.invalid(...) for objects the real API would reject. `old` is None on create."""

    def validate_delete(self, store, obj):
        """Raise ApiError to refuse a DELETE of `obj` (checked after the preconditions)."""

    def defer_delete(self, store, obj, options):
        """Return True to keep the object with a deletionTimestamp (graceful deletion) instead of
        removing it now. May modify `obj` (for example set status.phase=Terminating)."""
        return False

    def can_remove(self, store, obj):
        """For an object that has a deletionTimestamp and no finalizers left: may it go now?"""
        return True


class ResourceType(object):
    """One REST resource: what discovery shows and how the store treats it."""

    #: DELETE answers with the removed object instead of a Status (the registry's ReturnDeletedObject)
    returns_deleted_object = False

    def __init__(self, group, versions, resource, kind, namespaced=True, short_names=(), categories=(),
                 singular=None, subresources=(), verbs=ALL_VERBS, storage_version=None, strategy=None,
                 list_kind=None, preferred_version=None):
        self.group = group
        self.versions = list(versions)
        self.resource = resource
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.categories = list(categories)
        self.singular = singular or kind.lower()
        self.subresources = list(subresources)
        self.verbs = list(verbs)
        self.storage_version = storage_version or self.versions[-1]
        self.preferred_version = preferred_version or self.storage_version
        self.strategy = strategy or Strategy()
        self.list_kind = list_kind or kind + "List"

    @property
    def gr(self):
        return (self.group, self.resource)

    def api_version(self, version=None):
        version = version or self.storage_version
        return version if not self.group else "%s/%s" % (self.group, version)

    def __repr__(self):
        return "ResourceType(%s/%s)" % (self.group or "core", self.resource)


class Event(object):
    __slots__ = ("rv", "type", "gr", "obj", "old")

    def __init__(self, rv, etype, gr, obj, old):
        self.rv = rv
        self.type = etype
        self.gr = gr
        self.obj = obj
        self.old = old


LABEL_INDEX_MIN_OBJECTS = 2000      # smaller types are scanned: an index would cost more than it saves


def _key(obj):
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def _strip(obj):
    """The object without metadata and status: what a generation bump compares."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def encode_continue(rv, key):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": "%s/%s\x00" % key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        ns, name = data["start"].rstrip("\x00").split("/", 1)
        return int(data["rv"]), (ns, name)
    except Exception:
        raise ApiError.bad_request("continue key is not valid: illegal base64 data at input byte 0")


class Store(object):
    def __init__(self, clock=None, history_limit=200000):
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.types = {}            # (group, resource) -> ResourceType
        self._data = {}            # (group, resource) -> {namespace: {name: obj}}
        self._sorted = {}          # (group, resource) -> sorted [(ns, name)] or None when stale
        self._index = {}           # (group, resource, field path) -> {value: set((ns, name))}
        self._label_index = {}     # (group, resource, label key) -> {value: set((ns, name))}, built on demand
        self.rv = 1
        self.history = []          # [Event], ascending rv
        self.history_limit = history_limit
        self.compacted_rv = 0      # events at or below this rv are gone (watch/continue -> 410)
        self._subscribers = []
        self._type_listeners = []
        self.types_generation = 0  # bumped whenever a served type is added, replaced or dropped
        self.derived = {}          # (types_generation, key) -> documents built from the types (OpenAPI)
        self.rng = random.Random()

    # ----------------------------------------------------------------------------- type registry
    def register(self, rtype, indexes=()):
        """Add or replace a served resource type. `indexes`: field paths to index (spec.nodeName)."""
        with self.lock:
            self.types[rtype.gr] = rtype
            self.types_generation += 1
            self._data.setdefault(rtype.gr, {})
            self._sorted[rtype.gr] = None
            for path in indexes:
                idx = self._index.setdefault(rtype.gr + (path,), {})
                for nsmap in self._data[rtype.gr].values():
                    for obj in nsmap.values():
                        idx.setdefault(_field(obj, path), set()).add(_key(obj))
            for fn in list(self._type_listeners):
                fn("registered", rtype)

    def unregister(self, gr):
        """Stop serving a type and drop its objects (a deleted CRD)."""
        with self.lock:
            rtype = self.types.pop(gr, None)
            self.types_generation += 1
            self._data.pop(gr, None)
            self._sorted.pop(gr, None)
            for k in [k for k in self._index if k[:2] == gr]:
                del self._index[k]
            for k in [k for k in self._label_index if k[:2] == gr]:
                del self._label_index[k]
            if rtype:
                for fn in list(self._type_listeners):
                    fn("unregistered", rtype)

    def on_type_change(self, fn):
        self._type_listeners.append(fn)

    def type_for(self, group, resource):
        rtype = self.types.get((group, resource))
        if rtype is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rtype

    def type_by_kind(self, api_version, kind):
        group, version = api_version.rpartition("/")[::2]
        for rtype in self.types.values():
            if rtype.group == group and rtype.kind == kind and version in rtype.versions:
                return rtype
        return None

    # ----------------------------------------------------------------------------- subscriptions
    def subscribe(self, fn):
        """fn(event) is called under the store lock after each write. Keep it short: enqueue only."""
        with self.lock:
            self._subscribers.append(fn)

    def _emit(self, etype, gr, obj, old):
        ev = Event(self.rv, etype, gr, obj, old)
        self.history.append(ev)
        if len(self.history) > self.history_limit:
            drop = len(self.history) - self.history_limit + self.history_limit // 10
            self.compacted_rv = self.history[drop - 1].rv
            del self.history[:drop]
        for fn in self._subscribers:
            fn(ev)
        self.changed.notify_all()

    def compact(self, rv=None):
        """Forget history up to `rv` (default: now), like etcd compaction."""
        with self.lock:
            rv = self.rv if rv is None else rv
            self.compacted_rv = max(self.compacted_rv, rv)
            cut = bisect.bisect_right([e.rv for e in self.history], self.compacted_rv)
            del self.history[:cut]

    def _next_rv(self):
        self.rv += 1
        return self.rv

    # ----------------------------------------------------------------------------- index upkeep
    def _put(self, gr, obj, old=None):
        key = _key(obj)
        nsmap = self._data[gr].setdefault(key[0], {})
        if key[1] not in nsmap:
            self._sorted[gr] = None
        nsmap[key[1]] = obj
        for (g, r, path), idx in self._index.items():
            if (g, r) != gr:
                continue
            if old is not None:
                idx.get(_field(old, path), set()).discard(key)
            idx.setdefault(_field(obj, path), set()).add(key)
        for (g, r, label), idx in self._label_index.items():
            if (g, r) != gr:
                continue
            if old is not None:
                value = (old["metadata"].get("labels") or {}).get(label)
                if value is not None:
                    idx.get(value, set()).discard(key)
            value = (obj["metadata"].get("labels") or {}).get(label)
            if value is not None:
                idx.setdefault(value, set()).add(key)

    def _remove(self, gr, obj):
        key = _key(obj)
        nsmap = self._data[gr].get(key[0], {})
        nsmap.pop(key[1], None)
        if not nsmap:
            self._data[gr].pop(key[0], None)
        self._sorted[gr] = None
        for (g, r, path), idx in self._index.items():
            if (g, r) == gr:
                idx.get(_field(obj, path), set()).discard(key)
        for (g, r, label), idx in self._label_index.items():
            value = (obj["metadata"].get("labels") or {}).get(label)
            if (g, r) == gr and value is not None:
                idx.get(value, set()).discard(key)

    # ----------------------------------------------------------------------------- reads
    def get(self, gr, namespace, name, copy_=True):
        with self.lock:
            rtype = self._rtype(gr)
            obj = self._data[gr].get(namespace or "" if rtype.namespaced else "", {}).get(name)
            if obj is None:
                raise ApiError.not_found(gr[0], gr[1], name)
            return clone(obj) if copy_ else obj

    def try_get(self, gr, namespace, name):
        try:
            return self.get(gr, namespace, name)
        except ApiError:
            return None

    def list(self, gr, namespace=None, label=None, field=None, limit=None, continue_=None):
        """Return (items, list_rv, continue_token, remaining). Items are stored dicts (read-only).

        label/field: predicates from selectors.py (or None). A field predicate on an indexed path
        with "=" is answered from the index instead of a scan.
        """
        with self.lock:
            self._rtype(gr)
            list_rv = self.rv
            start = None
            if continue_:
                token_rv, start = decode_continue(continue_)
                if token_rv < self.compacted_rv:
                    raise ApiError.gone("The provided continue parameter is too old to display a consistent "
                                        "list result. You can start a new list without the continue parameter, "
                                        "or use the continue token in this response to retrieve the remainder "
                                        "of the results. Continuing with the provided token results in an "
                                        "inconsistent list - objects that were created, modified, or deleted "
                                        "between the time the first chunk was returned and now may show up in "
                                        "the list.")
                list_rv = token_rv
            keys = self._candidate_keys(gr, namespace, field, label)
            if start is not None:
                keys = keys[bisect.bisect_right(keys, start):]
            out = []
            data = self._data[gr]
            last = None
            scanned = 0
            for key in keys:
                scanned += 1
                obj = data.get(key[0], {}).get(key[1])
                if obj is None:
                    continue
                if label is not None and not label(obj["metadata"].get("labels")):
                    continue
                if field is not None and not field(obj):
                    continue
                out.append(obj)
                last = key
                if limit and len(out) >= limit:
                    break
            token, remaining = None, None
            if limit and len(out) >= limit and scanned < len(keys):
                token = encode_continue(list_rv, last)
                if label is None and field is None:
                    remaining = len(keys) - scanned
            return out, list_rv, token, remaining

    def _candidate_keys(self, gr, namespace, field, label=None):
        terms = getattr(field, "terms", None) or []
        for path, negate, value in terms:
            idx = self._index.get(gr + (path,))
            if idx is not None and not negate:
                keys = sorted(idx.get(value, ()))
                return [k for k in keys if namespace is None or k[0] == namespace]
        hits = self._label_hits(gr, label)
        if hits is not None:
            return sorted(k for k in hits if namespace is None or k[0] == namespace)
        if namespace is not None:
            return sorted((namespace, n) for n in self._data[gr].get(namespace, {}))
        if self._sorted.get(gr) is None:
            self._sorted[gr] = sorted((ns, n) for ns, m in self._data[gr].items() for n in m)
        return self._sorted[gr]

    def _label_hits(self, gr, label):
        """Keys that can match the "In" requirements (a=b, a in (b,c)) of a label predicate, from a per-key
        index built the first time a large type is selected on that key; None when no index applies (then
        the caller scans). The smallest candidate set wins; the predicate still checks every requirement."""
        best = None
        for key, op, values in getattr(label, "reqs", None) or ():
            if op != "In":
                continue
            idx = self._label_index.get(gr + (key,))
            if idx is None:
                if sum(len(m) for m in self._data[gr].values()) < LABEL_INDEX_MIN_OBJECTS:
                    return None
                idx = self._build_label_index(gr, key)
            hits = set()
            for value in values:
                hits.update(idx.get(value, ()))
            if best is None or len(hits) < len(best):
                best = hits
        return best

    def _build_label_index(self, gr, label):
        idx = {}
        data = self._data[gr]
        for key in self._candidate_keys(gr, None, None):      # shares the key tuples of the sorted cache
            value = (data[key[0]][key[1]]["metadata"].get("labels") or {}).get(label)
            if value is not None:
                idx.setdefault(value, set()).add(key)
        self._label_index[gr + (label,)] = idx
        return idx

    def count(self, gr, namespace=None):
        with self.lock:
            if namespace is not None:
                return len(self._data.get(gr, {}).get(namespace, {}))
            return sum(len(m) for m in self._data.get(gr, {}).values())

    def namespaces_in_use(self, namespace):
        """(group, resource) of every namespaced type that still holds objects in `namespace`."""
        with self.lock:
            return [gr for gr, data in self._data.items()
                    if self.types[gr].namespaced and data.get(namespace)]

    # ----------------------------------------------------------------------------- writes
    def _rtype(self, gr):
        rtype = self.types.get(gr)
        if rtype is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rtype

    def _check_namespace(self, rtype, obj, creating):
        if not rtype.namespaced:
            obj["metadata"].pop("namespace", None)
            return
        ns = obj["metadata"].get("namespace")
        if not ns:
            raise ApiError.bad_request("the namespace of the provided object does not match the namespace "
                                       "sent on the request")
        if not creating:
            return
        nsobj = self._data.get(("", "namespaces"), {}).get("", {}).get(ns)
        if nsobj is None:
            raise ApiError.not_found("", "namespaces", ns)
        if nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", 'unable to create new content in namespace %s because it is being '
                           'terminated' % ns, {"name": ns, "kind": "namespaces",
                                               "causes": [{"reason": "NamespaceTerminating",
                                                           "message": "namespace %s is being terminated" % ns,
                                                           "field": "metadata.namespace"}]})

    def create(self, gr, obj, dry_run=False):
        """Store a new object; returns a copy of what was stored."""
        with self.lock:
            rtype = self._rtype(gr)
            obj = clone(obj)
            meta = obj.setdefault("metadata", {})
            obj["apiVersion"] = obj.get("apiVersion") or rtype.api_version()
            obj["kind"] = rtype.kind
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = meta["generateName"] + "".join(self.rng.choice(_NAME_CHARS) for dummy in range(5))
                else:
                    raise ApiError.invalid(gr[0], rtype.kind, "", [("metadata.name", "Required value: name or "
                                                                   "generateName is required", "FieldValueRequired")])
            self._check_namespace(rtype, obj, creating=True)
            for field in ("resourceVersion", "uid", "deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(field, None)
            if _key(obj)[1] in self._data[gr].get(_key(obj)[0], {}):
                raise ApiError.already_exists(gr[0], gr[1], meta["name"])
            # the uid exists before the strategy runs: some defaults derive from it (a Job's selector)
            meta["uid"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            rtype.strategy.normalize(obj)
            rtype.strategy.prepare_create(self, obj)
            rtype.strategy.validate(self, obj, None)
            meta["creationTimestamp"] = self.clock.timestamp()
            if rtype.strategy.tracks_generation:
                meta["generation"] = 1
            if dry_run:
                meta["resourceVersion"] = str(self.rv)
                return obj
            meta["resourceVersion"] = str(self._next_rv())
            self._put(gr, obj)
            self._emit("ADDED", gr, obj, None)
            return clone(obj)

    def update(self, gr, obj, subresource=None, dry_run=False, force=False):
        """Replace an object (or its status with subresource="status"). `force` skips the
        resourceVersion precondition (what an unconditional update or apply does)."""
        with self.lock:
            rtype = self._rtype(gr)
            new = clone(obj)
            meta = new.setdefault("metadata", {})
            if rtype.namespaced and not meta.get("namespace"):
                raise ApiError.bad_request("the namespace of the provided object does not match the namespace "
                                           "sent on the request")
            ns = meta.get("namespace") or "" if rtype.namespaced else ""
            old = self._data[gr].get(ns, {}).get(meta.get("name"))
            if old is None:
                raise ApiError.not_found(gr[0], gr[1], meta.get("name"))
            rv = meta.get("resourceVersion")
            if rv and not force and rv != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(gr[0], gr[1], meta["name"], "the object has been modified; please apply "
                                        "your changes to the latest version and try again")
            strategy = rtype.strategy
            new["apiVersion"] = new.get("apiVersion") or old["apiVersion"]
            new["kind"] = rtype.kind
            strategy.normalize(new)
            if subresource == "status" and strategy.has_status_subresource:
                merged = clone(old)
                if "status" in new:
                    merged["status"] = new["status"]
                else:
                    merged.pop("status", None)
                new = merged
            else:
                if strategy.has_status_subresource and subresource is None:
                    if "status" in old:
                        new["status"] = clone(old["status"])
                    else:
                        new.pop("status", None)
                self._check_namespace(rtype, new, creating=False)
                # system fields are not the client's to change
                for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                              "generation"):
                    if field in old["metadata"]:
                        meta[field] = old["metadata"][field]
                    else:
                        meta.pop(field, None)
                strategy.prepare_update(self, new, old)
                strategy.validate(self, new, old)
                if old["metadata"].get("deletionTimestamp") and \
                        set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or []):
                    raise ApiError.invalid(gr[0], rtype.kind, meta["name"], [(
                        "metadata.finalizers", "Forbidden: no new finalizers can be added if the object is "
                        "being deleted", "FieldValueForbidden")])
                if strategy.tracks_generation and _strip(new) != _strip(old):
                    meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
            if _same_but_rv(new, old):
                return clone(old)
            if dry_run:
                return new
            new["metadata"]["resourceVersion"] = str(self._next_rv())
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") and \
                    strategy.can_remove(self, new):
                self._remove(gr, new)
                self._emit("DELETED", gr, new, old)
                return clone(new)
            self._put(gr, new, old)
            self._emit("MODIFIED", gr, new, old)
            return clone(new)

    def delete(self, gr, namespace, name, propagation=None, grace_period=None, preconditions=None,
               dry_run=False):
        """Delete (or start deleting) an object. Returns (object, removed_now)."""
        with self.lock:
            rtype = self._rtype(gr)
            ns = namespace or "" if rtype.namespaced else ""
            old = self._data[gr].get(ns, {}).get(name)
            if old is None:
                raise ApiError.not_found(gr[0], gr[1], name)
            preconditions = preconditions or {}
            if preconditions.get("uid") and preconditions["uid"] != old["metadata"]["uid"]:
                raise ApiError.conflict(gr[0], gr[1], name, "Precondition failed: UID in precondition: %s, UID in "
                                        "object meta: %s" % (preconditions["uid"], old["metadata"]["uid"]))
            if preconditions.get("resourceVersion") and \
                    preconditions["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(gr[0], gr[1], name, "Precondition failed: ResourceVersion in precondition: "
                                        "%s, ResourceVersion in object meta: %s"
                                        % (preconditions["resourceVersion"], old["metadata"]["resourceVersion"]))
            rtype.strategy.validate_delete(self, old)
            new = clone(old)
            meta = new["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            if propagation == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if meta.get("deletionTimestamp"):
                # already terminating: a zero grace period removes it once nothing holds it
                if grace_period == 0 and not finalizers and not dry_run:
                    self._next_rv()
                    meta["resourceVersion"] = str(self.rv)
                    self._remove(gr, new)
                    self._emit("DELETED", gr, new, old)
                    return clone(new), True
                return clone(old), False
            options = {"propagation": propagation, "grace_period": grace_period}
            deferred = bool(finalizers) or rtype.strategy.defer_delete(self, new, options)
            if dry_run:
                return new, not deferred
            self._next_rv()
            meta["resourceVersion"] = str(self.rv)
            if deferred:
                meta["finalizers"] = finalizers or meta.get("finalizers")
                if not meta["finalizers"]:
                    meta.pop("finalizers")
                meta["deletionTimestamp"] = self.clock.timestamp()
                meta.setdefault("deletionGracePeriodSeconds", 0)
                if rtype.strategy.tracks_generation:
                    meta["generation"] = int(meta.get("generation") or 1) + 1
                self._put(gr, new, old)
                self._emit("MODIFIED", gr, new, old)
                return clone(new), False
            self._remove(gr, new)
            self._emit("DELETED", gr, new, old)
            return clone(new), True

    # ----------------------------------------------------------------------------- watch
    def events_since(self, rv):
        """Events with resourceVersion > rv. Raises 410 when `rv` was compacted away."""
        with self.lock:
            if rv < self.compacted_rv:
                raise ApiError.gone("too old resource version: %d (%d)" % (rv, self.compacted_rv))
            if not self.history or self.history[-1].rv <= rv:
                return []
            lo, hi = 0, len(self.history)
            while lo < hi:
                mid = (lo + hi) // 2
                if self.history[mid].rv <= rv:
                    lo = mid + 1
                else:
                    hi = mid
            return self.history[lo:]

    def wait_for_change(self, rv, timeout):
        """Block until the global resourceVersion passes `rv` or `timeout` real seconds pass."""
        with self.lock:
            if self.rv > rv:
                return True
            return self.changed.wait(timeout)


def _same_but_rv(new, old):
    """True when a write would change nothing but bookkeeping: the API server then skips the storage write
    (same resourceVersion), and its field manager only moves a managedFields entry's `time` when that
    manager's field set changes."""
    return _comparable(new) == _comparable(old)


def _comparable(obj):
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    managed = [{k: v for k, v in entry.items() if k != "time"} for entry in obj["metadata"].get("managedFields") or []]
    return dict(obj, metadata=dict(meta, managedFields=managed))


def _field(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)
