#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: product_report
short_description: Write the CNCF AI Conformance submission (PRODUCT.yaml) with evidence, JUnit and a summary
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Turns the results of the requirement checks into C(<output_dir>/v<X.Y>/<platform_dir>/PRODUCT.yaml) in the exact
    format of the CNCF checklist for the chosen Kubernetes version, with one C(evidence/<id>.md) file per requirement
    that has a result, a C(junit.xml) and a C(SUMMARY.md).
  - The checklist is chosen from the cluster's version (O(cluster_version)) unless O(conformance_version) says
    otherwise; requirement ids, descriptions and levels come unchanged from the CNCF checklists shipped in this
    collection.
  - Re-running keeps what a person wrote, see O(metadata_overwrite) and the override formats in docs/report.md
    (C(overrides.yaml) next to PRODUCT.yaml, or notes starting with C([manual])).
  - Never upgrades a verdict by itself. A MUST that is not Implemented is written as it is and listed in RV(blocking),
    because CNCF's validator will refuse the submission; only the explicit O(policy.conditional_must_not_applicable)
    choice writes the N/A of a conditional MUST as Implemented, with the justification in notes.
  - Writes atomically, only files whose content changed; a second run with the same inputs reports C(changed=false).
  - Runs on the controller (action plugin).
options:
  output_dir:
    description:
      - Directory that holds the C(v<X.Y>/<platform_dir>/) tree, like the root of a clone of cncf/k8s-ai-conformance.
    type: path
    required: true
  platform_dir:
    description:
      - Name of the directory under C(v<X.Y>/), for example C(gke) or C(openshift).
      - Default is derived from C(metadata.platformName) (lower case, runs of other characters than C(a-z0-9._-)
        replaced by C(-)).
    type: str
  conformance_version:
    description:
      - Checklist version to fill in, C("1.35") or C("v1.35") (quote it, C(1.30) unquoted is the number 1.3).
      - Wins over O(cluster_version); a warning says so when the two differ.
    type: str
  cluster_version:
    description:
      - The cluster's C(gitVersion), for example C(v1.34.2-gke.1) or C(v1.34.0+k3s1), used to choose the checklist
        and written into each evidence file.
      - A cluster newer than the newest shipped checklist gets the newest one with a warning; an older one is an error.
      - One of O(cluster_version) and O(conformance_version) is needed.
    type: str
  metadata:
    description:
      - PRODUCT.yaml metadata, keys in camelCase as in the template (C(platformName), C(vendorName), C(websiteUrl),
        ...) or their snake_case forms (C(platform_name), C(website_url), ...), written in camelCase.
      - Values must be strings. Unset, empty and C([placeholder]) values do not replace a value a person already
        filled in the existing PRODUCT.yaml.
      - C(k8sConformanceUrl) is written for every version because CNCF's validator requires it, even where the
        template (1.33, 1.34, 1.36) lacks it.
    type: dict
    default: {}
  metadata_overwrite:
    description:
      - When a metadata value is set both in O(metadata) and in the existing PRODUCT.yaml and they differ, the
        existing file wins (with a warning) unless this is V(true).
    type: bool
    default: false
  results:
    description:
      - Results of the requirement checks in the shared result model (C(id), C(status), C(summary), C(findings),
        C(evidence), C(notes), C(mode)); a list, or a mapping from requirement id to result.
      - Results of ids the chosen checklist does not have are ignored with a warning; skipped task results are ignored.
    type: raw
    default: []
  policy:
    description:
      - How to write verdicts that CNCF's validator refuses.
    type: dict
    default: {}
    suboptions:
      conditional_must_not_applicable:
        description:
          - For a MUST worded "If the platform provides/supports ..." (cluster_autoscaling, pod_autoscaling) whose
            result is N/A because the condition does not hold.
          - V(na) writes N/A, and the report says loudly that the submission will not pass CNCF validation.
          - V(implemented_with_note) writes Implemented with the justification in notes, as vendors without an
            autoscaler do; SUMMARY.md lists it. Partially Implemented and Not Implemented are never upgraded.
        type: str
        choices: [na, implemented_with_note]
        default: na
  junit:
    description: Write C(junit.xml) next to PRODUCT.yaml, one testcase per requirement.
    type: bool
    default: true
  summary:
    description: Write C(SUMMARY.md) next to PRODUCT.yaml.
    type: bool
    default: true
  backup:
    description:
      - Before replacing a PRODUCT.yaml whose content changes, copy it to C(PRODUCT.yaml.<YYYYmmddTHHMMSSZ>.bak)
        (UTC) in the same directory.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Reports what would change and validates the would-be PRODUCT.yaml; writes nothing.
  diff_mode:
    support: full
    details: The diff shows PRODUCT.yaml.
  platform:
    platforms: all
requirements:
  - PyYAML (a dependency of ansible-core)
