#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: advanced_inference_ingress
short_description: Verify the advanced_inference_ingress requirement (Gateway API Inference Extension routing)
version_added: 0.2.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(advanced_inference_ingress) (KAR-0011, SHOULD from v1.36) on the
    cluster and returns a verdict with findings and evidence in the collection's result model.
  - Reads the Gateway API Inference Extension CRDs (C(inferencepools) in C(inference.networking.k8s.io) v1 or the
    older C(inference.networking.x-k8s.io) v1alpha2, C(inferenceobjectives) / C(inferencemodels)) and their bundle
    version, a sample of InferencePools (selector, target ports, endpoint picker, C(status.parents) Accepted and
    ResolvedRefs), the HTTPRoutes whose backendRefs are InferencePools, and the Gateway API CRDs and GatewayClasses.
  - In V(active) mode it also creates, in a fresh namespace it deletes afterwards, O(replicas) OpenAI-compatible
    model servers (O(server_image), which must name the answering pod in the C(x-inference-pod) header as
    llm-d-inference-sim does), an endpoint picker (O(epp_image), upstream default plugins, verbosity 4), an
    InferencePool, a Gateway on an Accepted class and an HTTPRoute whose backendRef is the pool. From an in-cluster
    curl pod it sends O(requests) completions with distinct prompts and O(prefix_requests) sharing a long prompt
    prefix, then reads the endpoint picker's C(Request handled) log lines.
  - C(Implemented) needs the pool and the route accepted with resolved references, 200 answers from pool pods, the
    picker's logged picks accounting for every answer, more than one endpoint used for distinct prompts and at least
    80 % of the shared-prefix prompts on one endpoint. The CRDs without a Gateway that routes through the picker give
    C(Partially Implemented); no CRDs give C(Not Implemented). See docs/checks/advanced_inference_ingress.md. The
    module never fails because the requirement is unmet; it fails for connection, permission and API errors, with a
    message that names the fix.
options:
  gateway_class:
    description:
      - GatewayClass to probe. By default the first Accepted class of a known implementation.
    type: str
  requests:
    description:
      - Number of completions with distinct prompts sent through the Gateway.
    type: int
    default: 30
  prefix_requests:
    description:
      - Number of completions sharing one long prompt prefix (prefix-cache-aware routing keeps them on one endpoint).
    type: int
    default: 10
  replicas:
    description:
      - Number of model server pods in the probe InferencePool.
    type: int
    default: 3
  model:
    description:
      - Model name the probe servers serve and the requests ask for.
    type: str
    default: k8s-ai-conformance/probe-model
  server_image:
    description:
      - Image of the model servers; it takes C(--model) and C(--port) and sets C(x-inference-pod) from C(POD_NAME)
        like the CPU-only vLLM simulator llm-d-inference-sim.
    type: str
    default: ghcr.io/llm-d/llm-d-inference-sim:v0.5.1
  epp_image:
    description:
      - Image of the endpoint picker (EPP) of the Inference Extension; pick the release that matches the installed CRDs.
    type: str
    default: registry.k8s.io/gateway-api-inference-extension/epp:v1.0.0
  client_image:
    description:
      - Image of the in-cluster client pod; it needs C(sh), C(seq) and C(curl) 7.84 or later (C(%header{}) in C(-w)).
    type: str
    default: curlimages/curl:8.11.1
  gateway_timeout:
    description:
      - Seconds to wait for the probe Gateway to be Programmed with an address (cloud load balancers take minutes).
    type: int
    default: 300
  route_timeout:
    description:
      - Seconds to wait for the probe HTTPRoute and InferencePool to be Accepted with ResolvedRefs.
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
- name: Verify Inference Extension routing on the cluster of the current kubeconfig context
  k8s_ai.conformance.advanced_inference_ingress:
  register: inference_ingress

- name: Read-only verification (CRDs, pools, routes)
  k8s_ai.conformance.advanced_inference_ingress:
    mode: passive

- name: Probe one GatewayClass with mirrored images
  k8s_ai.conformance.advanced_inference_ingress:
    gateway_class: envoy-gateway
    server_image: registry.example.com/mirror/llm-d-inference-sim:v0.5.1
    epp_image: registry.example.com/mirror/gateway-api-inference-extension/epp:v1.0.0
    client_image: registry.example.com/mirror/curlimages/curl:8.11.1
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
      sample: advanced_inference_ingress
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: Envoy Gateway routes OpenAI requests to an InferencePool through its endpoint picker, with prefix-cache-aware picks
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "the endpoint picker chose every serving endpoint (EPP log)", "passed": true, "detail": "EPP picks by pod IP"}]
    evidence:
      description: What was seen (CRDs, pools, routes, probe statuses, answers per pod, the picker's picks).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "EPP picks (Request handled endpoints)", "kind": "yaml", "content": ["10.244.1.7:8000"]}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: The Gateway implementation did not accept an HTTPRoute whose backendRef is an InferencePool.
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
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import advanced_inference_ingress


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(advanced_inference_ingress.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("advanced_inference_ingress", advanced_inference_ingress.run, module.params,
                                    module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
