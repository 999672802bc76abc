# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Validate a PRODUCT.yaml with the rules of CNCF's scripts/validate.go (cncf/k8s-ai-conformance).

Every error names the location, what is wrong, how to fix it where that is not obvious, and the CNCF
rule, e.g. `spec.operator.robust_controller: status "Partially Implemented" is not allowed for a MUST
requirement (CNCF rule: every MUST must be Implemented)`. Warnings are for things CNCF's program forbids
or reviewers reject but validate.go does not check (an edited description, an evidence path outside the
submission directory, ...).

Offline rules (`validate_text`) are pure apart from checking that local evidence files exist.
Network rules (URL reachability, vendorName on the CNCF landscape) run only when asked
(`validate_file(check_urls=True)`), exactly as validate.go does them: HEAD then GET, status below 400
(429 counts as reachable), its User-Agent.
"""
from __future__ import annotations

import difflib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from urllib.error import HTTPError, URLError

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url, ConnectionError as UrlConnectionError, SSLValidationError
from ansible_collections.k8s_ai.conformance.plugins.module_utils import _yaml_nodes as yn
from ansible_collections.k8s_ai.conformance.plugins.module_utils import checklist as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import NOT_APPLICABLE, STATUSES, IMPLEMENTED

from http.client import HTTPException
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url, ConnectionError as UrlConnectionError, SSLValidationError

USER_AGENT = "CNCF-K8s-AI-Conformance-Validator/1.0 (+https://github.com/cncf/k8s-ai-conformance)"
LANDSCAPE_URL = "https://raw.githubusercontent.com/cncf/landscape/master/landscape.yml"
_ACCEPT = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Accept-Language": "en-US,en;q=0.5"}

K8S_CONFORMANCE_URL_RE = re.compile(r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/v\d+\.\d+/[^/]+/?$")
VERSION_IN_PATH_RE = re.compile(r"(?:^|/)(v\d+\.\d+)/")
_LOGO_SUFFIXES = (".svg", ".eps", ".ai")
_MEMBER_SUFFIXES = (" (member)", " (supporter)")
_REQUIREMENT_KEYS = ("id", "description", "level", "status", "notes")

RULE_VERSION = "the version comes from the path v<X.Y>/<dir>/PRODUCT.yaml and needs a checklist for it"
RULE_SHAPE = "PRODUCT.yaml must decode into metadata (a map) and spec (category -> list of requirements, evidence a list of strings)"
RULE_META_REQUIRED = "every metadata field except repoUrl is required"
RULE_META_STRING = "metadata values must be strings"
RULE_META_EMPTY = "required metadata values must not be empty"
RULE_PLACEHOLDER = "template placeholders such as \"[Platform Name]\" must be replaced"
RULE_K8S_URL = "k8sConformanceUrl must look like https://github.com/cncf/k8s-conformance/tree/master/v<X.Y>/<product>"
RULE_LOGO = "productLogoUrl must link to an SVG, EPS or AI file"
RULE_URL = "URLs must be reachable: HEAD or GET answers below 400"
RULE_VENDOR = "vendorName must exactly match a CNCF member listed at https://landscape.cncf.io/members"
RULE_SPEC = "the spec section is required"
RULE_CATEGORY = "every category of the checklist must be present"
RULE_REQUIREMENT = "every requirement id must be present, in its checklist category"
RULE_STATUS = "status must be one of Implemented, Not Implemented, Partially Implemented, N/A (a SHOULD may stay blank with no evidence)"
RULE_MUST = "every MUST must be Implemented"
RULE_NA_NOTES = "N/A needs a justification in notes"
RULE_EVIDENCE_FILE = "evidence that is not an http(s) URL must be a file relative to PRODUCT.yaml's directory"


class ValidatorUsageError(ValueError):
    """The validator cannot run (no such file, unreadable file, unusable version override)."""


def argument_spec():
    """The product_validate module's options (the module's DOCUMENTATION mirrors this exactly)."""
    return dict(
        path=dict(type="path", required=True),
        check_urls=dict(type="bool", default=False),
        version=dict(type="str"),
        timeout=dict(type="int", default=30),
        landscape_url=dict(type="str", default=LANDSCAPE_URL),
    )


def version_from_path(path):
    """"1.35" for .../v1.35/<dir>/PRODUCT.yaml (validate.go's regexp), None when the path has none."""
    match = VERSION_IN_PATH_RE.search(path.replace(os.sep, "/"))
    return match.group(1)[1:] if match else None


def _error(location, message, rule):
    return "%s: %s (CNCF rule: %s)" % (location, message, rule)


class _Report(object):
    """Collects errors, warnings and the URLs to check for one file."""

    def __init__(self):
        self.errors = []
        self.warnings = []
        self.urls = []        # (location, url, label) in document order
        self.undecodable = False

    def error(self, location, message, rule):
        self.errors.append(_error(location, message, rule))

    def shape(self, location, message):
        """A decoding error: yaml.v3 could not fill validate.go's structs, so validation stops."""
        self.undecodable = True
        self.error(location, message, RULE_SHAPE)

    def warn(self, message):
        self.warnings.append(message)


# --------------------------------------------------------------------------------------------------
# Decoding: what yaml.v3 would put into validate.go's ConformanceDoc, or the errors it would raise.
# --------------------------------------------------------------------------------------------------

class _Requirement(object):
    """A decoded requirement: the string fields as yaml.v3 fills them, evidence as a list of strings."""

    def __init__(self, fields, evidence, line):
        self.id = fields.get("id", "")
        self.description = fields.get("description", "")
        self.level = fields.get("level", "")
        self.status = fields.get("status", "")
        self.notes = fields.get("notes", "")
        self.evidence = evidence
        self.line = line


def _decode(root, report):
    """(metadata {key: node} or None, spec {category: [_Requirement]} or None); shape errors into report."""
    if root is None or (yn.is_scalar(root) and root.tag == yn.NULL):
        return None, None
    if not yn.is_mapping(root):
        report.shape("PRODUCT.yaml", "the document is a %s, not a mapping with metadata and spec" % yn.kind(root))
        return None, None
    top = dict((key, value) for key, dummy, value in yn.mapping_items(root))
    return _decode_metadata(top.get("metadata"), report), _decode_spec(top.get("spec"), report)


def _decode_metadata(node, report):
    if node is None or (yn.is_scalar(node) and node.tag == yn.NULL):
        return None
    if not yn.is_mapping(node):
        report.shape("metadata (line %d)" % yn.line(node), "must be a mapping of field: \"value\", got a %s" % yn.kind(node))
        return None
    return dict((key, value) for key, dummy, value in yn.mapping_items(node))


def _decode_spec(node, report):
    if node is None or (yn.is_scalar(node) and node.tag == yn.NULL):
        return None
    if not yn.is_mapping(node):
        report.shape("spec (line %d)" % yn.line(node), "must be a mapping of category: [requirements], got a %s" % yn.kind(node))
        return None
    spec = {}
    for category, dummy, value in yn.mapping_items(node):
        location = "spec.%s" % category
        if value is None or (yn.is_scalar(value) and value.tag == yn.NULL):
            spec[category] = []
        elif not yn.is_sequence(value):
            report.shape("%s (line %d)" % (location, yn.line(value)), "must be a list of requirements, got a %s" % yn.kind(value))
        else:
            spec[category] = [req for req in (_decode_requirement(item, location, index, report)
                                              for index, item in enumerate(value.value)) if req is not None]
    return spec


def _decode_requirement(node, category_location, index, report):
    if yn.is_scalar(node) and node.tag == yn.NULL:
        return _Requirement({}, [], yn.line(node))
    if not yn.is_mapping(node):
        report.shape("%s[%d] (line %d)" % (category_location, index, yn.line(node)),
                     "each requirement must be a mapping with id, description, level, status, evidence, notes; got a %s"
                     % yn.kind(node))
        return None
    items = dict((key, value) for key, dummy, value in yn.mapping_items(node))
    ident = items.get("id")
    location = "%s.%s" % (category_location, yn.scalar_text(ident)) if yn.is_scalar(ident) else "%s[%d]" % (category_location, index)
    fields = {}
    ok = True
    for key in _REQUIREMENT_KEYS:
        value = items.get(key)
        if value is None or yn.is_scalar(value):
            fields[key] = yn.scalar_text(value)
        else:
            ok = False
            report.shape("%s.%s (line %d)" % (location, key, yn.line(value)), "must be a string, got a %s" % yn.kind(value))
    evidence = _decode_evidence(items.get("evidence"), location, report)
    if evidence is None or not ok:
        return None
    return _Requirement(fields, evidence, yn.line(node))


def _decode_evidence(node, location, report):
    if node is None or (yn.is_scalar(node) and node.tag == yn.NULL):
        return []
    where = "%s.evidence (line %d)" % (location, yn.line(node))
    if not yn.is_sequence(node):
        shown = (" %s" % _quote(node.value)) if yn.is_scalar(node) else ""
        report.shape(where, "must be a list of strings, got the %s%s: write evidence: [] or a list of URLs/paths, one per "
                     "line starting with '- '" % (yn.kind(node), shown))
        return None
    bad = [item for item in node.value if not yn.is_scalar(item)]
    if bad:
        report.shape(where, "every entry must be a string (a URL or a relative path), got a %s" % yn.kind(bad[0]))
        return None
    return [yn.scalar_text(item) for item in node.value]


def _quote(text):
    return '"%s"' % text


# --------------------------------------------------------------------------------------------------
# Offline rules
# --------------------------------------------------------------------------------------------------

def validate_text(text, path, version=None, checklist_dir=None, extra_files=()):
    """Validate PRODUCT.yaml content as if it were at `path`, without network access.

    `version` ("1.35"/"v1.35") overrides the version from the path. `extra_files` are paths
    (relative to the product directory) to treat as existing, for content not yet written.
    Returns {valid, errors, warnings, version, urls}; `urls` are (location, url, label) to check online.
    Raises ValidatorUsageError only for an unusable version override.
    """
    report = _Report()
    chosen = _choose_version(path, version, report)
    checklist = None
    if chosen is not None:
        try:
            checklist = cl.load_checklist(chosen, checklist_dir)
        except cl.ChecklistError as exc:
            report.error("path", to_native(exc), RULE_VERSION)
    try:
        root = yn.compose(text)
        metadata, spec = _decode(root, report)
    except yn.YamlError as exc:
        report.shape("PRODUCT.yaml", "cannot be parsed as YAML: %s" % exc)
        return _outcome(report, chosen)
    if report.undecodable:   # validate.go stops at a decoding error: nothing else is checked
        return _outcome(report, chosen)
    _check_metadata(metadata, chosen, report)
    if checklist is not None:
        _check_spec(spec, checklist, os.path.dirname(path), set(extra_files), report)
    return _outcome(report, chosen)


def _outcome(report, version):
    return {"valid": not report.errors, "errors": report.errors, "warnings": report.warnings,
            "version": version, "urls": report.urls}


def _choose_version(path, override, report):
    from_path = version_from_path(path)
    if override not in (None, ""):
        try:
            chosen = cl.normalize_conformance_version(override)
        except cl.ChecklistError as exc:
            raise ValidatorUsageError(to_native(exc))
        if from_path is None:
            report.warn("the path %s has no v<X.Y>/ directory; CNCF's validator would refuse it (it takes the version "
                        "from vX.Y/<dir>/PRODUCT.yaml). Validated against %s as asked" % (path, chosen))
        elif from_path != chosen:
            report.warn("version %s overrides the path's version %s; CNCF's validator uses the path's" % (chosen, from_path))
        return chosen
    if from_path is None:
        report.error("path", "cannot determine the checklist version from %s: put the file at v<X.Y>/<dir>/PRODUCT.yaml "
                     "(or pass version)" % path, RULE_VERSION)
    return from_path


def _check_metadata(metadata, version, report):
    if metadata is None:
        report.error("metadata", "the metadata section is missing", RULE_META_REQUIRED)
        return
    for field in cl.METADATA_FIELDS:
        _check_metadata_field(metadata, field, field not in cl.OPTIONAL_METADATA, report)
    _check_kubernetes_version(metadata, version, report)
    vendor = metadata.get("vendorName", metadata.get("vendor_name"))
    if vendor is not None and yn.is_scalar(vendor) and vendor.value.strip() != vendor.value:
        report.warn("metadata.vendorName %s has surrounding spaces; CNCF's validator trims them before the landscape "
                    "lookup, but write the name exactly" % _quote(vendor.value))


def _check_metadata_field(metadata, field, required, report):
    snake = cl.snake_case(field)
    key = field if field in metadata else snake
    if field in metadata and snake in metadata and snake != field:
        report.warn("metadata has both %s and %s; CNCF's validator reads %s only" % (field, snake, field))
    node = metadata.get(key)
    location = "metadata.%s" % key
    if node is None or (yn.is_scalar(node) and node.tag == yn.NULL):
        if required:
            report.error("metadata.%s" % field, "is missing (%s is accepted too)" % snake, RULE_META_REQUIRED)
        return
    if not (yn.is_scalar(node) and node.tag == yn.STR):
        shown = " %s" % node.value if yn.is_scalar(node) else ""
        report.error(location, "value%s is a %s, not a string: quote it (%s: \"...\")" % (shown, yn.kind(node), key), RULE_META_STRING)
        return
    value = node.value
    if value == "":
        if required:
            report.error(location, "is empty", RULE_META_EMPTY)
    elif value.startswith("[") and value.endswith("]"):
        report.error(location, "still has the template placeholder %s" % _quote(value), RULE_PLACEHOLDER)
    elif field == "k8sConformanceUrl":
        if K8S_CONFORMANCE_URL_RE.match(value):
            report.urls.append((location, value, "k8sConformanceUrl"))
        else:
            report.error(location, "%s is not a k8s-conformance submission URL: link the product's directory in "
                         "cncf/k8s-conformance, e.g. https://github.com/cncf/k8s-conformance/tree/master/v1.35/<product>"
                         % _quote(value), RULE_K8S_URL)
    elif value.startswith("http"):
        if field == "productLogoUrl" and not value.lower().endswith(_LOGO_SUFFIXES):
            report.error(location, "%s is not an SVG, EPS or AI file (PNG/JPEG logos are refused)" % _quote(value), RULE_LOGO)
        report.urls.append((location, value, "metadata"))


def _check_kubernetes_version(metadata, version, report):
    node = metadata.get("kubernetesVersion", metadata.get("kubernetes_version"))
    if version is None or not (yn.is_scalar(node) and node.tag == yn.STR) or not node.value:
        return
    try:
        major, minor = cl.parse_cluster_version(node.value)
    except cl.ChecklistError:
        report.warn("metadata.kubernetesVersion %s is not a Kubernetes version such as v%s" % (_quote(node.value), version))
        return
    if "%d.%d" % (major, minor) != version:
        report.warn("metadata.kubernetesVersion %s does not match the checklist version %s (from the path); CNCF's "
                    "validator does not compare them, reviewers do" % (_quote(node.value), version))


def _check_spec(spec, checklist, product_dir, extra_files, report):
    if spec is None:
        report.error("spec", "the spec section is missing", RULE_SPEC)
        return
    _warn_unknown(spec, checklist, report)
    for category, requirements in checklist.categories:
        if category not in spec:
            report.error("spec.%s" % category, "category is missing (the %s checklist has %s)"
                         % (checklist.version, ", ".join(name for name, dummy in checklist.categories)), RULE_CATEGORY)
            continue
        present = dict((req.id, req) for req in spec[category])   # the last one wins, as in validate.go
        for wanted in requirements:
            location = "spec.%s.%s" % (category, wanted.id)
            found = present.get(wanted.id)
            if found is None:
                report.error(location, "requirement is missing%s" % _elsewhere(spec, category, wanted.id), RULE_REQUIREMENT)
                continue
            _check_requirement(found, wanted, location, report)
            _check_evidence(found, location, product_dir, extra_files, report)


def _elsewhere(spec, category, requirement_id):
    others = [name for name, reqs in spec.items() if name != category and any(req.id == requirement_id for req in reqs)]
    if others:
        return " from its category (it is under %s; move it back to %s)" % (", ".join(sorted(others)), category)
    return ""


def _warn_unknown(spec, checklist, report):
    for category, requirements in sorted(spec.items()):
        seen = set()
        for req in requirements:
            if req.id in seen:
                report.warn("spec.%s.%s appears more than once; CNCF's validator reads the last one" % (category, req.id))
            seen.add(req.id)
            wanted = checklist.by_id.get(req.id)
            if wanted is None:
                report.warn("spec.%s.%s is not a requirement of the %s checklist; CNCF's validator ignores it"
                            % (category, req.id, checklist.version))
            elif wanted.category == category and (req.description != wanted.description or req.level != wanted.level):
                report.warn("spec.%s.%s: description or level differs from the %s checklist; instructions.md forbids "
                            "changing id, description and level (validate.go does not compare them, reviewers do)"
                            % (category, req.id, checklist.version))


def _check_requirement(found, wanted, location, report):
    if wanted.level == cl.SHOULD and found.status == "" and not found.evidence:
        return   # a blank SHOULD is legal
    if found.status not in STATUSES:
        report.error(location, _status_problem(found, wanted), RULE_STATUS)
    if wanted.level == cl.MUST and found.status != IMPLEMENTED:
        report.error(location, "status %s is not allowed for a MUST requirement" % _quote(found.status), RULE_MUST)
    if found.status == NOT_APPLICABLE:
        if found.notes == "":
            report.error(location, "status N/A without notes: say why the requirement does not apply", RULE_NA_NOTES)
        elif not found.notes.strip():
            report.warn("%s: N/A notes are only whitespace; CNCF's validator accepts that, reviewers will not" % location)


def _status_problem(found, wanted):
    if found.status == "":
        if wanted.level == cl.SHOULD:
            return "status is empty but evidence is listed: set a status, or empty the evidence list to leave the SHOULD blank"
        return "status is empty"
    close = difflib.get_close_matches(found.status.strip().lower(), [s.lower() for s in STATUSES], n=1)
    hint = ""
    if close:
        hint = "; did you mean %s?" % _quote(STATUSES[[s.lower() for s in STATUSES].index(close[0])])
    return "status %s is not one of %s%s" % (_quote(found.status), ", ".join(STATUSES), hint)


def _check_evidence(found, location, product_dir, extra_files, report):
    for entry in found.evidence:
        if entry == "":
            continue
        if entry.startswith(("http://", "https://")):
            report.urls.append((location, entry, "evidence"))
            continue
        # Go's filepath.Join(dir, entry): an absolute entry is still joined below dir.
        relative = os.path.normpath(entry.lstrip("/"))
        if relative.startswith(".."):
            report.warn("%s: evidence %s points outside the submission directory; reviewers cannot see it" % (location, _quote(entry)))
        full = os.path.normpath(os.path.join(product_dir, relative))
        if relative not in extra_files and not os.path.exists(full):
            report.error(location, "evidence file %s not found at %s" % (_quote(entry), full), RULE_EVIDENCE_FILE)


# --------------------------------------------------------------------------------------------------
# Online rules and the file entry point
# --------------------------------------------------------------------------------------------------

def validate_file(path, version=None, check_urls=False, timeout=30, checklist_dir=None, landscape_url=LANDSCAPE_URL):
    """Validate the PRODUCT.yaml at `path`. Returns {valid, errors, warnings, version, checked_urls}.

    Raises ValidatorUsageError when the file cannot be read (not for invalid content).
    """
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:   # yaml.v3 refuses invalid UTF-8 too: a parse error, not a usage error
        report = _Report()
        report.shape("PRODUCT.yaml", "cannot be parsed as YAML: it is not UTF-8 (%s)" % exc)
        outcome = _outcome(report, version_from_path(path))
        outcome.pop("urls")
        outcome["checked_urls"] = 0
        return outcome
    outcome = validate_text(text, path, version=version, checklist_dir=checklist_dir)
    urls = outcome.pop("urls")
    outcome["checked_urls"] = 0
    if not check_urls:
        outcome["warnings"].append("check_urls is false: no URL was checked for reachability and vendorName was not "
                                   "looked up on the CNCF landscape; CNCF's validator does both (set check_urls: true)")
        return outcome
    errors = check_reachable(urls, timeout)
    errors.extend(check_vendor(_vendor_name(text), landscape_url, timeout))
    outcome["errors"].extend(errors)
    outcome["valid"] = not outcome["errors"]
    outcome["checked_urls"] = len(set(url for dummy, url, dummy2 in urls))
    return outcome


def read_bytes(path):
    """The file's bytes; ValidatorUsageError naming the fix when there is no readable file."""
    if not os.path.exists(path):
        raise ValidatorUsageError("%s does not exist: give the path of a PRODUCT.yaml (v<X.Y>/<dir>/PRODUCT.yaml)" % path)
    if os.path.isdir(path):
        raise ValidatorUsageError("%s is a directory: give the PRODUCT.yaml file inside it" % path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise ValidatorUsageError("cannot read %s: %s" % (path, exc.strerror))


def _vendor_name(text):
    try:
        data = yn.load_plain(text)
    except yn.YamlError:
        return ""
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(metadata, dict):
        return ""
    vendor = metadata["vendorName"] if "vendorName" in metadata else metadata.get("vendor_name")
    return vendor.strip() if isinstance(vendor, str) else ""


def _request(url, method, timeout):
    """(status code or None, error text) for one request carrying validate.go's headers."""
    headers = dict(_ACCEPT)
    try:
        response = open_url(url, method=method, headers=headers, http_agent=USER_AGENT, timeout=timeout,
                            follow_redirects="all", use_netrc=False)
        try:
            return response.getcode(), ""
        finally:
            response.close()
    except HTTPError as exc:
        return exc.code, "status code %d" % exc.code
    except (URLError, HTTPException, UrlConnectionError, SSLValidationError, OSError, ValueError) as exc:
        return None, to_native(getattr(exc, "reason", exc))


def url_reachable(url, timeout):
    """None when `url` is reachable the way validate.go decides it, else the reason."""
    code, dummy = _request(url, "HEAD", timeout)
    if code is not None and (code < 400 or code == 429):
        return None
    code, reason = _request(url, "GET", timeout)
    if code is not None and (code < 400 or code == 429):
        return None
    return reason or "status code %s" % code


def check_reachable(urls, timeout):
    """Errors for the unreachable ones among (location, url, label); each URL is fetched once, in parallel."""
    unique = sorted(set(url for dummy, url, dummy2 in urls))
    if not unique:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(unique))) as pool:
        reasons = dict(zip(unique, pool.map(lambda url: url_reachable(url, timeout), unique)))
    errors = []
    for location, url, label in urls:
        if reasons[url] is None:
            continue
        what = {"k8sConformanceUrl": "k8sConformanceUrl is not accessible",
                "metadata": "URL is not reachable", "evidence": "evidence URL is not reachable"}[label]
        errors.append(_error(location, "%s: %s (%s)" % (what, url, reasons[url]), RULE_URL))
    return errors


