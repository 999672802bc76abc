"""CustomResourceDefinitions: serving custom resources from the real upstream CRD manifests.

Creating a CRD registers its resource (every served version) with the store right away, marks it
NamesAccepted and Established, and deleting it stops serving and drops its objects. Objects are
handled as kube-apiserver does for structural schemas:

  1. pruning: fields the version's openAPIV3Schema does not declare are dropped, unless
     `x-kubernetes-preserve-unknown-fields` keeps them (and apiVersion/kind/metadata of
     `x-kubernetes-embedded-resource` objects); nulls in non-nullable fields are dropped too;
  2. defaulting from `default:` (on create/update, and on read so schema changes show up);
  3. validation with jsonschema (Draft 4 keywords, which is what OpenAPI v3.0 schemas use) plus the
     Kubernetes extensions `nullable`, `x-kubernetes-int-or-string` and list-type uniqueness. Errors
     are reported as 422 Invalid with the real field paths and wording.

`x-kubernetes-validations` (CEL rules) are accepted but not evaluated (see docs/simulator.md).
Validators are compiled lazily per (CRD, version) and cached: chart CRDs run to ~0.8 MB each.
"""
from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
import threading
import uuid

import jsonschema
from jsonschema import validators

from .builtin import MetaStrategy, go_repr, _sorted_versions
from .errors import ApiError
from .store import ResourceType

CRD_GR = ("apiextensions.k8s.io", "customresourcedefinitions")
VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")


# --------------------------------------------------------------------------------------- schema walks

def prune(value, schema, path="", unknown=None, root=True):
    """Drop undeclared fields in place; return the list of dropped field paths (for fieldValidation)."""
    unknown = [] if unknown is None else unknown
    if not isinstance(schema, dict):
        return unknown
    if isinstance(value, dict):
        _prune_object(value, schema, path, unknown, root)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                prune(item, items, "%s[%d]" % (path, i), unknown, False)
    return unknown


def _prune_object(value, schema, path, unknown, root):
    props = schema.get("properties")
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = schema.get("x-kubernetes-embedded-resource") is True
    keep = ("apiVersion", "kind", "metadata") if (root or embedded) else ()
    for key in list(value):
        child_path = "%s.%s" % (path, key) if path else key
        child = (props or {}).get(key)
        if child is None and isinstance(additional, dict):
            child = additional
        if child is None:
            if key in keep or preserve or additional is True:
                continue
            unknown.append(child_path)
            del value[key]
            continue
        if value[key] is None and not child.get("nullable"):
            del value[key]
            continue
        if root and key == "metadata":
            continue
        prune(value[key], child, child_path, unknown, False)


