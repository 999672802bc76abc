"""The simulated data plane's HTTPRoute semantics (tests/simcluster/apps/gateway_dataplane.py), checked against
the Gateway API spec's rules: path-segment prefixes, hostnames, match precedence, weights and filters."""
from __future__ import annotations

import random

from simcluster.apps import gateway_dataplane as dp


def route(name, rules, created="2026-01-01T00:00:00Z", hostnames=None, namespace="ns"):
    spec = {"rules": rules}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created}, "spec": spec}


def backend(name, weight=None):
    ref = {"name": name, "port": 8080}
    if weight is not None:
        ref["weight"] = weight
    return ref


def served(routes, path="/", headers=None, method="GET", query=None, host="example.com"):
    heads = {k.lower(): v for k, v in (headers or {}).items()}
    heads["host"] = host
    chosen = dp.select(routes, None, method, path, heads, query or {})
    return chosen and chosen[1]["backendRefs"][0]["name"]


def test_prefix_matches_whole_segments():
    assert dp.path_matches({"type": "PathPrefix", "value": "/foo"}, "/foo/bar")
    assert dp.path_matches({"type": "PathPrefix", "value": "/foo/"}, "/foo")
    assert not dp.path_matches({"type": "PathPrefix", "value": "/foo"}, "/foobar")


def test_exact_beats_longer_prefix_and_longest_prefix_wins():
    routes = [route("a", [{"matches": [{"path": {"type": "PathPrefix", "value": "/v1/chat"}}], "backendRefs": [backend("prefix-long")]},
                          {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": [backend("prefix-short")]},
                          {"matches": [{"path": {"type": "Exact", "value": "/v1"}}], "backendRefs": [backend("exact")]}])]
    assert served(routes, "/v1") == "exact"
    assert served(routes, "/v1/chat/completions") == "prefix-long"
    assert served(routes, "/v1/models") == "prefix-short"


def test_method_then_header_count_then_query_count():
    routes = [route("a", [{"matches": [{"headers": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]}],
                           "backendRefs": [backend("two-headers")]},
                          {"matches": [{"method": "POST"}], "backendRefs": [backend("post")]},
                          {"matches": [{"queryParams": [{"name": "q", "value": "x"}]}], "backendRefs": [backend("query")]},
                          {"backendRefs": [backend("default")]}])]
    assert served(routes, method="POST", headers={"A": "1", "B": "2"}) == "post"
    assert served(routes, headers={"a": "1", "b": "2"}, query={"q": ["x"]}) == "two-headers"
    assert served(routes, query={"q": ["x"]}) == "query"
    assert served(routes) == "default"


def test_ties_go_to_the_oldest_route_then_name():
    def rule(name):
        return [{"backendRefs": [backend(name)]}]
    assert served([route("b", rule("new"), "2026-02-01T00:00:00Z"), route("a", rule("old"), "2026-01-01T00:00:00Z")]) == "old"
    assert served([route("b", rule("b")), route("a", rule("a"))]) == "a"


def test_hostnames_with_wildcards():
    routes = [route("a", [{"backendRefs": [backend("wild")]}], hostnames=["*.example.com"])]
    assert served(routes, host="foo.example.com") == "wild"
    assert served(routes, host="example.com") is None


def test_weights_and_zero_weight():
    rng = random.Random(1)
    picks = [dp.choose_backend([backend("v1", 80), backend("v2", 20), backend("never", 0)], rng)["name"] for dummy in range(2000)]
    assert "never" not in picks and 0.17 < picks.count("v2") / 2000.0 < 0.23
    assert dp.choose_backend([backend("z", 0)], rng) is None


def test_filters():
    headers = dp.modify_headers({"a": "1", "drop": "x"}, {"set": [{"name": "A", "value": "2"}], "add": [{"name": "b", "value": "3"}],
                                                          "remove": ["Drop"]})
    assert headers == {"a": "2", "b": "3"}
    match = dp.normalized_match({"path": {"type": "PathPrefix", "value": "/prefix"}})
    assert dp.rewrite_path("/prefix/one", match, {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}) == "/new/one"
    assert dp.rewrite_path("/prefix/one", match, {"type": "ReplaceFullPath", "replaceFullPath": "/full"}) == "/full"
    assert dp.redirect_location({"scheme": "https", "statusCode": 301}, "http", "example.com", 80, "/a", match) == \
        (301, "https://example.com/a")
