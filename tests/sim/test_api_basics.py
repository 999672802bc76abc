"""The API server's REST semantics, checked over real HTTPS: version, discovery, CRUD and errors, paging
and 410 Expired, watch resume, authn/authz wording, content negotiation, version conversion."""
from __future__ import annotations

import json

from conftest import Raw

CM = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}


def _cm(name, labels=None):
    return dict(CM, metadata={"name": name, "labels": labels or {}})


def test_version_reports_the_scenario_release(raw):
    status, body = raw.json("GET", "/version")
    assert status == 200
    assert (body["major"], body["minor"], body["gitVersion"]) == ("1", "33", "v1.33.5")
    assert body["platform"] == "linux/amd64" and body["goVersion"].startswith("go1.")


def test_health_endpoints(raw):
    for path in ("/healthz", "/readyz", "/livez"):
        assert raw("GET", path, token="")[0] == 200


def test_aggregated_discovery_as_kubectl_asks(raw):
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    status, headers, data = raw("GET", "/apis", headers={"Accept": accept})
    assert status == 200
    assert headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    groups = {g["metadata"]["name"]: g for g in json.loads(data)["items"]}
    apps = groups["apps"]["versions"][0]
    deployments = next(r for r in apps["resources"] if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced" and "deploy" in deployments["shortNames"]
    assert {s["subresource"] for s in deployments["subresources"]} == {"scale", "status"}
    assert [v["version"] for v in groups["resource.k8s.io"]["versions"]] == ["v1beta2", "v1beta1"]
    status, headers, data = raw("GET", "/api", headers={"Accept": accept})
    core = json.loads(data)["items"][0]
    assert "name" not in core["metadata"] and core["versions"][0]["version"] == "v1"


def test_dra_versions_follow_the_minor_and_the_setting(make_sim):
    v134 = Raw(make_sim(kubernetesVersion="v1.34.1", controllers=False))
    status, group = v134.json("GET", "/apis/resource.k8s.io")
    assert status == 200 and [v["version"] for v in group["versions"]] == ["v1"]
    assert v134.json("GET", "/version")[1]["gitVersion"] == "v1.34.1"
    none = Raw(make_sim(controllers=False, settings={"api": {"draVersions": []}}))
    assert none.json("GET", "/apis/resource.k8s.io")[0] == 404
    assert "resource.k8s.io" not in [g["name"] for g in none.json("GET", "/apis")[1]["groups"]]


def test_crud_and_the_real_error_statuses(raw, namespace):
    base = "/api/v1/namespaces/%s/configmaps" % namespace
    status, created = raw.json("POST", base, _cm("one"))
    assert status == 201 and created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    status, body = raw.json("POST", base, _cm("one"))
    assert (status, body["reason"], body["message"]) == (409, "AlreadyExists", 'configmaps "one" already exists')
    stale = dict(created, data={"k": "new"})
    assert raw.json("PUT", base + "/one", stale)[0] == 200
    status, body = raw.json("PUT", base + "/one", dict(created, data={"k": "lost"}))
    assert (status, body["reason"]) == (409, "Conflict")
    assert body["message"] == ('Operation cannot be fulfilled on configmaps "one": the object has been modified; '
                               'please apply your changes to the latest version and try again')
    status, body = raw.json("POST", base, _cm("Bad_Name"))
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
                                      'a lowercase RFC 1123 subdomain')
    status, body = raw.json("DELETE", base + "/one")
    assert status == 200 and body["status"] == "Success" and body["details"]["name"] == "one"
    status, body = raw.json("GET", base + "/one")
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'configmaps "one" not found')
    status, body = raw.json("GET", "/api/v1/nopes")
    assert status == 404


