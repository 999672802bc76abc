"""Scenario files: one YAML document describing one simulated cluster.

A scenario names the Kubernetes version, the users (bearer tokens), node pools, initial objects,
manifest files to load and behaviour switches (`settings`). `include` pulls in other scenario files
first (relative to the including file), so every scenario can start from `base.yaml`.

Merging an include: the lists `objects`, `manifests` and `nodePools` are concatenated (included
first), `users` are merged by name (the including file wins and keeps the included order),
`settings` and `clock` are merged key by key, and any other key of the including file replaces
the included value.

See tests/simcluster/README.md ("Scenario format") and docs/simulator.md for the format.
"""
from __future__ import annotations

import copy
import glob
import gzip
import os

import yaml

from .objcopy import clone

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_DIR = os.path.join(HERE, "scenarios")
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
LIST_KEYS = ("objects", "manifests", "nodePools")
MAP_KEYS = ("settings", "clock")

ACCELERATOR_RESOURCES = {
    "nvidia": "nvidia.com/gpu",
    "amd": "amd.com/gpu",
    "intel": "gpu.intel.com/i915",
    "aws": "aws.amazon.com/neuron",
    "google": "google.com/tpu",
}


class KubeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # pylint: disable=too-many-ancestors
    """YAML as Kubernetes reads it: like SafeLoader (libyaml when available, it is much faster on the
    big CRDs), but a bare `=` is a string, not YAML 1.1's `value` type that PyYAML cannot build."""


KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_all(data):
    """Every document of a YAML stream (bytes or str), read as Kubernetes reads it."""
    return list(yaml.load_all(data, Loader=KubeLoader))


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message names the file and the fix."""


def deep_merge(base, override):
    """Merge dict `override` into a copy of dict `base` (nested dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def available():
    """Names of the scenarios shipped in tests/simcluster/scenarios (base.yaml is a building block)."""
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(SCENARIO_DIR, "*.yaml"))
                  if os.path.basename(p) != "base.yaml")


def resolve(name_or_path):
    """A scenario name (`conformant`) or a path to a YAML file -> absolute path."""
    if os.path.isfile(name_or_path):
        return os.path.abspath(name_or_path)
    candidate = os.path.join(SCENARIO_DIR, name_or_path if name_or_path.endswith(".yaml") else name_or_path + ".yaml")
    if os.path.isfile(candidate):
        return candidate
    raise ScenarioError("unknown scenario %r: pass one of %s or a path to a scenario YAML file"
                        % (name_or_path, ", ".join(available())))


# path -> ((mtime_ns, size), documents): every file read once per process. The test suite starts hundreds of
# simulated clusters from the same scenarios and upstream CRDs (several megabytes of YAML), and parsing them
# again each time was most of a cluster's start. Callers get their own copies.
_PARSED = {}


def _read_yaml(path):
    try:
        stat = os.stat(path)
        cached = _PARSED.get(path)
        if cached is not None and cached[0] == (stat.st_mtime_ns, stat.st_size):
            return clone(cached[1])
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ScenarioError("cannot read scenario file %s: %s" % (path, exc.strerror))
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    try:
        docs = load_all(data)
    except yaml.YAMLError as exc:
        raise ScenarioError("%s is not valid YAML: %s" % (path, exc))
    _PARSED[path] = ((stat.st_mtime_ns, stat.st_size), docs)
    return clone(docs)


def _merge_scenarios(base, top):
    out = copy.deepcopy(base)
    for key, value in top.items():
        if key == "include":
            continue
        if key in LIST_KEYS:
            out[key] = list(out.get(key) or []) + list(value or [])
        elif key in MAP_KEYS:
            out[key] = deep_merge(out.get(key) or {}, value or {})
        elif key == "users":
            merged = {u["name"]: u for u in out.get("users") or []}
            order = [u["name"] for u in out.get("users") or []]
            for user in value or []:
                if user["name"] not in merged:
                    order.append(user["name"])
                merged[user["name"]] = user
            out["users"] = [merged[n] for n in order]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_file(path, seen):
    if path in seen:
        raise ScenarioError("scenario include loop: %s" % " -> ".join(seen + [path]))
    docs = [d for d in _read_yaml(path) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ScenarioError("%s must hold exactly one YAML mapping (the scenario)" % path)
    doc = docs[0]
    merged = {}
    for inc in doc.get("include") or []:
        inc_path = os.path.join(os.path.dirname(path), inc)
        merged = _merge_scenarios(merged, _load_file(inc_path, seen + [path]))
    # manifests are resolved relative to the file that names them
    top = dict(doc)
    if "manifests" in top:
        top["manifests"] = [_manifest_path(m, os.path.dirname(path)) for m in top["manifests"] or []]
    return _merge_scenarios(merged, top)


def _manifest_path(entry, base_dir):
    """A `manifests` entry resolved: a path (str), or a mapping {path, render} whose `render` names how the
    objects are rendered for this cluster (see MANIFEST_RENDERS in cluster.py)."""
    if isinstance(entry, dict):
        if not entry.get("path"):
            raise ScenarioError("a `manifests` mapping needs `path` (got %r)" % (entry,))
        return dict(entry, path=_manifest_path(entry["path"], base_dir))
    for candidate in (os.path.join(base_dir, entry), os.path.join(REPO_ROOT, entry)):
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    raise ScenarioError("manifest %r not found relative to %s or the repository root %s"
                        % (entry, base_dir, REPO_ROOT))


def load(name_or_path, overrides=None):
    """Load a scenario (following includes), apply `overrides` (deep-merged) and check its shape."""
    path = resolve(name_or_path)
    scenario = _load_file(path, [])
    scenario.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    scenario["path"] = path
    if overrides:
        scenario = deep_merge(scenario, overrides)
    _check(scenario)
    return scenario


def _check(scenario):
    where = scenario.get("path", scenario.get("name"))
    users = scenario.get("users") or []
    if not users:
        raise ScenarioError("scenario %s defines no users: add `users: [{name: admin, token: admin-token, "
                            "groups: [system:masters]}]` (or include base.yaml)" % where)
    for user in users:
        if not user.get("name") or not user.get("token"):
            raise ScenarioError("scenario %s: every user needs `name` and `token` (got %r)" % (where, user))
    version = str(scenario.get("kubernetesVersion", "v1.33.5"))
    if not version.startswith("v1.") or len(version.split(".")) < 3:
        raise ScenarioError("scenario %s: kubernetesVersion must look like v1.33.5 (got %r)" % (where, version))
    for pool in scenario.get("nodePools") or []:
        if not pool.get("name"):
            raise ScenarioError("scenario %s: every node pool needs a `name`" % where)
    for obj in scenario.get("objects") or []:
        if not isinstance(obj, dict) or not obj.get("kind") or not obj.get("apiVersion"):
            raise ScenarioError("scenario %s: every entry of `objects` needs apiVersion and kind (got %r)"
                                % (where, obj))


def manifest_objects(path):
    """Objects from a manifest file or directory (*.yaml, *.yml, *.yaml.gz), List kinds flattened."""
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*"))
                       if f.endswith((".yaml", ".yml", ".yaml.gz", ".json")))
    else:
        files = [path]
    out = []
    for name in files:
        for doc in _read_yaml(name):
            if not doc:
                continue
            if doc.get("kind", "").endswith("List") and "items" in doc:
                out.extend(doc["items"] or [])
            else:
                out.append(doc)
    return out


