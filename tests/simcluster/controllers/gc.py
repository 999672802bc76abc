"""Garbage collector: ownerReferences across every served type.

* Background: an object whose owners are all gone (no object with the owner's uid) is deleted; one
  that lost only some owners has the dangling references removed.
* Foreground: an owner with the `foregroundDeletion` finalizer has its dependents deleted (dependents
  that own objects themselves are deleted in the foreground too); the finalizer is dropped once no
  dependent with blockOwnerDeletion remains, and the owner goes.
* Orphan: an owner with the `orphan` finalizer has its reference stripped from every dependent, then
  the finalizer is dropped.
A type that stops being served (a deleted CRD) counts as all its objects gone.
"""
from __future__ import annotations

import copy

from ..errors import ApiError
from .manager import Controller

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def _ref(event_obj, gr):
    meta = event_obj["metadata"]
    return (gr, meta.get("namespace") or "", meta["name"])


class GarbageCollector(Controller):
    name = "garbage-collector"
    component = "garbage-collector"

    def __init__(self, manager):
        super().__init__(manager)
        self.index = manager.index
        self.routes = {None: self._on_any}

    def initial_keys(self):
        keys = []
        for gr in list(self.store.types):
            for obj in self.store.list(gr)[0]:
                meta = obj["metadata"]
                if meta.get("ownerReferences") and any(o.get("uid") not in self.index.uids
                                                       for o in meta["ownerReferences"]):
                    keys.append(("dependent",) + _ref(obj, gr))
                if meta.get("deletionTimestamp") and set(meta.get("finalizers") or ()) & {FOREGROUND, ORPHAN}:
                    keys.append(("owner",) + _ref(obj, gr))
        return keys

    def _on_any(self, event):
        obj = event.obj
        meta = obj["metadata"]
        if event.type == "DELETED":
            for dep in self.index.dependents.get(meta["uid"], ()):
                self.enqueue(("dependent",) + dep)
            for owner in meta.get("ownerReferences") or ():
                found = self.index.uids.get(owner.get("uid"))
                if found is not None:
                    self.enqueue(("owner",) + found)
            return
        refs = meta.get("ownerReferences")
        if refs and (event.old is None or refs != event.old["metadata"].get("ownerReferences")):
            if any(o.get("uid") not in self.index.uids for o in refs) or self._owner_foreground(refs):
                self.enqueue(("dependent",) + _ref(obj, event.gr))
        if meta.get("deletionTimestamp") and set(meta.get("finalizers") or ()) & {FOREGROUND, ORPHAN}:
            self.enqueue(("owner",) + _ref(obj, event.gr))
            for dep in self.index.dependents.get(meta["uid"], ()):
                self.enqueue(("dependent",) + dep)

    def _owner_foreground(self, refs):
        for owner in refs:
            found = self.index.uids.get(owner.get("uid"))
            if found is not None:
                obj = self.read(*found)
                if obj is not None and FOREGROUND in (obj["metadata"].get("finalizers") or ()) and \
                        obj["metadata"].get("deletionTimestamp"):
                    return True
        return False

    def on_type_removed(self, gr, uids):
        """Called under the store lock when a type stops being served: its objects are gone."""
        for uid in uids:
            for dep in self.index.dependents.get(uid, ()):
                self.enqueue(("dependent",) + dep)

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        kind, gr, namespace, name = key
        if gr not in self.store.types:
            return
        obj = self.read(gr, namespace, name)
        if obj is None:
            return
        if kind == "owner":
            self._finalize_owner(gr, obj)
        else:
            self._check_dependent(gr, obj)

    def _check_dependent(self, gr, obj):
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        if not refs or meta.get("deletionTimestamp"):
            return
        alive, foreground = [], False
        for ref in refs:
            found = self.index.uids.get(ref.get("uid"))
            if found is None:
                continue
            alive.append(ref)
            owner = self.read(*found)
            if owner is not None and owner["metadata"].get("deletionTimestamp") and \
                    FOREGROUND in (owner["metadata"].get("finalizers") or ()):
                foreground = True
        if not alive or foreground:
            propagation = "Foreground" if (foreground and self.index.dependents.get(meta["uid"])) else "Background"
            try:
                self.store.delete(gr, meta.get("namespace"), meta["name"], propagation=propagation,
                                  preconditions={"uid": meta["uid"]})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
            return
        if len(alive) != len(refs):
            fresh = copy.deepcopy(obj)
            fresh["metadata"]["ownerReferences"] = alive
            self.store.update(gr, fresh)

    def _finalize_owner(self, gr, obj):
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if not meta.get("deletionTimestamp"):
            return
        uid = meta["uid"]
        with self.store.lock:
            deps = list(self.index.dependents.get(uid, ()))
        if ORPHAN in finalizers:
            for dep in deps:
                child = self.read(*dep)
                if child is None:
                    continue
                fresh = copy.deepcopy(child)
                fresh["metadata"]["ownerReferences"] = [o for o in child["metadata"].get("ownerReferences") or []
                                                        if o.get("uid") != uid]
                if not fresh["metadata"]["ownerReferences"]:
                    del fresh["metadata"]["ownerReferences"]
                self.store.update(dep[0], fresh)
            self._drop_finalizer(gr, obj, ORPHAN)
            return
        if FOREGROUND in finalizers:
            blocking = 0
            for dep in deps:
                child = self.read(*dep)
                if child is None:
                    continue
                if not child["metadata"].get("deletionTimestamp"):
                    self._check_dependent(dep[0], child)
                child = self.read(*dep)
                if child is not None and any(o.get("uid") == uid and o.get("blockOwnerDeletion")
                                             for o in child["metadata"].get("ownerReferences") or ()):
                    blocking += 1
            if not blocking:
                self._drop_finalizer(gr, obj, FOREGROUND)

    def _drop_finalizer(self, gr, obj, finalizer):
        fresh = copy.deepcopy(self.read(gr, obj["metadata"].get("namespace"), obj["metadata"]["name"]) or obj)
        if fresh["metadata"].get("uid") != obj["metadata"]["uid"]:
            return
        fresh["metadata"]["finalizers"] = [f for f in fresh["metadata"].get("finalizers") or [] if f != finalizer]
        if not fresh["metadata"]["finalizers"]:
            del fresh["metadata"]["finalizers"]
        self.store.update(gr, fresh)
