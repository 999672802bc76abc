#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: disaggregated_inference
short_description: Verify the disaggregated_inference requirement (prefill and decode in separate pods)
version_added: 0.3.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(disaggregated_inference) (SHOULD from Kubernetes 1.36, KAR-0041) on
    the cluster and returns a verdict with findings and evidence in the collection's result model.
  - Reads, with label selectors and capped lists, the llm-d pods labelled C(llm-d.ai/role=prefill|decode) (and whether
    decode pods carry the llm-d routing sidecar), NVIDIA Dynamo C(dynamographdeployments.nvidia.com) whose services
    have C(subComponentType) prefill and decode, Deployments, StatefulSets and LeaderWorkerSets whose pods run
    C(--disaggregation-mode prefill|decode) (SGLang, Dynamo workers), C(--is-prefill-worker) or a vLLM KV connector
    with C(kv_producer)/C(kv_consumer), and their pods, and whether LeaderWorkerSet is served.
  - With O(request_test=true) in V(active) mode (off by default, it needs the model loaded) it creates, in a fresh
    namespace it deletes afterwards, a curl pod that sends one completion with an explicit C(x-request-id) through the
    deployment's front (O(endpoint), else a Gateway with an address whose HTTPRoute in the deployment's namespace
    is Accepted), then looks for that id in the logs of the serving containers of the Ready prefill and decode
    pods (a decode pod's routing sidecar does not count).
  - Implemented needs the id in a prefill pod and in a decode pod, distinct pods, served by real model servers.
    A Ready prefill/decode deployment without the request test, simulator images (llm-d-inference-sim), a failed
    request or an id seen in one role only is Partially Implemented; no Ready prefill or decode pod is Not
    Implemented; see docs/checks/disaggregated_inference.md. The module never fails because the requirement is
    unmet; it fails for connection, permission and API errors, with a message that names the fix.
options:
  request_test:
    description:
      - Run the request test (only in V(active) mode). Off by default because it is heavy on a real cluster (a
        model must be loaded on two accelerators); without it a Ready deployment is at most Partially Implemented.
    type: bool
    default: false
  endpoint:
    description:
      - Base URL of the deployment's front as a pod reaches it (for example V(http://10.0.0.5) or
        V(http://gateway.llm-d.svc.cluster.local)); C(/v1/completions) is appended unless the URL ends in
        C(/completions). Default the address of the Gateway whose HTTPRoute in the deployment's namespace is
        Accepted; without one (SGLang's router, Dynamo's frontend) set this option.
    type: str
  namespace:
    description: Look for prefill/decode deployments in this namespace only (default all namespaces).
    type: str
  model:
    description: Model name for the completion (default the decode pods' C(--served-model-name), C(--model) or
      C(vllm serve MODEL)).
    type: str
  request_timeout:
    description: Seconds the completion may take (curl C(-m)), and the bound of the wait for the client pod beyond
      O(wait_timeout).
    type: int
    default: 600
  client_image:
    description: Image with C(sh) and C(curl) for the client pod.
    type: str
    default: curlimages/curl:8.11.1
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
- name: Look for a prefill/decode deployment (read-only; at most Partially Implemented)
  k8s_ai.conformance.disaggregated_inference:
    mode: passive

- name: Send one request through the llm-d gateway and find it in a prefill and a decode pod
  k8s_ai.conformance.disaggregated_inference:
    request_test: true
    namespace: llm-d
    request_timeout: 900
  register: pd

- name: Use an explicit front and model
  k8s_ai.conformance.disaggregated_inference:
    request_test: true
    endpoint: http://infra-pd-inference-gateway-istio.llm-d.svc.cluster.local
    model: Qwen/Qwen3-0.6B
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
      sample: disaggregated_inference
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: request aic-pd-x1 was prefilled in ms-pd-prefill-0 and decoded in ms-pd-decode-0 (llm-d)
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "prefill and decode in separate Ready pods", "passed": true, "detail": "llm-d in llm-d: ..."}]
    evidence:
      description: What was seen (prefill/decode pods, Dynamo graphs, the request, the log lines with its id).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "request", "kind": "yaml", "content": {"http_status": 200}}]
    notes:
      description: What is missing and how to fix it.
      returned: always
      type: str
      sample: Set request_test true to send one completion through the deployment's gateway.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: passive
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import disaggregated_inference
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(disaggregated_inference.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("disaggregated_inference", disaggregated_inference.run, module.params,
                                    module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
