#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
module: async_wait
short_description: Wait in one task for several jobs started with async and poll 0
version_added: 0.1.0
author:
  - k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Waits until every job in O(jobs) has finished, or O(timeout) seconds have passed, and returns all their results
    in one list, in the order of O(jobs).
  - The conform role starts the requirement checks side by side (C(async) with C(poll=0)) and collects them with this.
  - Unlike M(ansible.builtin.async_status) in an C(until) loop, which runs a Python module for every look at every
    job, it reads each pending job's status file with one C(cat) through the connection, so waiting for a dozen
    jobs costs the controller almost nothing.
  - Job status files it has read to the end are removed (see O(cleanup)).
options:
  jobs:
    description:
      - Name of each job and what its C(async) task registered (only C(ansible_job_id) is used).
      - Entries without C(ansible_job_id) (a skipped task, or one that ran in the foreground) are left out.
    type: dict
    required: true
  timeout:
    description:
      - Seconds to wait for all jobs together, from the start of this task.
      - A job that has not finished by then is returned failed with a message that says so (the job itself keeps
        running until its own C(async) limit).
    type: float
    default: 3600
  interval:
    description:
      - Seconds between two looks at the jobs still running.
    type: float
    default: 1
  cleanup:
    description:
      - Remove the status file of every finished job (what M(ansible.builtin.async_status) does with C(mode=cleanup)).
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
    details: Only reads the jobs' status files (the jobs themselves did not run in check mode).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The status files are read in the async directory of the connection's shell (C(async_dir), default
    C(~/.ansible_async)), as M(ansible.builtin.async_status) reads them.
seealso:
  - module: ansible.builtin.async_status
"""

EXAMPLES = r"""
- name: Start two checks side by side
  k8s_ai.conformance.dra_support:
    mode: passive
  register: dra
  async: 600
  poll: 0

- name: Another one
  k8s_ai.conformance.accelerator_metrics:
    mode: passive
  register: metrics
  async: 600
  poll: 0

- name: Wait for both (one task, one look per job per second)
  k8s_ai.conformance.async_wait:
    jobs:
      dra_support: "{{ dra }}"
      accelerator_metrics: "{{ metrics }}"
    timeout: 600
  register: checks

- name: Their verdicts
  ansible.builtin.debug:
    msg: "{{ checks.results | map(attribute='result.status', default='no result') | list }}"
"""

RETURN = r"""
results:
  description:
    - The final result of each job that was waited for, in the order of O(jobs), as the job's module returned it,
      with C(finished), C(ansible_job_id) and C(async_wait_job) (its name in O(jobs)) added.
    - A job that did not finish in time, or whose status file is missing, has C(failed=true) and a C(msg).
  returned: always
  type: list
  elements: dict
  sample: [{"async_wait_job": "dra_support", "ansible_job_id": "j123456789.1234", "finished": true, "changed": false,
            "result": {"id": "dra_support", "status": "Implemented"}}]
timed_out:
  description: Names of the jobs that had not finished when O(timeout) passed.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.k8s_ai.conformance.plugins.module_utils._async_wait import argument_spec


def main():
    """Only reached without the action plugin: say how to run it."""
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.fail_json(msg="k8s_ai.conformance.async_wait runs through its action plugin; call it by its full name "
                         "from a play")


if __name__ == "__main__":
    main()
