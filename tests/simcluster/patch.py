"""Patches and field management: JSON patch, merge patch, strategic merge patch, server-side apply.

* JSON patch (RFC 6902) uses the `jsonpatch` library; merge patch is RFC 7386.
* Strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch for what kubectl sends:
  lists merged by their merge key (containers by name, ports by containerPort, ...), primitive lists
  with the merge strategy (finalizers) unioned, `$patch: replace|delete`, `$retainKeys`,
  `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`.
* Server-side apply and managedFields follow sigs.k8s.io/structured-merge-diff: field sets in FieldsV1
  (`f:`, `k:`, `v:` path elements and `.` for an item that is itself owned), ownership moving to an
  Update manager for the fields it changed, Apply conflicts with other managers that own a field whose
  value the applier wants to change (409 "Apply failed with N conflicts"), `force` taking ownership,
  and removal of fields an applier stopped applying unless someone else still owns them.

List semantics come from `TypeInfo`: the CRD schema's x-kubernetes-list-type/-list-map-keys/-map-type
for custom resources, and the built-in merge keys and list types below for built-in types.
"""
from __future__ import annotations

import copy
import json

import jsonpatch

from .errors import ApiError

# ----------------------------------------------------------------------------------------- type info

# field name -> (SSA list type, SSA keys, SMP strategy, SMP merge key). Context-dependent names are
# resolved in TypeInfo.builtin_list (ports in a container vs in a Service, ...).
BUILTIN_LISTS = {
    "containers": ("map", ("name",), "merge", "name"),
    "initContainers": ("map", ("name",), "merge", "name"),
    "ephemeralContainers": ("map", ("name",), "merge", "name"),
    "env": ("map", ("name",), "merge", "name"),
    "volumes": ("map", ("name",), "merge", "name"),
    "volumeMounts": ("map", ("mountPath",), "merge", "mountPath"),
    "volumeDevices": ("map", ("devicePath",), "merge", "devicePath"),
    "imagePullSecrets": ("map", ("name",), "merge", "name"),
    "hostAliases": ("map", ("ip",), "merge", "ip"),
    "topologySpreadConstraints": ("map", ("topologyKey", "whenUnsatisfiable"), "merge", "topologyKey"),
    "schedulingGates": ("map", ("name",), "merge", "name"),
    "resourceClaims": ("map", ("name",), "merge", "name"),
    "claims": ("map", ("name",), "replace", None),
    "conditions": ("map", ("type",), "merge", "type"),
    "ownerReferences": ("map", ("uid",), "merge", "uid"),
    "finalizers": ("set", (), "merge", None),
    "webhooks": ("map", ("name",), "merge", "name"),
    "tolerations": ("atomic", (), "replace", None),
    "args": ("atomic", (), "replace", None),
    "command": ("atomic", (), "replace", None),
}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
DEFAULT_KEY_VALUES = {"protocol": "TCP"}
# metadata fields the server owns; never part of a field set
SYSTEM_META = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
               "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


class TypeInfo(object):
    """List and map semantics of one type at one version."""

    def __init__(self, rtype, version):
        self.kind = rtype.kind
        schema_fn = getattr(rtype, "schema", None)
        self.schema = schema_fn(version) if schema_fn is not None else None

    def _schema_at(self, names):
        node = self.schema
        for name in names:
            if not isinstance(node, dict):
                return None
            if node.get("type") == "array" or "items" in node:
                node = node.get("items")
                if not isinstance(node, dict):
                    return None
            props = node.get("properties") or {}
            if name in props:
                node = props[name]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:
                return None
        return node

    def builtin_list(self, names):
        name = names[-1] if names else ""
        parent = names[-2] if len(names) > 1 else ""
        if name == "ports":
            if parent in CONTAINER_LISTS:
                return ("map", ("containerPort", "protocol"), "merge", "containerPort")
            if self.kind == "Service" and names == ("spec", "ports"):
                return ("map", ("port", "protocol"), "merge", "port")
            return ("atomic", (), "replace", None)
        if name == "conditions" and "status" not in names:
            return ("atomic", (), "replace", None)
        return BUILTIN_LISTS.get(name, ("atomic", (), "replace", None))

    def list_info(self, names):
        """(SSA list type, keys) of the list at `names` (field names from the root)."""
        if names and names[0] == "metadata" or self.schema is None:
            info = self.builtin_list(names)
            return info[0], info[1]
        node = self._schema_at(names) or {}
        list_type = node.get("x-kubernetes-list-type", "atomic")
        return list_type, tuple(node.get("x-kubernetes-list-map-keys") or ())

    def smp_info(self, names):
        """(strategy, merge key) for strategic merge patch; custom resources never get here."""
        info = self.builtin_list(names)
        return info[2], info[3]

    def map_atomic(self, names):
        if names and names[0] == "metadata":
            return False
        if self.schema is None:
            # LabelSelectors are atomic structs; a Service's selector is a plain (granular) map
            return bool(names) and names[-1] == "selector" and self.kind != "Service"
        node = self._schema_at(names) or {}
        return node.get("x-kubernetes-map-type") == "atomic"