notes:
  - "Run it once per report, on the controller (for example C(hosts: localhost) or C(run_once: true))."
  - The offline validation in RV(validation) does not check URLs or the CNCF landscape; run M(k8s_ai.conformance.product_validate)
    with O(k8s_ai.conformance.product_validate#module:check_urls=true) before submitting.
seealso:
  - module: k8s_ai.conformance.product_validate
  - name: How the report, evidence, overrides and validation work
    description: docs/report.md in this collection.
    link: https://github.com/k8s-ai/conformance/tree/main/docs/report.md
"""

EXAMPLES = r"""
- name: Write the submission for the cluster's version
  k8s_ai.conformance.product_report:
    output_dir: "{{ playbook_dir }}/submission"
    cluster_version: "{{ cluster_info.version.server.kubernetes.gitVersion }}"
    metadata:
      platformName: Turbo Encabulator
      platformVersion: "1.10"
      vendorName: Yoyodyne
      website_url: https://yoyo.dyne/turbo-encabulator
      documentation_url: https://yoyo.dyne/turbo-encabulator/docs
      product_logo_url: https://yoyo.dyne/assets/turbo-encabulator.svg
      description: The Yoyodyne Turbo Encabulator is a Kubernetes distribution for AI workloads.
      contact_email_address: conformance@yoyo.dyne
      k8s_conformance_url: https://github.com/cncf/k8s-conformance/tree/master/v1.35/turbo-encabulator
    results:
      - "{{ gang_scheduling_result.result }}"
      - "{{ secure_accelerator_access_result.result }}"
  register: report

- name: Fail the pipeline when the submission would be refused
  ansible.builtin.assert:
    that: report.blocking | length == 0
    fail_msg: "{{ report.blocking }}"

- name: A fixed-size on-premises platform without a cluster autoscaler
  k8s_ai.conformance.product_report:
    output_dir: submission
    conformance_version: "1.35"
    platform_dir: turbo
    results: "{{ all_results }}"
    policy:
      conditional_must_not_applicable: implemented_with_note
"""

RETURN = r"""
path:
  description: The PRODUCT.yaml written (or, in check mode, that would be written).
  returned: success
  type: str
  sample: /srv/submission/v1.35/turbo/PRODUCT.yaml
evidence_files:
  description: The evidence files, one per requirement with a result, linked from PRODUCT.yaml as C(evidence/<id>.md).
  returned: success
  type: list
  elements: str
  sample: [/srv/submission/v1.35/turbo/evidence/gang_scheduling.md]
junit_path:
  description: The JUnit file, null when O(junit=false).
  returned: success
  type: str
  sample: /srv/submission/v1.35/turbo/junit.xml
summary_path:
  description: The summary, null when O(summary=false).
  returned: success
  type: str
  sample: /srv/submission/v1.35/turbo/SUMMARY.md
changed:
  description: Whether any file was (or in check mode would be) written.
  returned: always
  type: bool
  sample: false
changed_files:
  description: The files whose content changed.
  returned: success
  type: list
  elements: str
  sample: [/srv/submission/v1.35/turbo/PRODUCT.yaml]
backup_file:
  description: The copy of the previous PRODUCT.yaml, null when none was made.
  returned: success
  type: str
  sample: /srv/submission/v1.35/turbo/PRODUCT.yaml.20260102T030405Z.bak
version:
  description: The checklist version used.
  returned: success
  type: str
  sample: "1.35"
counts:
  description: Number of requirements per status written; C(blank) counts status "".
  returned: success
  type: dict
  sample: {"Implemented": 8, "Partially Implemented": 1, "Not Implemented": 0, "N/A": 1, "blank": 3}
requirements:
  description: Per requirement, in checklist order, what was written and where it came from (verified, manual, missing).
  returned: success
  type: list
  elements: dict
  sample: [{"id": "gang_scheduling", "level": "MUST", "status": "Implemented", "source": "verified"}]
blocking:
  description:
    - Why CNCF would refuse this submission and how to fix it; empty when the offline validation finds nothing.
    - MUSTs that are not Implemented, missing metadata, then any other error of the offline validation.
  returned: success
  type: list
  elements: str
  sample: ['metadata.vendorName is not set: pass metadata.vendorName (the legal entity, exactly as listed ...)']
validation:
  description: The result of M(k8s_ai.conformance.product_validate) rules run offline on the written PRODUCT.yaml.
  returned: success
  type: dict
  contains:
    valid:
      description: True when no rule is broken.
      type: bool
      sample: false
    errors:
      description: Broken rules, each naming the location and the CNCF rule.
      type: list
      elements: str
      sample: ['spec.operator.robust_controller: status "Partially Implemented" is not allowed for a MUST requirement
        (CNCF rule: every MUST must be Implemented)']
    warnings:
      description: Things reviewers reject that validate.go does not check.
      type: list
      elements: str
      sample: []
    version:
      description: The checklist version validated against.
      type: str
      sample: "1.35"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.k8s_ai.conformance.plugins.module_utils.report import argument_spec


def main():
    """Only reached without the action plugin (e.g. a module run on a remote host): say how to run it."""
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.fail_json(msg="k8s_ai.conformance.product_report runs on the controller through its action plugin; "
                         "call it by its full name from a play (for example hosts: localhost)")


if __name__ == "__main__":
    main()
