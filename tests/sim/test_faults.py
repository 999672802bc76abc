"""The simulator's fault switches (tests/simcluster/faults.py), each seen from a real client: status codes
and Retry-After, dropped connections, cut watch streams, hung webhooks, pods that never start and canned
app answers. The checks' behaviour under these faults is tests/integration/test_fault_matrix.py.
One cluster for the module; every test clears the faults it set.
"""
from __future__ import annotations

import http.client
import json
import time

import pytest

from conftest import Raw

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "faulty"}}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from simcluster.cluster import SimCluster
    cluster = SimCluster("conformant", speed=40, kubeconfig=str(tmp_path_factory.mktemp("faults") / "kc")).start()
    Raw(cluster).json("POST", "/api/v1/namespaces", NS)
    yield cluster
    cluster.stop()


@pytest.fixture
def raw(sim):
    yield Raw(sim)
    sim.faults.clear()


def test_unknown_switch_is_an_error(sim):
    with pytest.raises(ValueError, match="unknown fault setting.*errorrate"):
        sim.faults.set(errorrate=0.3)


def test_error_rate_answers_429_and_503_with_retry_after_and_healthz_is_spared(sim, raw):
    sim.faults.set(errorRate=1.0, errorCodes=[429, 503], retryAfterSeconds=3, seed=5)
    seen = set()
    for dummy in range(12):
        status, headers, data = raw("GET", "/api/v1/namespaces/faulty")
        body = json.loads(data)
        assert status in (429, 503) and headers["Retry-After"] == "3", (status, headers)
        assert body["kind"] == "Status" and body["code"] == status and body["details"]["retryAfterSeconds"] == 3
        seen.add((status, body["reason"]))
    assert seen == {(429, "TooManyRequests"), (503, "ServiceUnavailable")}
    assert raw("GET", "/readyz")[0] == 200
    sim.faults.set(errorRate=0.3, seed=5)
    statuses = [raw("GET", "/api/v1/namespaces/faulty")[0] for dummy in range(100)]
    assert 15 <= sum(s != 200 for s in statuses) <= 45        # about 30 %, reproducible with the seed


def test_outage_starts_after_the_trigger_and_drops_connections_for_its_window(sim, raw):
    sim.faults.set(outage={"after": {"method": "POST", "pathContains": "/configmaps"}, "delaySeconds": 0,
                           "seconds": 1.5})
    assert raw("GET", "/api/v1/namespaces/faulty")[0] == 200               # not yet triggered
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw.json("POST", "/api/v1/namespaces/faulty/configmaps",
                 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw("GET", "/api/v1/namespaces/faulty")
    end = time.monotonic() + 10
    while time.monotonic() < end:                     # the window ends on its own
        try:
            if raw("GET", "/api/v1/namespaces/faulty")[0] == 200:
                break
        except (http.client.RemoteDisconnected, ConnectionError):
            time.sleep(0.1)
    else:
        pytest.fail("the outage did not end")
    assert sim.faults.stats["outage"] >= 2


def test_latency_delays_answers(sim, raw):
    sim.faults.set(latencyMs=300)
    started = time.monotonic()
    assert raw("GET", "/version")[0] == 200
    assert time.monotonic() - started >= 0.3


def test_dropped_watch_ends_without_the_final_chunk(sim, raw):
    sim.faults.set(dropWatches={"afterSeconds": 0.3})
    conn = http.client.HTTPSConnection(sim.host, sim.port, context=raw.context, timeout=10)
    conn.request("GET", "/api/v1/namespaces?watch=true&timeoutSeconds=30",
                 headers={"Authorization": "Bearer %s" % raw.token})
    resp = conn.getresponse()
    started = time.monotonic()
    with pytest.raises(http.client.IncompleteRead):   # a clean end would be the zero-length chunk
        resp.read()
    assert time.monotonic() - started < 5
    conn.close()


def test_webhook_timeout_fails_the_write_like_kube_apiserver(sim, raw):
    sim.restore({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                 "metadata": {"name": "hung"},
                 "webhooks": [{"name": "hung.example.com", "failurePolicy": "Fail", "sideEffects": "None",
                               "admissionReviewVersions": ["v1"], "timeoutSeconds": 10,
                               "clientConfig": {"service": {"namespace": "default", "name": "hung", "path": "/v"}},
                               "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                          "resources": ["configmaps"]}]}]})
    try:
        sim.faults.set(webhookTimeout=True)
        started = time.monotonic()
        status, body = raw.json("POST", "/api/v1/namespaces/faulty/configmaps",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}})
        assert time.monotonic() - started >= sim.clock.real_seconds(10) * 0.9     # it waited its timeout
        assert (status, body["reason"]) == (500, "InternalError")
        assert body["message"] == ('Internal error occurred: failed calling webhook "hung.example.com": failed to '
                                   'call webhook: Post "https://hung.default.svc:443/v?timeout=10s": context '
                                   'deadline exceeded')
    finally:
        sim.store.delete(("admissionregistration.k8s.io", "validatingwebhookconfigurations"), None, "hung")


def test_pods_never_start_stay_pending_in_image_pull_back_off(sim, raw):
    sim.faults.set(podsNeverStart={"namespacePrefix": "faulty"})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}
    assert raw.json("POST", "/api/v1/namespaces/faulty/pods", pod)[0] == 201
    end = time.monotonic() + 10
    waiting = {}
    while time.monotonic() < end:
        status = raw.json("GET", "/api/v1/namespaces/faulty/pods/stuck")[1].get("status") or {}
        waiting = ((status.get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "ImagePullBackOff":
            break
        time.sleep(0.05)
    assert waiting.get("reason") == "ImagePullBackOff", status
    assert 'Back-off pulling image "busybox:1.36"' in waiting["message"]
    assert status["phase"] == "Pending"
    sim.faults.clear()       # and it starts once the image can be pulled
    end = time.monotonic() + 15
    while time.monotonic() < end:
        if raw.json("GET", "/api/v1/namespaces/faulty/pods/stuck")[1]["status"]["phase"] == "Running":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the pod did not start after the fault was cleared")


def test_http_answers_replace_what_an_app_serves(sim, raw):
    pods = [p["metadata"]["name"] for p in sim.store.list(("", "pods"))[0]
            if p["metadata"]["name"].startswith("nvidia-dcgm-exporter")]
    assert pods
    path = "/api/v1/namespaces/gpu-operator/pods/%s:9400/proxy/metrics" % pods[0]
    status, dummy, real = raw("GET", path, headers={"Accept": "*/*"})
    assert status == 200 and b"DCGM_FI_DEV_GPU_UTIL" in real
    sim.faults.set(httpAnswers=[{"podPrefix": pods[0], "path": "/metrics", "body": b"\xff\xfe garbage"}])
    status, dummy, canned = raw("GET", path, headers={"Accept": "*/*"})
    assert (status, canned) == (200, b"\xff\xfe garbage")
