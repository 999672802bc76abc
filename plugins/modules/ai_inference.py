#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: ai_inference
short_description: Verify the ai_inference requirement (Gateway API traffic management for inference)
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(ai_inference) on the cluster and returns a verdict with
    findings and evidence in the collection's result model.
  - Reads the C(gateway.networking.k8s.io) CRDs (served versions, Established, the bundle version and channel
    annotations), the GatewayClasses with their controllers (a table of implementations) and Accepted
    condition, and whether a service mesh or the Inference Extension's InferencePool is present.
  - In V(active) mode it also creates, in a fresh namespace it deletes afterwards, two backends that answer with
    their identity, a Gateway on an Accepted class and an HTTPRoute with an OpenAI-style header match
    (header C(x-model) equal to C(model-b)) and an 80/20 weighted default, then sends O(requests) plain requests, 20 with the
    header and 20 with another header value from an in-cluster curl pod. The observed v2 share must lie within
    a binomial bound of 20 % (z=3.29, +-9.3 percentage points for 200 requests) and every header request must
    reach v2. After cleanup it waits for the implementation to release the Gateway's address (Envoy Gateway).
  - Accepted but no working data plane gives C(Partially Implemented); no Gateway API or no accepting
    controller gives C(Not Implemented). See docs/checks/ai_inference.md. The module never fails because the
    requirement is unmet; it fails for connection, permission and API errors, with a message that names the fix.
options:
  gateway_class:
    description:
      - GatewayClass to probe. By default the first Accepted class of a known implementation.
    type: str
  requests:
    description:
      - Number of plain requests sent through the Gateway to measure the weighted split.
    type: int
    default: 200
  client_image:
    description:
      - Image of the in-cluster client pod; it needs C(sh), C(seq) and C(curl).
    type: str
    default: curlimages/curl:8.11.1
  backend_image:
    description:
      - Image of the two backends; it must accept C(-text=...) and C(-listen=:8080) like hashicorp/http-echo.
    type: str
    default: hashicorp/http-echo:1.0
  gateway_timeout:
    description:
      - Seconds to wait for the probe Gateway to be Programmed with an address (cloud load balancers take minutes).
    type: int
    default: 300
  route_timeout:
    description:
      - Seconds to wait for the probe HTTPRoute to be Accepted with ResolvedRefs.
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
- name: Verify inference traffic management on the cluster of the current kubeconfig context
  k8s_ai.conformance.ai_inference:
  register: inference

- name: Read-only verification with an explicit kubeconfig
  k8s_ai.conformance.ai_inference:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Probe one GatewayClass with mirrored images and a slow cloud load balancer
  k8s_ai.conformance.ai_inference:
    gateway_class: envoy-gateway
    client_image: registry.example.com/mirror/curlimages/curl:8.11.1
    backend_image: registry.example.com/mirror/hashicorp/http-echo:1.0
    gateway_timeout: 600
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
      sample: ai_inference
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: Envoy Gateway routes traffic by weight and by header through Gateway API v1
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "80/20 weighted split observed", "passed": true, "detail": "v2 share 19.5 % of 200"}]
    evidence:
      description: What was seen (CRDs with bundle version and channel, GatewayClasses, probe Gateway and route status, request tallies).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "request tallies (answer: count)", "kind": "yaml", "content": {"plain": {"aic-backend-v1": 161}}}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: GatewayClass envoy-gateway is Accepted but the probe Gateway was not Programmed with an address.
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
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import ai_inference


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(ai_inference.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("ai_inference", ai_inference.run, module.params, module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
