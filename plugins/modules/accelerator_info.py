#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: accelerator_info
short_description: Detect which accelerator vendors a cluster has, once for every check of a run
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Reads, without changing anything, which vendors of the collection's vendor table (NVIDIA, AMD, Intel) have
    accelerators on the cluster, exactly as a check with O(k8s_ai.conformance.dra_support#module:vendor=auto)
    detects them, from node resources and labels and the DRA drivers publishing devices in ResourceSlices.
  - Reads a bounded sample of the nodes. Up to 1,000 nodes that is one request for every node; beyond, the
    first 1,000 plus the nodes carrying each vendor's presence label, so accelerator nodes are found wherever
    they sort.
  - The conform role runs it once and passes RV(vendors) to every check as
    O(k8s_ai.conformance.dra_support#module:vendors_present), so that on large clusters each check reads the
    labelled nodes of the vendors present only, instead of detecting them again.
  - Fails, with a message that names the fix, when the nodes may not be listed or the API cannot be reached.
    Not being allowed to list ResourceSlices is not an error; the nodes alone decide then.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only reads from the API.
  diff_mode:
    support: none
  platform:
    platforms: kubernetes
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Detect the accelerator vendors once
  k8s_ai.conformance.accelerator_info:
  register: accelerators

- name: Check DRA support for the vendors found, without detecting them again
  k8s_ai.conformance.dra_support:
    vendors_present: "{{ accelerators.vendors }}"
"""

RETURN = r"""
changed:
  description: Always false.
  returned: always
  type: bool
  sample: false
vendors:
  description: Names of the vendors with accelerators on the cluster, in the vendor table's order; empty when
    there are none.
  returned: success
  type: list
  elements: str
  sample: [nvidia]
node_count:
  description: Nodes of the cluster, as the API counts them (null when it does not say).
  returned: success
  type: int
  sample: 5000
nodes_sampled:
  description: True when the cluster has more nodes than one read returns and a bounded sample was read.
  returned: success
  type: bool
  sample: true
dra_drivers:
  description: DRA drivers publishing devices in the ResourceSlices read (at most 500 slices).
  returned: success
  type: list
  elements: str
  sample: [gpu.nvidia.com]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe


def argspec():
    return cluster.auth_arg_spec()


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if not cluster.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=cluster.KUBERNETES_IMPORT_ERROR)
    try:
        facts = probe.accelerator_presence(cluster.Cluster.connect(module.params))
    except cluster.ClusterError as err:
        module.fail_json(msg="accelerator_info: %s" % err)
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
