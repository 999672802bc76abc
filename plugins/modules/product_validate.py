#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: product_validate
short_description: Validate a CNCF AI Conformance PRODUCT.yaml with the rules of CNCF's validator
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Applies every rule of C(scripts/validate.go) in cncf/k8s-ai-conformance, the check CNCF's CI runs on a
    submission, to any PRODUCT.yaml, and returns each broken rule with its location and a fix.
  - The checklist version comes from the path (C(v<X.Y>/<dir>/PRODUCT.yaml)) as in CNCF's validator, or from O(version).
  - "Reads the file as CNCF's Go validator does (YAML 1.2 types, duplicate keys refused), so C(platformVersion: 1.10)
    is reported as a number."
  - Also warns about what reviewers refuse but the validator does not check (edited descriptions or levels,
    unknown ids, evidence outside the submission directory, kubernetesVersion of another minor).
  - An invalid file is not a task failure; the task fails only when it cannot validate (no such file, bad O(version)).
  - Runs on the controller (action plugin).
options:
  path:
    description:
      - The PRODUCT.yaml to validate. Local evidence paths in it are resolved relative to its directory.
    type: path
    required: true
  check_urls:
    description:
      - Also check what needs the network, as CNCF's validator does; off by default so the module works offline.
      - Every metadata value and evidence entry starting with C(http) must answer a HEAD, or else a GET, with a status
        below 400 (429 counts as reachable) within O(timeout), sent with the validator's User-Agent.
      - C(vendorName) must exactly match a member in the C(CNCF Members) category of the CNCF landscape fetched from
        O(landscape_url); when the landscape cannot be fetched that is an error, as in CNCF's validator.
    type: bool
    default: false
  version:
    description:
      - Checklist version (C("1.35") or C("v1.35")) to validate against instead of the one in the path, with a warning
        when they differ; CNCF's validator always uses the path.
    type: str
  timeout:
    description: Seconds to wait for each URL and for the landscape when O(check_urls=true).
    type: int
    default: 30
  landscape_url:
    description:
      - Where to fetch the CNCF landscape (C(landscape.yml)) for the vendorName check; change it only for a mirror.
    type: str
    default: https://raw.githubusercontent.com/cncf/landscape/master/landscape.yml
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
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: all
requirements:
  - PyYAML (a dependency of ansible-core)
notes:
  - The rules and how they map to validate.go are listed in docs/report.md.
seealso:
  - module: k8s_ai.conformance.product_report
  - name: CNCF's validator
    description: scripts/validate.go in cncf/k8s-ai-conformance.
    link: https://github.com/cncf/k8s-ai-conformance/blob/main/scripts/validate.go
"""

EXAMPLES = r"""
- name: Validate offline
  k8s_ai.conformance.product_validate:
    path: submission/v1.35/turbo/PRODUCT.yaml
  register: check

- name: Show what CNCF would refuse
  ansible.builtin.debug:
    var: check.errors
  when: not check.valid

- name: Validate as CNCF's CI does, URLs and landscape included
  k8s_ai.conformance.product_validate:
    path: submission/v1.35/turbo/PRODUCT.yaml
    check_urls: true
    timeout: 30
"""

RETURN = r"""
valid:
  description: True when no rule is broken.
  returned: success
  type: bool
  sample: false
errors:
  description: "Each broken rule as C(<location>: <what is wrong> (CNCF rule: <rule>))."
  returned: success
  type: list
  elements: str
  sample: ['spec.operator.robust_controller: status "Partially Implemented" is not allowed for a MUST requirement
    (CNCF rule: every MUST must be Implemented)']
warnings:
  description: What reviewers refuse but CNCF's validator does not check, and what was not checked offline.
  returned: success
  type: list
  elements: str
  sample: ['check_urls is false: no URL was checked for reachability and vendorName was not looked up on the CNCF landscape; ...']
version:
  description: The checklist version validated against, null when it could not be determined.
  returned: success
  type: str
  sample: "1.35"
checked_urls:
  description: Number of distinct URLs checked (0 unless O(check_urls=true)).
  returned: success
  type: int
  sample: 0
path:
  description: The file validated.
  returned: success
  type: str
  sample: submission/v1.35/turbo/PRODUCT.yaml
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.k8s_ai.conformance.plugins.module_utils.validator import argument_spec


def main():
    """Only reached without the action plugin (e.g. a module run on a remote host): say how to run it."""
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.fail_json(msg="k8s_ai.conformance.product_validate runs on the controller through its action plugin; "
                         "call it by its full name from a play (for example hosts: localhost)")


if __name__ == "__main__":
    main()
