# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Options of k8s_ai.conformance.async_wait and how a job's status file is read (shared by the action plugin and
the module's documentation stub)."""
from __future__ import annotations

import json


def argument_spec():
    return {
        "jobs": {"type": "dict", "required": True},
        "timeout": {"type": "float", "default": 3600},
        "interval": {"type": "float", "default": 1},
        "cleanup": {"type": "bool", "default": True},
    }


def job_ids(jobs):
    """[(name, jid)] of the registered results in `jobs` that started an async job, in the dict's order."""
    out = []
    for name, registered in jobs.items():
        jid = registered.get("ansible_job_id") if isinstance(registered, dict) else None
        if jid and not registered.get("skipped"):
            out.append((name, str(jid)))
    return out


def parse_status(text, jid):
    """(finished, data) from the text of a job's status file, read as ansible.builtin.async_status reads it: an
    empty or half-written file is a job still starting; a file without C(started) is the module's final result."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return False, {"ansible_job_id": jid, "started": True, "finished": False}
    if "started" not in data:
        data["finished"] = True
        data["ansible_job_id"] = jid
        return True, data
    data["finished"] = bool(data.get("finished"))
    return data["finished"], data
