"""robust_controller: the operator table's pure helpers, the denial classifier (with the real gardener log that
mistook a CRD schema error for a webhook) and the verdict rules."""
from __future__ import annotations

import copy
import functools
import os
import re

import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import robust_controller as rc
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, validate_result)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPSTREAM = os.path.join(ROOT, "..", "shared", "fixtures", "upstream")
KUBERAY = rc.operator_entry("kuberay")


def gardener_rejection():
    """The rejection gardener's v1.33 robust_controller test sold as a webhook denial (test_result.log)."""
    with open(os.path.join(UPSTREAM, "logs", "gardener", "v1.33", "robust_controller", "test_result.log"), encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r"Rejection message: (.*?)\n\S*\s*\n", text, re.S) or re.search(r"Rejection message: (.*)", text)
    return match.group(1).strip()


@functools.lru_cache(maxsize=1)
def stored_crd():
    with open(os.path.join(UPSTREAM, "charts", "kuberay-operator", "crds", "ray.io_rayclusters.yaml"), encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def real_crd():
    crd = copy.deepcopy(stored_crd())
    crd["status"] = {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}
    return crd


def healthy_kuberay(webhooks=True):
    op = {"key": "kuberay", "name": "KubeRay", "missing_crds": [],
          "crds": [rc.crd_state(real_crd())],
          "controllers": [{"name": "kuberay-operator", "namespace": "kuberay-system", "replicas": 1, "ready": 1,
                           "restarts": 0, "waiting": [], "healthy": True}],
          "webhooks": []}
    if webhooks:
        op["webhooks"] = [{"configuration": "kuberay-operator-validating-webhook", "kind": "validating",
                           "name": "vraycluster.kb.io", "ca_bundle": True, "url": None, "failure_policy": "Fail",
                           "service": {"name": "kuberay-operator-webhook", "namespace": "kuberay-system"},
                           "ready_endpoints": 1}]
    return op


WEBHOOK_DENIAL = {"allowed": False, "status": 422, "message": (
    'admission webhook "vraycluster.kb.io" denied the request: RayCluster.ray.io "aic-invalid-groups" is invalid: '
    'spec.workerGroupSpecs[1]: Invalid value: v1.WorkerGroupSpec{GroupName:"workers", ...}: worker group names must be unique')}
GOOD_RECONCILE = {"ready": True, "state": "ready", "head_pods": 1, "worker_pods": 1, "head_service": "aic-raycluster-head-svc",
                  "error": ""}
GOOD_CASCADE = {"gone": True, "before": 2}


def probes(denial=None, reconcile=None, cascade=None):
    return {"denial": denial or WEBHOOK_DENIAL, "reconcile": reconcile or GOOD_RECONCILE,
            "cascade": GOOD_CASCADE if cascade is None else cascade, "cleanup_note": ""}


# --------------------------------------------------------------------------------------------- helpers
def test_crd_state_of_the_real_raycluster_crd():
    state = rc.crd_state(real_crd())
    assert state == {"name": "rayclusters.ray.io", "established": True, "names_accepted": True,
                     "versions": ["v1", "v1alpha1"]}


def test_deployment_state_flags_crashloop_and_restarts():
    deployment = {"metadata": {"name": "kuberay-operator", "namespace": "kuberay-system"}, "spec": {"replicas": 1},
                  "status": {"readyReplicas": 1}}
    pod = {"metadata": {"name": "p"}, "status": {"containerStatuses": [{"restartCount": 0, "state": {"running": {}}}]}}
    assert rc.deployment_state(deployment, [pod])["healthy"] is True
    flapping = copy.deepcopy(pod)
    flapping["status"]["containerStatuses"][0]["restartCount"] = rc.RESTART_LIMIT + 1
    assert rc.deployment_state(deployment, [flapping])["healthy"] is False
    crashing = copy.deepcopy(pod)
    crashing["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    state = rc.deployment_state(dict(deployment, status={"readyReplicas": 0}), [crashing])
    assert (state["healthy"], state["waiting"]) == (False, ["p: CrashLoopBackOff"])


def test_webhooks_for_groups_matches_rules_by_group():
    ray = {"name": "vraycluster.kb.io", "rules": [{"apiGroups": ["ray.io"]}], "clientConfig": {"service": {"name": "s", "namespace": "n"}}}
    kyverno = {"name": "validate.kyverno.svc", "rules": [{"apiGroups": ["*"]}], "clientConfig": {"caBundle": "Y2E="}}
    configs = [{"metadata": {"name": "kuberay"}, "webhooks": [ray]},
               {"metadata": {"name": "kyverno"}, "webhooks": [kyverno]},
               {"metadata": {"name": "kueue"}, "webhooks": [{"name": "vjob.kb.io", "rules": [{"apiGroups": ["batch"]}]}]}]
    hooks = rc.webhooks_for_groups(configs, "validating", ["ray.io"])
    assert [(h["name"], h["ca_bundle"]) for h in hooks] == [("vraycluster.kb.io", False), ("validate.kyverno.svc", True)]


def test_invalid_raycluster_passes_the_real_crd_schema_shape():
    """The probe object repeats one groupName; everything the real CRD requires is present."""
    obj = rc.invalid_raycluster("x", "ns", "rayproject/ray:2.46.0")
    groups = obj["spec"]["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["workers", "workers"]
    schema = real_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(schema.get("required") or []) <= set(obj["spec"])


# --------------------------------------------------------------------------------------------- classifier
def test_gardener_schema_error_is_not_a_webhook_denial():
    message = gardener_rejection()
    assert "spec.headGroupSpec: Required value" in message
    kind, detail = rc.classify_denial({"allowed": False, "status": 422, "message": message}, KUBERAY, ["vraycluster.kb.io"])
    assert kind == "schema" and "not by a webhook" in detail


def test_own_webhook_denial_counts():
    assert rc.classify_denial(WEBHOOK_DENIAL, KUBERAY, ["vraycluster.kb.io"])[0] == "webhook"


def test_other_policy_webhook_does_not_count():
    message = ('admission webhook "validate.kyverno.svc-fail" denied the request: '
               'policy require-labels: worker group names must be unique')
    other = {"allowed": False, "status": 400, "message": message}
    kind, detail = rc.classify_denial(other, KUBERAY, ["vraycluster.kb.io"])
    assert kind == "other-webhook" and "validate.kyverno.svc-fail" in detail


def test_accepted_and_unreachable_webhook():
    assert rc.classify_denial({"allowed": True}, KUBERAY, [])[0] == "accepted"
    message = ('Internal error occurred: failed calling webhook "vraycluster.kb.io": '
               'no endpoints available for service "kuberay-operator-webhook"')
    failed = {"allowed": False, "status": 500, "message": message}
    assert rc.classify_denial(failed, KUBERAY, ["vraycluster.kb.io"])[0] == "webhook-error"


def test_status_message_strips_the_collection_prefix():
    text = ("the Kubernetes API at https://127.0.0.1:1 answered POST /apis/ray.io/v1/namespaces/a/rayclusters with 422 "
            "Invalid: admission webhook \"vraycluster.kb.io\" denied the request: x")
    assert rc.status_message(text) == 'admission webhook "vraycluster.kb.io" denied the request: x'


# --------------------------------------------------------------------------------------------- verdicts
def test_no_operator_is_not_implemented():
    result = validate_result(rc.judge({"operators": []}, probes()))
    assert result["status"] == NOT_IMPLEMENTED and "kuberay role" in result["notes"]


def test_everything_proven_is_implemented():
    result = validate_result(rc.judge({"operators": [healthy_kuberay()]}, probes()))
    assert result["status"] == IMPLEMENTED, result["notes"]
    assert [f["passed"] for f in result["findings"]] == [True, True, True, True]


def test_schema_only_validation_is_partial_with_the_fix():
    denial = {"allowed": False, "status": 422, "message": gardener_rejection()}
    result = rc.judge({"operators": [healthy_kuberay(webhooks=False)]}, probes(denial=denial))
    assert result["status"] == PARTIAL
    assert "kuberay_webhook_enabled" in result["notes"]


def test_accepted_invalid_object_is_partial():
    result = rc.judge({"operators": [healthy_kuberay(webhooks=False)]}, probes(denial={"allowed": True}))
    assert result["status"] == PARTIAL and "reconcile without" in result["summary"]


def test_webhook_without_reconcile_is_partial():
    stuck = {"ready": False, "state": None, "head_pods": 0, "worker_pods": 0, "head_service": None,
             "error": "timed out waiting for RayCluster x to reach state ready"}
    result = rc.judge({"operators": [healthy_kuberay()]}, probes(reconcile=stuck, cascade={}))
    assert result["status"] == PARTIAL and "did not reconcile" in result["notes"]


def test_children_left_behind_is_partial():
    result = rc.judge({"operators": [healthy_kuberay()]}, probes(cascade={"gone": False, "before": 2, "error": "timed out"}))
    assert result["status"] == PARTIAL


def test_crashlooping_operator_is_not_implemented_even_with_good_probes():
    op = healthy_kuberay()
    op["controllers"][0].update({"ready": 0, "restarts": 6, "waiting": ["p: CrashLoopBackOff"], "healthy": False})
    op["webhooks"][0]["ready_endpoints"] = 0
    result = rc.judge({"operators": [op]}, probes())
    assert result["status"] == NOT_IMPLEMENTED
    assert "no ready endpoints" in result["notes"] and "--previous" in result["notes"]


def test_webhook_without_ca_bundle_is_unhealthy():
    op = healthy_kuberay()
    op["webhooks"][0]["ca_bundle"] = False
    assert rc.judge({"operators": [op]}, probes())["status"] == NOT_IMPLEMENTED


def test_passive_never_claims_implemented():
    result = rc.judge({"operators": [healthy_kuberay()]}, passive_reason="mode=passive: no probes")
    assert (result["status"], result["mode"]) == (PARTIAL, "passive")


def test_unprobed_operator_is_capped_and_best_operator_wins():
    lws = {"key": "lws", "name": "LeaderWorkerSet", "missing_crds": [], "webhooks": [],
           "crds": [{"name": "leaderworkersets.leaderworkerset.x-k8s.io", "established": True, "names_accepted": True,
                     "versions": ["v1"]}],
           "controllers": [{"name": "lws-controller-manager", "namespace": "lws-system", "replicas": 1, "ready": 1,
                            "restarts": 0, "waiting": [], "healthy": True}]}
    alone = rc.judge({"operators": [lws]}, None)
    assert alone["status"] == PARTIAL and "no active probe" in alone["notes"]
    both = rc.judge({"operators": [lws, healthy_kuberay()]}, probes())
    assert both["status"] == IMPLEMENTED
