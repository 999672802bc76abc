# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Turn check results into a CNCF AI Conformance submission: merge, then render. No file I/O here.

`build_plan()` decides, per requirement of the checklist, what PRODUCT.yaml says and why (our result,
a person's manual override, or nothing), merging with what a person already wrote in an existing
PRODUCT.yaml. The `render_*()` functions turn that plan into PRODUCT.yaml, evidence/<id>.md,
junit.xml and SUMMARY.md. `_report_files.run_report()` reads and writes the files.

Precedence, per requirement (documented for operators in docs/report.md):
1. an entry in overrides.yaml next to PRODUCT.yaml (written with notes "[manual override: <reason>] ...");
2. a requirement whose notes in the existing PRODUCT.yaml start with "[manual]" (kept exactly as written);
3. our result (evidence: what the person added first, then evidence/<id>.md);
4. nothing: status "" and the requirement is listed as missing.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from ansible_collections.k8s_ai.conformance.plugins.module_utils import _yaml_nodes as yn
from ansible_collections.k8s_ai.conformance.plugins.module_utils import checklist as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_APPLICABLE, NOT_IMPLEMENTED, PARTIAL, STATUSES, ResultError, validate_result,
)

PRODUCT_FILE = "PRODUCT.yaml"
OVERRIDES_FILE = "overrides.yaml"
EVIDENCE_DIR = "evidence"
MANUAL_MARK = "[manual]"
OVERRIDE_MARK = "[manual override: %s]"
_OVERRIDE_MARK_RE = re.compile(r"^\[manual override: ")

POLICY_NA = "na"
POLICY_IMPLEMENTED_WITH_NOTE = "implemented_with_note"
POLICIES = (POLICY_NA, POLICY_IMPLEMENTED_WITH_NOTE)

SOURCE_VERIFIED = "verified"
SOURCE_MANUAL = "manual"
SOURCE_MISSING = "missing"

BLANK = "blank"   # the key used in counts for status ""
_RESULT_KEYS = ("id", "status", "summary", "findings", "evidence", "notes", "mode")
_OVERRIDE_KEYS = ("status", "evidence", "notes", "reason")
MAX_EXCERPT_LINES = 200
MAX_EXCERPT_CHARS = 20000

METADATA_HINTS = {
    "kubernetesVersion": "the Kubernetes version of the product, e.g. v1.35",
    "platformName": "the product's name",
    "platformVersion": "the product's own version (not Kubernetes'), as a quoted string",
    "vendorName": "the legal entity, exactly as listed under CNCF Members on https://landscape.cncf.io/members",
    "websiteUrl": "the product's web page",
    "repoUrl": "the source repository (optional; leave unset for closed source)",
    "documentationUrl": "the product documentation",
    "productLogoUrl": "a URL of an SVG, EPS or AI logo that shows the product name",
    "description": "one sentence describing the product",
    "contactEmailAddress": "an address CNCF can write to about this submission",
    "k8sConformanceUrl": "the product's Kubernetes conformance submission, "
                         "https://github.com/cncf/k8s-conformance/tree/master/v<X.Y>/<product>",
}


class ReportError(ValueError):
    """Input the report writer cannot use; the message says how to fix it."""


def argument_spec():
    """The product_report module's options (the module's DOCUMENTATION mirrors this exactly)."""
    return dict(
        output_dir=dict(type="path", required=True),
        platform_dir=dict(type="str"),
        conformance_version=dict(type="str"),
        cluster_version=dict(type="str"),
        metadata=dict(type="dict", default={}),
        metadata_overwrite=dict(type="bool", default=False),
        results=dict(type="raw", default=[]),
        policy=dict(type="dict", default={}, options=dict(
            conditional_must_not_applicable=dict(type="str", choices=list(POLICIES), default=POLICY_NA),
        )),
        junit=dict(type="bool", default=True),
        summary=dict(type="bool", default=True),
        backup=dict(type="bool", default=True),
    )


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

