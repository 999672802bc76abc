"""The pure parts of the simulated operators the stack roles install (tests/simcluster/apps): what they
decide from a resource, checked against the real components' documented behaviour."""
from __future__ import annotations

import json

from simcluster.apps import gpu_operator, kuberay, prometheus_adapter, prometheus_operator


def raycluster(name, groups):
    return {"metadata": {"name": name}, "spec": {"workerGroupSpecs": [{"groupName": g} for g in groups]}}


class TestKubeRayWebhook:
    def test_unique_worker_groups_and_a_dns_name_pass(self):
        assert kuberay.validate_raycluster(raycluster("ok-cluster", ["a", "b"])) == []

    def test_duplicate_groups_are_refused_with_the_operators_words(self):
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "u1", "operation": "CREATE", "object": raycluster("dup", ["w", "w"])}}
        response = kuberay.review_response(review)["response"]
        assert response["allowed"] is False and response["uid"] == "u1"
        status = response["status"]
        assert (status["code"], status["reason"]) == (422, "Invalid")
        assert status["message"].startswith('RayCluster.ray.io "dup" is invalid: spec.workerGroupSpecs[1]: Invalid value: ')
        assert status["message"].endswith(": worker group names must be unique")

    def test_bad_names_and_deletes(self):
        (error,) = kuberay.validate_raycluster(raycluster("Bad_Name", []))
        assert error[0] == "metadata.name" and "DNS1035" in error[2]
        assert "no more than 63" in kuberay.name_problem("a" * 64)
        delete = {"request": {"uid": "u2", "operation": "DELETE", "object": raycluster("dup", ["w", "w"])}}
        assert kuberay.review_response(delete)["response"]["allowed"] is True


class TestGpuOperator:
    POLICY = {"metadata": {"name": "cluster-policy", "uid": "p-uid"},
              "spec": {"devicePlugin": {"repository": "m.local/nvidia", "image": "k8s-device-plugin", "version": "v0.20.0"},
                       "dcgmExporter": {"enabled": False}}}

    def test_operands_follow_the_policy(self):
        operands = gpu_operator.desired_operands(self.POLICY, "gpu-ops", monitors_served=True)
        kinds = sorted((gr[1], obj["metadata"]["name"]) for gr, obj in operands)
        # dcgmExporter.enabled=false: no exporter, Service or ServiceMonitor.
        assert kinds == [("daemonsets", "nvidia-device-plugin-daemonset"), ("runtimeclasses", "nvidia")]
        ds = [obj for gr, obj in operands if obj["kind"] == "DaemonSet"][0]
        assert ds["metadata"]["namespace"] == "gpu-ops"
        assert ds["metadata"]["ownerReferences"][0]["uid"] == "p-uid"
        assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "m.local/nvidia/k8s-device-plugin:v0.20.0"
        terms = ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [{"matchExpressions": [
            {"key": "nvidia.com/gpu.deploy.device-plugin", "operator": "NotIn", "values": ["false"]}]}]

    def test_exporter_monitor_only_when_asked_and_served(self):
        policy = dict(self.POLICY, spec={"dcgmExporter": {"serviceMonitor": {"enabled": True, "honorLabels": False}}})

        def names(served):
            return sorted(o["kind"] for _gr, o in gpu_operator.desired_operands(policy, "ns", served))

        assert names(True).count("ServiceMonitor") == 1
        assert "ServiceMonitor" not in names(False)

    def test_daemonset_readiness(self):
        ready = {"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "desiredNumberScheduled": 2,
                                                           "numberReady": 2, "updatedNumberScheduled": 2}}
        assert gpu_operator.daemonset_ready(ready)
        assert not gpu_operator.daemonset_ready(dict(ready, status=dict(ready["status"], numberReady=1)))
        assert not gpu_operator.daemonset_ready(dict(ready, status=dict(ready["status"], observedGeneration=1)))


class TestPrometheusOperator:
    PROM = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "kps-prometheus", "namespace": "monitoring", "uid": "u", "generation": 3},
            "spec": {"replicas": 2, "image": "quay.io/prometheus/prometheus:v3.14.0", "portName": "http-web"}}

    def test_statefulset_carries_what_the_charts_service_selects(self):
        sts = prometheus_operator.statefulset_for("Prometheus", self.PROM, "v0.93.1")
        assert sts["metadata"]["name"] == "prometheus-kps-prometheus"
        labels = sts["spec"]["template"]["metadata"]["labels"]
        # kube-prometheus-stack's Service selects these two labels.
        assert labels["app.kubernetes.io/name"] == "prometheus" and labels["operator.prometheus.io/name"] == "kps-prometheus"
        assert sts["spec"]["replicas"] == 2 and sts["spec"]["serviceName"] == "prometheus-operated"
        ports = sts["spec"]["template"]["spec"]["containers"][0]["ports"]
        assert ports == [{"name": "http-web", "containerPort": 9090, "protocol": "TCP"}]

    def test_status_follows_the_statefulset(self):
        status = prometheus_operator.status_for(self.PROM, {"status": {"replicas": 2, "availableReplicas": 1, "updatedReplicas": 2}})
        available = [c for c in status["conditions"] if c["type"] == "Available"][0]
        assert (available["status"], available["reason"], status["unavailableReplicas"]) == ("False", "SomePodsNotReady", 1)
        done = prometheus_operator.status_for(self.PROM, {"status": {"replicas": 2, "availableReplicas": 2}})
        assert [c["status"] for c in done["conditions"]] == ["True", "True"]


class TestPrometheusAdapterNaming:
    RULE = {"seriesQuery": '{__name__=~"^pod_gpu_(utilization|memory_used_mib)$",namespace!="",pod!=""}',
            "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
            "name": {"matches": "^(.*)$", "as": "$1"}}

    def test_metric_names_and_resources_of_the_roles_rule(self):
        assert prometheus_adapter.Adapter.metric_name(self.RULE, "pod_gpu_utilization") == "pod_gpu_utilization"
        assert prometheus_adapter.Adapter.metric_name({"name": {"matches": "^container_(.*)_seconds_total$"}},
                                                      "container_cpu_usage_seconds_total") == "cpu_usage"
        assert prometheus_adapter.Adapter.metric_name({"name": {"matches": "^x_(.*)$"}}, "other") is None
        assert prometheus_adapter.Adapter.resources(self.RULE) == {"namespace": "namespace", "pod": "pod"}
        assert json.dumps(prometheus_adapter.Adapter.resources({"resources": {"template": "<<.Resource>>"}}), sort_keys=True) == \
            '{"namespace": "namespace", "pod": "pod"}'
