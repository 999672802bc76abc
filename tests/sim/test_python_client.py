"""The `kubernetes` Python client (typed APIs, DynamicClient, watch) against the simulated cluster."""
from __future__ import annotations

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException

from conftest import api_client


def _pod(name, labels):
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels), spec=client.V1PodSpec(
        containers=[client.V1Container(name="main", image="busybox:1.36", command=["sleep", "3600"])]))


def test_typed_core_api(sim_cluster, namespace):
    core = client.CoreV1Api(api_client(sim_cluster))
    for i in range(3):
        core.create_namespaced_pod(namespace, _pod("p%d" % i, {"app": "probe", "idx": str(i)}))
    pods = core.list_namespaced_pod(namespace, label_selector="app=probe,idx!=1")
    assert sorted(p.metadata.name for p in pods.items) == ["p0", "p2"]
    pod = core.read_namespaced_pod("p0", namespace)
    assert pod.spec.restart_policy == "Always" and pod.spec.dns_policy == "ClusterFirst"
    assert pod.spec.containers[0].termination_message_path == "/dev/termination-log"
    assert pod.status.qos_class == "BestEffort"
    patched = core.patch_namespaced_pod("p0", namespace, {"metadata": {"labels": {"extra": "yes"}}})
    assert patched.metadata.labels == {"app": "probe", "idx": "0", "extra": "yes"}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod("p0", namespace, {"spec": {"restartPolicy": "Never"}})
    assert err.value.status == 422 and "pod updates may not change fields other than" in err.value.body
    core.delete_namespaced_pod("p1", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("p1", namespace)
    assert err.value.status == 404


def test_typed_apps_api_and_scale(sim_cluster, namespace):
    apps = client.AppsV1Api(api_client(sim_cluster))
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="d"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels={"app": "d"}),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "d"}),
                                              spec=client.V1PodSpec(containers=[client.V1Container(
                                                  name="c", image="nginx:1.27")]))))
    created = apps.create_namespaced_deployment(namespace, body)
    assert created.spec.strategy.type == "RollingUpdate" and created.spec.revision_history_limit == 10
    scale = apps.patch_namespaced_deployment_scale("d", namespace, {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4 and scale.status.selector == "app=d"
    assert apps.read_namespaced_deployment("d", namespace).spec.replicas == 4
    bad = client.V1Deployment(metadata=client.V1ObjectMeta(name="bad"), spec=client.V1DeploymentSpec(
        selector=client.V1LabelSelector(match_labels={"app": "x"}),
        template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "y"}),
                                          spec=client.V1PodSpec(containers=[client.V1Container(name="c",
                                                                                               image="i")]))))
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(namespace, bad)
    assert err.value.status == 422 and "`selector` does not match template `labels`" in err.value.body


def test_dynamic_client_crud_and_server_side_apply(sim_cluster, namespace):
    dyn = dynamic.DynamicClient(api_client(sim_cluster))
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"},
                            "data": {"a": "1"}}, namespace=namespace)
    applied = configmaps.server_side_apply(body={"apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": {"name": "dyn", "namespace": namespace},
                                                 "data": {"b": "2"}},
                                           namespace=namespace, field_manager="probe")
    assert applied.to_dict()["data"] == {"a": "1", "b": "2"}
    managers = {m["manager"]: m["operation"] for m in applied.to_dict()["metadata"]["managedFields"]}
    assert managers == {"OpenAPI-Generator": "Update", "probe": "Apply"}
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.get(namespace=namespace).items == []
    configmaps.delete(name="dyn", namespace=namespace)
    with pytest.raises(Exception) as err:
        configmaps.get(name="dyn", namespace=namespace)
    assert getattr(err.value, "status", None) == 404


def test_watch_stream_with_resume(sim_cluster, namespace):
    core = client.CoreV1Api(api_client(sim_cluster))
    listing = core.list_namespaced_config_map(namespace)
    start = listing.metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "w1", "labels": {"w": "1"}}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "w2", "labels": {"w": "1"}}})
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, namespace, label_selector="w=1",
                                      resource_version=start, timeout_seconds=1):
        seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", "w1"), ("ADDED", "w2")]
