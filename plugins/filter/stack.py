# Copyright: (c) 2025, k8s_ai.conformance maintainers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filters the stack-installing roles share: workload readiness, image registry rewriting, chart sources.

They are pure functions of their inputs, so the roles stay declarative and the rules can be
unit-tested without a cluster.
"""
from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")


def _ident(kind, namespace, name):
    return "{0} {1}/{2}".format(kind, namespace, name) if namespace else "{0} {1}".format(kind, name)


def _generation_seen(obj):
    """True when the controller has observed the latest spec (kubectl rollout status does the same)."""
    generation = obj.get("metadata", {}).get("generation")
    observed = obj.get("status", {}).get("observedGeneration")
    return generation is None or (observed is not None and observed >= generation)


def _deployment_problem(obj):
    spec, status = obj.get("spec", {}), obj.get("status", {})
    want = spec.get("replicas", 1)
    available = status.get("availableReplicas", 0) or 0
    updated = status.get("updatedReplicas", 0) or 0
    total = status.get("replicas", 0) or 0
    if not _generation_seen(obj):
        return "{0}/{1} available, rollout not yet observed by the controller".format(available, want)
    if updated < want or available < want or total > updated:
        return "{0}/{1} available ({2} updated, {3} total)".format(available, want, updated, total)
    return None


def _daemonset_problem(obj):
    status = obj.get("status", {})
    want = status.get("desiredNumberScheduled")
    if want is None or not _generation_seen(obj):
        return "not yet scheduled by the DaemonSet controller"
    ready = status.get("numberReady", 0) or 0
    available = status.get("numberAvailable", 0) or 0
    updated = status.get("updatedNumberScheduled", 0) or 0
    if updated < want or available < want:
        return "{0}/{1} ready ({2} updated, {3} available)".format(ready, want, updated, available)
    return None


def _statefulset_problem(obj):
    spec, status = obj.get("spec", {}), obj.get("status", {})
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0) or 0
    if not _generation_seen(obj):
        return "{0}/{1} ready, rollout not yet observed by the controller".format(ready, want)
    updated = status.get("updatedReplicas", 0) or 0
    if ready < want or updated < want:
        return "{0}/{1} ready ({2} updated)".format(ready, want, updated)
    return None


_PROBLEM = {
    "Deployment": _deployment_problem,
    "DaemonSet": _daemonset_problem,
    "StatefulSet": _statefulset_problem,
}


def workloads_not_ready(resources, expected=None, namespace=None):
    """List, one line each, the workloads among ``resources`` that are not ready.

    ``resources`` are Deployment, DaemonSet or StatefulSet objects (what k8s_info returns);
    ``expected`` names workloads (``Kind/name``) that must exist in ``namespace`` and are
    reported as missing when they do not. An empty list means everything is ready.
    """
    if not isinstance(resources, list):
        raise AnsibleFilterError("workloads_not_ready expects a list of Kubernetes objects, got {0}".format(type(resources).__name__))
    problems = []
    seen = set()
    for obj in resources:
        kind = obj.get("kind")
        meta = obj.get("metadata", {})
        if kind not in _PROBLEM:
            raise AnsibleFilterError("workloads_not_ready handles {0}, not {1!r}".format(", ".join(WORKLOAD_KINDS), kind))
        seen.add("{0}/{1}".format(kind, meta.get("name")))
        problem = _PROBLEM[kind](obj)
        if problem:
            problems.append("{0}: {1}".format(_ident(kind, meta.get("namespace"), meta.get("name")), problem))
    for ref in expected or []:
        if ref not in seen:
            kind, _sep, name = ref.partition("/")
            problems.append("{0}: not created yet".format(_ident(kind, namespace, name)))
    return problems


def _has_registry_host(component):
    """Docker's rule: the first path component is a registry host when it looks like one."""
    return "." in component or ":" in component or component == "localhost"


def rehost_image(image, registry):
    """Move an image reference (or a repository without tag) to another registry, keeping its path.

    ``nvcr.io/nvidia/k8s/dcgm-exporter`` with registry ``mirror.local:5000`` becomes
    ``mirror.local:5000/nvidia/k8s/dcgm-exporter``; Docker Hub short names gain their implicit
    ``library/`` path. An empty registry returns the image unchanged.
    """
    if not registry:
        return image
    if not isinstance(image, str) or not image:
        raise AnsibleFilterError("rehost_image expects an image reference, got {0!r}".format(image))
    registry = registry.rstrip("/")
    first, sep, rest = image.partition("/")
    if sep and _has_registry_host(first):
        path = rest
    elif sep:
        path = image
    else:
        path = "library/" + image
    return "{0}/{1}".format(registry, path)


def image_values(paths, registry):
    """Chart values that move every listed image to ``registry``; ``{}`` when no registry is set.

    ``paths`` maps a dotted values path to the upstream repository it holds in the pinned chart,
    for example ``{"driver.manager.repository": "nvcr.io/nvidia/cloud-native"}``. Each value is
    rewritten with :func:`rehost_image` and placed at its path in a nested dict, ready to merge
    under the user's values.
    """
    if not registry:
        return {}
    if not isinstance(paths, dict):
        raise AnsibleFilterError("image_values expects a mapping of values paths to repositories, got {0}".format(type(paths).__name__))
    values = {}
    for dotted, repository in paths.items():
        node = values
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = rehost_image(repository, registry)
    return values


def chart_source(ref, repo_url="", version=""):
    """Classify a role's chart reference into what kubernetes.core.helm needs.

    Returns ``{kind, ref, repo_url, version, error}``; ``kind`` is ``local`` (a chart directory or
    archive on the controller, made absolute because helm runs elsewhere; like helm, any existing
    path, or a reference spelled as a path, is local even when ``repo_url`` is set), ``oci``,
    ``url`` (an archive over HTTP) or ``repo`` (a chart name in the Helm repository ``repo_url``). ``error`` is a
    message naming the fix when the reference cannot work, and empty otherwise. Local charts carry no
    version: helm installs what the directory holds.
    """
    result = {"kind": "", "ref": ref, "repo_url": "", "version": version or "", "error": ""}
    if not isinstance(ref, str) or not ref.strip():
        result["error"] = "empty; give an oci:// reference, a chart name with a repository URL, or a local chart path"
        return result
    ref = ref.strip()
    path = os.path.realpath(os.path.expanduser(ref))
    # Like helm: an existing path wins, and anything spelled as a path is one, whatever the repository URL.
    looks_local = ref.startswith(("/", "./", "../", "~")) or os.path.exists(path)
    if ref.startswith("oci://"):
        result.update(kind="oci", ref=ref)
    elif ref.startswith(("http://", "https://")):
        result.update(kind="url", ref=ref)
    elif repo_url and not looks_local:
        result.update(kind="repo", ref=ref, repo_url=repo_url)
    else:
        result.update(kind="local", ref=path, version="")
        if not os.path.exists(path):
            result["error"] = (
                "{0} is neither an oci:// or http(s):// reference nor an existing local chart ({1} does not exist); "
                "for a chart name, also set the repository URL variable".format(ref, path)
            )
        elif os.path.isdir(path) and not os.path.isfile(os.path.join(path, "Chart.yaml")):
            result["error"] = "{0} is a directory without Chart.yaml, not a Helm chart".format(path)
    return result


class FilterModule(object):
    """Stack installer filters."""

    def filters(self):
        return {
            "workloads_not_ready": workloads_not_ready,
            "rehost_image": rehost_image,
            "chart_source": chart_source,
            "image_values": image_values,
        }
