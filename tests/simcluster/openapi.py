"""OpenAPI documents, as far as kubectl and helm use them.

* /openapi/v3 lists one document per group-version; each holds the REST paths of the served types with
  their operations, the `x-kubernetes-group-version-kind` extension and the query parameters the server
  accepts (kubectl and helm look for `fieldValidation` on PATCH to decide that the server validates
  fields itself, so they send `fieldValidation=Strict` instead of validating client-side).
* Custom resources carry their openAPIV3Schema as a component, so `kubectl explain` works for them.
  Built-in types carry no component schemas: kubectl then computes strategic merge patches from its
  compiled-in types, exactly as it does against servers whose spec it cannot use.
* /openapi/v2 is an empty document (protobuf when asked for it, as kubectl and helm do): clients that fall
  back to it (for kinds the v3 index does not list) find no schemas and leave validation to the server.
"""
from __future__ import annotations

import hashlib
import json

from . import discovery

QUERY_PARAMS = {
    "get": ("pretty", "resourceVersion"),
    "list": ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
             "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch", "pretty"),
    "post": ("dryRun", "fieldManager", "fieldValidation", "pretty"),
    "put": ("dryRun", "fieldManager", "fieldValidation", "pretty"),
    "patch": ("dryRun", "fieldManager", "fieldValidation", "force", "pretty"),
    "delete": ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy", "pretty"),
    "deletecollection": ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds", "labelSelector", "limit",
                         "orphanDependents", "propagationPolicy", "resourceVersion", "timeoutSeconds", "pretty"),
}
PATCH_MEDIA = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/apply-patch+yaml")


def gv_path(group, version):
    return "api/%s" % version if not group else "apis/%s/%s" % (group, version)


def component_name(group, version, kind):
    """io.ray.v1.RayCluster style names, as kube-apiserver builds them for CRDs."""
    reversed_group = ".".join(reversed(group.split("."))) if group else "io.k8s.api.core"
    return "%s.%s.%s" % (reversed_group, version, kind)


def _param(name, where="query", required=False):
    return {"name": name, "in": where, "required": required, "schema": {"type": "string"}, "uniqueItems": True}


def _op(action, rtype, version, verb, suffix=""):
    gvk = {"group": rtype.group, "version": version, "kind": rtype.kind}
    op = {"operationId": "%s%s%s" % (verb, rtype.kind, suffix), "tags": [gv_path(rtype.group, version)],
          "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
          "parameters": [_param(p) for p in QUERY_PARAMS.get(verb, ())],
          "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}}}
    if verb in ("post", "put", "patch"):
        media = PATCH_MEDIA if verb == "patch" else ("application/json", "application/yaml")
        op["requestBody"] = {"content": {m: {"schema": {"type": "object"}} for m in media}, "required": True}
    return op


def _paths_for(rtype, version):
    base = "/" + gv_path(rtype.group, version)
    if rtype.namespaced:
        collection = "%s/namespaces/{namespace}/%s" % (base, rtype.resource)
    else:
        collection = "%s/%s" % (base, rtype.resource)
    item = collection + "/{name}"
    verbs = set(rtype.verbs)
    paths = {}
    coll = {}
    if "list" in verbs:
        coll["get"] = _op("list", rtype, version, "list")
    if "create" in verbs:
        coll["post"] = _op("post", rtype, version, "post")
    if "deletecollection" in verbs:
        coll["delete"] = _op("deletecollection", rtype, version, "deletecollection")
    if coll:
        paths[collection] = coll
    obj = {}
    if "get" in verbs:
        obj["get"] = _op("get", rtype, version, "get")
    if "update" in verbs:
        obj["put"] = _op("put", rtype, version, "put")
    if "patch" in verbs:
        obj["patch"] = _op("patch", rtype, version, "patch")
    if "delete" in verbs:
        obj["delete"] = _op("delete", rtype, version, "delete")
    if obj:
        paths[item] = obj
    subresources = rtype.version_subresources(version) if hasattr(rtype, "version_subresources") \
        else rtype.subresources
    if "status" in subresources:
        paths[item + "/status"] = {"get": _op("get", rtype, version, "get", "Status"),
                                   "put": _op("put", rtype, version, "put", "Status"),
                                   "patch": _op("patch", rtype, version, "patch", "Status")}
    return paths


def gv_document(store, group, version):
    rtypes = [t for t in store.types.values() if t.group == group and version in t.versions]
    if not rtypes:
        return None
    paths, schemas = {}, {}
    for rtype in sorted(rtypes, key=lambda t: t.resource):
        paths.update(_paths_for(rtype, version))
        schema_fn = getattr(rtype, "schema", None)
        if schema_fn is not None:
            schema = dict(schema_fn(version) or {"type": "object"})
            schema["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": rtype.kind}]
            schemas[component_name(group, version, rtype.kind)] = schema
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"}, "paths": paths,
            "components": {"schemas": schemas}}


def index(store):
    out = {}
    for group, versions in discovery.groups(store):
        for version in versions:
            doc = gv_document(store, group, version)
            digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()
            out[gv_path(group, version)] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s"
                                            % (gv_path(group, version), digest)}
    return {"paths": out}


def _from_types(store, key, build):
    """build() once per set of served types: clients fetch the OpenAPI documents often (kubectl, helm's
    server-side apply) and building them from large CRD schemas is costly."""
    generation = store.types_generation
    cached = store.derived.get((generation, key))
    if cached is None:
        cached = build()
        for stale in [k for k in list(store.derived) if k[0] != generation]:
            store.derived.pop(stale, None)
        store.derived[(generation, key)] = cached
    return cached


def document(store, path, query, accept=""):
    """Bytes for an /openapi/... path, or None (404)."""
    if "protobuf" in (accept or "") and path == "/openapi/v2":
        return V2_PROTOBUF, V2_PROTOBUF_TYPE
    return _from_types(store, ("openapi", path), lambda: _document(store, path))


def _document(store, path):
    if path in ("/openapi/v3", "/openapi/v3/"):
        return json.dumps(index(store)).encode()
    if path.startswith("/openapi/v3/"):
        parts = path[len("/openapi/v3/"):].strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = gv_document(store, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = gv_document(store, parts[1], parts[2])
        else:
            doc = None
        return None if doc is None else json.dumps(doc).encode()
    if path == "/openapi/v2":
        return json.dumps({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "unversioned"},
                           "paths": {}, "definitions": {}}).encode()
    return None


def _pb_string(number, text):
    data = text.encode()
    return bytes([number << 3 | 2, len(data)]) + data


# An empty OpenAPI v2 document in gnostic's protobuf form (swagger=1, info=2 {title=1, version=2}, paths=8):
# clients that fall back to v2 find no schemas there and leave validation to the server.
_V2_INFO = _pb_string(1, "Kubernetes") + _pb_string(2, "unversioned")
V2_PROTOBUF = _pb_string(1, "2.0") + bytes([2 << 3 | 2, len(_V2_INFO)]) + _V2_INFO + bytes([8 << 3 | 2, 0])
V2_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
