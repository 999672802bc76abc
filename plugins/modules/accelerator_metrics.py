#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: accelerator_metrics
short_description: Verify the accelerator_metrics requirement (per-accelerator metrics)
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(accelerator_metrics) and returns a verdict with findings and
    evidence in the collection's result model.
  - Finds the vendor's metrics exporter pods (for NVIDIA the DCGM exporter, by the labels the GPU operator
    and the exporter's manifests set), scrapes each accelerator node's exporter pod through the API server's
    pod proxy and parses the Prometheus text with prometheus_client.
  - Every accelerator of a node (count from allocatable, feature-discovery labels or DRA slices) needs its own
    utilisation and memory-usage series (distinct UUID label); temperature, power, energy and interconnect
    metrics are reported when present, mapped to OpenTelemetry hardware metric names (C(hw.gpu.utilization),
    C(hw.gpu.memory.usage), C(hw.temperature), C(hw.power), C(hw.energy), C(hw.gpu.io)).
  - In V(active) mode a one-accelerator load pod runs on a scraped node and the utilisation of its
    accelerator must rise. See docs/checks/accelerator_metrics.md.
options:
  load_seconds:
    description:
      - How long the load pod generates load, and how long the module scrapes for the rise.
    type: int
    default: 90
  load_image:
    description:
      - Image of the load pod; defaults to the vendor table's (for NVIDIA the DCGM image with C(dcgmproftester12)).
    type: str
  load_command:
    description:
      - Shell command that generates accelerator load; C({seconds}) is replaced by O(load_seconds). Defaults
        to the vendor table's.
    type: str
  exporter_selector:
    description:
      - Label selector of the exporter pods, when they do not carry the vendor's usual labels (for NVIDIA
        C(app=nvidia-dcgm-exporter) or C(app.kubernetes.io/name=dcgm-exporter)).
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
  - prometheus_client
"""

EXAMPLES = r"""
- name: Verify accelerator metrics
  k8s_ai.conformance.accelerator_metrics:
  register: metrics

- name: Read-only check of an exporter with custom labels
  k8s_ai.conformance.accelerator_metrics:
    mode: passive
    exporter_selector: app=my-dcgm
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
      sample: accelerator_metrics
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: every accelerator node serves per-accelerator utilisation and memory metrics
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "metrics on gpu-0 (8 accelerators)", "passed": true, "detail": "utilization=DCGM_FI_DEV_GPU_UTIL ..."}]
    evidence:
      description: What was seen (metric names with their OpenTelemetry names, per-accelerator values, raw lines, load probe).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "per-accelerator values", "kind": "table", "content": "NODE  GPU  UUID ..."}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: Whether the metrics react to load was not shown; run in active mode.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerator_metrics
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe
from ansible_collections.k8s_ai.conformance.plugins.module_utils import promtext


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(accelerator_metrics.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    if not promtext.HAS_PROMETHEUS_CLIENT:
        module.fail_json(msg=missing_required_lib("prometheus_client"), exception=promtext.PROMETHEUS_CLIENT_IMPORT_ERROR)
    result, error = probe.run_check("accelerator_metrics", accelerator_metrics.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
