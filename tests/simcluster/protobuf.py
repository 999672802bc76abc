"""Decoding Kubernetes protobuf request bodies (what client-go's typed clients send).

Since client-go 1.31 the generated clientsets for built-in types send `application/vnd.kubernetes.protobuf`
bodies (kubectl create/auth can-i/create token, helm's release Secrets, ...). The server answers in JSON,
which those clients accept, but it has to read what they send. The message schemas are the real ones:
the gzipped FileDescriptorProtos that the kubectl binary embeds for every k8s.io/api package. They are
read from `.tools/bin/kubectl` (or $SIMCLUSTER_KUBECTL) on first use.

Decoding maps a message to the JSON shape the API uses: field names are the JSON names already (the
Kubernetes .proto files use them), and the special types become their JSON forms: Quantity -> string,
Time/MicroTime -> RFC 3339, Duration -> Go duration string, IntOrString -> int or string, RawExtension
and FieldsV1 -> embedded JSON, bytes -> base64, map entries -> objects. Go's protobuf encoder writes
non-pointer fields even when empty, so empty strings/lists/objects are dropped (JSON's omitempty).
Fields the embedded schemas do not know (newer than kubectl) are skipped.
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import re
import struct
import threading
import zlib

from .errors import ApiError

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAX_GZ = 1 << 20         # compressed descriptors are far smaller
_GZIP_HEADER = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TYPE_MESSAGE, _TYPE_BYTES, _TYPE_STRING, _TYPE_BOOL = 11, 12, 9, 8
_TYPE_DOUBLE, _TYPE_FLOAT = 1, 2
_SIGNED_32 = (5, 15, 17)       # int32, sfixed32, sint32
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# non-pointer `omitempty` fields Go writes even when zero; JSON clients would not send them
_OMIT_ZERO = frozenset(("generation", "paused", "minReadySeconds", "stdin", "stdinOnce", "tty", "hostIPC",
                        "hostNetwork", "hostPID", "hostPort", "readOnly"))


# ----------------------------------------------------------------------------------------- wire format

def _varint(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """Yield (field number, wire type, value) for one encoded message."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire)
        yield number, wire, value


# ----------------------------------------------------------------------------------------- descriptors

class _Field(object):
    __slots__ = ("name", "number", "type", "type_name", "repeated")

    def __init__(self, raw):
        self.name, self.number, self.type, self.type_name, self.repeated = "", 0, 0, "", False
        for number, _unused, value in fields(raw):
            if number == 1:
                self.name = value.decode()
            elif number == 3:
                self.number = value
            elif number == 4:
                self.repeated = value == 3
            elif number == 5:
                self.type = value
            elif number == 6:
                self.type_name = value.decode().lstrip(".")
            elif number == 10:
                self.name = value.decode()


class _Message(object):
    __slots__ = ("full_name", "fields", "map_entry")

    def __init__(self, full_name):
        self.full_name = full_name
        self.fields = {}
        self.map_entry = False


def _parse_message(raw, prefix, out):
    name = ""
    pending = []
    message = None
    for number, _unused, value in fields(raw):
        if number == 1:
            name = value.decode()
            message = _Message(prefix + name)
        elif number == 2:
            pending.append(("field", value))
        elif number == 3:
            pending.append(("nested", value))
        elif number == 7:
            message_options = dict((n, v) for n, _unused, v in fields(value))
            pending.append(("options", message_options))
    for kind, value in pending:
        if kind == "field":
            field = _Field(value)
            message.fields[field.number] = field
        elif kind == "nested":
            _parse_message(value, message.full_name + ".", out)
        elif kind == "options" and value.get(7):
            message.map_entry = True
    out[message.full_name] = message


def _parse_file(raw, out):
    package = ""
    messages = []
    for number, _unused, value in fields(raw):
        if number == 2:
            package = value.decode()
        elif number == 4:
            messages.append(value)
    for value in messages:
        _parse_message(value, package + ".", out)


class Registry(object):
    """The message schemas of the Kubernetes API, read once from the kubectl binary."""

    _instance = None
    _lock = threading.Lock()

    def __init__(self, binary):
        self.messages = {}
        with open(binary, "rb") as fh:
            data = fh.read()
        for match in _GZIP_HEADER.finditer(data):
            try:
                raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[match.start():match.start() + _MAX_GZ])
            except zlib.error:
                continue
            if b"generated.proto" in raw[:120] and raw[:1] == b"\n":
                try:
                    _parse_file(raw, self.messages)
                except (ValueError, IndexError, UnicodeDecodeError):
                    continue
        if not self.messages:
            raise OSError("no protobuf descriptors found in %s" % binary)

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._instance is None:
                binary = os.environ.get("SIMCLUSTER_KUBECTL") or os.path.join(_ROOT, ".tools", "bin", "kubectl")
                cls._instance = cls(binary)
            return cls._instance

    def message_for(self, api_version, kind):
        group, _unused, version = api_version.rpartition("/")
        short = group.split(".")[0] if group else "core"
        candidates = ["k8s.io.api.%s.%s.%s" % (short, version, kind), _META + kind]
        if group == "meta.k8s.io":
            candidates.insert(0, _META + kind)
        for name in candidates:
            if name in self.messages:
                return self.messages[name]
        return None