def apply_defaults(value, schema):
    """Fill `default:` values in place, for objects that exist (as the structural defaulter does)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        for key, child in (schema.get("properties") or {}).items():
            if key not in value and isinstance(child, dict) and "default" in child:
                value[key] = copy.deepcopy(child["default"])
            if key in value:
                apply_defaults(value[key], child)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            props = schema.get("properties") or {}
            for key, item in value.items():
                if key not in props:
                    apply_defaults(item, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])
    return value


def has_defaults(schema):
    """Whether any `default:` appears in a schema (read-time defaulting is skipped when none does)."""
    return '"default"' in json.dumps(schema)


# --------------------------------------------------------------------------------------- validation

_TYPE_NAMES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"), (type(None), "null"))


def json_type(value):
    for pytype, name in _TYPE_NAMES:
        if isinstance(value, pytype):
            return name
    return type(value).__name__


def _type_ok(value, expected):
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return True


def _kube_type(validator, expected, instance, schema):
    if schema.get("x-kubernetes-int-or-string") and (isinstance(instance, str) or
                                                     (isinstance(instance, int) and not isinstance(instance, bool))):
        return
    if instance is None and schema.get("nullable"):
        return
    if isinstance(expected, list):
        if not any(_type_ok(instance, e) for e in expected):
            yield jsonschema.ValidationError("type", validator="type", validator_value=expected)
    elif not _type_ok(instance, expected):
        yield jsonschema.ValidationError("type", validator="type", validator_value=expected)


def _nullable_wrap(keyword_fn):
    """Keywords other than type accept null when the schema says nullable."""
    def check(validator, value, instance, schema):
        if instance is None and schema.get("nullable"):
            return
        yield from keyword_fn(validator, value, instance, schema)
    return check


def _list_type(validator, list_type, instance, schema):
    if not isinstance(instance, list) or list_type not in ("set", "map"):
        return
    seen = set()
    keys = schema.get("x-kubernetes-list-map-keys") or []
    for i, item in enumerate(instance):
        if list_type == "set":
            marker = json.dumps(item, sort_keys=True)
        elif isinstance(item, dict):
            marker = json.dumps([item.get(k) for k in keys])
        else:
            continue
        if marker in seen:
            err = jsonschema.ValidationError("duplicate", validator="x-kubernetes-list-type", validator_value=list_type,
                                             path=[i], instance=item)
            yield err
        seen.add(marker)


def _no_op(validator, value, instance, schema):
    return iter(())


_INT32 = (-2 ** 31, 2 ** 31 - 1)
_INT64 = (-2 ** 63, 2 ** 63 - 1)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$")


def _format_checker():
    checker = jsonschema.FormatChecker(formats=())

    def check(name, fn, raises=()):
        checker.checks(name, raises=raises)(lambda v: not isinstance(v, str) or fn(v))

    check("date-time", lambda v: bool(_DATE_TIME.match(v)))
    check("datetime", lambda v: bool(_DATE_TIME.match(v)))
    check("date", lambda v: bool(_DATE.match(v)))
    check("duration", lambda v: bool(_DURATION.match(v)))
    check("uuid", lambda v: bool(uuid.UUID(v)), ValueError)
    check("ipv4", lambda v: bool(ipaddress.IPv4Address(v)), ValueError)
    check("ipv6", lambda v: bool(ipaddress.IPv6Address(v)), ValueError)
    check("cidr", lambda v: bool(ipaddress.ip_network(v, strict=False)), ValueError)
    check("byte", lambda v: base64.b64decode(v, validate=True) is not None, (binascii.Error, ValueError))
    checker.checks("int32")(lambda v: not isinstance(v, int) or _INT32[0] <= v <= _INT32[1])
    checker.checks("int64")(lambda v: not isinstance(v, int) or _INT64[0] <= v <= _INT64[1])
    return checker


FORMAT_CHECKER = _format_checker()
_BASE = validators.Draft4Validator
_WRAPPED = {k: _nullable_wrap(v) for k, v in _BASE.VALIDATORS.items() if k not in ("type", "properties", "items")}
KubeValidator = validators.extend(_BASE, dict(_WRAPPED, **{
    "type": _kube_type,
    "x-kubernetes-list-type": _list_type,
    "x-kubernetes-validations": _no_op,
    "$ref": _no_op,
}))


def field_path(error, prefix=""):
    parts = []
    for item in error.absolute_path:
        if isinstance(item, int):
            parts.append("[%d]" % item)
        else:
            parts.append(("." if parts else "") + str(item))
    path = "".join(parts)
    return (prefix + "." + path if prefix and path else prefix or path)


def _render(error):
    """A jsonschema error -> (field, message, reason) in kube-openapi's words."""
    path = field_path(error)
    kw, val, inst = error.validator, error.validator_value, error.instance
    if kw == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return ("%s.%s" % (path, missing) if path else missing, "Required value", "FieldValueRequired")
    if kw == "type":
        expected = val if isinstance(val, str) else ",".join(val)
        actual = json_type(inst)
        message = 'Invalid value: "%s": %s in body must be of type %s: "%s"' % (actual, path or "body", expected, actual)
        return (path, message, "FieldValueTypeInvalid")
    if kw == "enum":
        return (path, "Unsupported value: %s: supported values: %s" % (go_repr(inst), ", ".join(
            go_repr(v) for v in val)), "FieldValueNotSupported")
    if kw == "x-kubernetes-list-type":
        return (path, "Duplicate value: %s" % go_repr(inst), "FieldValueDuplicate")
    if kw == "maxLength":
        return (path, "Too long: may not be more than %d bytes" % val, "FieldValueTooLong")
    if kw == "maxItems":
        return (path, "Too many: %d: must have at most %d items" % (len(inst), val), "FieldValueTooMany")
    or_equal_min = "" if error.schema.get("exclusiveMinimum") else "or equal to "
    or_equal_max = "" if error.schema.get("exclusiveMaximum") else "or equal to "
    detail = {
        "minimum": lambda: "should be greater than %s%s" % (or_equal_min, _num(val)),
        "maximum": lambda: "should be less than %s%s" % (or_equal_max, _num(val)),
        "pattern": lambda: "should match '%s'" % val,
        "minLength": lambda: "should be at least %d chars long" % val,
        "minItems": lambda: "should have at least %d items" % val,
        "minProperties": lambda: "should have at least %d properties" % val,
        "maxProperties": lambda: "should have at most %d properties" % val,
        "multipleOf": lambda: "should be a multiple of %s" % _num(val),
        "uniqueItems": lambda: "shouldn't contain duplicates",
        "format": lambda: "must be of type %s: %s" % (val, go_repr(inst)),
    }.get(kw)
    text = detail() if detail else error.message
    shown = inst if kw in ("minItems", "maxItems") else inst
    if kw == "minItems":
        shown = len(inst)
    return (path, "Invalid value: %s: %s in body %s" % (go_repr(shown), path or "body", text), "FieldValueInvalid")