def test_paging_and_410_for_a_stale_continue_token(sim_cluster, raw, namespace):
    base = "/api/v1/namespaces/%s/configmaps" % namespace
    for i in range(25):
        raw.json("POST", base, _cm("cm-%02d" % i, {"batch": "paging"}))
    everything = sorted(i["metadata"]["name"] for i in raw.json("GET", base)[1]["items"])
    assert set("cm-%02d" % i for i in range(25)) <= set(everything)  # (plus kube-root-ca.crt when controllers run)
    status, page = raw.json("GET", base + "?limit=10")
    assert status == 200 and len(page["items"]) == 10
    assert page["metadata"]["remainingItemCount"] == len(everything) - 10
    names = [i["metadata"]["name"] for i in page["items"]]
    token = page["metadata"]["continue"]
    while token:
        page = raw.json("GET", base + "?limit=10&continue=" + token)[1]
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == everything
    first = raw.json("GET", base + "?limit=5&labelSelector=batch%3Dpaging")[1]
    raw.json("POST", base, _cm("after-the-token"))
    sim_cluster.store.compact()  # like etcd compacting to the current revision, past the token's
    status, body = raw.json("GET", base + "?limit=5&continue=" + first["metadata"]["continue"])
    assert (status, body["reason"], body["code"]) == (410, "Expired", 410)
    assert body["message"].startswith("The provided continue parameter is too old to display a consistent list")


def test_selectors_and_unsupported_field_labels(raw, namespace):
    base = "/api/v1/namespaces/%s/configmaps" % namespace
    raw.json("POST", base, _cm("a", {"tier": "gpu"}))
    raw.json("POST", base, _cm("b", {"tier": "cpu"}))
    items = raw.json("GET", base + "?labelSelector=tier%20in%20(gpu)")[1]["items"]
    assert [i["metadata"]["name"] for i in items] == ["a"]
    items = raw.json("GET", base + "?fieldSelector=metadata.name%3Db")[1]["items"]
    assert [i["metadata"]["name"] for i in items] == ["b"]
    status, body = raw.json("GET", base + "?fieldSelector=spec.bogus%3D1")
    assert status == 400 and body["message"] == "field label not supported: spec.bogus"
    status, _unused = raw.json("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dgpu-0,status.phase%3DRunning")
    assert status == 200