# ----------------------------------------------------------------------------------------- simple patches

def apply_patch(content_type, doc, body, info):
    """Apply a JSON, merge or strategic merge patch to `doc` (a dict); returns the new document."""
    if content_type == "application/json-patch+json":
        if not isinstance(body, list):
            raise ApiError.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        try:
            return jsonpatch.apply_patch(doc, body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
            raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request: %s" % exc)
    if not isinstance(body, dict):
        raise ApiError.bad_request("the body of the request was not a JSON object")
    if content_type == "application/merge-patch+json":
        return merge_patch(doc, body)
    return strategic_merge(doc, body, info, ())


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_DELETE = object()


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value if not (isinstance(v, dict) and "$patch" in v and len(v) == 1)]
    return copy.deepcopy(value)


def strategic_merge(original, patch, info, names):
    """Strategic merge of `patch` into `original` (both maps); returns the merged map or _DELETE."""
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return _DELETE
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    orders = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = names + (key,)
        if isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, info, child) if isinstance(result.get(key), dict) \
                else (_DELETE if value.get("$patch") == "delete" else _strip_directives(value))
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, info, child)
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _reorder(result[field], order, info.smp_info(names + (field,))[1])
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        for key in list(result):
            if key not in retain and key in (original or {}):
                del result[key]
    return result


