#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: pod_autoscaling
short_description: Verify the pod_autoscaling requirement (accelerator pods scale on a custom metric)
version_added: 0.2.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(pod_autoscaling) on the cluster and returns a verdict with
    findings and evidence in the collection's result model.
  - Reads whether C(autoscaling/v2) is served, whether the metrics APIServices (C(v1beta1.metrics.k8s.io),
    C(v1beta1.custom.metrics.k8s.io), C(v1beta1.external.metrics.k8s.io)) are Available, which pod metrics the
    custom metrics API lists (and which look like accelerator metrics) and the existing HorizontalPodAutoscalers.
  - In V(active) mode it also creates, in a fresh namespace it deletes afterwards, a one-replica Deployment whose
    pods request one accelerator and run the vendor's load tool for O(load_seconds) then idle, waits until the
    custom metrics API serves an accelerator metric for that pod, and creates an C(autoscaling/v2) HPA (type
    Pods, AverageValue O(target_value), 1 to 2 replicas, scale-down stabilization O(scale_down_window)). It waits
    for C(ScalingActive=True), two Running replicas, and one replica again once the load has ended.
  - Implemented needs the scale up and the scale down on an accelerator metric; CPU/memory only or up only is
    Partially Implemented; see docs/checks/pod_autoscaling.md. The module never fails because the requirement is
    unmet; it fails for connection, permission and API errors, with a message that names the fix.
options:
  metric:
    description:
      - Custom metric (for pods) to scale on; default the first served of C(pod_gpu_utilization),
        C(DCGM_FI_DEV_GPU_UTIL), C(gpu_utilization), else any accelerator-looking utilisation metric.
    type: str
  target_value:
    description: HPA AverageValue target for the metric (utilisation percent for the default metrics).
    type: str
    default: "50"
  load_seconds:
    description:
      - Seconds each load pod keeps its accelerator busy before idling (the scale-down follows). It must outlast
        the metric pipeline (scrape, recording rule, adapter relist and HPA sync take about two minutes by default).
    type: int
    default: 300
  scale_down_window:
    description: The HPA's behavior.scaleDown.stabilizationWindowSeconds (the default 300 s makes runs slow).
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
- name: Verify that accelerator pods scale up and down on a custom metric
  k8s_ai.conformance.pod_autoscaling:
  register: hpa

- name: Read-only look at the metrics APIs
  k8s_ai.conformance.pod_autoscaling:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Scale on a specific adapter metric
  k8s_ai.conformance.pod_autoscaling:
    metric: DCGM_FI_DEV_GPU_UTIL
    target_value: "40"
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
      sample: pod_autoscaling
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: accelerator pods scaled 1 -> 2 -> 1 on the custom metric pod_gpu_utilization
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "scaled up to 2 replicas", "passed": true, "detail": "scaled up: 2 pods Running"}]
    evidence:
      description: What was seen (metrics APIs, metrics listed, timeline, HPA events and status).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "HPA events", "kind": "text", "content": "Normal SuccessfulRescale: New size: 2"}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: Only metrics.k8s.io is Available, so pods scale on CPU/memory only.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import pod_autoscaling
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(pod_autoscaling.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("pod_autoscaling", pod_autoscaling.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