def _watch_events(raw, path):
    status, _unused, data = raw("GET", path)
    assert status == 200
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_watch_resumes_from_a_resource_version(sim_cluster, raw, namespace):
    base = "/api/v1/namespaces/%s/configmaps" % namespace
    created = raw.json("POST", base, _cm("w"))[1]
    start = created["metadata"]["resourceVersion"]
    for value in ("1", "2"):
        current = raw.json("GET", base + "/w")[1]
        raw.json("PUT", base + "/w", dict(current, data={"k": value}))
    raw.json("DELETE", base + "/w")
    events = _watch_events(raw, base + "?watch=true&timeoutSeconds=1&resourceVersion=" + start)
    assert [(e["type"], e["object"].get("data", {}).get("k")) for e in events] == \
        [("MODIFIED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]
    sim_cluster.store.compact()
    events = _watch_events(raw, base + "?watch=true&timeoutSeconds=1&resourceVersion=" + start)
    assert events[0]["type"] == "ERROR"
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")
    assert events[0]["object"]["message"].startswith("too old resource version: %s" % start)


def test_watch_without_version_starts_with_the_current_state_and_bookmarks(raw, namespace):
    base = "/api/v1/namespaces/%s/configmaps" % namespace
    raw.json("POST", base, _cm("x", {"watched": "yes"}))
    events = _watch_events(raw, base + "?watch=1&timeoutSeconds=1&sendInitialEvents=true&allowWatchBookmarks=true"
                                       "&resourceVersionMatch=NotOlderThan&labelSelector=watched%3Dyes")
    assert [e["type"] for e in events][:2] == ["ADDED", "BOOKMARK"]
    assert events[0]["object"]["metadata"]["name"] == "x"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_authentication_and_forbidden_wording(sim_cluster, raw):
    status, body = raw.json("GET", "/api/v1/namespaces", token="not-a-token")
    assert (status, body["reason"]) == (401, "Unauthorized")
    assert raw("GET", "/api/v1/namespaces", token="")[0] == 401
    nobody = Raw(sim_cluster, "nobody")
    status, body = nobody.json("GET", "/api/v1/namespaces/default/pods")
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == ('pods is forbidden: User "nobody" cannot list resource "pods" in API group "" in the '
                               'namespace "default"')
    status, body = nobody.json("GET", "/api/v1/namespaces/default/pods/x/log")
    assert body["message"] == ('pods "x" is forbidden: User "nobody" cannot get resource "pods/log" in API group "" '
                               'in the namespace "default"')
    viewer = Raw(sim_cluster, "viewer")
    assert viewer.json("GET", "/api/v1/namespaces/default/configmaps")[0] == 200
    status, body = viewer.json("POST", "/api/v1/namespaces/default/configmaps", _cm("nope"))
    assert status == 403 and 'User "viewer" cannot create resource "configmaps"' in body["message"]
    status, body = viewer.json("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "list", "resource": "deployments", "group": "apps"}}})
    assert status == 201 and body["status"]["allowed"] is True
    assert body["status"]["reason"].startswith('RBAC: allowed by ClusterRoleBinding "simcluster-viewer"')


def test_table_and_protobuf_negotiation(raw):
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io," \
            "application/json"
    status, body = raw.json("GET", "/api/v1/nodes", headers={"Accept": table})
    assert status == 200 and body["kind"] == "Table"
    assert [c["name"] for c in body["columnDefinitions"]][:5] == ["Name", "Status", "Roles", "Age", "Version"]
    assert body["rows"][0]["cells"][1] == "Ready"
    assert body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    status, headers, data = raw("GET", "/api/v1/namespaces/default",
                                headers={"Accept": "application/vnd.kubernetes.protobuf, */*"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(data)["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"


def test_dra_claims_convert_between_v1beta1_and_v1beta2(raw, namespace):
    claim = {"apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceClaim", "metadata": {"name": "gpu"},
             "spec": {"devices": {"requests": [{"name": "g", "deviceClassName": "gpu.nvidia.com",
                                                "allocationMode": "ExactCount", "count": 1}]}}}
    status, _unused = raw.json("POST", "/apis/resource.k8s.io/v1beta1/namespaces/%s/resourceclaims" % namespace, claim)
    assert status == 201
    status, v1beta2 = raw.json("GET", "/apis/resource.k8s.io/v1beta2/namespaces/%s/resourceclaims/gpu" % namespace)
    assert v1beta2["apiVersion"] == "resource.k8s.io/v1beta2"
    assert v1beta2["spec"]["devices"]["requests"] == [{"name": "g", "exactly": {
        "deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1}}]
    v1beta1 = raw.json("GET", "/apis/resource.k8s.io/v1beta1/namespaces/%s/resourceclaims/gpu" % namespace)[1]
    assert v1beta1["spec"] == claim["spec"]


def test_hpa_and_events_are_served_in_every_version(raw, namespace):
    hpa = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                    "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}}
    assert raw.json("POST", "/apis/autoscaling/v1/namespaces/%s/horizontalpodautoscalers" % namespace, hpa)[0] == 201
    v2 = raw.json("GET", "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/h" % namespace)[1]
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 60}}}]
    assert v2["spec"]["minReplicas"] == 1
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Scheduled",
             "message": "Successfully assigned", "type": "Normal",
             "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace}, "source": {"component": "s"}}
    assert raw.json("POST", "/api/v1/namespaces/%s/events" % namespace, event)[0] == 201
    new = raw.json("GET", "/apis/events.k8s.io/v1/namespaces/%s/events/e1" % namespace)[1]
    assert (new["note"], new["regarding"]["name"], new["reportingController"]) == ("Successfully assigned", "p", "s")
