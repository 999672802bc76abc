# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin for k8s_ai.conformance.async_wait: wait for several async jobs in one task.

ansible.builtin.async_status in an C(until) loop runs a Python module for every look at every job; with a dozen
checks polled every second that is a dozen interpreter starts per second on the controller (each imports
ansible's module_utils from a zip, compiling them). This reads the status files of all pending jobs with one shell
command through the connection per look instead, so it works on any connection, and returns every job's result at
once.
"""
from __future__ import annotations

import shlex
import time

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.k8s_ai.conformance.plugins.module_utils._async_wait import (
    argument_spec, job_ids, parse_status)


_MARK = "--- k8s_ai.conformance.async_wait %d ---"
_MISSING = "--- k8s_ai.conformance.async_wait: no status file ---"


def _split(stdout, count):
    """The text after each of the `count` marker lines (None for a marker that is missing)."""
    texts = [None] * count
    current, lines = None, []
    for line in stdout.splitlines():
        if line.startswith("--- k8s_ai.conformance.async_wait ") and line.endswith(" ---"):
            index = line[len("--- k8s_ai.conformance.async_wait "):-len(" ---")]
            if index.isdigit() and int(index) < count:
                if current is not None:
                    texts[current] = "\n".join(lines)
                current, lines = int(index), []
                continue
        lines.append(line)
    if current is not None:
        texts[current] = "\n".join(lines)
    return texts


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
            for name, outcome in self._look(async_dir, pending).items():
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

    def _look(self, async_dir, pending):
        """{name: final result} of the pending jobs that have finished, read with one command for all of them. A
        job without a status file is a failed result."""
        paths = [self._connection._shell.join_path(async_dir, jid) for jid in pending.values()]
        # each file's content after a marker line of its own (the empty echo ends a file without a final newline);
        # a missing file says so after its marker
        script = "; ".join("echo; echo %s; cat %s 2>/dev/null || echo %s"
                           % (shlex.quote(_MARK % index), shlex.quote(path), shlex.quote(_MISSING))
                           for index, path in enumerate(paths))
        res = self._low_level_execute_command(script)
        texts = _split(to_text(res.get("stdout", "")), len(paths))
        out = {}
        for (name, jid), text in zip(pending.items(), texts):
            if text is None:        # the command did not get that far (a connection hiccup): look again next time
                continue
            if text.strip() == _MISSING:
                out[name] = {"ansible_job_id": jid, "started": True, "finished": True, "failed": True,
                             "msg": "could not find job %s in %s" % (jid, async_dir)}
                continue
            finished, data = parse_status(text, jid)
            if finished:
                out[name] = data
        return out

    def _remove(self, jids, async_dir):
        if jids:
            paths = " ".join(shlex.quote(self._connection._shell.join_path(async_dir, jid)) for jid in jids)
            self._low_level_execute_command("rm -f %s" % paths)
