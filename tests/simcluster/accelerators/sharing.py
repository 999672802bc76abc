"""GPU sharing in the NVIDIA device plugin: its config file, how config-manager picks it, and what GPU feature
discovery labels for it (NVIDIA/k8s-device-plugin: api/config/v1, cmd/config-manager, internal/rm, internal/lm).

* Where the config comes from. A plugin pod with a `config-manager` container (the GPU operator adds one, and an
  init container, when ClusterPolicy spec.devicePlugin.config names a ConfigMap; the device-plugin chart does so
  for `config.name`) reads the ConfigMap mounted at CONFIG_FILE_SRCDIR (/available-configs): the key named by the
  node label NODE_LABEL (nvidia.com/device-plugin.config), else DEFAULT_CONFIG, else the FALLBACK_STRATEGIES in
  order (`named`: a key called `default`; `single`: the only key; `empty`: no config). A label or default naming a
  missing key, or a ConfigMap with no keys, is an error: the init container fails and the plugin never starts.
  Without config-manager, CONFIG_FILE (or --config-file) pointing into a ConfigMap volume is read directly.
* The config (`version: v1`): `sharing.timeSlicing` or `sharing.mps` with `resources: [{name: nvidia.com/gpu,
  replicas: N}]` (N >= 2, else the plugin refuses the config), `renameByDefault` (advertise
  `nvidia.com/gpu.shared` instead), `failRequestsGreaterThanOne`; `flags.migStrategy`.
* Capacity: every physical GPU becomes N schedulable replicas (the resource's capacity is GPUs x N). Allocation
  follows the plugin's default `distributed` policy: each replica comes from the GPU with the fewest replicas in
  use (ties: lowest index), so pods spread over the GPUs before any two share one.
* Labels (GPU feature discovery, internal/lm/resource.go): nvidia.com/gpu.replicas = N (1 without sharing),
  nvidia.com/gpu.sharing-strategy = time-slicing | mps | none, nvidia.com/gpu.product gets the suffix `-SHARED`
  when shared and not renamed, nvidia.com/gpu.count stays the number of physical GPUs.
* MIG: a node labelled nvidia.com/mig.config=<name> gets the layout mig-parted's default config gives that name
  for its GPU model (data/mig-parted-config-default.yaml, `device-filter` by PCI device id), as the MIG manager
  applies it (nvidia.com/mig.config.state=success). The plugin's migStrategy (flags.migStrategy or MIG_STRATEGY)
  decides how it is advertised: `mixed` as nvidia.com/mig-<profile> resources, `single` as nvidia.com/gpu (one
  per MIG device, product <model>-MIG-<profile>); `none` ignores MIG. A container granted a MIG device sees its
  parent's /dev/nvidia<minor> and `nvidia-smi -L` lists `MIG <profile> Device <n>: (UUID: MIG-...)` under the
  parent GPU.
"""
from __future__ import annotations

import hashlib
import math
import os
import posixpath

import yaml

CONFIGMAPS = ("", "configmaps")
GPU = "nvidia.com/gpu"
SHARED_SUFFIX = "-SHARED"
DEFAULT_NODE_LABEL = "nvidia.com/device-plugin.config"
DEFAULT_SRCDIR = "/available-configs"
DEFAULT_FALLBACKS = ("named", "single")
IMAGE_PATTERN = "*/k8s-device-plugin"
MIG_PREFIX = "nvidia.com/mig-"
MIG_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mig-parted-config-default.yaml")
# PCI device ids (pci.ids: 10de:2330 GH100 [H100 SXM5 80GB], 10de:20b0 GA100 [A100 SXM4 40GB]) of the MIG-capable
# simulated products, as mig-parted's device filters name them.
PCI_DEVICE_IDS = {"NVIDIA-H100-80GB-HBM3": "0x233010DE", "NVIDIA-A100-SXM4-40GB": "0x20B010DE"}
_MIG_CONFIGS = {}


class ConfigError(ValueError):
    """A config the plugin (or config-manager) refuses; the message is what it logs."""


