"""HTTPRoute semantics of the Gateway API standard channel, as the simulated Envoy proxies apply them.

Pure functions over Gateway API objects (no store access), used by the Envoy proxy app in
envoy_gateway.py and unit-testable on their own:

* matching (HTTPRouteMatch): path Exact / PathPrefix (whole path segments: "/foo" matches "/foo" and
  "/foo/bar", never "/foobar") / RegularExpression, headers Exact / RegularExpression (names are
  case-insensitive), queryParams Exact / RegularExpression, method; within one match every condition
  must hold, a rule matches when any of its matches does (no matches = PathPrefix "/"); route and
  listener hostnames (exact or a leading "*." wildcard) against the Host header.
* precedence (HTTPRouteRule, "matching precedence" in the spec), across every rule of every route
  attached to the listener: an Exact path before a prefix; the longest path; a method match; the most
  header matches; the most query param matches; then the oldest route (creationTimestamp), then the
  route's "namespace/name" alphabetically, then the rule's order within its route. Regular-expression
  paths rank after Exact and PathPrefix (their precedence is implementation-specific).
* backends: weighted choice among a rule's backendRefs (weight defaults to 1; 0 never chosen; all 0 or
  none resolvable: 500, as the spec requires for invalid backends).
* filters: RequestHeaderModifier (set/add/remove), ResponseHeaderModifier, RequestRedirect (scheme,
  hostname, port, path, statusCode), URLRewrite (hostname, ReplaceFullPath / ReplacePrefixMatch) and
  RequestMirror (a copy whose answer is ignored), at rule and at backendRef level.
"""
from __future__ import annotations

import re

PATH_ORDER = {"Exact": 0, "PathPrefix": 1, "RegularExpression": 2}


def _ts(route):
    return route["metadata"].get("creationTimestamp") or ""


def hostname_matches(pattern, host):
    """A route or listener hostname ("example.com", "*.example.com") against a request's host."""
    host = (host or "").split(":")[0].lower()
    pattern = (pattern or "").lower()
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return host == pattern


def route_hostnames_match(route, listener_hostname, host):
    names = (route.get("spec") or {}).get("hostnames") or []
    if listener_hostname and not hostname_matches(listener_hostname, host):
        return False
    return not names or any(hostname_matches(name, host) for name in names)


def normalized_match(match):
    """A match with the spec's defaults: path PathPrefix "/" unless given."""
    match = dict(match or {})
    path = dict(match.get("path") or {})
    path.setdefault("type", "PathPrefix")
    path.setdefault("value", "/")
    match["path"] = path
    return match


def path_matches(path_match, path):
    kind, value = path_match.get("type", "PathPrefix"), path_match.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        return re.fullmatch(value, path) is not None
    prefix = value.rstrip("/")
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def _value_matches(kind, expected, actual):
    if actual is None:
        return False
    if kind == "RegularExpression":
        return re.search(expected, actual) is not None
    return actual == expected


def match_applies(match, method, path, headers, query):
    """Does one (normalized) HTTPRouteMatch hold for a request? headers: lower-case names; query: dict of lists."""
    if not path_matches(match["path"], path):
        return False
    if match.get("method") and match["method"] != method:
        return False
    for header in match.get("headers") or []:
        if not _value_matches(header.get("type", "Exact"), header.get("value", ""), headers.get(header["name"].lower())):
            return False
    for param in match.get("queryParams") or []:
        values = query.get(param["name"]) or [None]
        if not _value_matches(param.get("type", "Exact"), param.get("value", ""), values[0]):
            return False
    return True


def precedence_key(route, rule_index, match):
    """Sort key: lower sorts first = wins (the spec's HTTPRouteRule precedence)."""
    path = match["path"]
    meta = route["metadata"]
    return (PATH_ORDER.get(path.get("type"), 3), -len(path.get("value") or ""), 0 if match.get("method") else 1,
            -len(match.get("headers") or []), -len(match.get("queryParams") or []), _ts(route),
            "%s/%s" % (meta.get("namespace", ""), meta["name"]), rule_index)


def candidates(routes):
    """Every (key, route, rule index, rule, match) of the routes, best first."""
    out = []
    for route in routes:
        for index, rule in enumerate((route.get("spec") or {}).get("rules") or [{}]):
            for match in rule.get("matches") or [{}]:
                match = normalized_match(match)
                out.append((precedence_key(route, index, match), route, index, rule, match))
    out.sort(key=lambda item: item[0])
    return out


def select(routes, listener_hostname, method, path, headers, query, ignore_headers=False):
    """(route, rule, match) that serves the request, or None (404)."""
    for _key, route, _index, rule, match in candidates(routes):
        if not route_hostnames_match(route, listener_hostname, headers.get("host")):
            continue
        effective = dict(match, headers=[]) if ignore_headers else match
        if match_applies(effective, method, path, headers, query):
            return route, rule, match
    return None


def choose_backend(backend_refs, rng, ignore_weights=False):
    """A backendRef by weight (the first one with a weight when ignore_weights), or None."""
    refs = [ref for ref in backend_refs or [] if int(ref.get("weight", 1)) > 0]
    if not refs:
        return None
    if ignore_weights:
        return refs[0]
    total = sum(int(ref.get("weight", 1)) for ref in refs)
    pick = rng.randrange(total)
    for ref in refs:
        pick -= int(ref.get("weight", 1))
        if pick < 0:
            return ref
    return refs[-1]


def modify_headers(headers, modifier):
    """Apply a HTTPHeaderFilter (set / add / remove) to a dict with lower-case keys."""
    out = dict(headers)
    for item in (modifier or {}).get("set") or []:
        out[item["name"].lower()] = item["value"]
    for item in (modifier or {}).get("add") or []:
        name = item["name"].lower()
        out[name] = "%s,%s" % (out[name], item["value"]) if name in out else item["value"]
    for name in (modifier or {}).get("remove") or []:
        out.pop(name.lower(), None)
    return out


def rewrite_path(path, match, rewrite):
    """URLRewrite / RequestRedirect path modifier against the matched path."""
    if not rewrite:
        return path
    if rewrite.get("type") == "ReplaceFullPath":
        return rewrite.get("replaceFullPath") or "/"
    if rewrite.get("type") == "ReplacePrefixMatch":
        prefix = (match["path"].get("value") or "/").rstrip("/")
        rest = path[len(prefix):] if path.startswith(prefix) else path
        replacement = (rewrite.get("replacePrefixMatch") or "/").rstrip("/")
        new = replacement + rest
        return new if new.startswith("/") else "/" + new
    return path


def redirect_location(redirect, scheme, host, port, path, match):
    """The Location a RequestRedirect answers with, and its status code."""
    new_scheme = redirect.get("scheme") or scheme
    new_host = redirect.get("hostname") or host.split(":")[0]
    new_port = redirect.get("port")
    if new_port is None:
        new_port = {"http": 80, "https": 443}[new_scheme] if redirect.get("scheme") else port
    default_port = {"http": 80, "https": 443}.get(new_scheme)
    authority = new_host if int(new_port) == default_port else "%s:%s" % (new_host, new_port)
    location = "%s://%s%s" % (new_scheme, authority, rewrite_path(path, match, redirect.get("path")))
    return int(redirect.get("statusCode") or 302), location
