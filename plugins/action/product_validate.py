# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin for k8s_ai.conformance.product_validate: validates a PRODUCT.yaml on the controller.

An invalid file is a result (`valid: false` and the errors), not a task failure; the task fails only
when the validator cannot run (no such file, unusable version).
"""
from __future__ import annotations

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.k8s_ai.conformance.plugins.module_utils import validator


class ActionModule(ActionBase):
    """Validate the arguments, run the CNCF validator rules, return valid/errors/warnings."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(validator.argument_spec())

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=validator.argument_spec())
        if args["timeout"] <= 0:
            result.update(failed=True, changed=False, msg="timeout must be a positive number of seconds, got %d" % args["timeout"])
            return result
        try:
            outcome = validator.validate_file(args["path"], version=args["version"], check_urls=args["check_urls"],
                                              timeout=args["timeout"], landscape_url=args["landscape_url"])
        except validator.ValidatorUsageError as exc:
            result.update(failed=True, changed=False, msg=to_native(exc))
            return result
        result.update(outcome, changed=False, path=args["path"])
        return result
