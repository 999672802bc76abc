"""Label and field selectors, in the string form of the REST API and the LabelSelector form of objects.

Semantics follow k8s.io/apimachinery/pkg/labels and pkg/fields:
  label string:  a=b, a==b, a!=b, a in (x,y), a notin (x,y), a, !a   (comma = AND)
  LabelSelector: matchLabels + matchExpressions (In, NotIn, Exists, DoesNotExist); an empty selector
                 matches everything, a null one nothing (callers decide which they have).
  field string:  f=v, f==v, f!=v on dotted paths (metadata.name, spec.nodeName, status.phase, ...).
"""
from __future__ import annotations

import re

from .errors import ApiError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(r"^\s*(!)?\s*(%s)\s*(?:(in|notin)\s*\(([^)]*)\)|(==|=|!=)\s*(%s))?\s*$" % (_KEY, _VALUE))


def _split_top(expr):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (s.strip() for s in parts) if p]


def parse_label_selector(expr):
    """Return a predicate labels-dict -> bool for a label selector string; 400 on bad syntax."""
    reqs = []
    for part in _split_top(expr or ""):
        m = _SET_RE.match(part)
        if not m:
            raise ApiError.bad_request("unable to parse requirement: found '%s', expected: identifier" % part)
        neg, key, setop, setvals, op, val = m.group(1), m.group(2), m.group(4), m.group(5), m.group(6), m.group(7)
        if neg and (setop or op):
            raise ApiError.bad_request("unable to parse requirement: '%s'" % part)
        if setop:
            values = set(v.strip() for v in setvals.split(",") if v.strip())
            reqs.append((key, "In" if setop == "in" else "NotIn", values))
        elif op:
            reqs.append((key, "NotIn" if op == "!=" else "In", {val or ""}))
        else:
            reqs.append((key, "DoesNotExist" if neg else "Exists", None))
    return _predicate(reqs)


def label_selector_predicate(selector):
    """Predicate for a LabelSelector dict ({matchLabels, matchExpressions}). None matches nothing."""
    if selector is None:
        return lambda labels: False
    reqs = [(k, "In", {v}) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ApiError.bad_request("%r is not a valid label selector operator" % op)
        reqs.append((expr.get("key"), op, set(expr.get("values") or [])))
    return _predicate(reqs)


def selector_to_string(selector):
    """LabelSelector dict -> the string form (used in status.selector of scale subresources)."""
    parts = ["%s=%s" % (k, v) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], sorted(expr.get("values") or [])
        if op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append("!" + key)
        else:
            parts.append("%s %s (%s)" % (key, op.lower(), ",".join(values)))
    return ",".join(parts)


def _predicate(reqs):
    if not reqs:
        return lambda labels: True

    def match(labels):
        labels = labels or {}
        for key, op, values in reqs:
            present = key in labels
            if op == "In" and (not present or labels[key] not in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True

    match.reqs = reqs          # the store answers "In" requirements from its label index
    return match


def field_value(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(expr, allowed=None):
    """Predicate obj -> bool for a field selector string. `allowed` limits the paths (400 otherwise)."""
    terms = []
    for part in _split_top(expr or ""):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError.bad_request("invalid selector: '%s'; can't understand '%s'" % (expr, part))
        path, op, value = m.groups()
        if allowed is not None and path not in allowed:
            raise ApiError.bad_request('field label not supported: %s' % path)
        terms.append((path, op == "!=", value))
    if not terms:
        return None

    def match(obj):
        for path, negate, value in terms:
            if (field_value(obj, path) == value) == negate:
                return False
        return True

    match.terms = terms
    return match
