"""CRDs: every upstream CRD loads unchanged and is served; custom objects are pruned, defaulted and
validated against the real schemas, with the real error wording."""
from __future__ import annotations

import glob
import gzip
import os
import subprocess

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from conftest import FIXTURES, TOOLS, Raw, api_client
from simcluster.scenario import load_all
import upstream_charts

# charts whose CRDs sit in crds/ dirs or templates, with the values they need to render (SOURCES.md)
CHART_VALUES = {"gpu-operator": [], "kueue": [], "kuberay-operator": [], "kube-prometheus-stack": [],
                "gateway-helm": [], "volcano": [], "keda": [],
                "nvidia-dra-driver-gpu": ["--set", "gpuResourcesEnabledOverride=true"],
                "dra-driver-nvidia-gpu": ["--set", "gpuResourcesEnabledOverride=true"]}


def _docs(path):
    with open(path, "rb") as fh:
        data = fh.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return [d for d in load_all(data) if d]


def upstream_crds():
    """(source, CRD) for every CRD in the fixtures: crds/ (some gzipped), gateway-api-crds/, and what
    `helm template --include-crds` renders for each chart (crds/ dirs and CRDs in templates)."""
    out = []
    files = glob.glob(os.path.join(FIXTURES, "crds", "**", "*.yaml*"), recursive=True)
    files += glob.glob(os.path.join(upstream_charts.charts_dir(), "gateway-api-crds", "*.yaml"))
    for path in sorted(files):
        for doc in _docs(path):
            if doc.get("kind") == "CustomResourceDefinition":
                out.append((os.path.relpath(path, FIXTURES), doc))
    for chart, values in CHART_VALUES.items():
        rendered = subprocess.run([os.path.join(TOOLS, "helm"), "template", "t", upstream_charts.chart(chart),
                                   "--include-crds", "--namespace", "crd-test"] + values,
                                  capture_output=True, text=True, check=True)
        for doc in load_all(rendered.stdout):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                out.append(("charts/%s" % chart, doc))
    return out


@pytest.fixture(scope="module")
def crd_cluster(tmp_path_factory):
    from simcluster.cluster import SimCluster
    sim = SimCluster("conformant", controllers=False,
                     kubeconfig=str(tmp_path_factory.mktemp("crds") / "kubeconfig")).start()
    yield sim
    sim.stop()


def test_every_upstream_crd_loads_and_is_served(crd_cluster):
    crds = upstream_crds()
    assert len(crds) > 60, "the fixtures hold fewer CRDs than expected: %d" % len(crds)
    ext = client.ApiextensionsV1Api(api_client(crd_cluster))
    raw = Raw(crd_cluster)
    names = set()
    for source, crd in crds:
        name = crd["metadata"]["name"]
        if name in names:
            ext.delete_custom_resource_definition(name)
        names.add(name)
        status, body = raw.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        assert status == 201, (source, body)
        conditions = {c["type"]: c["status"] for c in body["status"]["conditions"]}
        assert conditions == {"NamesAccepted": "True", "Established": "True"}, source
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        for version in [v["name"] for v in crd["spec"]["versions"] if v.get("served")]:
            status, listing = raw.json("GET", "/apis/%s/%s/%s" % (group, version, plural))
            assert status == 200 and listing["items"] == [], (source, version, listing)
            rtype = crd_cluster.store.types[(group, plural)]
            # compiling the validator proves jsonschema accepts the translated structural schema
            errors = list(rtype.validator(version).iter_errors({"apiVersion": "%s/%s" % (group, version),
                                                                "kind": crd["spec"]["names"]["kind"]}))
            assert all(e.validator in ("required", "x-kubernetes-list-type") for e in errors), (source, errors[:3])


@pytest.fixture
def ray_cluster(make_sim):
    sim = make_sim(controllers=False)
    for doc in _docs(os.path.join(FIXTURES, "crds", "kuberay", "v1.4.2", "ray.io_rayclusters.yaml")):
        sim.restore(doc)
    for doc in _docs(os.path.join(FIXTURES, "crds", "kueue", "v0.19.2", "kueue.x-k8s.io_clusterqueues.yaml")):
        sim.restore(doc)
    return sim


RAYCLUSTER = {
    "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rc", "namespace": "default"},
    "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray:2.41.0"}]}}},
        "workerGroupSpecs": [{"groupName": "gpu", "replicas": 1, "rayStartParams": {},
                              "template": {"spec": {"containers": [{"name": "w", "image": "rayproject/ray:2.41.0"}]}}}]},
}


def test_invalid_custom_object_gets_422_naming_the_field(ray_cluster):
    api = client.CustomObjectsApi(api_client(ray_cluster))
    bad = yaml.safe_load(yaml.safe_dump(RAYCLUSTER))
    bad["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object("ray.io", "v1", "default", "rayclusters", bad)
    assert err.value.status == 422
    body = yaml.safe_load(err.value.body)
    assert body["reason"] == "Invalid"
    assert body["message"] == ('RayCluster.ray.io "rc" is invalid: spec.workerGroupSpecs[0].replicas: Invalid value: '
                               '"string": spec.workerGroupSpecs[0].replicas in body must be of type integer: "string"')
    assert body["details"]["causes"][0]["field"] == "spec.workerGroupSpecs[0].replicas"


def test_required_field_and_enum_errors(ray_cluster):
    api = client.CustomObjectsApi(api_client(ray_cluster))
    queue = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue", "metadata": {"name": "cq"},
             "spec": {"queueingStrategy": "Random"}}
    with pytest.raises(ApiException) as err:
        api.create_cluster_custom_object("kueue.x-k8s.io", "v1beta1", "clusterqueues", queue)
    assert err.value.status == 422
    assert 'spec.queueingStrategy: Unsupported value: "Random": supported values: "StrictFIFO", "BestEffortFIFO"' \
        in yaml.safe_load(err.value.body)["message"]


def test_defaults_and_pruning_and_strict_field_validation(ray_cluster):
    raw = Raw(ray_cluster)
    queue = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue", "metadata": {"name": "cq"},
             "spec": {"bogus": 1}}
    status, body = raw.json("POST", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues?fieldValidation=Strict", queue)
    assert status == 400 and body["message"] == 'strict decoding error: unknown field "spec.bogus"'
    status, headers, data = raw("POST", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues", queue)
    assert status == 201
    assert headers.get("Warning") == '299 - "unknown field \\"spec.bogus\\""'
    stored = yaml.safe_load(data)
    assert "bogus" not in stored["spec"]
    assert stored["spec"]["queueingStrategy"] == "BestEffortFIFO"
    assert stored["spec"]["flavorFungibility"] == {"whenCanBorrow": "MayStopSearch", "whenCanPreempt": "TryNextFlavor"}


def test_deleting_a_crd_stops_serving_it(ray_cluster):
    raw = Raw(ray_cluster)
    assert raw("POST", "/apis/ray.io/v1/namespaces/default/rayclusters", RAYCLUSTER)[0] == 201
    status, _unused = raw.json("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rayclusters.ray.io")
    assert status == 200
    status, body = raw.json("GET", "/apis/ray.io/v1/namespaces/default/rayclusters/rc")
    assert status == 404 and body["reason"] == "NotFound"
    status, groups = raw.json("GET", "/apis")
    assert "ray.io" not in [g["name"] for g in groups["groups"]]
    assert ("ray.io", "rayclusters") not in ray_cluster.store.types
