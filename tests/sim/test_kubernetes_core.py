"""kubernetes.core modules (k8s, k8s_info) run by the real ansible-playbook against the simulated cluster.

kubernetes.core.helm is not exercised: kubernetes.core 6.2.0 runs `helm list --all`, a flag helm 4 removed,
so it fails against the helm 4.1.4 binary before it reaches any cluster (see docs/simulator.md).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/kubernetes.core.k8s:
      kubeconfig: "{{ kubeconfig }}"
  tasks:
    - name: Create a namespace and a deployment (apply)
      kubernetes.core.k8s:
        apply: true
        definition:
          - {apiVersion: v1, kind: Namespace, metadata: {name: core-test}}
          - apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: core-test}
            spec:
              replicas: 1
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: web, image: "nginx:1.27"}]}
      register: created

    - name: Apply the same again (idempotent)
      kubernetes.core.k8s:
        apply: true
        definition:
          apiVersion: apps/v1
          kind: Deployment
          metadata: {name: web, namespace: core-test}
          spec:
            replicas: 1
            selector: {matchLabels: {app: web}}
            template:
              metadata: {labels: {app: web}}
              spec: {containers: [{name: web, image: "nginx:1.27"}]}
      register: again

    - name: Change it without apply (a merge)
      kubernetes.core.k8s:
        definition:
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: settings, namespace: core-test}
          data: {mode: fast}
      register: configmap

    - name: Wait for a condition
      kubernetes.core.k8s:
        definition:
          apiVersion: v1
          kind: Namespace
          metadata: {name: core-test}
        wait: true
        wait_condition: {type: NamespaceDeletionContentFailure, status: "False"}
        wait_timeout: 1
      register: waited
      ignore_errors: true

    - name: Read it back
      kubernetes.core.k8s_info:
        kind: Deployment
        namespace: core-test
        label_selectors: []
      register: info

    - name: Remove the configmap
      kubernetes.core.k8s:
        state: absent
        kind: ConfigMap
        name: settings
        namespace: core-test
      register: removed

    - name: Check what happened
      ansible.builtin.assert:
        that:
          - created is changed
          - again is not changed
          - configmap is changed and configmap.result.data.mode == 'fast'
          - info.resources | length == 1
          - info.resources[0].spec.template.spec.containers[0].image == 'nginx:1.27'
          - info.resources[0].metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] is defined
          - removed is changed
          - waited is failed
"""


@pytest.mark.slow
def test_kubernetes_core_modules_through_ansible_playbook(sim_cluster, tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook),
                           "-e", "kubeconfig=%s" % sim_cluster.kubeconfig],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "failed=0" in proc.stdout
    assert sim_cluster.store.try_get(("", "configmaps"), "core-test", "settings") is None
    assert sim_cluster.store.try_get(("apps", "deployments"), "core-test", "web") is not None
