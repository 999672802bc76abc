"""cluster_autoscaling: the status ConfigMap parser (both formats), accelerator groups and the verdict rules."""
from __future__ import annotations

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import cluster_autoscaling as ca
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, validate_result)

# cluster-autoscaler >= 1.30 writes YAML (clusterstate/api ClusterAutoscalerStatus).
YAML_STATUS = """time: 2026-01-05 10:01:02.3 +0000 UTC
autoscalerStatus: Running
clusterWide:
  health:
    status: Healthy
    nodeCounts:
      registered: {total: 3, ready: 3, notStarted: 0}
  scaleUp: {status: NoActivity}
  scaleDown: {status: NoCandidates}
nodeGroups:
- name: gpu-pool
  health:
    status: Healthy
    nodeCounts:
      registered: {total: 1, ready: 1, notStarted: 0}
    cloudProviderTarget: 1
    minSize: 1
    maxSize: 4
  scaleUp: {status: NoActivity}
  scaleDown: {status: NoCandidates}
"""
# Before 1.30: free text.
TEXT_STATUS = """Cluster-autoscaler status at 2023-01-05 10:01:02.3 +0000 UTC:
Cluster-wide:
  Health:      Healthy (ready=3 unready=0 notStarted=0 longNotStarted=0 registered=3 longUnregistered=0)
NodeGroups:
  Name:        gpu-pool
  Health:      Healthy (ready=1 unready=0 notStarted=0 longNotStarted=0 registered=1 longUnregistered=0 cloudProviderTarget=1 (minSize=0, maxSize=2))
"""


def facts(status=None, gpu_group="gpu-pool", karpenter=None):
    out = {"git_version": "v1.33.5", "vendor": "nvidia", "resource": "nvidia.com/gpu", "node_count": 3,
           "accelerator_nodes": [{"name": "gpu-a", "count": 8, "allocatable": 8, "group": gpu_group}],
           "cluster_autoscaler": {"pods": [{"name": "ca-1", "namespace": "kube-system", "phase": "Running",
                                            "images": ["registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.0"]}]
                                  if status else [],
                                  "status": ca.parse_status(status) if status else None, "status_text": status,
                                  "events": []},
           "karpenter": karpenter or {}, "capi": [], "openshift": []}
    out["groups"] = ca.accelerator_groups(out)
    return out


def probe_out(up=True, on_new=True, down=True):
    return {"ran": True, "scaled_up": up, "pod_on_new_node": on_new, "scaled_down": down, "details": ["x", "y"],
            "events": [], "nodes_before": ["gpu-a"], "new_nodes": ["gpu-b"] if up else [], "cleanup": "",
            "namespace": "aic-x", "free": 0, "replicas": 1, "resource": "nvidia.com/gpu"}


def test_parse_yaml_status():
    parsed = ca.parse_status(YAML_STATUS)
    assert parsed["format"] == "yaml" and parsed["autoscaler_status"] == "Running"
    assert parsed["node_groups"][0]["name"] == "gpu-pool"
    assert (parsed["node_groups"][0]["min"], parsed["node_groups"][0]["max"], parsed["node_groups"][0]["target"]) == (1, 4, 1)


def test_parse_text_status():
    parsed = ca.parse_status(TEXT_STATUS)
    assert parsed["format"] == "text"
    assert parsed["node_groups"] == [{"name": "gpu-pool", "target": 1, "min": 0, "max": 2}]


def test_nodepool_accelerators():
    assert ca.nodepool_accelerators({"spec": {"limits": {"nvidia.com/gpu": "8"}}}, ("nvidia.com/gpu",))
    assert ca.nodepool_accelerators({"spec": {"template": {"spec": {"requirements": [
        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]}]}}}}, ("nvidia.com/gpu",))
    assert not ca.nodepool_accelerators({"spec": {"limits": {"cpu": "100"}}}, ("nvidia.com/gpu",))


def test_no_autoscaler_is_na_with_justification():
    result = validate_result(ca.judge(facts()))
    assert result["status"] == NOT_APPLICABLE and "fixed size" in result["notes"]


def test_autoscaler_with_gpu_group_but_no_scale_test_is_partial():
    result = ca.judge(facts(YAML_STATUS))
    assert result["status"] == PARTIAL and "scale_test=true" in result["notes"]


def test_autoscaler_without_gpu_group_is_not_implemented():
    result = ca.judge(facts(YAML_STATUS, gpu_group="other"))
    assert result["status"] == NOT_IMPLEMENTED


def test_karpenter_gpu_pool_counts():
    karp = {"nodepools": [{"name": "gpu", "limits": {"nvidia.com/gpu": "16"}, "accelerators": True}], "nodeclaims": []}
    result = ca.judge(facts(karpenter=karp, gpu_group=None))
    assert result["status"] == PARTIAL and result["summary"].startswith("Karpenter")


def test_scale_test_verdicts():
    assert ca.judge(facts(YAML_STATUS), probe_out())["status"] == IMPLEMENTED
    partial = ca.judge(facts(YAML_STATUS), probe_out(down=False))
    assert partial["status"] == PARTIAL and "scale_down_timeout" in partial["summary"]
    assert ca.judge(facts(YAML_STATUS), probe_out(up=False, on_new=False, down=False))["status"] == NOT_IMPLEMENTED
    # nothing seen, nothing scaled: still honest N/A, never Implemented
    assert ca.judge(facts(), probe_out(up=False, on_new=False, down=False))["status"] == NOT_APPLICABLE
    # an invisible autoscaler that does scale (a provider-run one) is proven by the test
    assert ca.judge(facts(), probe_out())["status"] == IMPLEMENTED
    done = ca.judge(facts(YAML_STATUS), probe_out())
    assert "Verified with a scale test" in done["notes"] and "gpu-b" in done["notes"]
    assert "billed" in [e for e in done["evidence"] if e["title"] == "scale test"][0]["content"]["cost"]
