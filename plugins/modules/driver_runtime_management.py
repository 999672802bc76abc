#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: driver_runtime_management
short_description: Verify the driver_runtime_management requirement (GPU drivers and runtime managed, versions verifiable)
version_added: 0.2.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(driver_runtime_management) (SHOULD in the 1.35 and 1.36
    checklists) on the cluster and returns a verdict with findings and evidence in the collection's result model.
  - Reads the NVIDIA GPU operator's ClusterPolicy (C(nvidia.com/v1) C(clusterpolicies), C(status.state)), its
    C(NVIDIADriver) objects, its operand DaemonSets (driver, container toolkit, device plugin, validator, GPU
    feature discovery, DCGM exporter) and their readiness, the RuntimeClass C(nvidia), GPU feature discovery's
    labels C(nvidia.com/cuda.driver-version.*), C(nvidia.com/cuda.runtime-version.*) and
    C(nvidia.com/gpu-driver-upgrade-state) on a bounded sample of accelerator nodes, and the NVIDIA DRA driver's
    ResourceSlice attributes C(driverVersion) and C(cudaDriverVersion).
  - In V(active) mode it also runs, in a fresh namespace it deletes afterwards, one pod per sampled node that
    requests one GPU (device plugin resource, else a DRA claim) and runs C(nvidia-smi); the driver and CUDA
    versions it prints are compared numerically with the label and the DRA attribute (DRA publishes semantic
    versions without leading zeros, so 580.126.09 equals 580.126.9).
  - Implemented needs a mechanism (GPU operator ready, version labels or DRA attributes) whose versions match
    nvidia-smi on every sampled node; a mismatch, an operator that is not ready or a passive run is Partially
    Implemented; see docs/checks/driver_runtime_management.md. The module never fails because the requirement is
    unmet; it fails for connection, permission and API errors, with a message that names the fix.
options:
  max_nodes:
    description:
      - How many accelerator nodes to sample (one per distinct driver label and product first, then by name). Only
        these nodes' labels are compared and probed, which keeps the cost bounded on large clusters.
    type: int
    default: 3
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
- name: Verify that GPU drivers are managed and report their versions correctly
  k8s_ai.conformance.driver_runtime_management:
  register: drivers

- name: Read-only look at the GPU operator and the version labels
  k8s_ai.conformance.driver_runtime_management:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Probe more nodes
  k8s_ai.conformance.driver_runtime_management:
    max_nodes: 10
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
      sample: driver_runtime_management
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: "reported driver/CUDA versions match nvidia-smi on every sampled node (580.126.09)"
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "gpu-0: driver label = nvidia-smi", "passed": true,
                "detail": "label 580.126.09 vs nvidia-smi 580.126.09"}]
    evidence:
      description: What was seen (per-node version table, operand DaemonSets, nvidia-smi output).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "gpu-0 nvidia-smi output (pod aic-driver-runtime-management-x1y2z/aic-driver-0)", "kind": "text",
                "content": "580.126.09, NVIDIA H100 80GB HBM3, GPU-..."}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: "Mismatches: gpu-0: driver label = nvidia-smi (label 570.133.20 vs nvidia-smi 580.126.09)."
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import driver_runtime_management
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(driver_runtime_management.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("driver_runtime_management", driver_runtime_management.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