def _env(container, name, default=None):
    for item in container.get("env") or ():
        if item.get("name") == name:
            return item.get("value", "")
    return default


def _is_config_manager(container):
    argv = list(container.get("command") or ()) + list(container.get("args") or ())
    return bool(argv) and posixpath.basename(argv[0]) == "config-manager"


def _configmap_at(pod, container, path):
    """The ConfigMap name of the volume `container` mounts at `path` (None when it is not a ConfigMap)."""
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    for mount in container.get("volumeMounts") or ():
        if mount.get("mountPath", "").rstrip("/") == path.rstrip("/"):
            volume = volumes.get(mount.get("name")) or {}
            return (volume.get("configMap") or {}).get("name")
    return None


def choose(files, label_value, default, fallbacks):
    """config-manager's updateConfigName: the key to use ("" = empty config) or ConfigError."""
    if not files:
        raise ConfigError("error getting list of configuration files: no configuration files available")
    if label_value:
        if label_value not in files:
            raise ConfigError("specified config %s does not exist" % label_value)
        return label_value
    if default:
        if default not in files:
            raise ConfigError("specified config %s does not exist" % default)
        return default
    for fallback in fallbacks:
        if fallback == "named" and "default" in files:
            return "default"
        if fallback == "single" and len(files) == 1:
            return sorted(files)[0]
        if fallback == "empty":
            return ""
        if fallback not in ("named", "single", "empty"):
            raise ConfigError("unknown fallback strategy: %s" % fallback)
    raise ConfigError("no config was set, no default was provided, and all fallbacks failed")


def source(pod):
    """How a plugin pod gets its config: {"configmap", "mode": "config-manager"|"file", "label", "default",
    "fallbacks", "key"} or None (no config: built-in defaults, no sharing)."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("initContainers") or ()) + list(spec.get("containers") or ())
    for container in containers:
        if _is_config_manager(container):
            srcdir = _env(container, "CONFIG_FILE_SRCDIR", DEFAULT_SRCDIR) or DEFAULT_SRCDIR
            fallbacks = _env(container, "FALLBACK_STRATEGIES")
            return {"mode": "config-manager", "configmap": _configmap_at(pod, container, srcdir),
                    "label": _env(container, "NODE_LABEL", DEFAULT_NODE_LABEL) or DEFAULT_NODE_LABEL,
                    "default": _env(container, "DEFAULT_CONFIG", "") or "",
                    "fallbacks": tuple(f.strip() for f in fallbacks.split(",") if f.strip())
                    if fallbacks is not None else DEFAULT_FALLBACKS}
    for container in spec.get("containers") or ():
        path = _env(container, "CONFIG_FILE")
        for arg in list(container.get("args") or ()) + list(container.get("command") or ()):
            if arg.startswith("--config-file="):
                path = arg.split("=", 1)[1]
        if path:
            directory, key = posixpath.split(path)
            name = _configmap_at(pod, container, directory)
            if name:
                return {"mode": "file", "configmap": name, "key": key}
    return None


def resolve(store, pod, node_labels):
    """(key, config text) the plugin pod on a node with `node_labels` runs with; (None, None) without a config
    source; ConfigError when config-manager would fail."""
    src = source(pod)
    if src is None or not src.get("configmap"):
        return None, None
    cm = store.try_get(CONFIGMAPS, pod["metadata"]["namespace"], src["configmap"])
    files = dict((cm or {}).get("data") or {})
    if src["mode"] == "file":
        if src["key"] not in files:
            raise ConfigError("unable to load config: unable to read config file %s" % src["key"])
        return src["key"], files[src["key"]]
    key = choose(files, (node_labels or {}).get(src["label"]), src["default"], src["fallbacks"])
    return key, files.get(key, "") if key else ""


def parse(text):
    """The sharing settings of a config file: {"strategy", "replicas", "resource", "fail_gt_one",
    "mig_strategy"}; ConfigError for a config the plugin refuses."""
    try:
        doc = yaml.safe_load(text or "") or {}
    except yaml.YAMLError as err:
        raise ConfigError("unable to parse config file: %s" % err)
    if not isinstance(doc, dict):
        raise ConfigError("unable to parse config file: not a mapping")
    if doc and doc.get("version", "v1") != "v1":
        raise ConfigError("unknown version: %s" % doc.get("version"))
    flags = doc.get("flags") or {}
    out = {"strategy": "none", "replicas": 1, "resource": GPU, "fail_gt_one": False,
           "mig_strategy": flags.get("migStrategy") or "none"}
    sharing = doc.get("sharing") or {}
    for strategy, key in (("mps", "mps"), ("time-slicing", "timeSlicing")):
        section = sharing.get(key)
        if section is None:
            continue
        resources = section.get("resources")
        if not resources:
            raise ConfigError("unable to parse config file: no resources specified")
        for res in resources:
            if "replicas" not in res:
                raise ConfigError("unable to parse config file: no replicas specified")
            if int(res["replicas"]) < 2:
                raise ConfigError("unable to parse config file: number of replicas must be >= 2")
            if res.get("name") == GPU:
                out.update(strategy=strategy, replicas=int(res["replicas"]))
                if section.get("renameByDefault"):
                    out["resource"] = GPU + ".shared"
                fail = section.get("failRequestsGreaterThanOne")
                out["fail_gt_one"] = bool(fail) if fail is not None else strategy == "mps"
        if out["strategy"] != "none":
            break
    return out


def labels(product, count, settings):
    """The GFD labels about sharing for a node's full GPUs (count: physical GPUs)."""
    shared = settings["replicas"] > 1
    base = product[:-len(SHARED_SUFFIX)] if product.endswith(SHARED_SUFFIX) else product
    renamed = settings["resource"] != GPU
    return {"nvidia.com/gpu.product": base + (SHARED_SUFFIX if shared and not renamed else ""),
            "nvidia.com/gpu.count": str(count),
            "nvidia.com/gpu.replicas": str(settings["replicas"]),
            "nvidia.com/gpu.sharing-strategy": settings["strategy"] if shared else "none"}