def _merge_list(original, patch_list, info, names):
    strategy, key = info.smp_info(names)
    original = original if isinstance(original, list) else []
    if strategy != "merge":
        return _strip_directives(patch_list)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch_list):
        return [_strip_directives(i) for i in patch_list if not (isinstance(i, dict) and i.get("$patch"))]
    result = copy.deepcopy(original)
    for item in patch_list:
        if key is None or not isinstance(item, dict):
            if item not in result:
                result.append(copy.deepcopy(item))
            continue
        index = next((i for i, el in enumerate(result) if isinstance(el, dict) and el.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            result = [el for el in result if not (isinstance(el, dict) and el.get(key) == item.get(key))]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            merged = strategic_merge(result[index], item, info, names)
            if merged is _DELETE:
                del result[index]
            else:
                result[index] = merged
    return result


def _reorder(items, order, key):
    def ident(item):
        return item.get(key) if key and isinstance(item, dict) else json.dumps(item, sort_keys=True)
    wanted = [o.get(key) if key and isinstance(o, dict) else json.dumps(o, sort_keys=True) for o in order]
    ranked = [(wanted.index(ident(item)) if ident(item) in wanted else len(wanted) + n, item)
              for n, item in enumerate(items)]
    return [item for _unused, item in sorted(ranked, key=lambda pair: pair[0])]


# ----------------------------------------------------------------------------------------- field sets

def _key_element(item, keys):
    values = {k: item.get(k, DEFAULT_KEY_VALUES.get(k)) for k in keys}
    return "k:" + json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True, separators=(",", ":"))


def field_set(obj, info, skip_status):
    """The set of field paths (tuples of path elements) an object sets, as structured-merge-diff builds it."""
    out = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status" and skip_status):
            continue
        if key == "metadata":
            for mkey, mvalue in (value or {}).items():
                if mkey not in SYSTEM_META:
                    _walk(mvalue, info, ("metadata", mkey), ("f:metadata", "f:" + mkey), out)
            continue
        _walk(value, info, (key,), ("f:" + key,), out)
    return out


def status_field_set(obj, info):
    status = obj.get("status")
    out = set()
    if status is not None:
        _walk(status, info, ("status",), ("f:status",), out)
    return out


def _walk(value, info, names, prefix, out):
    if isinstance(value, dict):
        if not value or info.map_atomic(names):
            out.add(prefix)
            return
        for key, child in value.items():
            _walk(child, info, names + (key,), prefix + ("f:" + key,), out)
        return
    if isinstance(value, list):
        list_type, keys = info.list_info(names)
        if not value or list_type == "atomic":
            out.add(prefix)
            return
        for item in value:
            if list_type == "set":
                out.add(prefix + ("v:" + json.dumps(item, sort_keys=True, separators=(",", ":")),))
            elif isinstance(item, dict):
                element = prefix + (_key_element(item, keys),)
                out.add(element)
                for key, child in item.items():
                    _walk(child, info, names + (key,), element + ("f:" + key,), out)
        return
    out.add(prefix)


def value_at(obj, path):
    """The value at a field path, or a sentinel when absent."""
    cur = obj
    for element in path:
        kind, _unused, text = element.partition(":")
        if kind == "f":
            if not isinstance(cur, dict) or text not in cur:
                return _MISSING
            cur = cur[text]
        elif kind == "k":
            if not isinstance(cur, list):
                return _MISSING
            want = json.loads(text)
            cur = next((i for i in cur if isinstance(i, dict) and
                        all(i.get(k, DEFAULT_KEY_VALUES.get(k)) == v for k, v in want.items())), _MISSING)
            if cur is _MISSING:
                return _MISSING
        elif kind == "v":
            want = json.loads(text)
            if not isinstance(cur, list) or want not in cur:
                return _MISSING
            cur = want
        else:
            return _MISSING
    return cur


_MISSING = object()


def _key_matches(item, want):
    return isinstance(item, dict) and all(item.get(k, DEFAULT_KEY_VALUES.get(k)) == v for k, v in want.items())


def remove_path(obj, path):
    """Delete the field (or list item) at `path` from obj in place; missing paths are ignored."""
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    if parent is _MISSING:
        return
    kind, _unused, text = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(text, None)
    elif kind == "k" and isinstance(parent, list):
        want = json.loads(text)
        parent[:] = [i for i in parent if not _key_matches(i, want)]
    elif kind == "v" and isinstance(parent, list):
        want = json.loads(text)
        parent[:] = [i for i in parent if i != want]


def to_fields_v1(paths):
    """A set of paths -> the FieldsV1 nested map ("." marks an item that is a member and has children)."""
    root = {}
    members = set(paths)
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})

    def mark(node, prefix):
        for key, child in node.items():
            path = prefix + (key,)
            if child:
                if path in members:
                    child["."] = {}
                mark(child, path)
    mark(root, ())
    return _sort_fields(root)


def _sort_fields(node):
    return {k: _sort_fields(v) for k, v in sorted(node.items(), key=lambda kv: (kv[0] != ".", kv[0]))}


def from_fields_v1(fields, prefix=()):
    out = set()
    for key, child in (fields or {}).items():
        if key == ".":
            out.add(prefix)
            continue
        path = prefix + (key,)
        if child:
            out |= from_fields_v1(child, path)
        else:
            out.add(path)
    return out


def path_string(path):
    """structured-merge-diff's Path.String(): .spec.containers[name="x"].image"""
    out = []
    for element in path:
        kind, _unused, text = element.partition(":")
        if kind == "f":
            out.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            out.append("[%s]" % ",".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(keys.items())))
        elif kind == "v":
            out.append("[=%s]" % text)
        elif kind == "i":
            out.append("[%s]" % text)
    return "".join(out)


# ----------------------------------------------------------------------------------------- merge for apply

