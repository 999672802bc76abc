"""ai_inference: the implementation table, the statistical tolerance of the split, the client log parser and
the verdict rules (statuses alone never make Implemented)."""
from __future__ import annotations

import math
import random

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import ai_inference as ai
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, validate_result)

V1, V2 = "aic-backend-v1", "aic-backend-v2"


def crd(plural, versions=("v1",), established=True):
    return {"name": "%s.gateway.networking.k8s.io" % plural, "plural": plural, "served": list(versions),
            "established": established, "names_accepted": established, "bundle_version": "v1.6.1", "channel": "standard"}


def facts(classes=None, crds=None):
    return {"crds": crds if crds is not None else [crd(p) for p in ("gatewayclasses", "gateways", "httproutes", "grpcroutes")]
            + [crd("referencegrants", ("v1beta1", "v1"))],
            "classes": classes if classes is not None else [
                {"name": "envoy-gateway", "controller": "gateway.envoyproxy.io/gatewayclass-controller",
                 "implementation": "Envoy Gateway", "accepted": True, "reason": "Accepted", "supported_features": []}],
            "mesh": [], "inference_extension": []}


GOOD_GATEWAY = {"accepted": True, "programmed": True, "addresses": ["172.18.255.200"], "conditions": [
    {"type": "Programmed", "status": "True", "reason": "Programmed", "message": "Address assigned to the Gateway, 1/1 envoy replicas available"}]}
GOOD_ROUTE = {"ready": True, "parents": [{"controller": "x", "conditions": [
    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": ""},
    {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": ""}]}]}


def probes(plain=None, header=None, other=None, gateway=None, route=None, tally=True):
    counts = {"plain": plain if plain is not None else {V1: 161, V2: 39}, "header": header if header is not None else {V2: 20},
              "other": other if other is not None else {V1: 17, V2: 3}}
    return {"gateway": gateway or GOOD_GATEWAY, "route": route or GOOD_ROUTE, "tally": counts if tally else None,
            "release": {"released": True}, "cleanup_note": "", "error": ""}


def test_implementation_table():
    assert ai.implementation("gateway.envoyproxy.io/gatewayclass-controller") == "Envoy Gateway"
    assert ai.implementation("io.cilium/gateway-controller") == "Cilium"
    assert ai.implementation("example.net/gateway-controller") == "unknown"


def test_tolerance_is_the_binomial_bound():
    assert ai.split_tolerance(200) == pytest.approx(3.29 * math.sqrt(0.2 * 0.8 / 200))
    assert 0.092 < ai.split_tolerance(200) < 0.094
    assert ai.split_tolerance(800) == pytest.approx(ai.split_tolerance(200) / 2)


def test_tolerance_false_alarm_rate_is_small_for_a_correct_80_20_split():
    """Simulate many correct data planes: the band rejects about one run in a thousand, never many."""
    rng = random.Random(7)
    runs, tol = 4000, ai.split_tolerance(200)
    rejected = sum(1 for dummy in range(runs) if abs(sum(rng.random() < 0.2 for dummy2 in range(200)) / 200.0 - 0.2) > tol)
    assert rejected / float(runs) < 0.005
    # and a 50/50 data plane (round robin ignoring weights) is always rejected
    assert abs(0.5 - 0.2) > tol


def test_tally_parses_the_client_log():
    log = "plain aic-backend-v1\nplain aic-backend-v2\nplain error-7\nheader aic-backend-v2\nother aic-backend-v1\nnoise\n"
    assert ai.tally(log) == {"plain": {V1: 1, V2: 1, "error-7": 1}, "header": {V2: 1}, "other": {V1: 1}}


def test_client_script_sends_all_three_kinds():
    script = ai.client_script("172.18.255.200", 200)
    assert "seq 200" in script and script.count("seq 20)") == 2
    assert "-H 'x-model: model-b'" in script and "-H 'x-model: model-a'" in script


def test_choose_class_prefers_known_accepted():
    classes = [{"name": "odd", "accepted": True, "implementation": "unknown"},
               {"name": "down", "accepted": False, "implementation": "Istio"},
               {"name": "eg", "accepted": True, "implementation": "Envoy Gateway"}]
    assert ai.choose_class(classes)["name"] == "eg"
    assert ai.choose_class(classes, "odd")["name"] == "odd"
    assert ai.choose_class(classes, "down") is None


def test_no_crds_is_not_implemented():
    result = validate_result(ai.judge(facts(crds=[]), probes()))
    assert result["status"] == NOT_IMPLEMENTED and "gateway_api role" in result["notes"]


def test_beta_only_crds_are_not_implemented():
    old = [crd(p, ("v1beta1",)) for p in ("gatewayclasses", "gateways", "httproutes")]
    assert ai.judge(facts(crds=old), probes())["status"] == NOT_IMPLEMENTED


def test_no_accepted_class_is_not_implemented():
    classes = [{"name": "x", "controller": "c", "implementation": "unknown", "accepted": False, "reason": "Pending",
                "supported_features": []}]
    assert ai.judge(facts(classes=classes), probes())["status"] == NOT_IMPLEMENTED


def test_traffic_as_configured_is_implemented():
    result = validate_result(ai.judge(facts(), probes()))
    assert result["status"] == IMPLEMENTED, result["notes"]


def test_statuses_without_a_programmed_gateway_are_partial():
    gateway = {"accepted": True, "programmed": False, "addresses": [], "conditions": [
        {"type": "Programmed", "status": "False", "reason": "AddressNotAssigned", "message": "No addresses have been assigned to the Gateway"}]}
    result = ai.judge(facts(), probes(gateway=gateway, tally=False))
    assert result["status"] == PARTIAL and "MetalLB" in result["notes"]


@pytest.mark.parametrize("plain, header, broken", [
    ({V1: 200}, {V2: 20}, "weights"),                 # weights ignored
    ({V1: 100, V2: 100}, {V2: 20}, "weights"),        # round robin
    ({V1: 160, V2: 40}, {V1: 16, V2: 4}, "header"),   # header match ignored
    ({V1: 150, V2: 30, "error-28": 20}, {V2: 20}, "answered"),
])
def test_broken_data_planes_are_partial(plain, header, broken):
    result = ai.judge(facts(), probes(plain=plain, header=header))
    assert result["status"] == PARTIAL
    failed = [f["name"] for f in result["findings"] if f["passed"] is False]
    assert len(failed) >= 1 and any({"weights": "80/20", "header": "header x-model", "answered": "answered"}[broken] in name
                                    for name in failed)


def test_split_at_the_edge_of_the_band():
    inside = int(round(200 * (0.2 + ai.split_tolerance(200)))) - 1
    outside = int(round(200 * (0.2 + ai.split_tolerance(200)))) + 2
    assert ai.judge(facts(), probes(plain={V1: 200 - inside, V2: inside}))["status"] == IMPLEMENTED
    assert ai.judge(facts(), probes(plain={V1: 200 - outside, V2: outside}))["status"] == PARTIAL


def test_passive_is_partial_and_says_why():
    result = ai.judge(facts(), passive_reason="mode=passive: only read-only checks ran")
    assert (result["status"], result["mode"]) == (PARTIAL, "passive") and "mode=active" in result["notes"]