def node_conditions(ready, timestamp):
    """The conditions a healthy (or NotReady) kubelet reports."""
    conds = []
    for ctype, reason, message in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                                   ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                   ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available")):
        conds.append({"type": ctype, "status": "False", "reason": reason, "message": message,
                      "lastHeartbeatTime": timestamp, "lastTransitionTime": timestamp})
    if ready:
        conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                      "lastHeartbeatTime": timestamp, "lastTransitionTime": timestamp})
    else:
        conds.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                      "message": "Kubelet stopped posting node status.",
                      "lastHeartbeatTime": timestamp, "lastTransitionTime": timestamp})
    return conds


def node_objects(pool, kubelet_version, timestamp, first_index=0):
    """Expand a node pool into Node objects (<pool>-0, <pool>-1, ...) as a kubelet would register them."""
    count = int(pool.get("count", 1))
    accel = pool.get("accelerators") or {}
    capacity = {
        "cpu": str(pool.get("cpu", "8")),
        "memory": str(pool.get("memory", "32Gi")),
        "pods": str(pool.get("pods", "110")),
        "ephemeral-storage": str(pool.get("ephemeralStorage", "200Gi")),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    labels = {}
    if accel:
        vendor = accel.get("vendor", "nvidia")
        resource = accel.get("resource") or ACCELERATOR_RESOURCES.get(vendor)
        if not resource:
            raise ScenarioError("node pool %s: unknown accelerator vendor %r; set accelerators.resource "
                                "(e.g. nvidia.com/gpu)" % (pool["name"], vendor))
        capacity[resource] = str(accel.get("count", 1))
        if vendor == "nvidia" and accel.get("labels", True):
            labels.update({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": str(accel.get("count", 1)),
                           "nvidia.com/gpu.product": accel.get("product", "NVIDIA-H100-80GB-HBM3")})
            if accel.get("memory"):
                labels["nvidia.com/gpu.memory"] = str(accel["memory"])
    labels.update(pool.get("labels") or {})
    nodes = []
    for i in range(count):
        index = first_index + i
        name = "%s-%d" % (pool["name"], i)
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                       "node.kubernetes.io/instance-type": pool.get("instanceType", "sim.%s" % pool["name"]),
                       "topology.kubernetes.io/zone": pool.get("zone", "sim-zone-a"),
                       "topology.kubernetes.io/region": pool.get("region", "sim-region")}
        node_labels.update(labels)
        spec = {"podCIDR": "10.244.%d.0/24" % index, "podCIDRs": ["10.244.%d.0/24" % index],
                "providerID": "simcluster://%s" % name}
        if pool.get("taints"):
            spec["taints"] = copy.deepcopy(pool["taints"])
        if pool.get("unschedulable"):
            spec["unschedulable"] = True
        nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node_labels,
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": spec,
            "status": {
                "capacity": dict(capacity), "allocatable": dict(capacity),
                "addresses": [{"type": "InternalIP", "address": "10.0.%d.%d" % (index // 250, index % 250 + 2)},
                              {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"architecture": "amd64", "bootID": "sim-boot-%s" % name,
                             "containerRuntimeVersion": "containerd://1.7.27",
                             "kernelVersion": "6.8.0-1024-sim", "kubeProxyVersion": kubelet_version,
                             "kubeletVersion": kubelet_version, "machineID": "sim-machine-%s" % name,
                             "operatingSystem": "linux", "osImage": pool.get("osImage", "Ubuntu 22.04.5 LTS"),
                             "systemUUID": "sim-uuid-%s" % name},
                "conditions": node_conditions(pool.get("ready", True), timestamp),
            },
        })
    return nodes
