#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: gang_scheduling
short_description: Verify the gang_scheduling requirement (all-or-nothing scheduling of a group of pods)
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(gang_scheduling) on the cluster and returns a verdict with
    findings and evidence in the collection's result model.
  - Recognises Kueue (C(kueue.x-k8s.io) v1beta2 or v1beta1, its controller, ClusterQueues and the manager
    configuration's C(waitForPodsReady) and integrations), Volcano, the KAI scheduler and the coscheduling
    plugin from one table, and reports which one runs and whether it is healthy.
  - In V(active) mode, for Kueue it creates its own ResourceFlavor, ClusterQueue (quota O(quota) on one
    accelerator per pod, or 100m CPU per pod on clusters without free accelerators) and LocalQueue. An Indexed
    Job of O(quota) pods must be admitted, get all its pods together and complete; a Job of O(quota)+1 pods
    must stay suspended, unadmitted and without any pod for O(gang_window) seconds.
  - For a scheduler (Volcano, KAI, coscheduling) it creates a PodGroup whose pods fit on one node and must
    all bind, then a blocker pod that leaves one unit less than the gang needs and a second PodGroup none of
    whose pods may get a node for O(gang_window) seconds.
  - Positive and negative pass gives C(Implemented), positive only C(Partially Implemented), no working
    solution C(Not Implemented). Probe objects, cluster-scoped ones included, are always deleted. See
    docs/checks/gang_scheduling.md.
options:
  gang_window:
    description:
      - Seconds the gang that does not fit must get nothing (no pod for Kueue, no binding for a scheduler).
    type: int
    default: 90
  admission_timeout:
    description:
      - Seconds to wait for Kueue to admit the Workload of the gang that fits (and for the probe's
        ClusterQueue to become Active). Bounded by O(wait_timeout).
    type: int
    default: 60
  quota:
    description:
      - Gang size N of the positive probe (the ClusterQueue's quota in pods); the negative probe uses N+1
        for Kueue. At least 2 for the scheduler probe.
    type: int
    default: 2
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
- name: Verify gang scheduling on the cluster of the current kubeconfig context
  k8s_ai.conformance.gang_scheduling:
  register: gang

- name: Read-only (recognise the solution only)
  k8s_ai.conformance.gang_scheduling:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Bigger gang, longer negative window
  k8s_ai.conformance.gang_scheduling:
    quota: 4
    gang_window: 180
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
      sample: gang_scheduling
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: Kueue admits a gang that fits all at once and holds back one that does not
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "Kueue controller ready", "passed": true, "detail": "kueue-system/kueue-controller-manager 1/1 ready"}]
    evidence:
      description: Solutions seen, Kueue configuration, probe objects, pod tables, Workload status, events.
      returned: always
      type: list
      elements: dict
      sample: [{"title": "gang scheduling solutions seen", "kind": "table", "content": "SOLUTION ..."}]
    notes:
      description: What is missing and how to fix it; whether Kueue's waitForPodsReady is on.
      returned: always
      type: str
      sample: Kueue waitForPodsReady is off.
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
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import gang_scheduling


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(gang_scheduling.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("gang_scheduling", gang_scheduling.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