def _num(value):
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


# --------------------------------------------------------------------------------------- types

class CustomResourceType(ResourceType):
    """The served type of one CRD. Holds the CRD, per-version schemas and lazily compiled validators."""

    def __init__(self, crd):
        spec = crd["spec"]
        names = spec["names"]
        served = [v["name"] for v in spec["versions"] if v.get("served")]
        storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
        ordered = _sorted_versions(served) if all(re.match(r"^v\d+((alpha|beta)\d*)?$", v) for v in served) \
            else sorted(served)
        self.crd = crd
        self.version_specs = {v["name"]: v for v in spec["versions"]}
        subresources = set()
        for version in spec["versions"]:
            subresources.update((version.get("subresources") or {}).keys())
        super().__init__(spec["group"], ordered, names["plural"], names["kind"],
                         namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                         short_names=names.get("shortNames") or (), categories=names.get("categories") or (),
                         singular=names.get("singular") or names["kind"].lower(), subresources=sorted(subresources),
                         verbs=VERBS, storage_version=storage, list_kind=names.get("listKind"),
                         preferred_version=ordered[-1] if ordered else storage,
                         strategy=CustomResourceStrategy(self))
        self.field_selectors = frozenset(("metadata.name", "metadata.namespace") + tuple(
            f["jsonPath"].lstrip(".") for v in spec["versions"] for f in v.get("selectableFields") or []))
        self.alias_of = None
        self._validators = {}
        self._defaults = {}
        self._lock = threading.Lock()

    def schema(self, version):
        return ((self.version_specs.get(version) or {}).get("schema") or {}).get("openAPIV3Schema") or {}

    def version_subresources(self, version):
        return (self.version_specs.get(version) or {}).get("subresources") or {}

    def printer_columns(self, version):
        return (self.version_specs.get(version) or {}).get("additionalPrinterColumns") or []

    def validator(self, version):
        with self._lock:
            if version not in self._validators:
                self._validators[version] = KubeValidator(self.schema(version), format_checker=FORMAT_CHECKER)
            return self._validators[version]

    def defaults_on_read(self, version):
        with self._lock:
            if version not in self._defaults:
                self._defaults[version] = has_defaults(self.schema(version))
            return self._defaults[version]

    def convert_out(self, obj, version):
        """Conversion strategy None: only apiVersion changes (webhook conversion is not modelled)."""
        api_version = self.api_version(version)
        out = obj if obj.get("apiVersion") == api_version else dict(obj, apiVersion=api_version)
        if self.defaults_on_read(version):
            out = apply_defaults(copy.deepcopy(out), self.schema(version))
        return out

    def convert_in(self, obj, version):
        return dict(obj, apiVersion=self.api_version(version), kind=self.kind)

    def unknown_fields(self, obj):
        """Paths pruning would drop from `obj` (which carries its version in apiVersion)."""
        return prune(copy.deepcopy(obj), self.schema(obj["apiVersion"].rpartition("/")[2]))

    def admit(self, obj):
        """Prune, default and validate `obj` in place for its version; raises 422 Invalid."""
        version = obj["apiVersion"].rpartition("/")[2]
        schema = self.schema(version)
        prune(obj, schema)
        apply_defaults(obj, schema)
        body = {k: v for k, v in obj.items() if k != "metadata"}
        meta_schema = (schema.get("properties") or {}).get("metadata")
        if meta_schema:
            body["metadata"] = {k: v for k, v in obj.get("metadata", {}).items() if k in ("name", "generateName")}
        errors = sorted(self.validator(version).iter_errors(body), key=lambda e: list(e.absolute_path))
        causes = [_render(e) for e in _leaf_errors(errors)]
        if causes:
            raise ApiError.invalid(self.group, self.kind, obj["metadata"].get("name", ""), causes)
        return obj


def _leaf_errors(errors):
    """anyOf/oneOf failures report their first sub-error (kube-openapi does the same for int-or-string)."""
    out = []
    for error in errors:
        if error.validator in ("anyOf", "oneOf", "allOf") and error.context:
            out.append(sorted(error.context, key=lambda e: len(list(e.absolute_path)))[0])
        else:
            out.append(error)
    return out


