#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: high_performance_networking
short_description: Verify the high_performance_networking requirement (pods get RDMA NICs through DRA)
version_added: 0.3.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Checks the CNCF AI Conformance requirement C(high_performance_networking) (KAR-0010, SHOULD from Kubernetes
    1.36) on the cluster and returns a verdict with findings and evidence in the collection's result model.
  - Reads the served C(resource.k8s.io) version, the ResourceSlices of the DRANET driver C(dra.net) (field selector
    C(spec.driver=dra.net), at most O(slice_sample)) with the NIC attributes they publish (C(dra.net/ifName),
    C(dra.net/rdma), C(dra.net/rdmaDevice), C(dra.net/pciAddress), C(dra.net/numaNode), C(dra.net/type),
    C(resource.kubernetes.io/pcieRoot)), the DeviceClasses whose selectors name C(dra.net), and the non-DRA ways to
    give pods secondary networks (Multus NetworkAttachmentDefinitions, the SR-IOV network operator, the NVIDIA
    Network Operator's NicClusterPolicy, RDMA/EFA/SR-IOV device-plugin resources on up to O(node_sample) nodes).
  - In V(active) mode it also runs KAR-0010's outcomes in a fresh namespace it deletes afterwards. A pod claims one
    NIC (ResourceClaimTemplate with the CEL selector O(nic_selector)) and prints C(ip -o link) and C(ip -o addr); it
    must run with an interface besides C(lo) and C(eth0), on a node that publishes the allocated NIC. A pod whose
    claim selects an interface that does not exist must stay Pending for O(pending_window) seconds. A second pod on
    another node, claiming a NIC with the same C(dra.net/ifName) (the same rail), pings the first pod's secondary
    address and must get replies.
  - DRA-managed NICs with all outcomes shown is Implemented; DRANET with only some outcomes, or Multus/SR-IOV/device
    plugins without DRA, is Partially Implemented; no such hardware or mechanism at all is N/A (Not Implemented with
    O(expect_hardware)). See docs/checks/high_performance_networking.md. The module never fails because the
    requirement is unmet; it fails for connection, permission and API errors, with a message that names the fix.
options:
  network_image:
    description:
      - Image of the probe pods; it needs C(sh), C(ip) and C(ping) (BusyBox has all three). Mirror it for
        air-gapped clusters.
    type: str
    default: busybox:1.36
  device_class:
    description:
      - DeviceClass the probe claims NICs through; default a class selecting only C(device.driver == "dra.net"),
        else any class whose selectors name C(dra.net).
    type: str
  nic_selector:
    description: CEL selector of the NIC a probe pod claims.
    type: str
    default: device.attributes["dra.net"].rdma == true
  pending_window:
    description: Seconds the pod with an unsatisfiable NIC claim is watched; it must stay Pending throughout.
    type: int
    default: 30
  slice_sample:
    description: At most this many C(dra.net) ResourceSlices are read (one per node; bounds huge clusters).
    type: int
    default: 200
  node_sample:
    description: At most this many nodes are read for RDMA/EFA/SR-IOV device-plugin resources.
    type: int
    default: 500
  expect_hardware:
    description:
      - The nodes have high-performance NICs. When nothing exposes them, the verdict is then Not Implemented
        instead of N/A.
    type: bool
    default: false
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
- name: Verify that pods get RDMA NICs through DRA and exchange data over them
  k8s_ai.conformance.high_performance_networking:
  register: hpn

- name: Read-only look at DRANET's ResourceSlices and secondary-network mechanisms
  k8s_ai.conformance.high_performance_networking:
    kubeconfig: ~/.kube/prod
    mode: passive

- name: Claim through GKE's managed DRANET class with a mirrored probe image
  k8s_ai.conformance.high_performance_networking:
    device_class: mrdma.google.com
    nic_selector: device.attributes["dra.net"].rdma == true
    network_image: registry.example.com/mirror/busybox:1.36
    expect_hardware: true
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
      sample: high_performance_networking
    status:
      description: C(Implemented), C(Partially Implemented), C(Not Implemented) or C(N/A).
      returned: always
      type: str
      sample: Implemented
    summary:
      description: One sentence saying why.
      returned: always
      type: str
      sample: a pod claimed an RDMA NIC through DRA (dra.net), got it as rdma0, ...
    findings:
      description: What was checked; C(passed) is true, false or null (not evaluated, detail says why).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "pod-to-pod data over secondary addresses", "passed": true, "detail": "3/3 packets received"}]
    evidence:
      description: What was seen (DRANET NICs, DeviceClasses, timeline, the pods' ip and ping output, claim status).
      returned: always
      type: list
      elements: dict
      sample: [{"title": "timeline", "kind": "text", "content": "  0.1s created pod aic-nic-a"}]
    notes:
      description: What is missing and how to fix it; for N/A the justification.
      returned: always
      type: str
      sample: The claim was allocated and the pod runs, but the NIC never appeared in the pod's network namespace.
    mode:
      description: C(active) when probes ran, C(passive) otherwise.
      returned: always
      type: str
      sample: active
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checks import high_performance_networking
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    spec = cluster.auth_arg_spec()
    spec.update(copy.deepcopy(probe.CHECK_ARG_SPEC))
    spec.update(copy.deepcopy(high_performance_networking.ARG_SPEC))
    return spec


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    result, error = probe.run_check("high_performance_networking", high_performance_networking.run, module.params,
                                    module.check_mode)
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
