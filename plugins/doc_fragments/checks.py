# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Options shared by the requirement checks (paired with CHECK_ARG_SPEC in module_utils/probe.py)."""
from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  mode:
    description:
      - V(active) runs probe workloads (pods, claims, jobs) in a fresh namespace labelled
        C(app.kubernetes.io/managed-by=k8s-ai-conformance) and always deletes it afterwards.
      - V(passive) only reads from the API; the verdict then rests on what can be seen without probes and
        the findings say which probes were skipped.
      - Check mode behaves like V(passive) and creates nothing.
    type: str
    default: active
    choices: [active, passive]
  wait_timeout:
    description:
      - Seconds to wait for each probe (a pod to finish, a job to complete) before giving up. A probe that
        times out is reported in the result and its namespace is still deleted.
      - Also bounds how long the module waits for the probe namespace to disappear.
    type: int
    default: 300
  wait_sleep:
    description:
      - Seconds between two polls while waiting.
    type: float
    default: 2.0
  node_selector:
    description:
      - Node labels that every probe pod must match (added as the pod's C(nodeSelector)), for example to
        keep probes on one accelerator node pool.
    type: dict
  tolerations:
    description:
      - Tolerations for probe pods, in the Kubernetes pod spec format.
      - When not set, probe pods tolerate the vendor's accelerator taint with effect C(NoSchedule)
        (C(nvidia.com/gpu) for NVIDIA, as the upstream conformance test does).
    type: list
    elements: dict
  probe_image:
    description:
      - Image of the probe containers. It needs C(sh) and C(ls); the vendor's listing tool (for example
        C(nvidia-smi)) is injected by the container toolkit when a device is granted.
      - Point it at a mirror for air-gapped clusters.
    type: str
    default: ubuntu:22.04
  vendor:
    description:
      - Accelerator vendor whose resource names, DRA driver, device nodes, listing command and metrics the
        check uses (see the vendor table in C(module_utils/accelerators.py)).
      - V(auto) detects every vendor of the table present on the cluster (device plugin resources and node
        labels, DRA drivers publishing devices) and checks each; the result is the weakest of them, with each
        vendor's findings, evidence and notes labelled by its name. With none present the check reports what
        it reports on a cluster without accelerators (N/A where the requirement needs them).
      - A named vendor checks that vendor's accelerators only.
    type: str
    default: auto
    choices: [auto, nvidia, amd, intel]
  vendors_present:
    description:
      - With O(vendor=auto), the vendors present on the cluster as M(k8s_ai.conformance.accelerator_info)
        returned them (its RV(k8s_ai.conformance.accelerator_info#module:vendors)); the check then uses this list
        instead of detecting the vendors itself. One vendor is checked as if O(vendor) named it, several each in
        turn, none as a cluster without accelerators.
      - The conform role detects the vendors once and passes them to every check. On clusters of more than 1,000
        nodes that spares each check the reads of the absent vendors' labelled nodes.
      - A list that leaves out a vendor present leaves that vendor's accelerators unchecked. Ignored when
        O(vendor) names a vendor.
    type: list
    elements: str
    choices: [nvidia, amd, intel]
"""
