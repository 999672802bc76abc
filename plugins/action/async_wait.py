# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin for k8s_ai.conformance.async_wait: wait for several async jobs in one task.

ansible.builtin.async_status in an C(until) loop runs a Python module for every look at every job; with a dozen
checks polled every second that is a dozen interpreter starts per second on the controller (each imports
ansible's module_utils from a zip, compiling them). This reads each pending job's status file with one C(cat)
through the connection instead, so it works on any connection, and returns every job's result at once.
"""
from __future__ import annotations

import shlex
import time

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.k8s_ai.conformance.plugins.module_utils._async_wait import (
    argument_spec, job_ids, parse_status)


class ActionModule(ActionBase):
    """Poll the jobs' status files until all have finished or the timeout has passed."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(argument_spec())

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=argument_spec())
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        jobs = job_ids(args["jobs"])
        pending = dict(jobs)
        done = {}
        deadline = time.monotonic() + args["timeout"]
        while pending:
            for name, jid in list(pending.items()):
                outcome = self._look(async_dir, jid)
                if outcome is not None:
                    done[name] = outcome
                    del pending[name]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(min(args["interval"], max(0.0, deadline - time.monotonic())))
        for name, jid in pending.items():
            done[name] = {"ansible_job_id": jid, "started": True, "finished": False, "failed": True,
                          "msg": "%s did not finish within %g s (it may still be running on %s): raise the timeout "
                                 "(conform_check_timeout in the conform role) or look at why it is slow"
                                 % (name, args["timeout"], task_vars.get("inventory_hostname", "the host")
                                    if task_vars else "the host")}
        if args["cleanup"]:
            self._remove([jid for name, jid in jobs if name not in pending], async_dir)
        result.update(changed=False, timed_out=sorted(pending),
                      results=[dict(done[name], async_wait_job=name) for name, dummy in jobs])
        return result

    def _look(self, async_dir, jid):
        """The job's final result, or None while it runs. A job without a status file is a failed result."""
        path = self._connection._shell.join_path(async_dir, jid)
        res = self._low_level_execute_command("cat %s" % shlex.quote(path))
        if res.get("rc") != 0:
            return {"ansible_job_id": jid, "started": True, "finished": True, "failed": True,
                    "msg": "could not find job %s in %s: %s" % (jid, async_dir, to_text(res.get("stderr", "")).strip())}
        finished, data = parse_status(to_text(res.get("stdout", "")), jid)
        return data if finished else None

    def _remove(self, jids, async_dir):
        if jids:
            paths = " ".join(shlex.quote(self._connection._shell.join_path(async_dir, jid)) for jid in jids)
            self._low_level_execute_command("rm -f %s" % paths)