def distributed(gpu_indices, in_use, want):
    """`want` replicas by the plugin's distributed policy: [gpu index, ...] (an index may repeat) given
    {gpu index: replicas in use} and the replicas per GPU (in_use values never exceed it; callers pass only
    GPUs with free replicas, each as often as it has free replicas)."""
    used = dict(in_use)
    free = {}
    for index in gpu_indices:
        free[index] = free.get(index, 0) + 1
    picked = {}
    out = []
    for _n in range(want):
        candidates = [i for i in sorted(free) if free[i] > 0]
        if not candidates:
            break
        best = min(candidates, key=lambda i: (used.get(i, 0), picked.get(i, 0), i))
        free[best] -= 1
        used[best] = used.get(best, 0) + 1
        picked[best] = picked.get(best, 0) + 1
        out.append(best)
    return out


def config_manager_app(store):
    """The app of k8s-device-plugin images started as `config-manager`: ONESHOT (the init container) resolves
    the config and exits (1 on an error, which keeps the plugin from starting); the sidecar keeps running."""
    def factory(proc):
        if not proc.argv or posixpath.basename(proc.argv[0]) != "config-manager":
            return None
        return _config_manager(store, proc)
    return factory


def _config_manager(store, proc):
    oneshot = str(proc.env.get("ONESHOT", "false")).lower() == "true"
    node = store.try_get(("", "nodes"), None, (proc.pod.get("spec") or {}).get("nodeName") or "")
    node_labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    try:
        key, text = resolve(store, proc.pod, node_labels)
        if key:
            parse(text)
    except ConfigError as err:
        proc.write("E0101 00:00:00.000000       1 main.go:173] Error: %s\n" % err)
        yield 0.1
        return 1
    proc.write("I0101 00:00:00.000000       1 main.go:250] %s\n"
               % ("Updating to config: %s" % key if key else "Updating to empty config"))
    if oneshot:
        yield 0.1
        return 0
    yield math.inf
    return 0


