# Copyright: (c) 2025, k8s_ai.conformance maintainers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Jinja tests the stack-installing roles share."""
from __future__ import annotations

import re

# An exact release: optional "v", three numeric parts, optional pre-release/build suffix.
# Ranges (^1.2, ~1.2, >=1, 1.x, *), "latest" and empty strings are rejected on purpose:
# a role must install the same thing on every run.
_PINNED = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")


def pinned_version(value):
    """True when ``value`` names one exact release rather than a range or a moving tag."""
    if not isinstance(value, str):
        return False
    return bool(_PINNED.match(value)) and "latest" not in value.lower()


class TestModule(object):
    """Stack installer tests."""

    def tests(self):
        return {"pinned_version": pinned_version}
