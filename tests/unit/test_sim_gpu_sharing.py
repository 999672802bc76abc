"""The simulated device plugin's sharing and MIG model (simcluster/accelerators/sharing.py): config-manager's choice
of config, the config rules of k8s-device-plugin, the distributed replica policy, GFD's labels, mig-parted's
layouts and the MIG devices a container sees."""
from __future__ import annotations

import pytest

from simcluster.accelerators import sharing
from simcluster.accelerators.inventory import Gpu

FILES = {"any": "version: v1", "tesla-t4": "version: v1", "default": "version: v1"}


def test_config_manager_choice_label_default_then_fallbacks():
    assert sharing.choose(FILES, "tesla-t4", "any", ("named",)) == "tesla-t4"
    assert sharing.choose(FILES, None, "any", ("named",)) == "any"
    assert sharing.choose(FILES, None, "", ("named", "single")) == "default"
    assert sharing.choose({"only": "x"}, None, "", ("named", "single")) == "only"
    assert sharing.choose({"a": "x", "b": "y"}, None, "", ("named", "single", "empty")) == ""
    with pytest.raises(sharing.ConfigError, match="specified config missing does not exist"):
        sharing.choose(FILES, "missing", "any", ())
    with pytest.raises(sharing.ConfigError, match="no configuration files available"):
        sharing.choose({}, None, "any", ())
    with pytest.raises(sharing.ConfigError, match="all fallbacks failed"):
        sharing.choose({"a": "x", "b": "y"}, None, "", ("named", "single"))


def test_plugin_config_rules():
    ts = sharing.parse("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n")
    assert (ts["strategy"], ts["replicas"], ts["resource"], ts["fail_gt_one"]) == ("time-slicing", 4, "nvidia.com/gpu", False)
    mps = sharing.parse("version: v1\nsharing:\n  mps:\n    renameByDefault: true\n    resources:\n"
                        "    - name: nvidia.com/gpu\n      replicas: 2\n")
    assert (mps["strategy"], mps["resource"], mps["fail_gt_one"]) == ("mps", "nvidia.com/gpu.shared", True)
    with pytest.raises(sharing.ConfigError, match="replicas must be >= 2"):
        sharing.parse("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 1\n")
    with pytest.raises(sharing.ConfigError, match="no resources specified"):
        sharing.parse("version: v1\nsharing:\n  timeSlicing: {}\n")
    assert sharing.parse("")["strategy"] == "none"


def test_distributed_policy_spreads_before_sharing():
    slots = [0] * 4 + [1] * 4
    assert sharing.distributed(slots, {}, 3) == [0, 1, 0]
    assert sharing.distributed([0] * 3 + [1] * 4, {0: 1}, 2) == [1, 0]
    assert sharing.distributed([0], {}, 2) == [0]


def test_gfd_labels():
    settings = {"strategy": "time-slicing", "replicas": 4, "resource": "nvidia.com/gpu"}
    assert sharing.labels("Tesla-T4", 2, settings) == {
        "nvidia.com/gpu.product": "Tesla-T4-SHARED", "nvidia.com/gpu.count": "2", "nvidia.com/gpu.replicas": "4",
        "nvidia.com/gpu.sharing-strategy": "time-slicing"}
    renamed = dict(settings, resource="nvidia.com/gpu.shared")
    assert sharing.labels("Tesla-T4-SHARED", 2, renamed)["nvidia.com/gpu.product"] == "Tesla-T4"
    none = {"strategy": "none", "replicas": 1, "resource": "nvidia.com/gpu"}
    assert sharing.labels("Tesla-T4", 2, none)["nvidia.com/gpu.sharing-strategy"] == "none"


def test_mig_parted_layouts_by_gpu_model():
    assert sharing.mig_layout("all-1g.5gb", "NVIDIA-A100-SXM4-40GB") == {"1g.5gb": 7}
    assert sharing.mig_layout("all-1g.10gb", "NVIDIA-H100-80GB-HBM3") == {"1g.10gb": 7}
    assert sharing.mig_layout("all-1g.10gb", "NVIDIA-A100-SXM4-40GB") == {"1g.10gb": 4}
    assert sharing.mig_layout("all-disabled", "NVIDIA-A100-SXM4-40GB") is None
    assert sharing.mig_layout("all-1g.5gb", "Tesla-T4") is None           # not MIG-capable


def test_mig_devices_and_labels():
    gpus = [Gpu("n", i, "NVIDIA-A100-SXM4-40GB", "unit") for i in range(2)]
    devices = sharing.mig_devices(gpus, {"1g.5gb": 7})
    assert len(devices) == 14 and len(set(d.uuid for d in devices)) == 14
    dev = devices[8].device("n")
    assert dev["uuid"].startswith("MIG-") and dev["parent_uuid"] == gpus[1].uuid and dev["path"] == "/dev/nvidia1"
    labels = sharing.mig_labels("NVIDIA-A100-SXM4-40GB", devices, "mixed")
    assert labels["nvidia.com/mig-1g.5gb.count"] == "14" and labels["nvidia.com/mig.strategy"] == "mixed"
    single = sharing.mig_labels("NVIDIA-A100-SXM4-40GB", devices, "single")
    assert single["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"


def test_config_source_from_a_plugin_pod():
    pod = {"metadata": {"namespace": "gpu-operator"}, "spec": {
        "initContainers": [{"name": "init", "command": ["config-manager"], "env": [{"name": "DEFAULT_CONFIG", "value": "any"}],
                            "volumeMounts": [{"name": "cfg", "mountPath": "/available-configs"}]}],
        "containers": [{"name": "ctr", "env": [{"name": "MIG_STRATEGY", "value": "single"}]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "time-slicing-config"}}]}}
    src = sharing.source(pod)
    assert (src["mode"], src["configmap"], src["default"], src["fallbacks"]) == (
        "config-manager", "time-slicing-config", "any", ("named", "single"))
    assert sharing.mig_strategy(pod, None) == "single"
    assert sharing.source({"metadata": {}, "spec": {"containers": [{"name": "ctr"}]}}) is None
