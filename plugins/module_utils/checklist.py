# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The CNCF AI Conformance checklists (shipped as data) and the choice of checklist for a cluster.

The checklists live unchanged in `data/checklists/AIConformance-<X.Y>.yaml` at the collection root:
every requirement id, category, level and description comes from those files, never from a table in
Python, so supporting a new Kubernetes minor is a data change. This module runs on the controller
(action plugins import it); `DEFAULT_DIR` is found relative to this file.
"""
from __future__ import annotations

import os
import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils import _yaml_nodes as yn

DEFAULT_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "checklists"))
_FILE_RE = re.compile(r"^AIConformance-(\d+)\.(\d+)\.yaml$")
# A Kubernetes gitVersion: v1.33.5, v1.33.5-gke.1, v1.34.0+k3s1, v1.35.0-rc.1, 1.36 ...
_GIT_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.+-]*)?$")
_CONFORMANCE_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)$")

MUST = "MUST"
SHOULD = "SHOULD"
# PRODUCT.yaml metadata fields, in the template's order, as CNCF's validate.go lists them (metadataFields);
# every one is required except repoUrl. Each may also be written in snake_case (see snake_case()).
METADATA_FIELDS = ("kubernetesVersion", "platformName", "platformVersion", "vendorName", "websiteUrl", "repoUrl",
                   "documentationUrl", "productLogoUrl", "description", "contactEmailAddress", "k8sConformanceUrl")
OPTIONAL_METADATA = ("repoUrl",)
# The validator requires k8sConformanceUrl for every version, even where the template lacks it (1.33,
# 1.34, 1.36): validate.go's metadataFields has no version check.
K8S_CONFORMANCE_URL = "k8sConformanceUrl"
K8S_CONFORMANCE_URL_PLACEHOLDER = ("[URL to k8s-conformance submission, e.g., "
                                   "https://github.com/cncf/k8s-conformance/tree/master/v%s/product-name]")


class ChecklistError(ValueError):
    """A version that cannot be served, or a checklist file that is not a checklist."""


class Requirement(object):
    """One checklist entry. `description` and `level` are the checklist's exact strings."""

    __slots__ = ("id", "category", "level", "description")

    def __init__(self, requirement_id, category, level, description):
        self.id = requirement_id
        self.category = category
        self.level = level
        self.description = description

    @property
    def conditional(self):
        """True for MUSTs worded as "If the platform provides/supports X, ..." (the autoscaling pair).

        For these, "the condition does not hold" is an honest N/A, yet CNCF's validator only accepts
        Implemented for a MUST: the report's `conditional_must_not_applicable` policy applies to them only.
        """
        return self.level == MUST and self.description.startswith("If ")

    def __repr__(self):
        return "Requirement(%r, %r, %r)" % (self.id, self.category, self.level)


class Checklist(object):
    """A parsed checklist: header comments, metadata template, categories and requirements, in file order."""

    def __init__(self, version, text, header, metadata, categories):
        self.version = version                # "1.35"
        self.text = text                      # the file, unchanged
        self.header = header                  # leading comment lines, without newline
        self.metadata = metadata              # [(key, template value)], template order
        self.categories = categories          # [(category, [Requirement])], template order
        self.requirements = [req for dummy, reqs in categories for req in reqs]
        self.by_id = dict((req.id, req) for req in self.requirements)

    @property
    def ids(self):
        return [req.id for req in self.requirements]

    @property
    def metadata_keys(self):
        """Template metadata keys in order, plus k8sConformanceUrl where the template lacks it."""
        keys = [key for key, dummy in self.metadata]
        if K8S_CONFORMANCE_URL not in keys:
            keys.append(K8S_CONFORMANCE_URL)
        return keys

    def placeholder(self, key):
        """The template's value for a metadata key (a "[...]" placeholder, or the version)."""
        for name, value in self.metadata:
            if name == key:
                return value
        if key == K8S_CONFORMANCE_URL:
            return K8S_CONFORMANCE_URL_PLACEHOLDER % self.version
        return ""


def snake_case(name):
    """validate.go's toSnakeCase: k8sConformanceUrl -> k8s_conformance_url, repoUrl -> repo_url."""
    snake = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", snake).lower()


def version_key(version):
    """"1.35" -> (1, 35), for numeric ordering ("1.4" < "1.35")."""
    major, minor = version.split(".")
    return int(major), int(minor)


def available_versions(directory=None):
    """The checklist versions shipped in `directory` ("1.33", ...), oldest first."""
    directory = directory or DEFAULT_DIR
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise ChecklistError("cannot read the checklist directory %s: %s" % (directory, exc.strerror))
    versions = ["%s.%s" % match.groups() for match in (_FILE_RE.match(name) for name in names) if match]
    if not versions:
        raise ChecklistError("no AIConformance-<X.Y>.yaml checklist in %s" % directory)
    return sorted(versions, key=version_key)


def checklist_path(version, directory=None):
    return os.path.join(directory or DEFAULT_DIR, "AIConformance-%s.yaml" % version)


def load_checklist(version, directory=None):
    """The Checklist for `version` ("1.35"); ChecklistError naming the shipped versions if absent."""
    path = checklist_path(version, directory)
    if not os.path.isfile(path):
        raise ChecklistError("no checklist for Kubernetes %s; supported versions: %s"
                             % (version, ", ".join(available_versions(directory))))
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8")
    return parse_checklist(text, version)


