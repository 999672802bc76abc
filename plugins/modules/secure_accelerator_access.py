#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: secure_accelerator_access
short_description: Verify the secure_accelerator_access requirement (accelerator isolation)
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(secure_accelerator_access) and returns a verdict with
    findings and evidence in the collection's result model.
  - Reads the accelerator nodes, whether accelerators are requested through a device plugin resource or a
    DRA driver, the C(nvidia) RuntimeClass and the GPU operator's container toolkit settings.
  - In V(active) mode it runs unprivileged probe pods in a fresh namespace it deletes afterwards, by device
    plugin and by DRA where available; a pod without a request (also with C(NVIDIA_VISIBLE_DEVICES=all)) must
    see no accelerator, a pod requesting one must see exactly one, a second container without the request
    must see none, and two one-accelerator pods on the same node must get different accelerators (skipped
    with a note when no node has two free).
  - Each probe container prints the upstream test's RESULT line (C(ACCELERATOR_FOUND) or
    C(ACCELERATOR_MISSING)), the device nodes and the vendor listing command's output; any accelerator
    visible without a request makes the verdict C(Not Implemented). Passive runs are never stronger than
    C(Partially Implemented). See docs/checks/secure_accelerator_access.md.
options: {}
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
- name: Verify accelerator isolation
  k8s_ai.conformance.secure_accelerator_access:
  register: isolation

- name: Probe only the H100 pool, tolerating its custom taint
  k8s_ai.conformance.secure_accelerator_access:
    node_selector:
      nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3
    tolerations:
      - key: dedicated
        operator: Equal
        value: gpu
        effect: NoSchedule
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
      sample: secure_accelerator_access
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: containers see exactly the accelerators granted to them
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "T1a pod without a request sees no accelerator", "passed": true, "detail": "aic-none/probe saw nothing"}]
    evidence:
      description: What was seen (probe pod table with the accelerators each container saw, container outputs).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "probe pods", "kind": "table", "content": "TEST  MECHANISM  POD/CONTAINER ..."}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: Same-node isolation between two pods was not shown (no node has two free accelerators).
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils import secure_accelerator_access
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("secure_accelerator_access", secure_accelerator_access.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