class CustomResourceStrategy(MetaStrategy):
    """Custom resources: schema pruning/defaulting/validation at every write, generation tracking."""

    tracks_generation = True

    def __init__(self, rtype):
        self.rtype = rtype
        self.has_status_subresource = any("status" in (v.get("subresources") or {})
                                          for v in rtype.crd["spec"]["versions"])

    def prepare_create(self, store, obj):
        self.rtype.admit(obj)

    def prepare_update(self, store, new, old):
        self.rtype.admit(new)


# --------------------------------------------------------------------------------------- CRDs themselves

class CRDStrategy(MetaStrategy):
    """CustomResourceDefinition defaults and checks; creation marks names accepted and established."""

    tracks_generation = True
    has_status_subresource = True

    def prepare_create(self, store, obj):
        self._defaults(obj)
        names = obj["spec"]["names"]
        now = store.clock.timestamp()
        obj["status"] = {
            "acceptedNames": copy.deepcopy(names),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
                 "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now}],
            "storedVersions": [v["name"] for v in obj["spec"].get("versions") or [] if v.get("storage")],
        }

    def prepare_update(self, store, new, old):
        self._defaults(new)
        status = copy.deepcopy(old.get("status") or {})
        stored = status.setdefault("storedVersions", [])
        for version in new["spec"].get("versions") or []:
            if version.get("storage") and version["name"] not in stored:
                stored.append(version["name"])
        status["acceptedNames"] = copy.deepcopy(new["spec"].get("names") or {})
        new["status"] = status

    @staticmethod
    def _defaults(obj):
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if names.get("kind"):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        spec.setdefault("scope", "Namespaced")
        spec.setdefault("conversion", {"strategy": "None"})
        for version in spec.get("versions") or []:
            columns = version.get("additionalPrinterColumns")
            if columns is None:
                continue
            for column in columns:
                column.setdefault("priority", 0)

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        for field in ("plural", "kind"):
            if not names.get(field):
                causes.required("spec.names." + field)
        if not spec.get("group"):
            causes.required("spec.group")
        expected = "%s.%s" % (names.get("plural"), spec.get("group"))
        if obj["metadata"]["name"] != expected:
            causes.invalid("metadata.name", obj["metadata"]["name"], 'must be spec.names.plural+"."+spec.group')
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.unsupported("spec.scope", spec.get("scope"), ("Cluster", "Namespaced"))
        versions = spec.get("versions") or []
        if not versions:
            causes.invalid("spec.versions", versions, "must have exactly one version marked as storage version")
        elif sum(1 for v in versions if v.get("storage")) != 1:
            causes.invalid("spec.versions", [v.get("name") for v in versions],
                           "must have exactly one version marked as storage version")
        for i, version in enumerate(versions):
            if not ((version.get("schema") or {}).get("openAPIV3Schema")):
                causes.required("spec.versions[%d].schema.openAPIV3Schema" % i, "schemas are required")
        if old is not None:
            old_spec = old.get("spec") or {}
            for field in ("group", "scope"):
                if old_spec.get(field) != spec.get(field):
                    causes.invalid("spec." + field, spec.get(field), "field is immutable")


class CRDRegistry(object):
    """Keeps the served custom types in step with the stored CRDs (a store subscriber)."""

    def __init__(self, sim):
        self.sim = sim
        self.store = sim.store
        crd_type = self.store.type_for(*CRD_GR) if CRD_GR in self.store.types else None
        if crd_type is None:
            from .builtin import BuiltinType
            crd_type = BuiltinType("apiextensions.k8s.io", ("v1",), "customresourcedefinitions",
                                   "CustomResourceDefinition", namespaced=False, short_names=("crd", "crds"),
                                   categories=("api-extensions",), subresources=("status",), strategy=CRDStrategy())
            self.store.register(crd_type)
        self.store.subscribe(self._on_event)

    def _on_event(self, event):
        if event.gr != CRD_GR:
            return
        crd = event.obj
        gr = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        if event.type == "DELETED":
            self.store.unregister(gr)
            self.sim.log("CRD %s deleted; %s/%s no longer served" % (crd["metadata"]["name"], gr[0], gr[1]))
            return
        if event.type == "MODIFIED" and event.old is not None and event.old.get("spec") == crd.get("spec"):
            return
        if crd["metadata"].get("deletionTimestamp"):
            return
        self.store.register(CustomResourceType(crd))

    def admit(self, rtype, version, obj):
        """Prune/default/validate a custom object outside a request (scenario loading)."""
        return rtype.admit(rtype.convert_in(obj, version))
