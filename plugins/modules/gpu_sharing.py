#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_sharing
short_description: Verify the gpu_sharing requirement (a GPU sharing strategy is exposed and works)
version_added: 0.2.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(gpu_sharing) (SHOULD in the v1.35 and v1.36 checklists) and
    returns a verdict with findings and evidence in the collection's result model.
  - Reads the GPU nodes' labels and capacity (C(nvidia.com/gpu.sharing-strategy), C(nvidia.com/gpu.replicas), the
    C(-SHARED) product suffix, C(nvidia.com/gpu.count) against the advertised C(nvidia.com/gpu) capacity, MIG
    labels and C(nvidia.com/mig-<g>g.<mem>gb) resources), the GPU operator's ClusterPolicy
    C(spec.devicePlugin.config) when its CRD is served, the device-plugin DaemonSets' config-manager ConfigMap
    (C(sharing.timeSlicing) / C(sharing.mps)), the C(nvidia-mig-manager) DaemonSet, the C(mig.nvidia.com)
    DeviceClass and MIG devices in a bounded sample of ResourceSlices, and the stage of the
    C(DRAPartitionableDevices) feature gate for the cluster's minor.
  - In V(active) mode it shows one strategy with pods in a fresh namespace it deletes afterwards, never changing
    the cluster's configuration. Time-slicing or MPS (preferred) runs physical + 1 pods, each requesting one GPU,
    on one shared node; all must run and list one GPU each, with fewer distinct GPU UUIDs than pods. Else MIG runs
    two pods requesting a MIG resource, which must list MIG devices. Else, with the NVIDIA DRA driver, two pods
    reference one shared ResourceClaim and must see the same GPU; on its own that is Partially Implemented (see
    docs/checks/gpu_sharing.md).
  - Implemented needs a strategy shown with pods; advertised but not shown (passive mode) is Partially
    Implemented; no strategy is Not Implemented; a cluster without accelerators is N/A. The module never fails
    because the requirement is unmet; it fails for connection, permission and API errors, with a message that
    names the fix.
options:
  strategy:
    description:
      - Which strategy the active probe shows. V(auto) tries time-slicing/MPS, then MIG, then a shared DRA claim.
    type: str
    default: auto
    choices: [auto, time-slicing, mig, dra]
  max_pods:
    description:
      - Most probe pods the time-slicing probe may start (physical GPUs of the chosen node + 1); nodes with more
        GPUs are not used for the probe.
    type: int
    default: 9
  hold_seconds:
    description:
      - Seconds each probe pod keeps its GPU after listing it, so that all of them hold their share at once
        (the namespace is deleted as soon as the outcome is read).
    type: int
    default: 600
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
- name: Verify that GPUs can be shared (time-slicing, MPS or MIG)
  k8s_ai.conformance.gpu_sharing:
  register: sharing

- name: Read-only look at the sharing configuration, labels and capacity
  k8s_ai.conformance.gpu_sharing:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Show MIG rather than time-slicing
  k8s_ai.conformance.gpu_sharing:
    strategy: mig
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
      sample: gpu_sharing
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: time-slicing shown with pods on gpu-ts-0
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "time-slicing/MPS advertised (capacity = physical x replicas)", "passed": true, "detail": "gpu-ts-0"}]
    evidence:
      description: What was seen (GPU nodes and sharing, sharing configuration, DRA, probe pods and their GPUs).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "probe pods (time-slicing)", "kind": "table", "content": "pod  phase  node  GPU UUIDs"}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: A sharing config exists but no node advertises shared GPUs.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import gpu_sharing
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(gpu_sharing.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("gpu_sharing", gpu_sharing.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
