#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: dra_support
short_description: Verify the dra_support requirement (Dynamic Resource Allocation)
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(dra_support) on the cluster and returns a verdict with
    findings and evidence in the collection's result model.
  - Reads which C(resource.k8s.io) versions are served, whether C(deviceclasses), C(resourceclaims),
    C(resourceclaimtemplates) and C(resourceslices) are listable in the best one, the DeviceClasses and the
    ResourceSlices DRA drivers publish.
  - In V(active) mode it also creates, in a fresh namespace it deletes afterwards, a ResourceClaimTemplate
    shaped for the served API version and a Job that runs the vendor's listing command with the claim, then
    reads the claim's allocation. Two more claims select devices by CEL on a device attribute; one matching
    a product seen in the slices must allocate, one naming a product that does not exist must leave its pod
    Pending for O(unschedulable_window) seconds.
  - Verdicts follow the checklist per Kubernetes minor (1.33 beta API, 1.34+ C(resource.k8s.io/v1)); see
    docs/checks/dra_support.md. The module never fails because the requirement is unmet; it fails for
    connection, permission and API errors, with a message that names the fix.
options:
  unschedulable_window:
    description:
      - Seconds the pod whose claim selects a non-existent device must stay unscheduled (the upstream test
        plan uses 60).
    type: int
    default: 60
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
- name: Verify DRA support on the cluster of the current kubeconfig context
  k8s_ai.conformance.dra_support:
  register: dra

- name: Read-only verification with an explicit kubeconfig
  k8s_ai.conformance.dra_support:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Keep probes on one GPU pool, with a mirrored image
  k8s_ai.conformance.dra_support:
    node_selector:
      cloud.google.com/gke-nodepool: gpu-pool
    probe_image: registry.example.com/mirror/ubuntu:22.04
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
      sample: dra_support
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: resource.k8s.io/v1 is served and its four resources are listable
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "resourceslices listable", "passed": true, "detail": "listable cluster-wide"}]
    evidence:
      description: What was seen (served versions, DeviceClasses, slice excerpt, claim allocation, job log).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "DeviceClasses", "kind": "yaml", "content": [{"name": "gpu.nvidia.com"}]}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: On Kubernetes 1.33 resource.k8s.io/v1 does not exist yet.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils import dra_support
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(dra_support.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("dra_support", dra_support.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