def check_vendor(vendor, landscape_url, timeout):
    """Errors unless `vendor` is a CNCF member on the landscape (validate.go aborts when it cannot fetch it)."""
    try:
        members = landscape_members(landscape_url, timeout)
    except ValueError as exc:
        return [_error("metadata.vendorName", "cannot check the vendor: %s" % exc, RULE_VENDOR)]
    if vendor and vendor not in members:
        close = difflib.get_close_matches(vendor, sorted(members), n=1)
        hint = "; the closest member name is %s" % _quote(close[0]) if close else ""
        return [_error("metadata.vendorName", "%s is not a CNCF member on the landscape%s" % (_quote(vendor), hint), RULE_VENDOR)]
    return []


def landscape_members(landscape_url, timeout):
    """Member names under the landscape's "CNCF Members" category, " (member)"/" (supporter)" stripped."""
    try:
        response = open_url(landscape_url, method="GET", headers=dict(_ACCEPT), http_agent=USER_AGENT,
                            timeout=timeout, follow_redirects="all", use_netrc=False)
        try:
            body = response.read()
        finally:
            response.close()
    except HTTPError as exc:
        raise ValueError("failed to fetch the CNCF landscape %s: HTTP %d" % (landscape_url, exc.code))
    except (URLError, HTTPException, UrlConnectionError, SSLValidationError, OSError) as exc:
        raise ValueError("failed to fetch the CNCF landscape %s: %s" % (landscape_url, to_native(getattr(exc, "reason", exc))))
    return _members(body, landscape_url)


def _members(body, landscape_url):
    loader = getattr(yn.yaml, "CSafeLoader", yn.yaml.SafeLoader)
    try:
        data = yn.yaml.load(body, Loader=loader)
    except yn.yaml.YAMLError as exc:
        raise ValueError("failed to parse the CNCF landscape %s: %s" % (landscape_url, exc))
    for category in (data or {}).get("landscape") or []:
        if isinstance(category, dict) and category.get("name") == "CNCF Members":
            return set(_member_names(category))
    raise ValueError("could not find the 'CNCF Members' category in %s" % landscape_url)


def _member_names(category):
    for sub in category.get("subcategories") or []:
        for item in (sub or {}).get("items") or []:
            name = str((item or {}).get("name") or "")
            for suffix in _MEMBER_SUFFIXES:
                if name.endswith(suffix):
                    name = name[:-len(suffix)]
            name = name.strip()
            if name:
                yield name
