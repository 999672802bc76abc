# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The result model shared by every requirement check, the report writer and the validator.

A result is a plain dict so that it crosses the module/controller boundary unchanged:

    {
      "id": "dra_support",                 # checklist requirement id
      "status": "Implemented",             # one of STATUSES
      "summary": "one sentence verdict",   # why this status (shown in the summary table)
      "findings": [{"name": ..., "passed": True | False | None, "detail": ...}],
      "evidence": [{"title": ..., "kind": "text" | "yaml" | "json" | "table", "content": ...}],
      "notes": "what was missing and how to fix it; for N/A the justification",
      "mode": "active" | "passive",
    }

`passed: None` marks a finding that was not evaluated (skipped, informational); its detail says why.
No I/O here: this module is imported by judges, the report writer and the tests.
"""
from __future__ import annotations

import copy

IMPLEMENTED = "Implemented"
PARTIAL = "Partially Implemented"
NOT_IMPLEMENTED = "Not Implemented"
NOT_APPLICABLE = "N/A"

# The checklist's own spelling, strongest first.
STATUSES = (IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED, NOT_APPLICABLE)
EVIDENCE_KINDS = ("text", "yaml", "json", "table")

# Order used when combining verdicts: a higher number is a weaker claim. N/A is not on this scale;
# it is a statement about applicability and is never produced by combining other statuses.
_STRENGTH = {IMPLEMENTED: 0, PARTIAL: 1, NOT_IMPLEMENTED: 2}


class ResultError(ValueError):
    """A result that breaks the model (unknown status, N/A without justification, ...)."""


def weakest(*statuses):
    """The weakest of the given Implemented/Partially/Not Implemented statuses."""
    known = [s for s in statuses if s in _STRENGTH]
    if len(known) != len(statuses):
        raise ResultError("weakest() takes only %s, got %r" % (", ".join(_STRENGTH), statuses))
    if not known:
        raise ResultError("weakest() needs at least one status")
    return max(known, key=_STRENGTH.get)


def cap(status, ceiling):
    """`status`, lowered to `ceiling` when it claims more than `ceiling` allows."""
    if status == NOT_APPLICABLE:
        return status
    return weakest(status, ceiling)


class Result(object):
    """Builder used by judges; `to_dict()` returns the validated plain-dict result."""

    def __init__(self, requirement_id, mode="active"):
        self.id = requirement_id
        self.mode = mode
        self.status = None
        self.summary = ""
        self.findings = []
        self.evidence = []
        self._notes = []

    def finding(self, name, passed, detail=""):
        if passed not in (True, False, None):
            raise ResultError("finding %r: passed must be true, false or null" % name)
        self.findings.append({"name": str(name), "passed": passed, "detail": str(detail)})
        return passed

    def add_evidence(self, title, content, kind="text"):
        if kind not in EVIDENCE_KINDS:
            raise ResultError("evidence %r: kind must be one of %s" % (title, ", ".join(EVIDENCE_KINDS)))
        self.evidence.append({"title": str(title), "kind": kind, "content": content})

    def note(self, text):
        text = str(text).strip()
        if text and text not in self._notes:
            self._notes.append(text)

    @property
    def notes(self):
        return " ".join(self._notes)

    def set(self, status, summary=""):
        self.status = status
        if summary:
            self.summary = summary
        return self

    def lower_to(self, ceiling, reason):
        """Lower the status to at most `ceiling`, recording why (no-op when already weaker)."""
        if self.status is None:
            raise ResultError("lower_to() before a status was set")
        lowered = cap(self.status, ceiling)
        if lowered != self.status:
            self.status = lowered
            self.note(reason)
        return self

    def to_dict(self):
        return make_result(self.id, self.status, self.findings, self.evidence, self.notes,
                           summary=self.summary, mode=self.mode)


def make_result(requirement_id, status, findings=None, evidence=None, notes="", summary="", mode="active"):
    """Build and validate a result dict (see the module docstring)."""
    result = {
        "id": requirement_id,
        "status": status,
        "summary": summary or "",
        "findings": copy.deepcopy(list(findings or [])),
        "evidence": copy.deepcopy(list(evidence or [])),
        "notes": notes or "",
        "mode": mode,
    }
    validate_result(result)
    return result


def validate_result(result):
    """Raise ResultError unless `result` follows the model. Returns the result for chaining."""
    if not isinstance(result, dict):
        raise ResultError("a result must be a mapping, got %s" % type(result).__name__)
    rid = result.get("id")
    if not rid or not isinstance(rid, str):
        raise ResultError("a result needs a requirement id")
    status = result.get("status")
    if status not in STATUSES:
        raise ResultError("%s: status %r is not one of %s" % (rid, status, ", ".join(STATUSES)))
    if status == NOT_APPLICABLE and not str(result.get("notes") or "").strip():
        raise ResultError("%s: N/A needs a justification in notes (why the requirement does not apply)" % rid)
    for finding in result.get("findings") or []:
        if not isinstance(finding, dict) or "name" not in finding or finding.get("passed") not in (True, False, None):
            raise ResultError("%s: malformed finding %r" % (rid, finding))
    for item in result.get("evidence") or []:
        if not isinstance(item, dict) or "title" not in item or item.get("kind", "text") not in EVIDENCE_KINDS:
            raise ResultError("%s: malformed evidence item %r" % (rid, item))
    return result


def combine_vendors(requirement_id, per_vendor, mode="active"):
    """One result from the results of the same check run once per accelerator vendor on the cluster
    ([(vendor display name, result dict)], in table order). The status is the weakest of the vendors the
    requirement applies to (N/A only when it applies to none); summary, findings, evidence and notes keep
    each vendor's own, labelled with its name."""
    applicable = [(name, r) for name, r in per_vendor if r["status"] != NOT_APPLICABLE]
    status = weakest(*[r["status"] for _name, r in applicable]) if applicable else NOT_APPLICABLE
    findings, evidence, notes = [], [], []
    for name, result in per_vendor:
        for finding in result["findings"]:
            findings.append(dict(finding, name="[%s] %s" % (name, finding["name"])))
        for item in result["evidence"]:
            evidence.append(dict(item, title="[%s] %s" % (name, item["title"])))
        if str(result.get("notes") or "").strip():
            notes.append("%s: %s" % (name, result["notes"].strip()))
    summary = "; ".join("%s: %s (%s)" % (name, r["summary"] or r["status"], r["status"]) for name, r in per_vendor)
    return make_result(requirement_id, status, findings, evidence, "\n".join(notes), summary=summary, mode=mode)