def parse_checklist(text, version):
    """Parse a CNCF checklist file. Only the shape the CNCF files have is accepted."""
    try:
        root = yn.compose(text)
    except yn.YamlError as exc:
        raise ChecklistError("checklist %s is not YAML: %s" % (version, exc))
    if not yn.is_mapping(root):
        raise ChecklistError("checklist %s: the document must be a mapping" % version)
    top = dict((key, value) for key, dummy, value in yn.mapping_items(root))
    metadata = top.get("metadata")
    spec = top.get("spec")
    if not yn.is_mapping(metadata) or not yn.is_mapping(spec):
        raise ChecklistError("checklist %s needs 'metadata' and 'spec' mappings" % version)
    meta = [(key, yn.scalar_text(value)) for key, dummy, value in yn.mapping_items(metadata)]
    categories = [(category, _requirements(version, category, node)) for category, dummy, node in yn.mapping_items(spec)]
    return Checklist(version, text, _header(text), meta, categories)


def _requirements(version, category, node):
    if not yn.is_sequence(node):
        raise ChecklistError("checklist %s: spec.%s must be a list of requirements" % (version, category))
    reqs = []
    for item in node.value:
        fields = dict((key, yn.scalar_text(value)) for key, dummy, value in yn.mapping_items(item)) if yn.is_mapping(item) else {}
        if not fields.get("id") or fields.get("level") not in (MUST, SHOULD):
            raise ChecklistError("checklist %s: spec.%s has an entry without id or MUST/SHOULD level" % (version, category))
        reqs.append(Requirement(fields["id"], category, fields["level"], fields.get("description", "")))
    return reqs


def _header(text):
    """The comment lines the template starts with (kept verbatim at the top of PRODUCT.yaml)."""
    header = []
    for raw in text.splitlines():
        if not raw.startswith("#"):
            break
        header.append(raw)
    return header


def parse_cluster_version(git_version):
    """(major, minor) of a Kubernetes gitVersion such as "v1.33.5-gke.1" or "v1.34.0+k3s1"."""
    match = _GIT_VERSION_RE.match(str(git_version or "").strip())
    if not match:
        raise ChecklistError("cannot read a Kubernetes version from %r: expected a gitVersion such as "
                             "v1.34.2 (as printed by kubectl version)" % (git_version,))
    return int(match.group(1)), int(match.group(2))


def normalize_conformance_version(value):
    """"1.35" or "v1.35" -> "1.35"; anything else is a ChecklistError saying what is expected."""
    text = str(value).strip()
    match = _CONFORMANCE_VERSION_RE.match(text)
    if not match:
        raise ChecklistError("conformance_version %r is not a Kubernetes minor version: use a quoted string "
                             "such as \"1.35\" or \"v1.35\" (unquoted 1.30 is the number 1.3 in YAML)" % (value,))
    return "%d.%d" % (int(match.group(1)), int(match.group(2)))


def select_version(available, cluster_version=None, conformance_version=None):
    """Pick the checklist version: (version "X.Y", [warnings]). Pure: `available` is the shipped list.

    * `conformance_version` ("1.35" / "v1.35") wins; a warning when it differs from the cluster's minor.
    * otherwise the cluster's minor from its gitVersion. A minor without a checklist (older than the oldest,
      newer than the newest shipped) -> ChecklistError naming the supported versions and the explicit
      override: a checklist of another version is never filled in silently.
    """
    available = sorted(available, key=version_key)
    supported = ", ".join(available)
    cluster = parse_cluster_version(cluster_version) if cluster_version not in (None, "") else None
    warnings = []
    if conformance_version not in (None, ""):
        version = normalize_conformance_version(conformance_version)
        if version not in available:
            raise ChecklistError("conformance_version %s has no checklist in this collection; supported versions: %s"
                                 % (version, supported))
        if cluster and cluster != version_key(version):
            warnings.append("conformance_version %s overrides the cluster's version %s (Kubernetes %d.%d): the "
                            "submission is for %s, so run it against a %s cluster before submitting"
                            % (version, cluster_version, cluster[0], cluster[1], version, version))
        return version, warnings
    if cluster is None:
        raise ChecklistError("cannot choose a checklist: give the cluster's version (cluster_version, its gitVersion "
                             "such as v1.34.2) or conformance_version (one of %s)" % supported)
    wanted = "%d.%d" % cluster
    if wanted in available:
        return wanted, warnings
    if cluster > version_key(available[-1]):
        raise ChecklistError("the cluster runs Kubernetes %s, newer than the newest checklist shipped (%s): CNCF "
                             "publishes a checklist per minor; upgrade this collection once AIConformance-%s.yaml "
                             "exists, or pass conformance_version: \"%s\" (conform_version in the conform role) to "
                             "fill in the %s checklist on purpose; supported versions: %s"
                             % (wanted, available[-1], wanted, available[-1], available[-1], supported))
    raise ChecklistError("the cluster runs Kubernetes %s, which has no AI Conformance checklist (the first is %s); "
                         "supported versions: %s. Run against a supported cluster, or pass conformance_version (conform_version "
                         "in the conform role) to fill in a checklist of another version on purpose"
                         % (wanted, available[0], supported))
