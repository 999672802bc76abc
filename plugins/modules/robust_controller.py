#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: robust_controller
short_description: Verify the robust_controller requirement (a complex AI operator with a CRD works reliably)
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(robust_controller) on the cluster and returns a verdict with
    findings and evidence in the collection's result model.
  - Recognises AI operators through one table (KubeRay, Kubeflow Trainer, Kubeflow training-operator, KServe,
    LeaderWorkerSet, NVIDIA NIM Operator) by their CRDs, and reads for each its CRDs' Established and
    NamesAccepted conditions, its controller Deployment (ready, pods not restarting) and every validating or
    mutating webhook covering its API groups (backing Service with ready endpoints, caBundle set).
  - In V(active) mode, for KubeRay, it also runs, in a fresh namespace it deletes afterwards, a server-side
    dry run (C(dryRun=All)) of a RayCluster the CRD schema accepts but KubeRay's validation refuses (two worker
    groups share a name), which counts only when the operator's own webhook denies it (a CRD schema error or
    another policy webhook never counts); a small CPU RayCluster that must reach state ready with its head
    pod, worker pod and head Service; and its deletion, which must remove its pods.
  - Schema-only validation or reconcile-only gives C(Partially Implemented) with the fix. Other operators are
    judged passively and capped at C(Partially Implemented). See docs/checks/robust_controller.md. The module
    never fails because the requirement is unmet; it fails for connection, permission and API errors, with a
    message that names the fix.
options:
  ray_image:
    description:
      - Image of the probe RayCluster's head and worker containers (and of the invalid one, never created).
    type: str
    default: rayproject/ray:2.46.0
  cascade_timeout:
    description:
      - Seconds to wait for the pods of the deleted probe RayCluster to be gone.
    type: int
    default: 120
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
- name: Verify the AI operator on the cluster of the current kubeconfig context
  k8s_ai.conformance.robust_controller:
  register: operator

- name: Read-only verification with an explicit kubeconfig
  k8s_ai.conformance.robust_controller:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Use a mirrored Ray image and allow a slow image pull
  k8s_ai.conformance.robust_controller:
    ray_image: registry.example.com/mirror/rayproject/ray:2.46.0
    wait_timeout: 600
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
      sample: robust_controller
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: KubeRay is healthy, its own webhook refuses invalid objects and it reconciles and cleans up
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "small CPU RayCluster reconciled to ready (head, worker, head Service)", "passed": true, "detail": "state=ready"}]
    evidence:
      description: What was seen (operator table, CRDs, webhook configurations, the dry-run denial, the probe RayCluster).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "KubeRay CRDs", "kind": "yaml", "content": [{"name": "rayclusters.ray.io", "established": true}]}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: KubeRay did not refuse a schema-valid invalid RayCluster; install KubeRay with its validating webhook enabled.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import robust_controller


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(robust_controller.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("robust_controller", robust_controller.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
