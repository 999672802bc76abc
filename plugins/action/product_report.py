# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin for k8s_ai.conformance.product_report: the report is written on the controller.

The checklists ship as data inside the collection and the output belongs to the operator's machine, so
nothing runs on the managed host. The work is in module_utils/_report_files.py and report.py.
"""
from __future__ import annotations

import errno

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.k8s_ai.conformance.plugins.module_utils import _report_files
from ansible_collections.k8s_ai.conformance.plugins.module_utils.checklist import ChecklistError
from ansible_collections.k8s_ai.conformance.plugins.module_utils.report import ReportError, argument_spec


class ActionModule(ActionBase):
    """Validate the arguments, write (or in check mode plan) the report, return what changed."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(argument_spec())

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=argument_spec())
        try:
            outcome = _report_files.run_report(args, check_mode=self._task.check_mode)
        except (ReportError, ChecklistError) as exc:
            result.update(failed=True, changed=False, msg=to_native(exc))
            return result
        except (IOError, OSError) as exc:
            result.update(failed=True, changed=False,
                          msg="cannot write the report under %s: %s. %s" % (args["output_dir"], to_native(exc),
                                                                            write_error_fix(exc)))
            return result
        warnings = outcome.pop("warnings")
        diff = outcome.pop("diff")
        if warnings:
            result["warnings"] = warnings
        if self._task.diff and outcome["changed"]:
            result["diff"] = diff
        result.update(outcome)
        return result


def write_error_fix(exc):
    """What to do about an OSError while writing (files are replaced atomically, so what was there stays)."""
    kept = ("No file is left half-written (each is replaced atomically), and PRODUCT.yaml, written last, keeps its "
            "previous content")
    number = getattr(exc, "errno", None)
    if number in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "The disk is full or a size limit was hit: free space (or raise the quota) and run again. " + kept
    if number in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "The output directory is not writable: choose a writable output_dir or fix its permissions. " + kept
    if number in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return "A part of the output path is a file where a directory is needed (or the reverse): fix output_dir. " + kept
    return kept