# ----------------------------------------------------------------------------------------- to JSON

def _time(message_fields):
    seconds = nanos = 0
    for number, _unused, value in message_fields:
        if number == 1:
            seconds = _signed(value, 64)
        elif number == 2:
            nanos = value
    if not seconds and not nanos:
        return None
    when = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return when, nanos


def _go_duration(nanoseconds):
    if nanoseconds == 0:
        return "0s"
    seconds, rest = divmod(nanoseconds, 10 ** 9)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = ""
    if hours:
        text += "%dh" % hours
    if hours or minutes:
        text += "%dm" % minutes
    frac = ("%.9f" % (rest / 1e9))[1:].rstrip("0").rstrip(".") if rest else ""
    return text + "%d%ss" % (seconds, frac)


def _signed(value, bits):
    return value - (1 << 64) if value >= 1 << 63 else (value if bits == 64 else value)


def _special(name, raw):
    """JSON value for Kubernetes' special message types, or a marker that `name` is not special."""
    if name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return next((v.decode() for n, _unused, v in fields(raw) if n == 1), "0")
    if name in (_META + "Time", _META + "MicroTime"):
        stamp = _time(fields(raw))
        if stamp is None:
            return None
        when, nanos = stamp
        if name.endswith("MicroTime"):
            return when.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (nanos // 1000)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == _META + "Duration":
        return _go_duration(next((_signed(v, 64) for n, _unused, v in fields(raw) if n == 1), 0))
    if name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        parts = {n: v for n, _unused, v in fields(raw)}
        return parts.get(3, b"").decode() if parts.get(1) == 1 else _signed(parts.get(2, 0), 32)
    if name in ("k8s.io.apimachinery.pkg.runtime.RawExtension", _META + "FieldsV1"):
        raw_json = next((v for n, _unused, v in fields(raw) if n == 1), b"")
        return json.loads(raw_json) if raw_json else None
    return _NOT_SPECIAL


_NOT_SPECIAL = object()


def _scalar(field, wire, value):
    if field.type == _TYPE_STRING:
        return value.decode()
    if field.type == _TYPE_BYTES:
        return base64.b64encode(value).decode()
    if field.type == _TYPE_BOOL:
        return bool(value)
    if field.type == _TYPE_DOUBLE and wire == 1:
        return struct.unpack("<d", value)[0]
    if field.type == _TYPE_FLOAT and wire == 5:
        return struct.unpack("<f", value)[0]
    if wire == 0:
        if field.type in _SIGNED_32 and value >= 1 << 31:
            return value - (1 << 64) if value >= 1 << 63 else value - (1 << 32)
        return _signed(value, 64)
    return value


def to_json(registry, message, raw):
    """Decode `raw` (one encoded message of type `message`) into its JSON form."""
    out = {}
    for number, wire, value in fields(raw):
        field = message.fields.get(number)
        if field is None:
            continue
        if field.type == _TYPE_MESSAGE:
            decoded = _special(field.type_name, value)
            if decoded is _NOT_SPECIAL:
                sub = registry.messages.get(field.type_name)
                if sub is None:
                    continue
                if sub.map_entry:
                    entry = to_json(registry, sub, value)
                    out.setdefault(field.name, {})[entry.get("key", "")] = entry.get("value", _empty_of(sub))
                    continue
                decoded = to_json(registry, sub, value)
        elif wire == 2 and field.type not in (_TYPE_STRING, _TYPE_BYTES):
            decoded = _packed(field, value)
            out.setdefault(field.name, []).extend(decoded)
            continue
        else:
            decoded = _scalar(field, wire, value)
        if field.repeated:
            out.setdefault(field.name, []).append(decoded)
        else:
            out[field.name] = decoded
    return {k: v for k, v in out.items() if v not in ("", None, [], {}) and not (k in _OMIT_ZERO and not v)}


def _empty_of(entry):
    value_field = entry.fields.get(2)
    return "" if value_field is not None and value_field.type in (_TYPE_STRING, _TYPE_BYTES) else None


def _packed(field, raw):
    values, pos = [], 0
    while pos < len(raw):
        value, pos = _varint(raw, pos)
        values.append(_scalar(field, 0, value))
    return values


def decode(body):
    """A `k8s\\x00` protobuf body -> the object as a JSON-shaped dict; 415 when it cannot be read."""
    if not body.startswith(MAGIC):
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                       "media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf")
    try:
        registry = Registry.get()
    except OSError as exc:
        raise ApiError(415, "UnsupportedMediaType", "protobuf bodies cannot be read here (%s); send JSON" % exc)
    type_meta, raw = {}, b""
    for number, _unused, value in fields(body[len(MAGIC):]):
        if number == 1:
            type_meta = {n: v.decode() for n, _unused, v in fields(value)}
        elif number == 2:
            raw = value
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    message = registry.message_for(api_version, kind)
    if message is None:
        raise ApiError(415, "UnsupportedMediaType", "no protobuf schema for %s %s; send JSON" % (api_version, kind))
    obj = to_json(registry, message, raw)
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj
