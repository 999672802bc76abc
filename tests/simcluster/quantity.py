"""resource.Quantity as kube-apiserver reads and writes it (k8s.io/apimachinery/pkg/api/resource).

The real API decodes every Quantity field of a built-in object into a fixed-point number that remembers
its format (DecimalSI "500m"/"1k", BinarySI "1Gi", DecimalExponent "1e3") and serialises it back as a
string in canonical form: no fractional digits, the largest suffix that loses no precision ("1.5" ->
"1500m", "1024Mi" -> "1Gi", 1000 -> "1k"). A number written without quotes is parsed from its JSON text
the same way. Clients depend on it: the `kubernetes` Python client types these fields as strings and
cannot read a pod whose limits hold the number 1.

`canonical(value)` ports ParseQuantity and CanonicalizeBytes with their corner cases: values are rounded
up to a multiple of 1n, BinarySI is capped at 2^63-1 and printed as DecimalSI below 1024 or when not
whole, and a string that ParseQuantity finds canonical on its fast path is kept as written (apimachinery
caches it), so "1Gi", "100M" and "500m" come back byte for byte. `canonicalize_object(obj)` applies it
to the Quantity fields of the built-in kinds (QUANTITY_FIELDS: the fields kubectl's embedded protobuf
schemas type as Quantity).
"""
from __future__ import annotations

import decimal
import functools
import math
import re
from fractions import Fraction

from .errors import ApiError

FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERROR = "unable to parse quantity's suffix"

DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {exp: suffix for suffix, exp in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {exp: suffix for suffix, exp in _BINARY_SUFFIXES.items()}
# sign, leading zeros (dropped), integer digits, fraction digits, suffix: parseQuantityString's grammar
_SPLIT = re.compile(r"^([+-]?)0*([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)$")
_MAX_INT64 = (1 << 63) - 1
_NANO = 10 ** 9


class QuantityError(ValueError):
    """A value ParseQuantity rejects; the message is apimachinery's."""


@functools.lru_cache(maxsize=4096, typed=True)     # the same few values recur on every write of every pod
def canonical(value):
    """The string the real API serialises for a Quantity decoded from the JSON value `value`.

    The real decoder parses a bare number from its JSON text; the simulator sees the float json.loads made
    of it and rebuilds the text Go clients (kubectl, helm) write. Python's json writes the same digits for
    1e-4 <= |value| < 1e16; outside that range a Python client's exponent form (1e+16) would make a real
    server keep the DecimalExponent format where the simulator picks DecimalSI."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise QuantityError(FORMAT_ERROR)
    text = _go_json_float(value) if isinstance(value, float) else str(value).strip()
    amount, fmt, kept = parse(text)
    return kept or _format(amount, fmt)


def parse(text):
    """ParseQuantity: (exact value as a Fraction, format, `text` if it is served as written else None)."""
    match = _SPLIT.match(text)
    if not text or not match:
        raise QuantityError(FORMAT_ERROR)
    if text == "0":
        return Fraction(0), DECIMAL_SI, text
    sign, num, decimals, suffix = match.group(1), match.group(2) or "0", match.group(3) or "", match.group(4)
    base, exponent, fmt = _interpret(suffix)
    shifted = num + decimals
    kept = text if _fast_path_canonical(shifted, len(decimals), exponent, fmt) else None
    amount = Fraction(int(shifted), 10 ** len(decimals)) * Fraction(base) ** exponent
    amount = Fraction(math.ceil(amount * _NANO), _NANO)       # non-zero values round up to 1n
    if fmt == BINARY_SI and amount > _MAX_INT64:
        amount = Fraction(_MAX_INT64)
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    return (-amount if sign == "-" else amount), fmt, kept


def _interpret(suffix):
    """(base, exponent, format) of a suffix, as apimachinery's suffixer reads it."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        try:
            return 10, int(suffix[1:]), DECIMAL_EXPONENT
        except ValueError:
            pass
    raise QuantityError(SUFFIX_ERROR)


def _fast_path_canonical(shifted, decimals, exponent, fmt):
    """True when ParseQuantity's int64 fast path takes the input and caches it as the canonical string.

    That path needs few enough digits, a scale of at least 1n and no int64 overflow; it then keeps the
    text for BinarySI mantissas that are not multiples of 8 and for decimal values whose scale is a
    multiple of 3 with no trailing "000" and no leading 0 (so "+1" and "1.500" are kept as written)."""
    if fmt == BINARY_SI:
        if decimals or 15 - len(shifted) - exponent * 3 // 10 - 1 < 0:
            return False
        value = int(shifted)
        return value << exponent <= _MAX_INT64 and value & 0x07 != 0
    scale = exponent - decimals
    if 18 - len(shifted) < 0 or scale < -9:
        return False
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


def _format(amount, fmt):
    """CanonicalizeBytes: the largest suffix that keeps the value whole."""
    if amount == 0:
        return "0"
    if fmt == BINARY_SI and (-1024 < amount < 1024 or amount.denominator != 1):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        mantissa, times = _remove_factors(int(amount), 1024)
        return "%d%s" % (mantissa, _BINARY_BY_EXPONENT.get(times * 10, ""))
    mantissa, times = _remove_factors(int(amount * _NANO), 10)
    exponent = times - 9
    shift = exponent % 3                     # down to a multiple of 3: 15e1 -> 150
    mantissa, exponent = mantissa * 10 ** shift, exponent - shift
    if fmt == DECIMAL_EXPONENT:
        return "%d%s" % (mantissa, "e%d" % exponent if exponent else "")
    # like apimachinery, an exponent past E (10^18) has no suffix to print
    return "%d%s" % (mantissa, _DECIMAL_BY_EXPONENT.get(exponent, ""))


def _remove_factors(value, base):
    times = 0
    while abs(value) >= base and value % base == 0:
        value //= base
        times += 1
    return value, times


def _go_json_float(value):
    """The JSON text Go's encoding/json writes for a float64 (what kubectl and helm send for a YAML float):
    the shortest round-trip digits, fixed-point from 1e-6 up to 1e21, exponent form outside ("1e-7")."""
    if not math.isfinite(value):
        raise QuantityError(FORMAT_ERROR)
    number = decimal.Decimal(repr(value)).normalize()
    if not number or decimal.Decimal("1e-6") <= abs(number) < decimal.Decimal("1e21"):
        return format(number, "f")
    sign, digits, exponent = number.as_tuple()
    power = exponent + len(digits) - 1
    mantissa = "".join(map(str, digits[:1])) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return "%s%se%s" % ("-" if sign else "", mantissa, "-%d" % -power if power < 0 else "+%02d" % power)


# ----------------------------------------------------------------------------------------- fields

def _pod_spec(prefix):
    """The Quantity fields of a PodSpec at `prefix` (JSON names; Go's inline structs flattened)."""
    fields = [prefix + "overhead{}", prefix + "resources.limits{}", prefix + "resources.requests{}",
              prefix + "volumes[].emptyDir.sizeLimit",
              prefix + "volumes[].downwardAPI.items[].resourceFieldRef.divisor",
              prefix + "volumes[].projected.sources[].downwardAPI.items[].resourceFieldRef.divisor",
              prefix + "volumes[].ephemeral.volumeClaimTemplate.spec.resources.limits{}",
              prefix + "volumes[].ephemeral.volumeClaimTemplate.spec.resources.requests{}"]
    for containers in ("containers[]", "initContainers[]", "ephemeralContainers[]"):
        fields += [prefix + containers + ".resources.limits{}", prefix + containers + ".resources.requests{}",
                   prefix + containers + ".env[].valueFrom.resourceFieldRef.divisor"]
    return fields


def _container_statuses():
    return ["status.%s[].%s" % (statuses, field)
            for statuses in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
            for field in ("allocatedResources{}", "resources.limits{}", "resources.requests{}")]


def _metrics(list_path, side):
    return ["%s[].%s.%s.%s" % (list_path, source, side, field)
            for source in ("object", "pods", "resource", "external", "containerResource")
            for field in ("value", "averageValue")]


_CLAIM = ["spec.resources.limits{}", "spec.resources.requests{}", "status.capacity{}", "status.allocatedResources{}"]

#: (API group, kind) -> paths of its Quantity fields: "a.b" fields, "[]" each list item, "{}" each map value
QUANTITY_FIELDS = {
    ("", "Pod"): _pod_spec("spec.") + _container_statuses(),
    ("", "PodTemplate"): _pod_spec("template.spec."),
    ("", "ReplicationController"): _pod_spec("spec.template.spec."),
    ("apps", "Deployment"): _pod_spec("spec.template.spec."),
    ("apps", "ReplicaSet"): _pod_spec("spec.template.spec."),
    ("apps", "DaemonSet"): _pod_spec("spec.template.spec."),
    ("apps", "StatefulSet"): _pod_spec("spec.template.spec.") + ["spec.volumeClaimTemplates[]." + f for f in _CLAIM],
    ("batch", "Job"): _pod_spec("spec.template.spec."),
    ("batch", "CronJob"): _pod_spec("spec.jobTemplate.spec.template.spec."),
    ("", "Node"): ["status.capacity{}", "status.allocatable{}"],
    ("", "PersistentVolumeClaim"): _CLAIM,
    ("", "PersistentVolume"): ["spec.capacity{}"],
    ("", "ResourceQuota"): ["spec.hard{}", "status.hard{}", "status.used{}"],
    ("", "LimitRange"): ["spec.limits[].%s{}" % f
                         for f in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")],
    ("autoscaling", "HorizontalPodAutoscaler"): (_metrics("spec.metrics", "target") +
                                                 _metrics("status.currentMetrics", "current") +
                                                 ["spec.behavior.scaleUp.tolerance",
                                                  "spec.behavior.scaleDown.tolerance"]),
    ("node.k8s.io", "RuntimeClass"): ["overhead.podFixed{}"],
    ("resource.k8s.io", "ResourceSlice"): ["spec.devices[].capacity{}.value",
                                           "spec.devices[].consumesCounters[].counters{}.value",
                                           "spec.sharedCounters[].counters{}.value"],
    ("storage.k8s.io", "CSIStorageCapacity"): ["capacity", "maximumVolumeSize"],
}
_STEPS = {key: [tuple(path.split(".")) for path in paths] for key, paths in QUANTITY_FIELDS.items()}


def canonicalize_object(obj):
    """Rewrite the Quantity fields of a built-in object (in its stored version) to their canonical strings.

    Raises ApiError 400 with the decode error the real API gives for a value that is not a quantity."""
    api_version = obj.get("apiVersion") or ""
    group, _slash, version = api_version.rpartition("/")
    kind = obj.get("kind") or ""
    try:
        for steps in _STEPS.get((group, kind), ()):
            _rewrite(obj, steps)
    except QuantityError as exc:
        raise ApiError.bad_request('%s in version "%s" cannot be handled as a %s: %s' % (kind, version, kind, exc))


def _rewrite(node, steps):
    step, rest = steps[0], steps[1:]
    key = step.rstrip("[]{}")
    value = node.get(key) if isinstance(node, dict) else None
    if value is None:
        return
    if step.endswith("{}"):
        if not isinstance(value, dict):
            return
        if not rest:
            for name, item in value.items():
                value[name] = "0" if item is None else canonical(item)   # a null map value decodes to 0
            return
        children = list(value.values())
    elif step.endswith("[]"):
        children = value if isinstance(value, list) else []
    elif not rest:
        node[key] = canonical(value)
        return
    else:
        children = [value]
    for child in children:
        _rewrite(child, rest)
