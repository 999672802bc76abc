"""Write semantics that infra tooling relies on: nulls in typed objects mean "unset", a write that changes
nothing does not write (idempotent reruns of kubectl apply, kubernetes.core and helm), and APIServices
report whether their backend answers."""
from __future__ import annotations

import time

import yaml
from kubernetes import dynamic

from conftest import api_client


def _deployment(name, **spec_extra):
    spec = {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]}}}
    spec.update(spec_extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def _applied_at(obj, manager):
    return [entry["time"] for entry in obj["metadata"]["managedFields"] if entry["manager"] == manager]


def test_null_in_a_typed_field_is_unset_and_defaulted(sim_cluster, namespace):
    # node-feature-discovery (in the GPU operator chart) renders revisionHistoryLimit: null
    deployments = dynamic.DynamicClient(api_client(sim_cluster)).resources.get(api_version="apps/v1",
                                                                               kind="Deployment")
    body = _deployment("nulls", revisionHistoryLimit=None)
    body["spec"]["template"]["spec"]["containers"][0]["args"] = None
    deployments.create(body=body, namespace=namespace)   # sent as JSON, nulls included
    stored = sim_cluster.store.get(("apps", "deployments"), namespace, "nulls")
    assert stored["spec"]["revisionHistoryLimit"] == 10
    assert "args" not in stored["spec"]["template"]["spec"]["containers"][0]


def test_unchanged_server_side_apply_and_update_do_not_write(sim_cluster, namespace, kubectl):
    manifest = yaml.safe_dump(dict(_deployment("steady"), metadata={"name": "steady", "namespace": namespace}))
    kubectl("apply", "--server-side", "--field-manager=infra", "-f", "-", stdin=manifest)
    first = kubectl.json("get", "deployment", "steady", "-n", namespace, "--show-managed-fields")
    time.sleep(1.1)   # managedFields times have one-second resolution: a needless bump would show
    kubectl("apply", "--server-side", "--field-manager=infra", "-f", "-", stdin=manifest)
    kubectl("apply", "-f", "-", stdin=manifest)   # client-side apply of the same content: adds its annotation
    kubectl("apply", "-f", "-", stdin=manifest)   # ... and a second one changes nothing
    third = kubectl.json("get", "deployment", "steady", "-n", namespace, "--show-managed-fields")
    kubectl("apply", "-f", "-", stdin=manifest)
    fourth = kubectl.json("get", "deployment", "steady", "-n", namespace)
    assert _applied_at(first, "infra") == _applied_at(third, "infra")
    assert third["metadata"]["resourceVersion"] == fourth["metadata"]["resourceVersion"]
    # a real change still writes and moves the applier's timestamp
    changed = manifest.replace("pause:3.10", "pause:3.9")
    kubectl("apply", "--server-side", "--field-manager=infra", "-f", "-", stdin=changed)
    fifth = kubectl.json("get", "deployment", "steady", "-n", namespace)
    assert fifth["metadata"]["resourceVersion"] != fourth["metadata"]["resourceVersion"]
    assert fifth["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/pause:3.9"


def test_apiservice_availability_follows_its_backend(sim_cluster, namespace, kubectl):
    apiservice = {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.sim-test.example.com"},
        "spec": {"group": "sim-test.example.com", "version": "v1beta1", "groupPriorityMinimum": 100,
                 "versionPriority": 100, "insecureSkipTLSVerify": True,
                 "service": {"namespace": namespace, "name": "missing-backend", "port": 443}},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(apiservice))
    try:
        deadline = time.monotonic() + 20
        condition = {}
        while time.monotonic() < deadline:
            got = kubectl.json("get", "apiservice", "v1beta1.sim-test.example.com")
            condition = next((c for c in (got.get("status") or {}).get("conditions") or []
                              if c["type"] == "Available"), {})
            if condition:
                break
            time.sleep(0.2)
        assert condition.get("status") == "False" and condition.get("reason") == "ServiceNotFound", condition
        local = kubectl.json("get", "apiservice", "v1.apps")
        assert [c["status"] for c in local["status"]["conditions"] if c["type"] == "Available"] == ["True"]
    finally:
        kubectl("delete", "apiservice", "v1beta1.sim-test.example.com")
