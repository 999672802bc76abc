"""Single stack roles on the simulated GPU cluster: what they refuse, what their failures say, and what they
decide from the cluster (the DCGM exporter's ServiceMonitor). Each test uses its own namespace and release."""
from __future__ import annotations

import os
import subprocess

import pytest
from kubernetes import config, dynamic
from kubernetes.dynamic.exceptions import NotFoundError

from roles.harness import CHARTS, ROOT, playbook, start_stack_sim, write_role_playbook

KUBECTL = os.path.join(ROOT, ".tools", "bin", "kubectl")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_stack_sim(tmp_path_factory.mktemp("behaviour"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def client(sim):
    return dynamic.DynamicClient(config.new_client_from_config(sim.kubeconfig))


@pytest.mark.slow
def test_kueue_will_not_delete_queues_unless_asked(sim, client, tmp_path):
    """The chart ships Kueue's CRDs as templates: uninstalling deletes every queue with them."""
    role = write_role_playbook(tmp_path, "kueue")
    assert playbook(sim, role).rc == 0
    queues = client.resources.get(api_version="kueue.x-k8s.io/v1beta2", kind="ClusterQueue")
    queues.create(body={"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "team-a"},
                        "spec": {"namespaceSelector": {}, "resourceGroups": []}})

    refused = playbook(sim, role, "kueue_state=absent")
    assert refused.rc != 0
    assert "deletes its CRDs (the chart ships them as templates) and with them the ClusterQueue objects" in refused.out
    assert "set kueue_remove_crds=true to confirm" in refused.out
    assert queues.get(name="team-a").metadata.name == "team-a"

    removed = playbook(sim, role, "kueue_state=absent", "kueue_remove_crds=true")
    assert removed.rc == 0, removed.tail()
    with pytest.raises(NotFoundError):
        client.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition").get(
            name="clusterqueues.kueue.x-k8s.io")
    with pytest.raises(NotFoundError):
        client.resources.get(api_version="v1", kind="Namespace").get(name="kueue-system")


@pytest.mark.slow
def test_a_component_that_cannot_become_ready_is_named_with_its_counts(sim, tmp_path):
    """96-CPU GPU nodes cannot fit a 500-CPU exporter pod: the role says which DaemonSet and how many are ready."""
    role = write_role_playbook(tmp_path, "dcgm_exporter")
    stuck = playbook(sim, role, {"dcgm_exporter_namespace": "exporter-stuck", "dcgm_exporter_release_name": "stuck-dcgm-exporter",
                                 "dcgm_exporter_wait_timeout": 10, "dcgm_exporter_wait_delay": 2,
                                 "dcgm_exporter_values": {"resources": {"requests": {"cpu": "500"}, "limits": {"cpu": "500"}}}})
    assert stuck.rc != 0
    assert ("DCGM exporter is not ready after 10s: DaemonSet exporter-stuck/stuck-dcgm-exporter: 0/2 ready "
            "(2 updated, 0 available)") in stuck.out
    assert "Traceback" not in stuck.out
    assert playbook(sim, role, {"dcgm_exporter_namespace": "exporter-stuck", "dcgm_exporter_release_name": "stuck-dcgm-exporter",
                                "dcgm_exporter_state": "absent"}).rc == 0


@pytest.mark.slow
def test_dcgm_exporter_creates_its_service_monitor_once_the_crd_exists(sim, client, tmp_path):
    role = write_role_playbook(tmp_path, "dcgm_exporter")
    settings = {"dcgm_exporter_namespace": "exporter-auto", "dcgm_exporter_release_name": "auto-dcgm-exporter"}
    first = playbook(sim, role, settings)
    assert first.rc == 0, first.tail()
    values = subprocess.run([os.path.join(ROOT, ".tools", "bin", "helm"), "get", "values", "auto-dcgm-exporter", "-n",
                             "exporter-auto", "-o", "json", "--kubeconfig", sim.kubeconfig], capture_output=True, text=True, check=True)
    assert '"serviceMonitor":{"additionalLabels":{},"enabled":false}' in values.stdout.replace(" ", "")

    # The Prometheus operator's CRD arrives (as the prometheus role's chart would bring it) ...
    crd = os.path.join(CHARTS, "kube-prometheus-stack", "charts", "crds", "crds", "crd-servicemonitors.yaml")
    subprocess.run([KUBECTL, "--kubeconfig", sim.kubeconfig, "apply", "--server-side", "-f", crd], check=True, capture_output=True)
    # ... and the next run adds the monitor, and only that.
    second = playbook(sim, role, settings)
    assert second.rc == 0, second.tail()
    assert second.changed_tasks() == ["k8s_ai.conformance.dcgm_exporter : DCGM exporter | Install the chart"]
    monitor = client.resources.get(api_version="monitoring.coreos.com/v1", kind="ServiceMonitor").get(
        name="auto-dcgm-exporter", namespace="exporter-auto")
    assert monitor.spec.endpoints[0].port == "metrics"
    assert playbook(sim, role, dict(settings, dcgm_exporter_state="absent")).rc == 0