# ------------------------------------------------------------------------------------------------- MIG
def mig_configs():
    if not _MIG_CONFIGS:
        with open(MIG_CONFIG, encoding="utf-8") as handle:
            _MIG_CONFIGS.update((yaml.safe_load(handle) or {}).get("mig-configs") or {})
    return _MIG_CONFIGS


def mig_layout(config_name, product_label):
    """{profile: count per GPU} the MIG manager applies for nvidia.com/mig.config=`config_name` on GPUs of
    `product_label`; None when MIG is off, the product is not MIG-capable or no entry matches."""
    device_id = PCI_DEVICE_IDS.get(product_label)
    if not config_name or device_id is None:
        return None
    for entry in mig_configs().get(config_name) or ():
        filters = entry.get("device-filter")
        if filters and device_id not in (filters if isinstance(filters, list) else [filters]):
            continue
        if not entry.get("mig-enabled"):
            return None
        return {str(k): int(v) for k, v in (entry.get("mig-devices") or {}).items()} or None
    return None


class MigDevice(object):
    """One MIG device (GPU instance with its compute instance) of a parent GPU."""

    def __init__(self, parent, profile, gi):
        self.parent = parent
        self.profile = profile
        self.gi = gi
        self.index = parent.index
        self.minor = parent.minor
        self.name = parent.name
        h = hashlib.sha256(("%s/%s/%d" % (parent.uuid, profile, gi)).encode()).hexdigest()[:32]
        self.uuid = "MIG-%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])

    @property
    def resource(self):
        return MIG_PREFIX + self.profile

    def device(self, pod_node=None):
        out = self.parent.device(pod_node)
        out.update(uuid=self.uuid, parent_uuid=self.parent.uuid, mig_profile=self.profile, mig_index=self.gi)
        return out


def mig_devices(gpus, layout):
    """Every MIG device of the node's GPUs for a layout ({profile: count}), GPU by GPU."""
    out = []
    for gpu in gpus:
        gi = 0
        for profile, count in sorted(layout.items()):
            for _n in range(count):
                out.append(MigDevice(gpu, profile, gi))
                gi += 1
    return out


def mig_strategy(pod, settings):
    """The plugin's MIG strategy: MIG_STRATEGY of its container, else the config's flags.migStrategy."""
    for container in (pod.get("spec") or {}).get("containers") or ():
        value = _env(container, "MIG_STRATEGY")
        if value:
            return value
    return (settings or {}).get("mig_strategy") or "none"


def mig_labels(product, devices, strategy):
    """GFD's MIG labels for a node whose GPUs are all in MIG mode (internal/lm: NewMIGResourceLabeler)."""
    out = {"nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": strategy,
           "nvidia.com/mig.config.state": "success"}
    base = product[:-len(SHARED_SUFFIX)] if product.endswith(SHARED_SUFFIX) else product
    by_profile = {}
    for dev in devices:
        by_profile.setdefault(dev.profile, []).append(dev)
    if strategy == "single" and len(by_profile) == 1:
        profile = next(iter(by_profile))
        prefix = GPU
        out.update({prefix + ".product": "%s-MIG-%s" % (base, profile), prefix + ".count": str(len(devices)),
                    prefix + ".replicas": "1", prefix + ".sharing-strategy": "none",
                    prefix + ".slices.gi": profile.split("g.")[0], prefix + ".slices.ci": profile.split("g.")[0]})
        return out
    for profile, devs in by_profile.items():
        prefix = MIG_PREFIX + profile
        out.update({prefix + ".product": "%s-MIG-%s" % (base, profile), prefix + ".count": str(len(devs)),
                    prefix + ".replicas": "1", prefix + ".sharing-strategy": "none",
                    prefix + ".slices.gi": profile.split("g.")[0], prefix + ".slices.ci": profile.split("g.")[0]})
    return out
