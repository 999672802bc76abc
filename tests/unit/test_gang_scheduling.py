"""gang_scheduling: the Kueue configuration parser, the probe objects' shapes, and the verdict rules."""
from __future__ import annotations

import copy

from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import gang_scheduling as gang
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, validate_result)

# The kueue role's rendered manager configuration (chart default for 0.19.2: no waitForPodsReady).
ROLE_CONFIG = """apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
integrations:
  frameworks:
  - batch/job
  - ray.io/rayjob
"""


def kueue(ready=1, served=("v1beta2", "v1beta1"), config=None, queues=()):
    return {"name": "kueue", "title": "Kueue", "kind": "quota", "served": list(served),
            "version": served[0] if served else None,
            "resources": {r: True for r in ("clusterqueues", "localqueues", "resourceflavors", "workloads")} if served else {},
            "controller": {"name": "kueue-controller-manager", "namespace": "kueue-system", "replicas": 1, "ready": ready,
                           "images": ["registry.k8s.io/kueue/kueue:v0.19.2"]},
            "controller_note": "", "config": config if config is not None else gang.manager_config(ROLE_CONFIG),
            "clusterqueues": list(queues)}


def absent(name):
    row = gang.solution(name)
    return {"name": name, "title": row["title"], "kind": row["kind"], "served": [], "version": None, "resources": {},
            "controller": None, "controller_note": ""}


def facts(*present):
    names = {s["name"]: s for s in present}
    return {"git_version": "v1.33.5", "vendor": "nvidia", "accelerator_nodes": [],
            "solutions": [names.get(row["name"]) or absent(row["name"]) for row in gang.SOLUTIONS]}


def outcome(solution="kueue", positive=True, negative=True):
    return {"solution": solution, "resource": "nvidia.com/gpu", "per_pod": "1", "quota": 2, "namespace": "aic-x",
            "positive": {"passed": positive, "detail": "pos"}, "negative": {"passed": negative, "detail": "neg detail"},
            "cleanup": "", "objects": {}}


def test_manager_config_reads_wait_for_pods_ready_and_frameworks():
    off = gang.manager_config(ROLE_CONFIG)
    assert off["wait_for_pods_ready"] is False and off["frameworks"] == ["batch/job", "ray.io/rayjob"]
    # v1beta2 configuration: the section's presence turns it on; v1beta1 had an explicit `enable`
    on = gang.manager_config(ROLE_CONFIG + "waitForPodsReady:\n  timeout: 5m\n  blockAdmission: true\n")
    assert on["wait_for_pods_ready"] is True and on["block_admission"] is True
    assert gang.manager_config("waitForPodsReady:\n  enable: false\n")["wait_for_pods_ready"] is False
    assert gang.manager_config("{not yaml")["wait_for_pods_ready"] is None


def test_config_map_follows_the_release_name():
    assert gang.config_map_name("kueue-controller-manager") == "kueue-manager-config"
    assert gang.config_map_name("batch-kueue-controller-manager") == "batch-kueue-manager-config"
    assert gang.config_map_name("something-else") == "kueue-manager-config"


def test_milli():
    assert (gang.milli("100m"), gang.milli("2"), gang.milli("1.5"), gang.milli("junk")) == (100, 2000, 1500, None)


def test_kueue_probe_objects_cover_the_resource_and_only_the_probe_namespace():
    flavor, cq, lq = gang.kueue_objects("v1beta2", "abcde", "aic-gang-scheduling-xyz", "nvidia.com/gpu", "2")
    assert flavor["metadata"]["name"] == "aic-flavor-abcde" and cq["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    group = cq["spec"]["resourceGroups"][0]
    assert group["coveredResources"] == ["nvidia.com/gpu"]
    assert group["flavors"][0] == {"name": "aic-flavor-abcde", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": "2"}]}
    assert cq["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "aic-gang-scheduling-xyz"}}
    assert lq["spec"]["clusterQueue"] == "aic-gang-abcde"


def test_gang_job_is_suspended_indexed_and_queued():
    class Opts(object):
        node_selector = {}
        probe_image = "busybox"

        def pod_tolerations(self, entry):
            return [{"key": entry["taint"] if isinstance(entry, dict) and "taint" in entry else "nvidia.com/gpu",
                     "operator": "Exists", "effect": "NoSchedule"}]
    job = gang.gang_job("aic-gang-fits", 3, {"name": "c"}, Opts(), None, "aic-queue")
    spec = job["spec"]
    assert (spec["suspend"], spec["parallelism"], spec["completions"], spec["completionMode"]) == (True, 3, 3, "Indexed")
    assert job["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "aic-queue"}


def test_nothing_installed_is_not_implemented():
    result = validate_result(gang.judge(facts(), []))
    assert result["status"] == NOT_IMPLEMENTED and "Install Kueue" in result["notes"]


def test_installed_but_controller_down_is_not_implemented():
    result = gang.judge(facts(kueue(ready=0)), [])
    assert result["status"] == NOT_IMPLEMENTED and "not working" in result["notes"]


def test_passive_never_implemented():
    result = gang.judge(facts(kueue()), passive_reason="mode=passive: ...")
    assert result["status"] == PARTIAL and result["mode"] == "passive"


def test_positive_and_negative_is_implemented_with_wait_for_pods_ready_note():
    result = gang.judge(facts(kueue()), [outcome()])
    assert result["status"] == IMPLEMENTED
    assert "waitForPodsReady is off" in result["notes"] and "quota atomicity" in result["notes"]
    on = kueue(config=gang.manager_config("waitForPodsReady:\n  timeout: 5m\n"))
    assert "waitForPodsReady is enabled" in gang.judge(facts(on), [outcome()])["notes"]
    unknown = kueue(config={"wait_for_pods_ready": None, "frameworks": []})
    assert "could not be read" in gang.judge(facts(unknown), [outcome()])["notes"]


def test_positive_only_is_partial_and_says_why():
    result = gang.judge(facts(kueue()), [outcome(negative=False)])
    assert result["status"] == PARTIAL and "neg detail" in result["notes"]


def test_positive_failing_is_not_implemented():
    assert gang.judge(facts(kueue()), [outcome(positive=False, negative=True)])["status"] == NOT_IMPLEMENTED


def test_best_solution_wins():
    volcano = copy.deepcopy(absent("volcano"))
    volcano.update({"served": ["v1beta1"], "version": "v1beta1", "resources": {"podgroups": True, "queues": True},
                    "controller": {"name": "volcano-scheduler", "namespace": "volcano-system", "replicas": 1, "ready": 1,
                                   "images": ["volcanosh/vc-scheduler:v1.12.2"]}})
    result = gang.judge(facts(kueue(), volcano), [outcome(negative=False), outcome("volcano")])
    assert result["status"] == IMPLEMENTED and result["summary"].startswith("Volcano")