def apply_merge(live, applied, info, names=()):
    """Merge an applied configuration into the live object (structured merge)."""
    if not isinstance(live, dict) or not isinstance(applied, dict) or info.map_atomic(names):
        return copy.deepcopy(applied)
    result = copy.deepcopy(live)
    for key, value in applied.items():
        child = names + (key,)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = apply_merge(result[key], value, info, child)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _apply_list(result[key], value, info, child)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _apply_list(live, applied, info, names):
    list_type, keys = info.list_info(names)
    if list_type == "set":
        return copy.deepcopy(live) + [copy.deepcopy(v) for v in applied if v not in live]
    if list_type != "map":
        return copy.deepcopy(applied)
    result = copy.deepcopy(live)
    for item in applied:
        if not isinstance(item, dict):
            continue
        element = _key_element(item, keys)
        index = next((i for i, el in enumerate(result) if isinstance(el, dict) and _key_element(el, keys) == element),
                     None)
        if index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = apply_merge(result[index], item, info, names)
    return result


# ----------------------------------------------------------------------------------------- field manager

class FieldManager(object):
    """Maintains metadata.managedFields on every write (Update) and implements server-side apply."""

    def __init__(self, clock):
        self.clock = clock

    @staticmethod
    def _entries(obj):
        return [dict(e) for e in (obj.get("metadata") or {}).get("managedFields") or [] if isinstance(e, dict)]

    def _entry(self, manager, operation, api_version, paths, subresource):
        entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": self.clock.timestamp(),
                 "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}
        if subresource:
            entry["subresource"] = subresource
        return entry

    @staticmethod
    def _sets(entries):
        return [(e, from_fields_v1(e.get("fieldsV1"))) for e in entries]

    @staticmethod
    def _same(entry, manager, operation, subresource):
        return entry.get("manager") == manager and entry.get("operation") == operation and \
            (entry.get("subresource") or None) == (subresource or None)

    def _write(self, obj, pairs):
        entries = []
        for entry, paths in pairs:
            if not paths:
                continue
            entry = dict(entry, fieldsV1=to_fields_v1(paths))
            entries.append(entry)
        obj.setdefault("metadata", {})["managedFields"] = entries
        if not entries:
            obj["metadata"].pop("managedFields")
        return obj

    def _owned_set(self, ctx, obj, info):
        if ctx.subresource == "status":
            return status_field_set(obj, info)
        return field_set(obj, info, skip_status=ctx.rtype.strategy.has_status_subresource)

    def on_create(self, obj, ctx):
        """A create: the request's manager owns every field it set (operation Update)."""
        obj = copy.deepcopy(obj)
        info = TypeInfo(ctx.rtype, ctx.version)
        paths = self._owned_set(ctx, obj, info)
        entries = [self._entry(ctx.field_manager, "Update", ctx.api_version, paths, None)] if paths else []
        obj["metadata"]["managedFields"] = entries
        if not entries:
            obj["metadata"].pop("managedFields")
        return obj

    def on_update(self, new, old, ctx):
        """An update or a non-apply patch: the manager takes the fields it changed from everybody."""
        new = copy.deepcopy(new)
        info = TypeInfo(ctx.rtype, ctx.version)
        old_view = ctx.rtype.convert_out(old, ctx.version)
        sent = new.get("metadata", {}).get("managedFields")
        base_entries = self._entries(new) if sent not in (None, []) and sent != old_view["metadata"].get(
            "managedFields") else self._entries(old_view)
        if sent == [{}]:
            base_entries = []
        old_set = self._owned_set(ctx, old_view, info)
        new_set = self._owned_set(ctx, new, info)
        changed = {p for p in new_set if value_at(new, p) != value_at(old_view, p)}
        removed = old_set - new_set
        pairs = self._sets(base_entries)
        mine = None
        for entry, paths in pairs:
            paths -= changed
            paths -= removed
            if self._same(entry, ctx.field_manager, "Update", ctx.subresource):
                mine = (entry, paths)
        if changed:
            if mine is None:
                mine = (self._entry(ctx.field_manager, "Update", ctx.api_version, set(), ctx.subresource), set())
                pairs.append(mine)
            mine[0]["time"] = self.clock.timestamp()
            mine[0]["apiVersion"] = ctx.api_version
            mine[1].update(changed)
        return self._write(new, pairs)

    def apply_new(self, applied, ctx):
        """Server-side apply that creates the object."""
        obj = copy.deepcopy(applied)
        info = TypeInfo(ctx.rtype, ctx.version)
        paths = self._owned_set(ctx, obj, info)
        obj["metadata"]["managedFields"] = [self._entry(ctx.field_manager, "Apply", ctx.api_version, paths,
                                                        ctx.subresource)] if paths else []
        if not paths:
            obj["metadata"].pop("managedFields")
        return obj

    def apply(self, live, applied, ctx, force):
        """Server-side apply onto an existing object; raises the real 409 on conflicts."""
        self._check_applied(applied, live, ctx)
        info = TypeInfo(ctx.rtype, ctx.version)
        applied = dict(applied)
        applied["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items() if k != "managedFields"}
        applied_set = self._owned_set(ctx, applied, info)
        pairs = self._sets(self._entries(live))
        conflicts = []
        for entry, paths in pairs:
            if self._same(entry, ctx.field_manager, "Apply", ctx.subresource):
                continue
            for path in sorted(paths & applied_set):
                if value_at(applied, path) != value_at(live, path) and not _is_container(value_at(applied, path)):
                    conflicts.append((entry, path))
        if conflicts and not force:
            raise conflict_error(conflicts)
        if ctx.subresource == "status":
            merged = dict(live, status=apply_merge(live.get("status") or {}, applied.get("status") or {}, info,
                                                   ("status",)))
        else:
            drop_status = ctx.rtype.strategy.has_status_subresource
            body = {k: v for k, v in applied.items() if not (k == "status" and drop_status)}
            merged = apply_merge(live, body, info)
        merged["metadata"] = dict(merged["metadata"])
        mine = next(((e, p) for e, p in pairs if self._same(e, ctx.field_manager, "Apply", ctx.subresource)), None)
        previous = mine[1] if mine else set()
        others = set()
        for entry, paths in pairs:
            if mine is not None and entry is mine[0]:
                continue
            if force:
                paths -= {p for e, p in conflicts if e is entry}
            others |= paths
        for path in sorted(previous - applied_set - others, key=len, reverse=True):
            remove_path(merged, path)
        if mine is None:
            mine = (self._entry(ctx.field_manager, "Apply", ctx.api_version, set(), ctx.subresource), set())
            pairs.append(mine)
        mine[0]["time"] = self.clock.timestamp()
        mine[0]["apiVersion"] = ctx.api_version
        mine[1].clear()
        mine[1].update(applied_set)
        merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        return self._write(merged, pairs)

    @staticmethod
    def _check_applied(applied, live, ctx):
        meta = applied.get("metadata") or {}
        if applied.get("apiVersion") and applied["apiVersion"] != ctx.api_version or \
                applied.get("kind") and applied["kind"] != ctx.rtype.kind:
            raise ApiError.bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                                       % (applied.get("apiVersion"), ctx.api_version))
        if meta.get("name") and meta["name"] != live["metadata"]["name"]:
            raise ApiError.bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                       % (meta["name"], live["metadata"]["name"]))
        if meta.get("resourceVersion") and meta["resourceVersion"] != live["metadata"]["resourceVersion"]:
            raise ApiError.conflict(ctx.rtype.group, ctx.rtype.resource, live["metadata"]["name"],
                                    "the object has been modified; please apply your changes to the latest version "
                                    "and try again")


def _is_container(value):
    return isinstance(value, dict) and bool(value)


def _manager_label(entry):
    label = '"%s"' % entry.get("manager")
    if entry.get("subresource"):
        label += ' with subresource "%s"' % entry["subresource"]
    if entry.get("operation") == "Update":
        label += " using %s" % entry.get("apiVersion")
        if entry.get("time"):
            label += " at %s" % entry["time"]
    return label


def conflict_error(conflicts):
    """409 Conflict worded as structured-merge-diff / apimachinery word it."""
    causes = [{"reason": "FieldManagerConflict", "message": "conflict with %s" % _manager_label(entry),
               "field": path_string(path)} for entry, path in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = "Apply failed with 1 conflict: conflict with %s: %s" % (_manager_label(entry), path_string(path))
    else:
        by_manager = {}
        for entry, path in conflicts:
            by_manager.setdefault(_manager_label(entry), []).append(path_string(path))
        lines = []
        for label in sorted(by_manager):
            lines.append("conflicts with %s:" % label)
            lines.extend("- %s" % p for p in by_manager[label])
        message = "Apply failed with %d conflicts: %s" % (len(conflicts), "\n".join(lines))
    return ApiError(409, "Conflict", message, {"causes": causes})