def plain(value):
    """Deep copy into plain dict/list/str/int/float/bool/None (Ansible hands over tagged subclasses)."""
    if isinstance(value, dict):
        return dict((str(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def metadata_field(key):
    """The camelCase field for a camelCase or snake_case metadata key, or None if it is not one."""
    for field in cl.METADATA_FIELDS:
        if key in (field, cl.snake_case(field)):
            return field
    return None


def is_unset(value):
    """Empty, None, or a template placeholder such as "[Platform Name]"."""
    if value is None:
        return True
    text = str(value).strip()
    return text == "" or (text.startswith("[") and text.endswith("]"))


def normalize_metadata(metadata):
    """{camelCase field: string} from the `metadata` option (camelCase or snake_case keys)."""
    if metadata in (None, ""):
        return {}
    if not isinstance(metadata, dict):
        raise ReportError("metadata must be a mapping of PRODUCT.yaml metadata fields, got %s" % type(metadata).__name__)
    normalized = {}
    for key, value in metadata.items():
        field = metadata_field(key)
        if field is None:
            raise ReportError("metadata.%s is not a PRODUCT.yaml metadata field; use %s (or their snake_case forms)"
                              % (key, ", ".join(cl.METADATA_FIELDS)))
        if isinstance(value, bool) or isinstance(value, float) or isinstance(value, (dict, list)):
            raise ReportError("metadata.%s must be a string, got %r: quote it in YAML (%s: \"1.10\" stays 1.10, "
                              "unquoted it is the number 1.1)" % (key, value, key))
        text = "" if value is None else str(value)
        if field in normalized and normalized[field] != text:
            raise ReportError("metadata sets %s twice with different values (%r and %r): keep one of %s / %s"
                              % (field, normalized[field], text, field, cl.snake_case(field)))
        normalized[field] = text
    return normalized


def normalize_results(results, checklist):
    """({id: result dict}, warnings) from a list of results or a mapping id -> result.

    Results are validated against the shared model (result.validate_result); ids that the checklist of
    this version does not have are dropped with a warning (e.g. dra_support on 1.36).
    """
    items = _result_items(results)
    by_id = {}
    warnings = []
    for label, item in items:
        if isinstance(item, dict) and item.get("skipped") and "status" not in item:
            warnings.append("%s is a skipped task's result (no status); it was ignored" % label)
            continue
        result = dict((key, item[key]) for key in _RESULT_KEYS if isinstance(item, dict) and key in item)
        if not isinstance(item, dict):
            raise ReportError("%s must be a result mapping (id, status, summary, findings, evidence, notes), got %s"
                              % (label, type(item).__name__))
        try:
            validate_result(result)
        except ResultError as exc:
            raise ReportError("%s is not a valid result: %s" % (label, exc))
        rid = result["id"]
        if rid in by_id:
            raise ReportError("%s: a second result for %s; pass one result per requirement" % (label, rid))
        if rid not in checklist.by_id:
            warnings.append("result %s is not a requirement of the %s checklist (%s); it is not written to PRODUCT.yaml"
                            % (rid, checklist.version, ", ".join(checklist.ids)))
            continue
        by_id[rid] = result
    return by_id, warnings


def _result_items(results):
    if results in (None, ""):
        return []
    if isinstance(results, dict):
        items = []
        for key, item in results.items():
            if isinstance(item, dict) and "id" not in item:
                item = dict(item, id=key)
            if isinstance(item, dict) and item.get("id") != key:
                raise ReportError("results.%s holds the result of %s; key the mapping by requirement id" % (key, item.get("id")))
            items.append(("results.%s" % key, item))
        return items
    if isinstance(results, list):
        return [("results[%d]" % index, item) for index, item in enumerate(results)]
    raise ReportError("results must be a list of results or a mapping id -> result, got %s" % type(results).__name__)


def sanitize_dir(name):
    """A directory name for v<X.Y>/<dir>/ from a platform name: "Turbo Encabulator 2" -> "turbo-encabulator-2"."""
    text = re.sub(r"[^a-z0-9._-]+", "-", str(name or "").strip().lower()).strip("-.")
    if not text:
        raise ReportError("cannot derive platform_dir from platformName %r: set platform_dir (e.g. my-platform)" % (name,))
    return text


def check_platform_dir(name):
    """platform_dir as given, refused when it is not a single plain directory name."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise ReportError("platform_dir %r must be one directory name such as my-platform (no slashes, not hidden)" % (name,))
    return name


# --------------------------------------------------------------------------------------------------
# Existing PRODUCT.yaml and overrides.yaml
# --------------------------------------------------------------------------------------------------

class Existing(object):
    """What a previous run or a person left in PRODUCT.yaml: metadata and requirements by id."""

    def __init__(self, metadata=None, extra_metadata=None, requirements=None):
        self.metadata = metadata or {}                # camelCase field -> raw text
        self.extra_metadata = extra_metadata or []    # [(key, text)] keys that are not CNCF fields
        self.requirements = requirements or {}        # id -> {"status", "evidence", "notes"}


def parse_existing(text, path=PRODUCT_FILE):
    """Existing for the text of a PRODUCT.yaml; ReportError (nothing is overwritten) when it is not readable."""
    try:
        data = yn.load_plain(text)
    except yn.YamlError as exc:
        raise ReportError("the existing %s cannot be parsed (%s): fix it or move it away; nothing was written" % (path, exc))
    if data is None:
        return Existing()
    if not isinstance(data, dict):
        raise ReportError("the existing %s is not a PRODUCT.yaml (no metadata/spec mapping): move it away; nothing was written" % path)
    metadata, extra = _existing_metadata(data.get("metadata"))
    requirements = {}
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    for entries in spec.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                requirements[entry["id"]] = {
                    "status": _text(entry.get("status")),
                    "evidence": [_text(item) for item in entry.get("evidence")] if isinstance(entry.get("evidence"), list) else [],
                    "notes": _text(entry.get("notes")),
                }
    return Existing(metadata, extra, requirements)


def _existing_metadata(node):
    metadata, extra = {}, []
    for key, value in (node.items() if isinstance(node, dict) else []):
        field = metadata_field(key)
        if field is None:
            if isinstance(value, str):
                extra.append((key, value))
        elif isinstance(value, str) and (field not in metadata or key == field):
            metadata[field] = value
    return metadata, extra


def _text(value):
    return value if isinstance(value, str) else ""


def parse_overrides(text, checklist, path=OVERRIDES_FILE):
    """{id: {status, evidence (list or None), notes, reason}} from overrides.yaml; ReportError naming the fix."""
    try:
        data = yn.load_plain(text)
    except yn.YamlError as exc:
        raise ReportError("%s cannot be parsed: %s" % (path, exc))
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) != {"overrides"} or not isinstance(data["overrides"] or {}, dict):
        raise ReportError("%s must hold one key, overrides:, mapping requirement ids to {status, evidence, notes, reason}" % path)
    overrides = {}
    for rid, entry in (data["overrides"] or {}).items():
        overrides[rid] = _override(rid, entry, checklist, path)
    return overrides


def _override(rid, entry, checklist, path):
    where = "%s: overrides.%s" % (path, rid)
    req = checklist.by_id.get(rid)
    if req is None:
        raise ReportError("%s: %s is not a requirement of the %s checklist (%s)" % (where, rid, checklist.version, ", ".join(checklist.ids)))
    if not isinstance(entry, dict):
        raise ReportError("%s must be a mapping with status, reason and optionally evidence, notes" % where)
    unknown = sorted(set(entry) - set(_OVERRIDE_KEYS))
    if unknown:
        raise ReportError("%s: unknown keys %s; allowed: %s" % (where, ", ".join(unknown), ", ".join(_OVERRIDE_KEYS)))
    status = entry.get("status")
    allowed = STATUSES + (("",) if req.level == cl.SHOULD else ())
    if status not in allowed:
        raise ReportError("%s: status %r must be one of %s" % (where, status, ", ".join('"%s"' % s for s in allowed)))
    reason = entry.get("reason")
    if is_unset(reason):
        raise ReportError("%s: reason is required (who decided this and why; it is shown in notes and SUMMARY.md)" % where)
    notes = entry.get("notes") or ""
    if status == NOT_APPLICABLE and not str(notes).strip():
        raise ReportError("%s: N/A needs notes explaining why the requirement does not apply to the platform" % where)
    evidence = entry.get("evidence")
    if evidence is not None and (not isinstance(evidence, list) or not all(isinstance(item, str) for item in evidence)):
        raise ReportError("%s: evidence must be a list of URLs or paths relative to PRODUCT.yaml" % where)
    return {"status": status, "evidence": evidence, "notes": str(notes), "reason": str(reason)}


# --------------------------------------------------------------------------------------------------
# The plan: what each requirement says, and why
# --------------------------------------------------------------------------------------------------

class Entry(object):
    """One requirement as it will be written, with where it came from."""

    def __init__(self, req, status, evidence, notes, source, summary, result=None, manual=""):
        self.req = req
        self.status = status
        self.evidence = evidence
        self.notes = notes
        self.source = source          # verified | manual | missing
        self.summary = summary        # one line for SUMMARY.md
        self.result = result          # our result, if any (also for overridden requirements)
        self.manual = manual          # "" | "override" | "inline"
        self.policy_applied = False


class Plan(object):
    def __init__(self, checklist, metadata, entries, warnings, blocking):
        self.checklist = checklist
        self.metadata = metadata      # [(key, value)] in write order
        self.entries = entries        # [Entry] in checklist order
        self.warnings = warnings
        self.blocking = blocking      # [(location, message)]

    def counts(self):
        counts = dict((status, 0) for status in STATUSES)
        counts[BLANK] = 0
        for entry in self.entries:
            counts[entry.status if entry.status in STATUSES else BLANK] += 1
        return counts


def evidence_path(requirement_id):
    return "%s/%s.md" % (EVIDENCE_DIR, requirement_id)


def build_plan(checklist, results, metadata, existing=None, overrides=None, policy=POLICY_NA, metadata_overwrite=False):
    """The Plan for `checklist` from normalized results/metadata, an Existing file and parsed overrides."""
    if policy not in POLICIES:
        raise ReportError("policy.conditional_must_not_applicable must be one of %s, got %r" % (", ".join(POLICIES), policy))
    existing = existing or Existing()
    overrides = overrides or {}
    warnings, blocking = [], []
    meta = _merge_metadata(checklist, metadata, existing, metadata_overwrite, warnings)
    for key, value in meta:
        if key in checklist.metadata_keys and key not in cl.OPTIONAL_METADATA and is_unset(value):
            blocking.append(("metadata.%s" % key, "metadata.%s is not set: pass metadata.%s (%s)" % (key, key, METADATA_HINTS[key])))
    entries = []
    for req in checklist.requirements:
        entry = _entry(req, results.get(req.id), existing.requirements.get(req.id), overrides.get(req.id), policy)
        entries.append(entry)
        message = _blocking_message(entry)
        if message:
            blocking.append(("spec.%s.%s" % (req.category, req.id), message))
    return Plan(checklist, meta, entries, warnings, blocking)


def _merge_metadata(checklist, given, existing, overwrite, warnings):
    """Metadata in write order: a person's filled value beats an unset input; inputs beat placeholders."""
    merged = []
    for key in checklist.metadata_keys:
        theirs = existing.metadata.get(key)
        ours = given.get(key)
        if not is_unset(theirs) and not is_unset(ours) and theirs != ours:
            if overwrite:
                value = ours
            else:
                value = theirs
                warnings.append("metadata.%s: kept %r from the existing PRODUCT.yaml over the input %r; set "
                                "metadata_overwrite: true to replace it" % (key, theirs, ours))
        elif not is_unset(theirs):
            value = theirs
        elif not is_unset(ours):
            value = ours
        else:
            value = "" if key in cl.OPTIONAL_METADATA else checklist.placeholder(key)
        merged.append((key, value))
    merged.extend(existing.extra_metadata)
    return merged


def _entry(req, result, existing, override, policy):
    theirs = [item for item in (existing or {}).get("evidence", []) if item and item != evidence_path(req.id)]
    ours = [evidence_path(req.id)] if result else []
    if override is not None:
        notes = (OVERRIDE_MARK % override["reason"]) + (" " + override["notes"] if override["notes"] else "")
        evidence = override["evidence"] if override["evidence"] is not None else _merge_lists(theirs, ours)
        return Entry(req, override["status"], evidence, notes, SOURCE_MANUAL, "manual override: %s" % override["reason"],
                     result, manual="override")
    if existing and existing["notes"].lstrip().startswith(MANUAL_MARK):
        return Entry(req, existing["status"], list(existing["evidence"]), existing["notes"], SOURCE_MANUAL,
                     "kept as written in PRODUCT.yaml (%s)" % _one_line(existing["notes"]), result, manual="inline")
    if result is None:
        return Entry(req, "", theirs, "", SOURCE_MISSING, "no result: the check did not run")
    entry = Entry(req, result["status"], _merge_lists(theirs, ours), result.get("notes") or "", SOURCE_VERIFIED,
                  _one_line(result.get("summary") or result.get("notes") or result["status"]), result)
    if entry.status == NOT_APPLICABLE and req.conditional and policy == POLICY_IMPLEMENTED_WITH_NOTE:
        entry.status = IMPLEMENTED
        entry.policy_applied = True
        entry.notes = ("Not applicable: %s Written as Implemented under the policy implemented_with_note: this MUST is "
                       "conditional (\"%s\") and its condition does not hold on this platform; CNCF's validator "
                       "accepts only Implemented for a MUST." % (_sentence(entry.notes), _first_clause(req.description)))
        entry.summary = "N/A, written as Implemented by policy: " + entry.summary
    return entry


def _merge_lists(first, second):
    merged = []
    for item in list(first) + list(second):
        if item not in merged:
            merged.append(item)
    return merged


def _one_line(text):
    text = " ".join(str(text or "").split())
    return text if len(text) <= 160 else text[:157] + "..."


def _sentence(text):
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _first_clause(description):
    return description.split(",")[0]


def _blocking_message(entry):
    """Why this requirement blocks a CNCF submission, with the fix; "" when it does not."""
    req = entry.req
    if req.level != cl.MUST or entry.status == IMPLEMENTED:
        return ""
    if entry.source == SOURCE_MISSING:
        return ("%s (MUST) has no result: run its check (k8s_ai.conformance.%s) or record a manual override in %s"
                % (req.id, req.id, OVERRIDES_FILE))
    by = " by manual override" if entry.source == SOURCE_MANUAL else ""
    base = ("%s (MUST) is %s%s: this submission will not pass CNCF validation, which accepts only Implemented for a MUST"
            % (req.id, '"%s"' % entry.status if entry.status else "blank", by))
    if entry.status == NOT_APPLICABLE and req.conditional and entry.source == SOURCE_VERIFIED:
        hint = (". The requirement is conditional (\"%s\"): if the condition does not hold on this platform, set "
                "policy.conditional_must_not_applicable: %s to write Implemented with the justification in notes; "
                "otherwise make it work (see %s)")
        return base + hint % (_first_clause(req.description), POLICY_IMPLEMENTED_WITH_NOTE, evidence_path(req.id))
    if entry.status == NOT_APPLICABLE:
        return base + ". N/A is never accepted for this MUST; make it work (see %s)" % evidence_path(req.id)
    if entry.source == SOURCE_VERIFIED:
        return base + ". Fix what %s lists as failed and run again" % evidence_path(req.id)
    return base


# --------------------------------------------------------------------------------------------------
# PRODUCT.yaml
# --------------------------------------------------------------------------------------------------

def quote(text):
    """A YAML double-quoted scalar: every value is a string, whatever it looks like (1.10, yes, 2026-01-02)."""
    dumped = yn.yaml.dump(str(text), Dumper=yn.yaml.SafeDumper, default_style='"', allow_unicode=True, width=float("inf"))
    return dumped.rstrip("\n")


def render_product(plan):
    """PRODUCT.yaml in the template's layout: header comments, metadata, spec categories in order."""
    lines = list(plan.checklist.header)
    if lines:
        lines.append("")
    lines.append("metadata:")
    lines.extend("  %s: %s" % (key, quote(value)) for key, value in plan.metadata)
    lines.append("")
    lines.append("spec:")
    by_category = {}
    for entry in plan.entries:
        by_category.setdefault(entry.req.category, []).append(entry)
    for category, dummy in plan.checklist.categories:
        entries = by_category.get(category, [])
        lines.append("  %s:%s" % (category, "" if entries else " []"))
        for entry in entries:
            lines.extend(_requirement_lines(entry))
    return "\n".join(lines) + "\n"


def _requirement_lines(entry):
    lines = [
        "    - id: %s" % quote(entry.req.id),
        "      description: %s" % quote(entry.req.description),
        "      level: %s" % quote(entry.req.level),
        "      status: %s" % quote(entry.status),
    ]
    if entry.evidence:
        lines.append("      evidence:")
        lines.extend("        - %s" % quote(item) for item in entry.evidence)
    else:
        lines.append("      evidence: []")
    lines.append("      notes: %s" % quote(entry.notes))
    return lines


# --------------------------------------------------------------------------------------------------
# evidence/<id>.md
# --------------------------------------------------------------------------------------------------

DATE_LINE_RE = re.compile(r"^\| Date \| (.*) \|$", re.M)


def render_evidence(entry, context, date):
    """The Markdown evidence file for one requirement with a result.

    `context`: {"version", "collection_version", "cluster_version"}. `date` is a separate argument so
    that the file can be compared with the previous one without it (see _report_files).
    """
    req, result = entry.req, entry.result
    lines = [
        "# %s: %s" % (req.id, result["status"]),
        "",
        "| | |",
        "| --- | --- |",
        "| Requirement | `%s` (%s), %s |" % (req.id, req.category, req.level),
        "| Checklist | CNCF Kubernetes AI Conformance v%s |" % context["version"],
        "| Verdict | **%s** |" % result["status"],
        "| Checked by | k8s_ai.conformance %s, mode %s |" % (context["collection_version"], result.get("mode") or "active"),
        "| Cluster version | %s |" % _cell(context.get("cluster_version") or "not recorded"),
        "| Date | %s |" % date,
        "",
        "## Requirement",
        "",
        "> %s" % req.description,
        "",
        "## Verdict",
        "",
        "**%s**%s" % (result["status"], ": " + result["summary"] if result.get("summary") else ""),
    ]
    if entry.status != result["status"] or entry.manual:
        lines.extend(["", "PRODUCT.yaml says **%s** (%s)." % (entry.status or "blank", _written_as(entry))])
    lines.extend(_findings_lines(result.get("findings") or []))
    lines.extend(_evidence_lines(result.get("evidence") or []))
    if result.get("notes"):
        lines.extend(["", "## Notes", "", result["notes"]])
    return "\n".join(lines) + "\n"


def _written_as(entry):
    if entry.manual == "override":
        return "manual override in %s" % OVERRIDES_FILE
    if entry.manual == "inline":
        return "kept as a person wrote it, marked %s" % MANUAL_MARK
    return "policy %s" % POLICY_IMPLEMENTED_WITH_NOTE


def _findings_lines(findings):
    lines = ["", "## What was checked", ""]
    if not findings:
        return lines + ["No individual checks were recorded."]
    lines.extend(["| Check | Result | Detail |", "| --- | --- | --- |"])
    labels = {True: "passed", False: "**failed**", None: "skipped"}
    for finding in findings:
        lines.append("| %s | %s | %s |" % (_cell(finding.get("name")), labels[finding.get("passed")], _cell(finding.get("detail"))))
    return lines


def _evidence_lines(items):
    lines = ["", "## What was seen"]
    if not items:
        return lines + ["", "Nothing was recorded."]
    for item in items:
        lines.extend(["", "### %s" % " ".join(str(item.get("title") or "evidence").split()), ""])
        lines.extend(_evidence_body(item.get("kind") or "text", item.get("content")))
    return lines


def _evidence_body(kind, content):
    if kind == "table" and _is_table(content):
        return _table(content)
    if isinstance(content, str):
        text = content
    elif kind == "yaml":
        text = yn.yaml.safe_dump(content, default_flow_style=False, sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(content, indent=2, sort_keys=False, default=str, ensure_ascii=False)
    text, note = _trim(text)
    fence_kind = kind if kind in ("yaml", "json") else "text"
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    lines = [fence + fence_kind] + text.rstrip("\n").split("\n") + [fence]
    return lines + (["", note] if note else [])


def _is_table(content):
    """A list of row mappings, or a list of rows (lists) whose first row is the header."""
    if not isinstance(content, list) or not content:
        return False
    return all(isinstance(row, dict) for row in content) or all(isinstance(row, list) for row in content)


def _table(rows):
    if all(isinstance(row, dict) for row in rows):
        columns = []
        for row in rows:
            columns.extend(key for key in row if key not in columns)
        body = [[row.get(column, "") for column in columns] for row in rows]
    else:
        columns, body = rows[0], rows[1:]
    trimmed = len(body) > MAX_EXCERPT_LINES
    body = body[:MAX_EXCERPT_LINES]
    lines = ["| %s |" % " | ".join(_cell(column) for column in columns), "|" + " --- |" * len(columns)]
    lines.extend("| %s |" % " | ".join(_cell(value) for value in row) for row in body)
    if trimmed:
        lines.extend(["", "_Trimmed: %d more rows are not shown._" % (len(rows) - 1 - MAX_EXCERPT_LINES)])
    return lines


def _trim(text):
    """Long excerpts keep their head; the note says how much was left out."""
    lines = text.split("\n")
    if len(lines) <= MAX_EXCERPT_LINES and len(text) <= MAX_EXCERPT_CHARS:
        return text, ""
    kept = "\n".join(lines[:MAX_EXCERPT_LINES])[:MAX_EXCERPT_CHARS]
    omitted_lines = len(lines) - len(kept.split("\n"))
    return kept, ("_Trimmed: the excerpt above shows the first %d of %d lines (%d of %d characters); %d lines are "
                  "not shown._" % (len(kept.split("\n")), len(lines), len(kept), len(text), omitted_lines))


def _longest_backtick_run(text):
    runs = re.findall(r"`+", text)
    return max(len(run) for run in runs) if runs else 0


def _cell(value):
    """Text that stays inside one Markdown table cell."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


# --------------------------------------------------------------------------------------------------
# junit.xml and SUMMARY.md
# --------------------------------------------------------------------------------------------------

def render_junit(plan, platform):
    """One testcase per requirement: failure for a MUST Not/Partially Implemented, skipped for blank or N/A."""
    suite = ET.Element("testsuite", name="k8s_ai.conformance AI Conformance v%s %s" % (plan.checklist.version, platform))
    failures = skipped = 0
    for entry in plan.entries:
        case = ET.SubElement(suite, "testcase", classname=entry.req.category, name=entry.req.id, time="0")
        status = entry.status or "blank"
        if entry.req.level == cl.MUST and entry.status in (NOT_IMPLEMENTED, PARTIAL):
            failures += 1
            failure = ET.SubElement(case, "failure", type=status, message="MUST requirement is %s" % status)
            failure.text = entry.summary
        elif entry.status in ("", NOT_APPLICABLE):
            skipped += 1
            ET.SubElement(case, "skipped", message=_skip_message(entry))
        out = ET.SubElement(case, "system-out")
        out.text = "%s %s: %s (%s). %s" % (entry.req.level, entry.req.id, status, entry.source, entry.summary)
    counts = plan.counts()
    suite.set("tests", str(len(plan.entries)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    suite.set("time", "0")
    out = ET.SubElement(suite, "system-out")
    out.text = "; ".join("%s: %d" % (key, value) for key, value in counts.items()) + ". " + _verdict_line(plan)
    root = ET.Element("testsuites", name="k8s_ai.conformance", tests=suite.get("tests"), failures=str(failures),
                      skipped=str(skipped), errors="0", time="0")
    root.append(suite)
    _indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _indent(element, level=0):
    """Pretty-print in place (ElementTree.indent exists only from Python 3.9)."""
    pad = "\n" + "  " * level
    if len(element):
        if not (element.text or "").strip():
            element.text = pad + "  "
        for child in element:
            _indent(child, level + 1)
        if not (child.tail or "").strip():
            child.tail = pad
    if level and not (element.tail or "").strip():
        element.tail = pad


def _skip_message(entry):
    if entry.status == "":
        return entry.summary
    if entry.req.level == cl.MUST:
        return "N/A on a MUST: CNCF validation rejects it"
    return "N/A: %s" % _one_line(entry.notes)


def _verdict_line(plan):
    if plan.blocking:
        return "CNCF submission blocked by %d issue(s); see SUMMARY.md." % len(plan.blocking)
    return "No blocking issue found."


def render_summary(plan, context, validation):
    """SUMMARY.md: the table of requirements and what blocks a CNCF submission, with fixes."""
    metadata = dict(plan.metadata)
    name = metadata.get("platformName")
    title = "# AI Conformance v%s: %s" % (plan.checklist.version, name if not is_unset(name) else "(platformName not set)")
    blocking = blocking_messages(plan, validation)
    lines = [
        title,
        "",
        "Written by k8s_ai.conformance %s from checks on a cluster running %s. The submission is `PRODUCT.yaml`; "
        "each verified requirement links its evidence file under `%s/`." % (
            context["collection_version"], context.get("cluster_version") or "(cluster version not recorded)", EVIDENCE_DIR),
        "",
        "**CNCF submission: %s**" % ("blocked, %d issue(s) below" % len(blocking) if blocking else
                                     "no blocking issue found offline (URLs and the CNCF landscape were not checked)"),
        "",
        "| id | level | status | source | summary |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in plan.entries:
        cells = (entry.req.id, entry.req.level, _cell(entry.status or "(blank)"), entry.source, _cell(entry.summary))
        lines.append("| %s | %s | %s | %s | %s |" % cells)
    lines.extend(_section("What blocks a CNCF submission, and how to fix it", blocking))
    manual = [entry for entry in plan.entries if entry.source == SOURCE_MANUAL]
    lines.extend(_section("Manual overrides (not verified by this collection)", [
        "%s: %s, %s" % (entry.req.id, entry.status or "(blank)", entry.summary) for entry in manual]))
    policy = [entry for entry in plan.entries if entry.policy_applied]
    lines.extend(_section("Written as Implemented by policy (honest verdict N/A)", [
        "%s: %s" % (entry.req.id, _one_line(entry.notes)) for entry in policy]))
    lines.extend(_section("Warnings", list(plan.warnings) + list(validation.get("warnings") or [])))
    return "\n".join(lines) + "\n"


def _section(title, items):
    if not items:
        return []
    return ["", "## %s" % title, ""] + ["- %s" % item.replace("\n", " ") for item in items]


def blocking_messages(plan, validation):
    """Our blocking messages, then the validator's errors about anything we did not already report."""
    messages = [message for dummy, message in plan.blocking]
    covered = set(location for location, dummy in plan.blocking)
    for error in validation.get("errors") or []:
        location = error.split(":", 1)[0]
        if location not in covered:
            messages.append(error)
    return messages
