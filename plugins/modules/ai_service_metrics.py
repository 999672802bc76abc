#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: ai_service_metrics
short_description: Verify the ai_service_metrics requirement (the platform's monitoring collects AI service metrics)
version_added: 0.2.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(ai_service_metrics) on the cluster and returns a verdict with
    findings and evidence in the collection's result model.
  - Reads the Prometheus Operator objects (each C(Prometheus), its ServiceMonitor and namespace selectors, whether
    its pods are ready), other monitoring stacks (Google Managed Prometheus, Azure managed Prometheus,
    VictoriaMetrics, OpenTelemetry) and Services with C(prometheus.io/scrape) annotations, and says which
    Prometheus would discover a new workload and with which monitor labels.
  - In V(active) mode it also creates, in a fresh namespace it deletes afterwards, a vLLM-style server
    (Deployment and Service) and a ServiceMonitor carrying the labels the platform Prometheus selects, sends
    O(requests) completions through the API server's service proxy, then asks that Prometheus (through the pods
    proxy) for the probe's target in C(/api/v1/targets) and for C(sum(vllm:request_success_total)) of the probe
    namespace. A Prometheus running in a probe namespace is never used.
  - Implemented needs the target up and the counter at least the number of answered requests; see
    docs/checks/ai_service_metrics.md. The module never fails because the requirement is unmet; it fails for
    connection, permission and API errors, with a message that names the fix.
options:
  requests:
    description: Completions sent to the probe server (K); the counter must reach the number answered.
    type: int
    default: 10
  server_image:
    description:
      - Image of the probe AI server; it must serve the OpenAI API and vLLM's metrics on C(--port), such as the
        CPU-only vLLM simulator llm-d-inference-sim or C(vllm/vllm-openai).
    type: str
    default: ghcr.io/llm-d/llm-d-inference-sim:v0.5.1
  model:
    description: Model name passed to the probe server with C(--model) and used in the requests.
    type: str
    default: k8s-ai-conformance/probe-model
  monitor_labels:
    description: Extra labels for the probe ServiceMonitor (the labels the chosen Prometheus selects are always added).
    type: dict
  prometheus:
    description:
      - C(namespace/name) or name of the Prometheus object to verify; default the first running one that would
        select the probe's monitor.
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
- name: Verify that the platform's Prometheus collects an AI service's metrics
  k8s_ai.conformance.ai_service_metrics:
  register: metrics

- name: Read-only look at the monitoring stack and its selectors
  k8s_ai.conformance.ai_service_metrics:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Verify one Prometheus with a mirrored server image
  k8s_ai.conformance.ai_service_metrics:
    prometheus: monitoring/kube-prometheus-stack-prometheus
    server_image: registry.example.com/mirror/llm-d-inference-sim:v0.5.1
    requests: 20
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
      sample: ai_service_metrics
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: Prometheus monitoring/k8s discovered the probe AI service and its request counter reached 10
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "target discovered and up", "passed": true, "detail": "health up"}]
    evidence:
      description: What was seen (Prometheus selectors, probe ServiceMonitor, target, query result).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "probe target in /api/v1/targets", "kind": "yaml", "content": {"health": "up"}}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: New workloads' ServiceMonitors must carry the label release=kube-prometheus-stack to be selected.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import ai_service_metrics
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(ai_service_metrics.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("ai_service_metrics", ai_service_metrics.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
