#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: virtualized_accelerator
short_description: Verify the virtualized_accelerator requirement (vGPUs are exposed and managed like physical GPUs)
version_added: 0.2.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(virtualized_accelerator) (SHOULD in the 1.35 and 1.36
    checklists) on the cluster and returns a verdict with findings and evidence in the collection's result model.
  - Reads the accelerator nodes' labels (C(nvidia.com/vgpu.present), C(nvidia.com/vgpu.host-driver-version) and
    C(-branch), C(nvidia.com/gpu.product) naming a vGPU profile such as C(GRID-A100-40C), KubeVirt's
    C(nvidia.com/gpu.workload.config)), the NVIDIA DRA driver's ResourceSlices (C(productName) of a vGPU profile),
    the DeviceClass C(vfio.gpu.nvidia.com), the hypervisor hints (node feature discovery's
    C(feature.node.kubernetes.io/cpu-cpuid.HYPERVISOR), GPU feature discovery's C(nvidia.com/gpu.machine)) and,
    on a bounded sample of vGPU nodes, the DCGM exporter's C(DCGM_FI_DEV_VGPU_LICENSE_STATUS) (1 licensed).
  - In V(active) mode it also runs, in a fresh namespace it deletes afterwards, one pod per sampled vGPU node
    requesting one GPU exactly as for a physical GPU (device plugin resource, else a DRA claim) and checks that
    C(nvidia-smi -L) lists the vGPU profile.
  - Implemented needs vGPU nodes whose vGPU a pod gets through the same API as a physical GPU (licence not
    reported unlicensed). N/A only on bare metal, without a hypervisor, shown by node feature discovery's CPU
    labels or declared with O(bare_metal_justification); see docs/checks/virtualized_accelerator.md. The module
    never fails because the requirement is unmet; it fails for connection, permission and API errors, with a
    message that names the fix.
options:
  max_nodes:
    description: How many vGPU nodes to scrape for the licence metric and to probe (bounded cost on large clusters).
    type: int
    default: 3
  bare_metal_justification:
    description:
      - The platform's statement that its accelerator nodes are bare metal without a hypervisor, so no vGPU can be
        offered (for example C(GPU nodes are bare-metal servers; no hypervisor, so vGPU does not apply)). When no
        vGPU is found it becomes the N/A justification in the notes, unless a sampled node shows a hypervisor
        (then the verdict is Not Implemented and the notes say which node contradicts it).
    type: str
  exporter_selector:
    description: Label selector of the DCGM exporter pods (default the GPU operator's and the chart's labels).
    type: str
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
- name: Verify that vGPUs are requested and seen like physical GPUs
  k8s_ai.conformance.virtualized_accelerator:
  register: vgpu

- name: Bare-metal platform without a hypervisor
  k8s_ai.conformance.virtualized_accelerator:
    bare_metal_justification: >-
      GPU worker nodes are bare-metal servers without a hypervisor; vGPU does not apply.

- name: Read-only look at vGPU labels and licences
  k8s_ai.conformance.virtualized_accelerator:
    mode: passive
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
      sample: virtualized_accelerator
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: "a pod requesting one GPU got the vGPU GRID A100-40C on every probed vGPU node"
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "vgpu-0: pod requesting one GPU (device plugin) sees the vGPU", "passed": true,
                "detail": "GRID A100-40C (GPU-4372c763-...)"}]
    evidence:
      description: What was seen (vGPU nodes and their labels, licence samples, nvidia-smi -L output).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "vGPU nodes", "kind": "table", "content": "NODE  PRODUCT  HOST DRIVER  LICENSED"}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: "vGPU not licensed on vgpu-0 (DCGM_FI_DEV_VGPU_LICENSE_STATUS 0): the guest driver restricts unlicensed vGPUs."
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import virtualized_accelerator
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(virtualized_accelerator.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("virtualized_accelerator", virtualized_accelerator.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
