"""Admission webhooks and service proxies: matching, failurePolicy and the real error wording when the
webhook's Service has no ready endpoint (on a real cluster too, a webhook whose pod is down blocks writes)."""
from __future__ import annotations

from conftest import Raw


def _webhook(name, policy, selector):
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": "%s.example.com" % name, "failurePolicy": policy, "sideEffects": "None",
                          "admissionReviewVersions": ["v1"], "namespaceSelector": {"matchLabels": selector},
                          "clientConfig": {"service": {"namespace": "default", "name": "guard", "path": "/validate"}},
                          "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                     "resources": ["configmaps"]}]}]}


def _namespace(raw, name, labels):
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    assert raw.json("POST", "/api/v1/namespaces", namespace)[0] == 201


def _configmap(raw, namespace, name):
    return raw.json("POST", "/api/v1/namespaces/%s/configmaps" % namespace,
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})


def test_failure_policy_and_namespace_selector(make_sim):
    raw = Raw(make_sim(controllers=False))
    _namespace(raw, "guarded", {"guard": "on"})
    _namespace(raw, "open", {})
    raw.json("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "guard"},
        "spec": {"selector": {"app": "guard"}, "ports": [{"port": 443, "targetPort": 8443}]}})
    assert raw.json("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                    _webhook("strict", "Fail", {"guard": "on"}))[0] == 201
    status, body = _configmap(raw, "guarded", "blocked")
    assert (status, body["reason"]) == (500, "InternalError")
    assert body["message"] == ('Internal error occurred: failed calling webhook "strict.example.com": failed to call '
                               'webhook: Post "https://guard.default.svc:443/validate?timeout=10s": no endpoints '
                               'available for service "guard"')
    assert _configmap(raw, "open", "allowed")[0] == 201          # namespaceSelector does not match
    raw.json("DELETE", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/strict")
    assert raw.json("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                    _webhook("lenient", "Ignore", {"guard": "on"}))[0] == 201
    assert _configmap(raw, "guarded", "ignored")[0] == 201


def test_service_proxy_without_endpoints_is_503(make_sim):
    raw = Raw(make_sim(controllers=False))
    raw.json("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}})
    status, body = raw.json("GET", "/api/v1/namespaces/default/services/web:http/proxy/healthz")
    assert (status, body["reason"], body["message"]) == (503, "ServiceUnavailable",
                                                         'no endpoints available for service "web"')
    status, body = raw.json("GET", "/api/v1/namespaces/default/services/nope/proxy/")
    assert status == 503 and body["message"] == 'service "nope" not found'
