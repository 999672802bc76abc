# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The file side of the report writer (controller only): read what exists, write what changed.

Every file is written atomically (a temporary file in the same directory, then os.replace), only when
its content changes, so a second run with the same inputs changes nothing. The previous PRODUCT.yaml
is copied to PRODUCT.yaml.<UTC timestamp>.bak before it is replaced. Evidence files carry a date that
is kept when nothing else in them changed.
"""
from __future__ import annotations

import datetime
import functools
import json
import os
import shutil
import tempfile

from ansible_collections.k8s_ai.conformance.plugins.module_utils import _yaml_nodes as yn
from ansible_collections.k8s_ai.conformance.plugins.module_utils import checklist as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import report as rp
from ansible_collections.k8s_ai.conformance.plugins.module_utils import validator

COLLECTION_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
JUNIT_FILE = "junit.xml"
SUMMARY_FILE = "SUMMARY.md"


def collection_version(root=COLLECTION_ROOT):
    """This collection's version: MANIFEST.json when installed, galaxy.yml in a source tree."""
    try:
        with open(os.path.join(root, "MANIFEST.json")) as handle:
            return json.load(handle)["collection_info"]["version"]
    except (IOError, OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(root, "galaxy.yml")) as handle:
            return str((yn.load_plain(handle.read()) or {}).get("version") or "unknown")
    except (IOError, OSError, yn.YamlError, AttributeError):
        return "unknown"


def read_text(path):
    """The file's text, or None when there is no file."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except FileNotFoundError:
        return None
    except (IOError, OSError) as exc:
        raise rp.ReportError("cannot read %s: %s. Check output_dir: every part of that path must be a directory "
                             "you may read (not a file)" % (path, exc.strerror))
    except UnicodeDecodeError:
        raise rp.ReportError("%s is not UTF-8 text: fix it or move it away; nothing was written" % path)


def atomic_write(path, text):
    """Write `text` to `path` through a temporary file in the same directory and os.replace."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _mode(path):
    """Keep an existing file's mode; new files get 0644 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o644 & ~umask


def backup(path, now):
    """Copy `path` to <path>.<YYYYmmddTHHMMSSZ>.bak (a numbered suffix if that exists); return the backup path."""
    base = "%s.%s" % (path, now.strftime("%Y%m%dT%H%M%SZ"))
    candidate, number = base + ".bak", 1
    while os.path.exists(candidate):
        candidate, number = "%s.%d.bak" % (base, number), number + 1
    shutil.copy2(path, candidate)
    return candidate


class _Writer(object):
    """Collects the files of one run, then writes the changed ones (or only reports them in check mode)."""

    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.changed = []

    def write(self, path, text, before):
        if before == text:
            return False
        self.changed.append(path)
        if not self.check_mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, text)
        return True


def _dated(path, render):
    """(text, previous text) for a file whose render(date) embeds a date: the old date when nothing else changed."""
    before = read_text(path)
    if before is not None:
        match = rp.DATE_LINE_RE.search(before)
        if match and render(match.group(1)) == before:
            return before, before
    return render(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")), before


def run_report(options, check_mode=False, checklist_dir=None):
    """Write (or, in check mode, plan) the report; the module's return values, without `changed` semantics lost.

    `options` are the product_report module's parameters after argument-spec validation.
    Raises rp.ReportError / cl.ChecklistError with a message naming the fix.
    """
    version, warnings = cl.select_version(cl.available_versions(checklist_dir), options.get("cluster_version"),
                                          options.get("conformance_version"))
    checklist = cl.load_checklist(version, checklist_dir)
    metadata = rp.normalize_metadata(rp.plain(options.get("metadata")))
    results, result_warnings = rp.normalize_results(rp.plain(options.get("results")), checklist)
    warnings.extend(result_warnings)
    platform_dir = _platform_dir(options.get("platform_dir"), metadata)
    product_dir = os.path.join(options["output_dir"], "v%s" % version, platform_dir)
    product_path = os.path.join(product_dir, rp.PRODUCT_FILE)

    before = read_text(product_path)
    existing = rp.parse_existing(before, product_path) if before is not None else None
    overrides_text = read_text(os.path.join(product_dir, rp.OVERRIDES_FILE))
    overrides = rp.parse_overrides(overrides_text, checklist, os.path.join(product_dir, rp.OVERRIDES_FILE)) if overrides_text else {}
    policy = (options.get("policy") or {}).get("conditional_must_not_applicable") or rp.POLICY_NA
    plan = rp.build_plan(checklist, results, metadata, existing, overrides, policy, options.get("metadata_overwrite"))
    warnings.extend(plan.warnings)
    plan.warnings = warnings

    context = {"version": version, "collection_version": collection_version(),
               "cluster_version": options.get("cluster_version") or ""}
    writer = _Writer(check_mode)
    evidence_files = _write_evidence(writer, plan, product_dir, context)
    product_text = rp.render_product(plan)
    validation = validator.validate_text(product_text, product_path, checklist_dir=checklist_dir,
                                         extra_files=[rp.evidence_path(entry.req.id) for entry in plan.entries if entry.result])
    validation.pop("urls")
    outcome = {"junit_path": None, "summary_path": None}
    if options.get("junit", True):
        outcome["junit_path"] = os.path.join(product_dir, JUNIT_FILE)
        writer.write(outcome["junit_path"], rp.render_junit(plan, platform_dir), read_text(outcome["junit_path"]))
    if options.get("summary", True):
        outcome["summary_path"] = os.path.join(product_dir, SUMMARY_FILE)
        writer.write(outcome["summary_path"], rp.render_summary(plan, context, validation), read_text(outcome["summary_path"]))
    backup_file = _write_product(writer, product_path, product_text, before, options.get("backup", True))
    outcome.update({
        "changed": bool(writer.changed), "path": product_path, "evidence_files": evidence_files,
        "backup_file": backup_file, "version": version, "counts": plan.counts(),
        "blocking": rp.blocking_messages(plan, validation), "validation": validation,
        "requirements": [{"id": e.req.id, "level": e.req.level, "status": e.status, "source": e.source} for e in plan.entries],
        "changed_files": writer.changed, "warnings": warnings,
        "diff": {"before": before or "", "after": product_text, "before_header": product_path, "after_header": product_path},
    })
    return outcome


def _platform_dir(given, metadata):
    if given:
        return rp.check_platform_dir(given)
    if rp.is_unset(metadata.get("platformName")):
        raise rp.ReportError("set platform_dir (the directory under v<X.Y>/, e.g. my-platform) or metadata.platformName "
                             "to derive it from")
    return rp.sanitize_dir(metadata["platformName"])


def _write_evidence(writer, plan, product_dir, context):
    paths = []
    for entry in plan.entries:
        if not entry.result:
            continue
        path = os.path.join(product_dir, rp.evidence_path(entry.req.id))
        text, before = _dated(path, functools.partial(rp.render_evidence, entry, context))
        writer.write(path, text, before)
        paths.append(path)
    return paths


def _write_product(writer, path, text, before, make_backup):
    """Write PRODUCT.yaml last (its evidence files exist by then); back up the old one when it changes."""
    if before == text:
        return None
    backup_file = None
    if make_backup and before is not None and not writer.check_mode:
        backup_file = backup(path, datetime.datetime.now(datetime.timezone.utc))
    writer.write(path, text, before)
    return backup_file
