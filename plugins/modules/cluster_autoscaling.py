#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_autoscaling
short_description: Verify the cluster_autoscaling requirement (node autoscaling for accelerator pods)
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(cluster_autoscaling) on the cluster and returns a verdict with
    findings and evidence in the collection's result model.
  - Detects cluster-autoscaler (its pods, the C(cluster-autoscaler-status) ConfigMap and its
    C(TriggeredScaleUp), C(NotTriggerScaleUp) and C(ScaleDown) events), Karpenter (C(karpenter.sh/v1) NodePools
    and NodeClaims), Cluster API autoscaler annotations on MachineDeployments and the OpenShift ClusterAutoscaler,
    and lists the accelerator node groups with their min and max where readable.
  - With O(scale_test=true) (and V(active) mode) it creates F+1 pause pods of one accelerator each, without
    nodeSelector or affinity, where F is the number of free accelerators. A pod must become unschedulable, a new
    accelerator node must appear and the pod run on it; after the pods are deleted the node must go away. This
    adds a node to the cluster, which costs money on a cloud, hence opt-in; the module warns when it runs.
  - Scale-up and scale-down observed give C(Implemented), scale-up only C(Partially Implemented), an autoscaler
    that ignores accelerator pods C(Not Implemented). Without O(scale_test) an autoscaler with accelerator groups
    gives C(Partially Implemented). No autoscaler at all gives C(N/A) with the justification; the report's
    C(conditional_must_not_applicable) policy decides what PRODUCT.yaml says. See docs/checks/cluster_autoscaling.md.
options:
  scale_test:
    description:
      - Run the scale-up/scale-down test (adds at least one accelerator node for its duration).
    type: bool
    default: false
  scale_up_timeout:
    description:
      - Seconds to wait for a new accelerator node, and again for the pending pod to run on it (cloud GPU nodes
        take minutes to join and get their driver).
    type: int
    default: 1200
  scale_down_timeout:
    description:
      - Seconds to wait, after the probe pods are deleted, for the new node to be removed (cluster-autoscaler's
        scale-down-unneeded-time is 10 minutes by default).
    type: int
    default: 1800
  pending_timeout:
    description:
      - Seconds to wait for a probe pod to be reported unschedulable.
    type: int
    default: 120
  autoscaler_namespace:
    description:
      - Namespace of the C(cluster-autoscaler-status) ConfigMap when no cluster-autoscaler pod is visible.
    type: str
    default: kube-system
  node_group_labels:
    description:
      - Node labels that name a node's group or pool, tried in order.
    type: list
    elements: str
    default: [eks.amazonaws.com/nodegroup, cloud.google.com/gke-nodepool, kubernetes.azure.com/agentpool,
              karpenter.sh/nodepool, worker.gardener.cloud/pool]
  pause_image:
    description:
      - Image of the scale test's pods (they only hold an accelerator).
    type: str
    default: registry.k8s.io/pause:3.10
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - k8s_ai.conformance.checks
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Runs the read-only part only and creates nothing.
  diff_mode:
    support: none
  platform:
    platforms: kubernetes
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Detect the node autoscaler and its accelerator groups (read-only)
  k8s_ai.conformance.cluster_autoscaling:
  register: autoscaling

- name: Scale an accelerator group up and down (adds a node; costs money)
  k8s_ai.conformance.cluster_autoscaling:
    scale_test: true
    scale_up_timeout: 1800
"""

RETURN = r"""
changed:
  description: Always false; probes are created and deleted within the run.
  returned: always
  type: bool
  sample: false
result:
  description: The verdict in the collection's result model.
  returned: success
  type: dict
  contains:
    id:
      description: The checklist requirement id.
      returned: always
      type: str
      sample: cluster_autoscaling
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: an accelerator node was added for a pending accelerator pod and removed afterwards
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "cluster-autoscaler", "passed": true, "detail": "pods: kube-system/cluster-autoscaler-x (Running)"}]
    evidence:
      description: Node groups, the status ConfigMap, autoscaler events, the scale test's timeline and pods.
      returned: always
      type: list
      elements: dict
      sample: [{"title": "node groups", "kind": "table", "content": "SOURCE GROUP MIN MAX ACCELERATORS"}]
    notes:
      description: What is missing and how to fix it; for N/A the justification; the scale test's cost warning.
      returned: always
      type: str
      sample: No cluster autoscaler was found.
    mode:
      description: C(active) when the scale test ran, C(passive) otherwise.
      returned: always
      type: str
      sample: passive
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import cluster_autoscaling


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(cluster_autoscaling.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    if module.params["scale_test"] and module.params["mode"] == "active" and not module.check_mode:
        module.warn(cluster_autoscaling.COST_WARNING)
    result, error = probe.run_check("cluster_autoscaling", cluster_autoscaling.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
