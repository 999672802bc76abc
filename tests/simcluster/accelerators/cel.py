"""The small subset of CEL that DeviceClass and request selectors use in this project.

Supported: comparisons joined by `&&`, each `<operand> == <literal>` or `!=`, where the operand is
`device.driver` or `device.attributes["<domain>"].<name>` (single or double quotes) and the literal is a
quoted string, an integer, `true` or `false`. That covers the NVIDIA DRA driver's DeviceClasses
(`device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'`) and the
checks' attribute selectors. Anything else (functions, `||`, capacity and quantity comparisons) raises
CelUnsupported, so a claim using it does not allocate and the scheduler says why; docs/simulator.md lists
this under what the simulator does not model. A real API server evaluates full CEL.
"""
from __future__ import annotations

import re

_STRING = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
_OPERAND = re.compile(r"""^device\.(?:(driver)|attributes\[%s\]\.([A-Za-z_][A-Za-z0-9_]*))$""" % _STRING)
_LITERAL = re.compile(r"^(?:%s|(-?\d+)|(true|false))$" % _STRING)


class CelUnsupported(ValueError):
    """An expression outside the subset the simulator evaluates."""


def _split(expression, token):
    """Split on `token` outside quotes."""
    parts, current, quote, i = [], [], None, 0
    while i < len(expression):
        ch = expression[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < len(expression):
                current.append(expression[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif expression.startswith(token, i):
            parts.append("".join(current))
            current = []
            i += len(token)
            continue
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _unescape(text):
    return re.sub(r"\\(.)", r"\1", text)


def _literal(text, expression):
    match = _LITERAL.match(text)
    if not match:
        raise CelUnsupported("unsupported CEL literal %r in %r" % (text, expression))
    double, single, number, boolean = match.groups()
    if double is not None or single is not None:
        return _unescape(double if double is not None else single)
    if number is not None:
        return int(number)
    return boolean == "true"


def _operand(text, expression):
    match = _OPERAND.match(text)
    if not match:
        raise CelUnsupported("unsupported CEL operand %r in %r" % (text, expression))
    driver, double, single, name = match.groups()
    if driver:
        return ("driver", None, None)
    return ("attribute", _unescape(double if double is not None else single), name)


def compile_expression(expression):
    """Parse once; returns a predicate device -> bool. Raises CelUnsupported."""
    terms = []
    for part in _split(" ".join(expression.split()), "&&"):
        if len(_split(part, "||")) > 1:
            raise CelUnsupported("`||` is not supported in %r" % expression)
        for op in ("==", "!="):
            pieces = _split(part, op)
            if len(pieces) == 2:
                terms.append((_operand(pieces[0], expression), op, _literal(pieces[1], expression)))
                break
        else:
            raise CelUnsupported("unsupported CEL term %r in %r" % (part, expression))

    def predicate(device):
        for (kind, domain, name), op, value in terms:
            actual = device["driver"] if kind == "driver" else attribute(device, domain, name)
            if (actual == value) != (op == "=="):
                return False
        return True
    return predicate


def attribute(device, domain, name):
    """device.attributes["<domain>"].<name>: qualified keys, or bare keys in the driver's own domain."""
    attrs = device.get("attributes") or {}
    raw = attrs.get("%s/%s" % (domain, name))
    if raw is None and domain == device.get("driver"):
        raw = attrs.get(name)
    if isinstance(raw, dict):
        for key in ("string", "int", "bool", "version"):
            if key in raw:
                return raw[key]
    return raw
