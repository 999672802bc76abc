"""Built-in resource types and their strategies: what kube-apiserver's registry does per type.

Each type is a `BuiltinType` (a store.ResourceType plus the field selectors the real API accepts,
version converters and an optional alias). Strategies apply the defaults that clients look at
(pod restartPolicy, service clusterIP, deployment strategy, job selector labels, ...) and the
validation that matters for this collection (DNS names, required fields, immutable selectors, pod spec
immutability). They run for API requests and for the simulated controllers alike, because both write
through the store.

`builtin_types(minor, settings)` lists the types a Kubernetes minor serves. DRA (resource.k8s.io)
differs by minor: 1.33 serves v1beta1 and v1beta2, 1.34+ serves v1 only (betas off by default);
`settings.api.draVersions` overrides that (an empty list serves no DRA API at all).
"""
from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import re

from .errors import ApiError
from .quantity import canonicalize_object
from .selectors import label_selector_predicate
from .store import ALL_VERBS, ResourceType, Strategy

# --------------------------------------------------------------------------------------- names

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
C_IDENTIFIER_ISH = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
               "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
               "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
QUALIFIED_NAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                      "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                      "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def go_repr(value):
    """Render a value roughly as Go's %#v does in field.Invalid messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"%s"' % value.replace('"', '\\"')
    if value is None:
        return "null"
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            return "map[string]string{%s}" % ", ".join('"%s":"%s"' % (k, v) for k, v in sorted(value.items()))
        return "map[string]interface {}{%s}" % ", ".join('"%s":%s' % (k, go_repr(v)) for k, v in sorted(value.items()))
    if isinstance(value, list):
        return "[]interface {}{%s}" % ", ".join(go_repr(v) for v in value)
    return str(value)


class Causes(object):
    """Collects field errors and raises one 422 Invalid naming all of them, as field.ErrorList does."""

    def __init__(self):
        self.items = []

    def required(self, path, detail=""):
        self.items.append((path, "Required value" + (": " + detail if detail else ""), "FieldValueRequired"))

    def invalid(self, path, value, detail):
        self.items.append((path, "Invalid value: %s: %s" % (go_repr(value), detail), "FieldValueInvalid"))

    def unsupported(self, path, value, supported):
        self.items.append((path, "Unsupported value: %s: supported values: %s"
                           % (go_repr(value), ", ".join('"%s"' % s for s in supported)), "FieldValueNotSupported"))

    def duplicate(self, path, value):
        self.items.append((path, "Duplicate value: %s" % go_repr(value), "FieldValueDuplicate"))

    def forbidden(self, path, detail):
        self.items.append((path, "Forbidden: " + detail, "FieldValueForbidden"))

    def too_long(self, path, limit):
        self.items.append((path, "Too long: may not be more than %d bytes" % limit, "FieldValueTooLong"))

    def raise_if_any(self, group, kind, name):
        if self.items:
            raise ApiError.invalid(group, kind, name, self.items)


def check_name(causes, name, style, path="metadata.name"):
    """Validate an object name in the style its type uses (subdomain, label, dns1035, path)."""
    if style == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            causes.invalid(path, name, 'may not contain "/" or "%"' if name not in (".", "..")
                           else 'may not be "%s"' % name)
        return
    limit = 253 if style == "subdomain" else 63
    if len(name) > limit:
        causes.invalid(path, name, "must be no more than %d characters" % limit)
    regex, msg = {"subdomain": (DNS1123_SUBDOMAIN, SUBDOMAIN_MSG), "label": (DNS1123_LABEL, LABEL_MSG),
                  "dns1035": (DNS1035_LABEL, DNS1035_MSG)}[style]
    if not regex.match(name):
        causes.invalid(path, name, msg)


def check_qualified_name(causes, key, path):
    prefix, _unused, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        causes.invalid(path, key, "prefix part " + SUBDOMAIN_MSG)
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        causes.invalid(path, key, QUALIFIED_NAME_MSG)


def check_labels(causes, labels, path="metadata.labels"):
    for key, value in (labels or {}).items():
        check_qualified_name(causes, key, path)
        if not isinstance(value, str):
            causes.invalid(path, value, "label values must be strings")
        elif len(value) > 63 or not LABEL_VALUE.match(value):
            causes.invalid(path, value, LABEL_VALUE_MSG)


# --------------------------------------------------------------------------------------- quantities

_SUFFIX = {"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5, "Ei": 1024 ** 6}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(text):
    """A resource.Quantity string ("500m", "2Gi", "1e3", 4) -> float; ValueError when malformed."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


# --------------------------------------------------------------------------------------- strategies

class MetaStrategy(Strategy):
    """Object-metadata validation every type shares: the name style and label syntax."""

    name_style = "subdomain"

    def normalize(self, obj):
        """Decoding into the Go type: Quantity fields become canonical strings (a YAML `nvidia.com/gpu: 1`
        is served as "1"), and a null means "unset": the real API server decodes it to the field's zero
        value or nil, and then defaults it (node-feature-discovery renders revisionHistoryLimit: null)."""
        canonicalize_object(obj)
        _drop_nulls(obj)

    def validate(self, store, obj, old):
        causes = Causes()
        self.validate_meta(causes, obj)
        self.validate_spec(store, causes, obj, old)
        meta = obj["metadata"]
        causes.raise_if_any(_group_of(obj), obj.get("kind", ""), meta.get("name", ""))

    def validate_meta(self, causes, obj):
        meta = obj["metadata"]
        check_name(causes, meta.get("name", ""), self.name_style)
        check_labels(causes, meta.get("labels"))
        for key in (meta.get("annotations") or {}):
            check_qualified_name(causes, key, "metadata.annotations")

    def validate_spec(self, store, causes, obj, old):
        """Type-specific checks; add to `causes`."""


