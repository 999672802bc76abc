"""API discovery documents, legacy (/api, /apis, /api/v1, /apis/G/V) and aggregated (apidiscovery.k8s.io v2).

Both are computed from the types the store serves, so a CRD shows up as soon as it is established and
disappears when it is deleted. Group order follows kube-apiserver's priorities for the built-in groups,
then custom groups by name; versions are listed preferred (newest stable) first.
"""
from __future__ import annotations

import base64
import hashlib
import re

from .builtin import subresource_kind, subresource_verbs

GROUP_ORDER = ("", "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
               "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io",
               "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
               "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
               "discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io")

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def _group_rank(group):
    return (0, GROUP_ORDER.index(group), "") if group in GROUP_ORDER else (1, 0, group)


def served(store):
    """{group: {version: [rtype, ...]}} for everything the store serves (plus remote groups)."""
    out = {}
    for rtype in list(store.types.values()):
        for version in rtype.versions:
            out.setdefault(rtype.group, {}).setdefault(version, []).append(rtype)
    return out


def version_order(rtypes_by_version):
    """Versions newest-preferred first: the preferred version (the types' choice) leads."""
    versions = list(rtypes_by_version)
    preferred = {getattr(t, "preferred_version", None) for ts in rtypes_by_version.values() for t in ts}

    def rank(v):
        match = re.match(r"^v(\d+)(alpha|beta)?(\d*)$", v)
        if not match:
            return (-1, 0, 0, v)
        stage = {"alpha": 0, "beta": 1, None: 2}[match.group(2)]
        return (stage, int(match.group(1)), int(match.group(3) or 0), v)
    ordered = sorted(versions, key=rank, reverse=True)
    lead = [v for v in ordered if v in preferred][:1]
    return lead + [v for v in ordered if v not in lead]


def groups(store, remote=None):
    """[(group, [versions preferred first])] in discovery order; `remote` adds aggregated API groups."""
    data = served(store)
    for group, versions in (remote or {}).items():
        for version in versions:
            data.setdefault(group, {}).setdefault(version, [])
    return [(g, version_order(data[g])) for g in sorted(data, key=_group_rank)]


def storage_version_hash(group, version, kind):
    digest = hashlib.sha256(("%s/%s/%s" % (group, version, kind)).encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list(store, remote=None):
    items = []
    for group, versions in groups(store, remote):
        if not group:
            continue
        items.append(_api_group(group, versions))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def _api_group(group, versions):
    return {"name": group,
            "versions": [{"groupVersion": "%s/%s" % (group, v), "version": v} for v in versions],
            "preferredVersion": {"groupVersion": "%s/%s" % (group, versions[0]), "version": versions[0]}}


def api_group(store, group, remote=None):
    for name, versions in groups(store, remote):
        if name == group and group:
            return dict(_api_group(group, versions), kind="APIGroup", apiVersion="v1")
    return None


def _sorted_types(rtypes):
    return sorted(rtypes, key=lambda t: t.resource)


def resource_list(store, group, version):
    """APIResourceList for /api/v1 or /apis/G/V; None when nothing is served there."""
    rtypes = [t for t in store.types.values() if t.group == group and version in t.versions]
    if not rtypes:
        return None
    resources = []
    for rtype in _sorted_types(rtypes):
        entry = {"name": rtype.resource, "singularName": rtype.singular, "namespaced": rtype.namespaced,
                 "kind": rtype.kind, "verbs": list(rtype.verbs)}
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        if rtype.categories:
            entry["categories"] = list(rtype.categories)
        if "create" not in rtype.verbs or set(rtype.verbs) != {"create"}:
            entry["storageVersionHash"] = storage_version_hash(group, version, rtype.kind)
        resources.append(entry)
        for sub in _subresources(rtype, version):
            g, v, kind = subresource_kind(rtype, sub, version)
            sub_entry = {"name": "%s/%s" % (rtype.resource, sub), "singularName": "", "namespaced": rtype.namespaced,
                         "kind": kind, "verbs": list(subresource_verbs(sub))}
            if g != group or (v and v != version):
                sub_entry["group"], sub_entry["version"] = g, v
            resources.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % (group, version)
            if group else version, "resources": resources}


def _subresources(rtype, version):
    per_version = getattr(rtype, "version_subresources", None)
    if per_version is not None:
        return sorted(per_version(version).keys())
    return list(rtype.subresources)


def _discovery_resource(rtype, version):
    entry = {"resource": rtype.resource,
             "responseKind": {"group": rtype.group, "version": version, "kind": rtype.kind},
             "scope": "Namespaced" if rtype.namespaced else "Cluster",
             "singularResource": rtype.singular,
             "verbs": list(rtype.verbs)}
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    subs = []
    for sub in _subresources(rtype, version):
        g, v, kind = subresource_kind(rtype, sub, version)
        item = {"subresource": sub, "verbs": list(subresource_verbs(sub))}
        if kind:
            item["responseKind"] = {"group": g, "version": v, "kind": kind}
        subs.append(item)
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(store, core, remote=None):
    """APIGroupDiscoveryList for /api (core=True) or /apis. `remote`: {group: {version: [entries] or None}}
    for aggregated API servers; None marks a version whose backend did not answer (freshness Stale)."""
    data = served(store)
    items = []
    for group, versions in groups(store, {g: list(v) for g, v in (remote or {}).items()}):
        if bool(group) == core:
            continue
        entry_versions = []
        for version in versions:
            local = data.get(group, {}).get(version, [])
            resources = [_discovery_resource(t, version) for t in _sorted_types(local)]
            freshness = "Current"
            remote_entries = (remote or {}).get(group, {}).get(version, []) if remote else []
            if remote and group in remote and version in remote[group]:
                if remote_entries is None:
                    freshness = "Stale"
                else:
                    resources.extend(remote_entries)
            entry_versions.append({"version": version, "resources": resources, "freshness": freshness})
        meta = {"creationTimestamp": None}
        if group:
            meta["name"] = group
        items.append({"metadata": meta, "versions": entry_versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def remote_resources_to_discovery(group, version, resource_list_doc):
    """An aggregated API server's APIResourceList -> aggregated-discovery resource entries."""
    entries, subs = {}, {}
    for res in resource_list_doc.get("resources") or []:
        name = res.get("name", "")
        if "/" in name:
            parent, sub = name.split("/", 1)
            subs.setdefault(parent, []).append({"subresource": sub, "verbs": res.get("verbs") or [],
                                                "responseKind": {"group": res.get("group", group),
                                                                 "version": res.get("version", version),
                                                                 "kind": res.get("kind", "")}})
            continue
        entries[name] = {"resource": name, "responseKind": {"group": group, "version": version,
                                                            "kind": res.get("kind", "")},
                         "scope": "Namespaced" if res.get("namespaced") else "Cluster",
                         "singularResource": res.get("singularName", ""), "verbs": res.get("verbs") or []}
    for parent, items in subs.items():
        if parent in entries:
            entries[parent]["subresources"] = items
    return list(entries.values())