def _drop_nulls(value):
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            _drop_nulls(item)
    elif isinstance(value, list):
        for item in value:
            _drop_nulls(item)


def _group_of(obj):
    api_version = obj.get("apiVersion", "")
    return api_version.rpartition("/")[0] if "/" in api_version else ""


class GenerationStrategy(MetaStrategy):
    """Types whose spec changes bump metadata.generation."""

    tracks_generation = True


class StatusStrategy(GenerationStrategy):
    """Types with a status subresource whose spec changes bump metadata.generation."""

    has_status_subresource = True


def pull_policy(image):
    """The default imagePullPolicy: Always for :latest or untagged images, IfNotPresent otherwise."""
    name = (image or "").split("@")[0]
    if "@" in (image or ""):
        return "IfNotPresent"
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(probe):
    if not probe:
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        probe.setdefault(key, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def _default_container(container):
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", pull_policy(container.get("image")))
    resources = container.setdefault("resources", {})
    if resources.get("limits"):
        requests = resources.setdefault("requests", {})
        for res, value in resources["limits"].items():
            requests.setdefault(res, value)
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef")
        if ref is not None:
            ref.setdefault("apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe))


def default_pod_spec(spec):
    """SetDefaults_PodSpec and the container defaults: what every pod and pod template gets."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(container, dict):
            _default_container(container)
    for volume in spec.get("volumes") or []:
        for kind in ("configMap", "secret", "projected", "downwardAPI"):
            if isinstance(volume.get(kind), dict):
                volume[kind].setdefault("defaultMode", 420)
        if isinstance(volume.get("hostPath"), dict):
            volume["hostPath"].setdefault("type", "")
    return spec


def qos_class(spec):
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for container in containers:
        res = container.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or _qty(requests.get(name, limits.get(name))) != _qty(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _qty(value):
    try:
        return parse_quantity(value)
    except (TypeError, ValueError):
        return value


def validate_pod_spec(causes, spec, path, allowed_restart=None):
    """The checks charts and probes can trip over: containers, names, images, ports, restartPolicy."""
    containers = spec.get("containers")
    if not containers:
        causes.required(path + ".containers")
    seen = set()
    for field in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(field) or []):
            cpath = "%s.%s[%d]" % (path, field, i)
            if not isinstance(container, dict):
                causes.invalid(cpath, container, "must be an object")
                continue
            name = container.get("name")
            if not name:
                causes.required(cpath + ".name")
            elif not DNS1123_LABEL.match(name) or len(name) > 63:
                causes.invalid(cpath + ".name", name, LABEL_MSG)
            elif name in seen:
                causes.duplicate(cpath + ".name", name)
            seen.add(name)
            if not container.get("image"):
                causes.required(cpath + ".image")
            for j, port in enumerate(container.get("ports") or []):
                value = port.get("containerPort")
                if not isinstance(value, int) or not 0 < value < 65536:
                    causes.invalid("%s.ports[%d].containerPort" % (cpath, j), value,
                                   "must be between 1 and 65535, inclusive")
            for j, env in enumerate(container.get("env") or []):
                if not env.get("name"):
                    causes.required("%s.env[%d].name" % (cpath, j))
    restart = spec.get("restartPolicy")
    supported = allowed_restart or ("Always", "OnFailure", "Never")
    if restart not in supported:
        causes.unsupported(path + ".restartPolicy", restart, supported)
    volumes = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        vname = volume.get("name")
        if not vname:
            causes.required("%s.volumes[%d].name" % (path, i))
        elif vname in volumes:
            causes.duplicate("%s.volumes[%d].name" % (path, i), vname)
        volumes.add(vname)


POD_UPDATE_MSG = ("pod updates may not change fields other than `spec.containers[*].image`,"
                  "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                  "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                  "previously negative)")


class PodStrategy(MetaStrategy):
    """Pods: defaults, admission defaults (service account volume, priority, default tolerations),
    QoS class, spec immutability and graceful deletion of pods bound to a node."""

    has_status_subresource = True

    def prepare_create(self, store, obj):
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec["serviceAccount"] = spec["serviceAccountName"]
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        self._priority(store, obj)
        self._default_tolerations(spec)
        self._service_account_volume(store, obj)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}

    @staticmethod
    def _priority(store, obj):
        spec = obj["spec"]
        name = spec.get("priorityClassName")
        classes = store.list(("scheduling.k8s.io", "priorityclasses"))[0] \
            if ("scheduling.k8s.io", "priorityclasses") in store.types else []
        if name:
            match = [c for c in classes if c["metadata"]["name"] == name]
            if not match:
                raise ApiError(403, "Forbidden", 'pods "%s" is forbidden: no PriorityClass with name %s was found'
                               % (obj["metadata"].get("name") or obj["metadata"].get("generateName", ""), name),
                               {"name": obj["metadata"].get("name", ""), "kind": "pods"})
            spec["priority"] = match[0].get("value", 0)
            return
        default = [c for c in classes if c.get("globalDefault")]
        if default:
            spec["priorityClassName"] = default[0]["metadata"]["name"]
            spec["priority"] = default[0].get("value", 0)
        else:
            spec.setdefault("priority", 0)

    @staticmethod
    def _default_tolerations(spec):
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tolerations) and \
                    not any(t.get("operator") == "Exists" and not t.get("key") for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})

    @staticmethod
    def _service_account_volume(store, obj):
        """What the ServiceAccount admission plugin adds: the projected kube-api-access volume and mounts."""
        spec = obj["spec"]
        if spec.get("automountServiceAccountToken") is False:
            return
        sa = store.try_get(("", "serviceaccounts"), obj["metadata"].get("namespace"), spec["serviceAccountName"]) \
            if ("", "serviceaccounts") in store.types else None
        if sa is not None and sa.get("automountServiceAccountToken") is False and \
                spec.get("automountServiceAccountToken") is None:
            return
        mount_path = "/var/run/secrets/kubernetes.io/serviceaccount"
        containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
        if any(m.get("mountPath") == mount_path for c in containers for m in c.get("volumeMounts") or []):
            return
        name = "kube-api-access-" + "".join(store.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _unused in range(5))
        spec.setdefault("volumes", []).append({"name": name, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                          "fieldPath": "metadata.namespace"}}]}}]}})
        for container in containers:
            container.setdefault("volumeMounts", []).append({"name": name, "mountPath": mount_path, "readOnly": True})

    def prepare_update(self, store, new, old):
        default_pod_spec(new.setdefault("spec", {}))
        old_spec, new_spec = old.get("spec") or {}, new["spec"]
        if _mutable_pod_view(new_spec, old_spec) != _mutable_pod_view(old_spec, old_spec):
            raise ApiError.invalid("", "Pod", new["metadata"]["name"], [("spec", "Forbidden: " + POD_UPDATE_MSG,
                                                                         "FieldValueForbidden")])

    def validate_spec(self, store, causes, obj, old):
        if old is None:
            validate_pod_spec(causes, obj.get("spec") or {}, "spec")

    def defer_delete(self, store, obj, options):
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return False
        grace = options.get("grace_period")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace == 0:
            return False
        obj["metadata"]["deletionGracePeriodSeconds"] = int(grace)
        return True


def _mutable_pod_view(spec, old_spec):
    """The pod spec with the fields that may change blanked out, to compare old and new."""
    view = copy.deepcopy(spec)
    for field in ("containers", "initContainers"):
        for container in view.get(field) or []:
            container.pop("image", None)
    view.pop("activeDeadlineSeconds", None)
    view.pop("terminationGracePeriodSeconds", None)
    view.pop("schedulingGates", None)
    old_tolerations = old_spec.get("tolerations") or []
    tolerations = view.pop("tolerations", None) or []
    if any(t not in tolerations for t in old_tolerations):
        view["tolerations-removed"] = True
    if not old_spec.get("nodeName"):
        view.pop("nodeName", None)
    return view


class ServiceStrategy(MetaStrategy):
    """Services: type/ports defaults, clusterIP and nodePort allocation, allocated values kept on update."""

    name_style = "dns1035"
    has_status_subresource = True

    def __init__(self, cidr="10.96.0.0/12"):
        self.network = ipaddress.ip_network(cidr)

    def prepare_create(self, store, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] == "ExternalName":
            obj["status"] = {"loadBalancer": {}}
            return
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        if spec.get("clusterIP") != "None":
            ip = spec.get("clusterIP") or self._allocate_ip(store)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        else:
            spec["clusterIPs"] = ["None"]
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
            used = self._used_node_ports(store)
            for port in spec.get("ports") or []:
                if not port.get("nodePort"):
                    port["nodePort"] = next(p for p in range(30000, 32768) if p not in used)
                    used.add(port["nodePort"])
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        obj["status"] = {"loadBalancer": {}}

    def _allocate_ip(self, store):
        used = {s.get("spec", {}).get("clusterIP") for s in store.list(("", "services"))[0]}
        for offset, address in enumerate(self.network.hosts()):
            if offset > 0xFFFF:
                break
            if str(address) not in used:
                return str(address)
        raise ApiError.internal("failed to allocate a serviceIP: range is full")

    @staticmethod
    def _used_node_ports(store):
        return {p.get("nodePort") for s in store.list(("", "services"))[0] for p in s.get("spec", {}).get("ports") or []}

    def prepare_update(self, store, new, old):
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        spec.setdefault("type", old_spec.get("type", "ClusterIP"))
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy",
                    "sessionAffinity"):
            if key not in spec and key in old_spec:
                spec[key] = copy.deepcopy(old_spec[key])
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            previous = old_ports.get((port.get("port"), port["protocol"]))
            if previous and previous.get("nodePort") and not port.get("nodePort") and \
                    spec["type"] in ("NodePort", "LoadBalancer"):
                port["nodePort"] = previous["nodePort"]
        if old_spec.get("clusterIP") and spec.get("clusterIP") != old_spec.get("clusterIP") and \
                spec.get("type") != "ExternalName":
            raise ApiError.invalid("", "Service", new["metadata"]["name"], [(
                "spec.clusterIPs[0]", "Invalid value: %s: may not change once set" % go_repr(spec.get("clusterIP")))])

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        supported = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
        if spec.get("type") not in supported:
            causes.unsupported("spec.type", spec.get("type"), supported)
        if not spec.get("ports") and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
            causes.required("spec.ports")
        names = set()
        for i, port in enumerate(spec.get("ports") or []):
            value = port.get("port")
            if not isinstance(value, int) or not 0 < value < 65536:
                causes.invalid("spec.ports[%d].port" % i, value, "must be between 1 and 65535, inclusive")
            if len(spec.get("ports")) > 1 and not port.get("name"):
                causes.required("spec.ports[%d].name" % i)
            if port.get("name") in names:
                causes.duplicate("spec.ports[%d].name" % i, port.get("name"))
            names.add(port.get("name"))


class NamespaceStrategy(MetaStrategy):
    """Namespaces: the metadata.name label, the `kubernetes` finalizer and the Terminating phase.

    Deviation: a main-resource update may change spec.finalizers (the real API only allows it through
    the finalize subresource) so the simulated namespace controller can finalise through the store.
    """

    name_style = "label"
    has_status_subresource = True

    def prepare_create(self, store, obj):
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}

    def prepare_update(self, store, new, old):
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
        new.setdefault("spec", {})
        if "finalizers" not in new["spec"] and "finalizers" in (old.get("spec") or {}) and \
                not old["metadata"].get("deletionTimestamp"):
            new["spec"]["finalizers"] = list(old["spec"]["finalizers"])

    def validate_delete(self, store, obj):
        """A namespace already terminating cannot be deleted again until its finalizers are done."""
        if obj["metadata"].get("deletionTimestamp") and (obj.get("spec") or {}).get("finalizers"):
            raise ApiError.conflict("", "namespaces", obj["metadata"]["name"], "The system is ensuring all content "
                                    "is removed from this namespace.  Upon completion, this namespace will "
                                    "automatically be purged by the system.")

    def defer_delete(self, store, obj, options):
        obj.setdefault("status", {})["phase"] = "Terminating"
        return True

    def can_remove(self, store, obj):
        return not (obj.get("spec") or {}).get("finalizers")


class SecretStrategy(MetaStrategy):
    """Secrets: stringData folded into base64 data, type Opaque by default, type immutable."""

    def prepare_create(self, store, obj):
        self._fold(obj)
        obj.setdefault("type", "Opaque")

    def prepare_update(self, store, new, old):
        self._fold(new)
        new.setdefault("type", old.get("type", "Opaque"))

    @staticmethod
    def _fold(obj):
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {}) or {}
            obj["data"] = data
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()

    def validate_spec(self, store, causes, obj, old):
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(value or "", validate=True)
            except (binascii.Error, TypeError, ValueError):
                causes.invalid("data[%s]" % key, "<secret contents redacted>", "illegal base64 data")
        if old is not None and old.get("type") != obj.get("type"):
            causes.invalid("type", obj.get("type"), "field is immutable")
        if old is not None and old.get("immutable") and old.get("data") != obj.get("data"):
            causes.forbidden("data", "field is immutable when `immutable` is set")


class ConfigMapStrategy(MetaStrategy):
    """ConfigMaps: `immutable: true` freezes data."""

    def validate_spec(self, store, causes, obj, old):
        if old is not None and old.get("immutable") and \
                (old.get("data") != obj.get("data") or old.get("binaryData") != obj.get("binaryData")):
            causes.forbidden("data", "field is immutable when `immutable` is set")


class PathNameStrategy(MetaStrategy):
    """Types whose names only have to be valid path segments (RBAC objects)."""

    name_style = "path"


class PriorityClassStrategy(MetaStrategy):
    def prepare_create(self, store, obj):
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")

    def validate_spec(self, store, causes, obj, old):
        if not isinstance(obj.get("value"), int):
            causes.required("value")
        elif old is not None and old.get("value") != obj.get("value"):
            causes.forbidden("value", "may not be changed in an update.")


class PVCStrategy(MetaStrategy):
    has_status_subresource = True

    def prepare_create(self, store, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        if not spec.get("accessModes"):
            causes.required("spec.accessModes")
        if not (spec.get("resources") or {}).get("requests", {}).get("storage"):
            causes.required("spec.resources[storage]")


class WebhookConfigStrategy(MetaStrategy):
    """Validating/MutatingWebhookConfiguration defaults (failurePolicy Fail, timeout 10 s, port 443)."""

    def __init__(self, mutating):
        self.mutating = mutating

    def prepare_create(self, store, obj):
        self._defaults(obj)

    def prepare_update(self, store, new, old):
        self._defaults(new)

    def _defaults(self, obj):
        for hook in obj.get("webhooks") or []:
            hook.setdefault("failurePolicy", "Fail")
            hook.setdefault("matchPolicy", "Equivalent")
            hook.setdefault("namespaceSelector", {})
            hook.setdefault("objectSelector", {})
            hook.setdefault("timeoutSeconds", 10)
            if self.mutating:
                hook.setdefault("reinvocationPolicy", "Never")
            service = (hook.get("clientConfig") or {}).get("service")
            if service is not None:
                service.setdefault("port", 443)
            for rule in hook.get("rules") or []:
                rule.setdefault("scope", "*")

    def validate_spec(self, store, causes, obj, old):
        names = set()
        for i, hook in enumerate(obj.get("webhooks") or []):
            path = "webhooks[%d]" % i
            if not hook.get("name"):
                causes.required(path + ".name")
            elif hook["name"] in names:
                causes.duplicate(path + ".name", hook["name"])
            names.add(hook.get("name"))
            if hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
                causes.unsupported(path + ".sideEffects", hook.get("sideEffects"), ("None", "NoneOnDryRun"))
            if not hook.get("admissionReviewVersions"):
                causes.required(path + ".admissionReviewVersions")
            config = hook.get("clientConfig") or {}
            if not config.get("service") and not config.get("url"):
                causes.required(path + ".clientConfig", "exactly one of url or service is required")


class APIServiceStrategy(MetaStrategy):
    """APIServices are named <version>.<group> (the core group's is "v1.")."""

    name_style = "path"
    has_status_subresource = True

    def prepare_create(self, store, obj):
        spec = obj.setdefault("spec", {})
        if spec.get("service") is None:
            obj["status"] = {"conditions": [{"type": "Available", "status": "True", "reason": "Local",
                                             "message": "Local APIServices are always available",
                                             "lastTransitionTime": store.clock.timestamp()}]}
        else:
            spec["service"].setdefault("port", 443)
            obj.setdefault("status", {})

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        expected = "%s.%s" % (spec.get("version"), spec.get("group"))
        if obj["metadata"]["name"] != expected:
            causes.invalid("metadata.name", obj["metadata"]["name"], 'must be `spec.version+"."+spec.group`: "%s"'
                           % expected)


# --------------------------------------------------------------------------------------- workloads

WORKLOAD_DEFAULTS = {
    "Deployment": {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                   "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                           "maxSurge": "25%"}}},
    "ReplicaSet": {"replicas": 1},
    "StatefulSet": {"replicas": 1, "revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady",
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
    "DaemonSet": {"revisionHistoryLimit": 10,
                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
}


def _default_nested(target, defaults):
    for key, value in defaults.items():
        if key not in target:
            target[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(target[key], dict):
            if key in ("strategy", "updateStrategy") and target[key].get("type") not in (None, "RollingUpdate"):
                continue
            _default_nested(target[key], value)


class WorkloadStrategy(StatusStrategy):
    """Deployments, ReplicaSets, StatefulSets, DaemonSets: defaults, template defaults, selector checks."""

    def __init__(self, kind):
        self.kind = kind

    def prepare_create(self, store, obj):
        self._defaults(obj)
        obj.pop("status", None)

    def prepare_update(self, store, new, old):
        self._defaults(new)

    def _defaults(self, obj):
        spec = obj.setdefault("spec", {})
        _default_nested(spec, WORKLOAD_DEFAULTS[self.kind])
        if self.kind in ("StatefulSet", "DaemonSet") and spec.get("updateStrategy", {}).get("type") == "OnDelete":
            spec["updateStrategy"].pop("rollingUpdate", None)
        if self.kind == "Deployment" and spec.get("strategy", {}).get("type") == "Recreate":
            spec["strategy"].pop("rollingUpdate", None)
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        default_pod_spec(template.setdefault("spec", {}))

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        selector = spec.get("selector")
        labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.required("spec.selector")
        elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.invalid("spec.selector", selector, "empty selector is invalid for deployment")
        elif not label_selector_predicate(selector)(labels):
            causes.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        if old is not None and (old.get("spec") or {}).get("selector") != selector:
            causes.invalid("spec.selector", selector, "field is immutable")
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            causes.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
        validate_pod_spec(causes, spec.get("template", {}).get("spec") or {}, "spec.template.spec", ("Always",))


JOB_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid", "job-name")


class JobStrategy(StatusStrategy):
    """Jobs: backoffLimit 6, completions/parallelism 1, NonIndexed, suspend false, generated selector."""

    def prepare_create(self, store, obj):
        spec = obj.setdefault("spec", {})
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
            spec["parallelism"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        spec.setdefault("manualSelector", None)
        if spec.get("manualSelector") is None:
            spec.pop("manualSelector")
        template = spec.setdefault("template", {})
        default_pod_spec(template.setdefault("spec", {}))
        if not spec.get("manualSelector"):
            uid, name = obj["metadata"]["uid"], obj["metadata"]["name"]
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            labels.update(dict(zip(JOB_LABELS, (uid, name, uid, name))))
        obj.pop("status", None)

    def prepare_update(self, store, new, old):
        default_pod_spec(new.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {}))

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        validate_pod_spec(causes, spec.get("template", {}).get("spec") or {}, "spec.template.spec",
                          ("OnFailure", "Never"))
        for field in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
            value = spec.get(field)
            if value is not None and (not isinstance(value, int) or value < 0):
                causes.invalid("spec." + field, value, "must be greater than or equal to 0")
        if spec.get("completionMode") not in ("NonIndexed", "Indexed"):
            causes.unsupported("spec.completionMode", spec.get("completionMode"), ("NonIndexed", "Indexed"))
        if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
            causes.required("spec.completions", 'when completion mode is Indexed')
        if old is not None:
            old_spec = old.get("spec") or {}
            for field in ("selector", "completionMode", "template"):
                if old_spec.get(field) != spec.get(field) and not (field == "template" and old_spec.get("suspend")):
                    causes.invalid("spec." + field, spec.get(field), "field is immutable")


class CronJobStrategy(StatusStrategy):
    def prepare_create(self, store, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
        default_pod_spec(job_spec.setdefault("template", {}).setdefault("spec", {}))
        obj.pop("status", None)

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        if not spec.get("schedule"):
            causes.required("spec.schedule")


class HPAStrategy(StatusStrategy):
    def prepare_create(self, store, obj):
        self._defaults(obj)
        obj.pop("status", None)

    def prepare_update(self, store, new, old):
        self._defaults(new)

    @staticmethod
    def _defaults(obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 80}}}]

    def validate_spec(self, store, causes, obj, old):
        spec = obj.get("spec") or {}
        if not spec.get("scaleTargetRef"):
            causes.required("spec.scaleTargetRef")
        if not isinstance(spec.get("maxReplicas"), int) or spec["maxReplicas"] < 1:
            causes.invalid("spec.maxReplicas", spec.get("maxReplicas"), "must be greater than or equal to 1")


class PDBStrategy(StatusStrategy):
    def prepare_create(self, store, obj):
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}


class DeviceClaimStrategy(StatusStrategy):
    def prepare_create(self, store, obj):
        obj.pop("status", None)

    def validate_spec(self, store, causes, obj, old):
        if old is not None and obj.get("spec") != old.get("spec"):
            causes.invalid("spec", "<spec>", "field is immutable")


# --------------------------------------------------------------------------------------- converters

def _hpa_to_v1(obj):
    out = copy.deepcopy(obj)
    spec = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for metric in metrics:
        res = metric.get("resource") or {}
        if metric.get("type") == "Resource" and res.get("name") == "cpu" and \
                (res.get("target") or {}).get("type") == "Utilization":
            spec["targetCPUUtilizationPercentage"] = res["target"].get("averageUtilization")
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        status.pop("conditions", None)
        for metric in current:
            res = metric.get("resource") or {}
            if metric.get("type") == "Resource" and res.get("name") == "cpu":
                status["currentCPUUtilizationPercentage"] = (res.get("current") or {}).get("averageUtilization")
    return out


def _hpa_from_v1(obj):
    out = copy.deepcopy(obj)
    spec = out.setdefault("spec", {})
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": target}}}]
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": current}}}]
    return out


_EXACT_KEYS = ("deviceClassName", "selectors", "allocationMode", "count", "adminAccess", "tolerations",
               "capacity")


def _requests_path(obj, kind):
    spec = obj.get("spec") or {}
    if kind == "ResourceClaimTemplate":
        spec = spec.get("spec") or {}
    return (spec.get("devices") or {}).get("requests")


def _dra_to_v1beta1(obj):
    """v1/v1beta2 -> v1beta1: request fields move out of `exactly`; slice devices wrap into `basic`."""
    out = copy.deepcopy(obj)
    kind = out.get("kind")
    if kind in ("ResourceClaim", "ResourceClaimTemplate"):
        for request in _requests_path(out, kind) or []:
            exactly = request.pop("exactly", None)
            if exactly:
                request.update(exactly)
    elif kind == "ResourceSlice":
        for device in (out.get("spec") or {}).get("devices") or []:
            basic = {k: device.pop(k) for k in list(device) if k != "name"}
            device["basic"] = basic
    return out


def _dra_from_v1beta1(obj):
    out = copy.deepcopy(obj)
    kind = out.get("kind")
    if kind in ("ResourceClaim", "ResourceClaimTemplate"):
        for request in _requests_path(out, kind) or []:
            if request.get("firstAvailable"):
                continue
            exactly = {k: request.pop(k) for k in _EXACT_KEYS if k in request}
            request["exactly"] = exactly
    elif kind == "ResourceSlice":
        for device in (out.get("spec") or {}).get("devices") or []:
            device.update(device.pop("basic", None) or {})
    return out


_CORE_TO_EVENTS = (("involvedObject", "regarding"), ("message", "note"), ("reportingComponent", "reportingController"),
                   ("firstTimestamp", "deprecatedFirstTimestamp"), ("lastTimestamp", "deprecatedLastTimestamp"),
                   ("count", "deprecatedCount"), ("source", "deprecatedSource"))


def _event_to_events_v1(obj):
    out = copy.deepcopy(obj)
    for core, new in _CORE_TO_EVENTS:
        if core in out:
            out[new] = out.pop(core)
    if not out.get("reportingController"):
        out["reportingController"] = (out.get("deprecatedSource") or {}).get("component", "")
    if not out.get("reportingInstance"):
        out["reportingInstance"] = (out.get("deprecatedSource") or {}).get("host", "")
    if out.get("series"):
        out["series"] = {"count": out["series"].get("count"), "lastObservedTime": out["series"].get("lastObservedTime")}
    return out


def _event_from_events_v1(obj):
    out = copy.deepcopy(obj)
    for core, new in _CORE_TO_EVENTS:
        if new in out:
            out[core] = out.pop(new)
    return out


# --------------------------------------------------------------------------------------- types

COMMON_FIELDS = ("metadata.name", "metadata.namespace")
POD_FIELDS = COMMON_FIELDS + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                              "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
                              "status.nominatedNodeName")
EVENT_FIELDS = COMMON_FIELDS + ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                                "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                                "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")


#: Registries whose DELETE answers with the object even when it is removed at once (ReturnDeletedObject in
#: pkg/registry/.../storage; the OpenAPI of their delete operations, and so the typed clients, say so: the
#: Python client's delete_namespaced_service returns a V1Service). The others answer a Status then. The CRD
#: registry's own Delete answers with the CRD, which it keeps for the customresourcecleanup finalizer (the
#: simulator removes it at once, but answers the same way).
RETURNS_DELETED_OBJECT = frozenset([
    ("", "pods"), ("", "services"), ("", "namespaces"), ("", "serviceaccounts"), ("", "persistentvolumes"),
    ("", "persistentvolumeclaims"), ("", "resourcequotas"), ("", "podtemplates"),
    ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "csidrivers"), ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "volumeattachments"), ("storage.k8s.io", "volumeattributesclasses"),
    ("resource.k8s.io", "deviceclasses"), ("resource.k8s.io", "resourceclaims"),
    ("resource.k8s.io", "resourceclaimtemplates"), ("resource.k8s.io", "resourceslices"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
])


class BuiltinType(ResourceType):
    """A ResourceType plus what the HTTP layer needs: field selectors, converters between the served
    versions and the stored form, and (for events.k8s.io) the type whose storage it shares."""

    def __init__(self, *args, **kwargs):
        self.field_selectors = frozenset(kwargs.pop("field_selectors", COMMON_FIELDS))
        self.converters = kwargs.pop("converters", {})      # version -> (to_version, from_version)
        self.alias_of = kwargs.pop("alias_of", None)        # (group, resource) whose objects it serves
        self.subresource_kinds = kwargs.pop("subresource_kinds", {})
        super().__init__(*args, **kwargs)
        self.returns_deleted_object = self.gr in RETURNS_DELETED_OBJECT

    def convert_out(self, obj, version):
        """Stored form -> the served `version` (a new dict when anything changes; never mutates obj)."""
        conv = self.converters.get(version)
        out = conv[0](obj) if conv else obj
        api_version = self.api_version(version)
        if out.get("apiVersion") != api_version or out.get("kind") != self.kind:
            out = dict(out, apiVersion=api_version, kind=self.kind)
        return out

    def convert_in(self, obj, version):
        """A request body in `version` -> the stored form."""
        conv = self.converters.get(version)
        out = conv[1](obj) if conv else obj
        return dict(out, apiVersion=self.api_version(self.storage_version), kind=self.kind)


def _t(group, versions, resource, kind, namespaced=True, short=(), cats=(), subs=(), strategy=None, **kw):
    return BuiltinType(group, versions, resource, kind, namespaced=namespaced, short_names=short, categories=cats,
                       subresources=subs, strategy=strategy or MetaStrategy(), **kw)


STATUS = ("status",)
CREATE_ONLY = ("create",)
ALL = ("all",)
DRA_DEFAULTS = {33: ["v1beta1", "v1beta2"]}


def dra_versions(minor, settings):
    """The resource.k8s.io versions served: the minor's defaults unless settings.api.draVersions says otherwise."""
    configured = ((settings or {}).get("api") or {}).get("draVersions")
    if configured is not None:
        return list(configured)
    if minor < 32:
        return []
    return list(DRA_DEFAULTS.get(minor, ["v1beta1"] if minor == 32 else ["v1"]))


def _sorted_versions(versions):
    """Oldest first, so the last is the preferred (v1 > v1beta2 > v1beta1)."""
    def rank(v):
        match = re.match(r"^v(\d+)(alpha|beta)?(\d*)$", v)
        major, stage, minor = int(match.group(1)), match.group(2), int(match.group(3) or 0)
        return (major, {"alpha": 0, "beta": 1, None: 2}[stage], minor)
    return sorted(versions, key=rank)


def _dra_types(versions):
    versions = _sorted_versions(versions)
    if not versions:
        return []
    conv = {"v1beta1": (_dra_to_v1beta1, _dra_from_v1beta1)}
    storage = versions[-1]
    group = "resource.k8s.io"
    return [
        _t(group, versions, "deviceclasses", "DeviceClass", False, strategy=GenerationStrategy(),
           converters=conv, storage_version=storage),
        _t(group, versions, "resourceclaims", "ResourceClaim", subs=STATUS, strategy=DeviceClaimStrategy(),
           converters=conv, storage_version=storage),
        _t(group, versions, "resourceclaimtemplates", "ResourceClaimTemplate", converters=conv,
           storage_version=storage),
        _t(group, versions, "resourceslices", "ResourceSlice", False, converters=conv, storage_version=storage,
           field_selectors=("metadata.name", "spec.nodeName", "spec.driver")),
    ]


def builtin_types(minor, settings=None):
    """[(BuiltinType, indexes)] for a Kubernetes minor (33, 34, ...)."""
    settings = settings or {}
    cidr = ((settings.get("api") or {}).get("serviceCIDR")) or "10.96.0.0/12"
    v1 = ("v1",)
    types = [
        (_t("", v1, "namespaces", "Namespace", False, ("ns",), subs=("status", "finalize"),
            strategy=NamespaceStrategy(), verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            field_selectors=("metadata.name", "status.phase")), ()),
        (_t("", v1, "nodes", "Node", False, ("no",), subs=("status", "proxy"), strategy=StatusStrategy(),
            field_selectors=("metadata.name", "spec.unschedulable")), ()),
        (_t("", v1, "pods", "Pod", True, ("po",), ALL, ("status", "log", "proxy", "binding", "eviction", "exec",
                                                        "attach", "portforward"),
            strategy=PodStrategy(), field_selectors=POD_FIELDS), ("spec.nodeName",)),
        (_t("", v1, "services", "Service", True, ("svc",), ALL, ("status", "proxy"), strategy=ServiceStrategy(cidr),
            field_selectors=COMMON_FIELDS + ("spec.clusterIP", "spec.type")), ()),
        (_t("", v1, "endpoints", "Endpoints", True, ("ep",)), ()),
        (_t("", v1, "configmaps", "ConfigMap", True, ("cm",), strategy=ConfigMapStrategy()), ()),
        (_t("", v1, "secrets", "Secret", True, strategy=SecretStrategy(), field_selectors=COMMON_FIELDS + ("type",)),
         ()),
        (_t("", v1, "serviceaccounts", "ServiceAccount", True, ("sa",), subs=("token",)), ()),
        (_t("", v1, "events", "Event", True, ("ev",), field_selectors=EVENT_FIELDS), ()),
        (_t("", v1, "resourcequotas", "ResourceQuota", True, ("quota",), subs=STATUS, strategy=StatusStrategy()), ()),
        (_t("", v1, "limitranges", "LimitRange", True, ("limits",)), ()),
        (_t("", v1, "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), subs=STATUS,
            strategy=PVCStrategy()), ()),
        (_t("", v1, "persistentvolumes", "PersistentVolume", False, ("pv",), subs=STATUS, strategy=StatusStrategy()),
         ()),
        (_t("", v1, "podtemplates", "PodTemplate", True), ()),
        (_t("", v1, "replicationcontrollers", "ReplicationController", True, ("rc",), ALL, ("status", "scale"),
            strategy=StatusStrategy()), ()),
        (_t("apps", v1, "deployments", "Deployment", True, ("deploy",), ALL, ("status", "scale"),
            strategy=WorkloadStrategy("Deployment")), ()),
        (_t("apps", v1, "replicasets", "ReplicaSet", True, ("rs",), ALL, ("status", "scale"),
            strategy=WorkloadStrategy("ReplicaSet"), field_selectors=COMMON_FIELDS + ("status.replicas",)), ()),
        (_t("apps", v1, "statefulsets", "StatefulSet", True, ("sts",), ALL, ("status", "scale"),
            strategy=WorkloadStrategy("StatefulSet")), ()),
        (_t("apps", v1, "daemonsets", "DaemonSet", True, ("ds",), ALL, STATUS, strategy=WorkloadStrategy("DaemonSet")),
         ()),
        (_t("apps", v1, "controllerrevisions", "ControllerRevision", True), ()),
        (_t("batch", v1, "jobs", "Job", True, (), ALL, STATUS, strategy=JobStrategy(),
            field_selectors=COMMON_FIELDS + ("status.successful",)), ()),
        (_t("batch", v1, "cronjobs", "CronJob", True, ("cj",), ALL, STATUS, strategy=CronJobStrategy()), ()),
        (_t("autoscaling", ("v1", "v2"), "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), ALL,
            STATUS, strategy=HPAStrategy(), converters={"v1": (_hpa_to_v1, _hpa_from_v1)}, storage_version="v2"), ()),
        (_t("apiregistration.k8s.io", v1, "apiservices", "APIService", False, cats=("api-extensions",), subs=STATUS,
            strategy=APIServiceStrategy()), ()),
        (_t("admissionregistration.k8s.io", v1, "validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
            False, cats=("api-extensions",), strategy=WebhookConfigStrategy(False)), ()),
        (_t("admissionregistration.k8s.io", v1, "mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
            False, cats=("api-extensions",), strategy=WebhookConfigStrategy(True)), ()),
        (_t("admissionregistration.k8s.io", v1, "validatingadmissionpolicies", "ValidatingAdmissionPolicy", False,
            cats=("api-extensions",), subs=STATUS, strategy=StatusStrategy()), ()),
        (_t("admissionregistration.k8s.io", v1, "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding", False, cats=("api-extensions",)), ()),
        (_t("rbac.authorization.k8s.io", v1, "roles", "Role", True, strategy=PathNameStrategy()), ()),
        (_t("rbac.authorization.k8s.io", v1, "rolebindings", "RoleBinding", True, strategy=PathNameStrategy()), ()),
        (_t("rbac.authorization.k8s.io", v1, "clusterroles", "ClusterRole", False, strategy=PathNameStrategy()), ()),
        (_t("rbac.authorization.k8s.io", v1, "clusterrolebindings", "ClusterRoleBinding", False,
            strategy=PathNameStrategy()), ()),
        (_t("coordination.k8s.io", v1, "leases", "Lease", True), ()),
        (_t("discovery.k8s.io", v1, "endpointslices", "EndpointSlice", True,
            field_selectors=COMMON_FIELDS + ("addressType",)), ()),
        (_t("scheduling.k8s.io", v1, "priorityclasses", "PriorityClass", False, ("pc",),
            strategy=PriorityClassStrategy()), ()),
        (_t("policy", v1, "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), subs=STATUS,
            strategy=PDBStrategy()), ()),
        (_t("networking.k8s.io", v1, "ingresses", "Ingress", True, ("ing",), subs=STATUS, strategy=StatusStrategy()),
         ()),
        (_t("networking.k8s.io", v1, "ingressclasses", "IngressClass", False), ()),
        (_t("networking.k8s.io", v1, "networkpolicies", "NetworkPolicy", True, ("netpol",)), ()),
        (_t("storage.k8s.io", v1, "storageclasses", "StorageClass", False, ("sc",)), ()),
        (_t("storage.k8s.io", v1, "csidrivers", "CSIDriver", False), ()),
        (_t("storage.k8s.io", v1, "csinodes", "CSINode", False), ()),
        (_t("node.k8s.io", v1, "runtimeclasses", "RuntimeClass", False), ()),
        (_t("events.k8s.io", v1, "events", "Event", True, ("ev",), alias_of=("", "events"),
            converters={"v1": (_event_to_events_v1, _event_from_events_v1)},
            field_selectors=COMMON_FIELDS + ("regarding.kind", "regarding.name", "regarding.namespace",
                                             "regarding.uid", "reason", "reportingController", "type")), ()),
        (_t("authorization.k8s.io", v1, "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
            verbs=CREATE_ONLY), ()),
        (_t("authorization.k8s.io", v1, "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
            verbs=CREATE_ONLY), ()),
        (_t("authorization.k8s.io", v1, "subjectaccessreviews", "SubjectAccessReview", False, verbs=CREATE_ONLY), ()),
        (_t("authorization.k8s.io", v1, "localsubjectaccessreviews", "LocalSubjectAccessReview", True,
            verbs=CREATE_ONLY), ()),
        (_t("authentication.k8s.io", v1, "selfsubjectreviews", "SelfSubjectReview", False, verbs=CREATE_ONLY), ()),
        (_t("authentication.k8s.io", v1, "tokenreviews", "TokenReview", False, verbs=CREATE_ONLY), ()),
    ]
    types.extend((t, ()) for t in _dra_types(dra_versions(minor, settings)))
    return types


SUBRESOURCE_VERBS = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "log": ("get",),
    "proxy": ("create", "delete", "get", "patch", "update"),
    "binding": ("create",),
    "eviction": ("create",),
    "exec": ("create", "get"),
    "attach": ("create", "get"),
    "portforward": ("create", "get"),
    "token": ("create",),
    "finalize": ("update",),
    "ephemeralcontainers": ("get", "patch", "update"),
}

SUBRESOURCE_KINDS = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}


def subresource_kind(rtype, sub, version):
    """(group, version, kind) of what a subresource returns, as discovery reports it."""
    if sub in SUBRESOURCE_KINDS:
        return SUBRESOURCE_KINDS[sub]
    if sub in ("log", "proxy"):
        return ("", "", "")
    return (rtype.group, version, rtype.kind)


def subresource_verbs(sub):
    return SUBRESOURCE_VERBS.get(sub, ("get", "patch", "update"))


def verbs_of(rtype):
    return list(rtype.verbs) if rtype.verbs is not None else list(ALL_VERBS)
