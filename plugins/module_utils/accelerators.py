# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The accelerator vendor table, and pure helpers that read nodes, slices and listings through it.

Every vendor-specific name the checks use lives in VENDORS: extended resources and node labels (device
plugin / feature discovery), the DRA driver, device class and attribute names, device node globs, the
listing command and how to read its output, the metrics exporter and its metric names per core and
optional metric. Adding a vendor, or a renamed metric, is a data change here; the checks only ask the
table. Metric names are mapped to the OpenTelemetry semantic conventions for hardware (`hw.gpu.*`,
`hw.temperature`, `hw.power`, `hw.energy`) so evidence speaks one vocabulary across vendors.

Sources: NVIDIA GPU operator / GPU feature discovery labels, NVIDIA DRA driver chart (device classes),
dcgm-exporter default counters, AMD device-metrics-exporter (current and older metric names, see
tests/unit/fixtures), Intel XPU Manager exporter. No I/O here.
"""
from __future__ import annotations

import re

VENDOR_CHOICES = ("auto", "nvidia", "amd", "intel")

# OpenTelemetry hardware semantic conventions (semconv docs/hardware/gpu.md and common.md).
OTEL = {
    "utilization": "hw.gpu.utilization",
    "memory_used": "hw.gpu.memory.usage",
    "memory_total": "hw.gpu.memory.limit",
    "memory_free": "hw.gpu.memory.limit (limit = usage + free)",
    "temperature": "hw.temperature",
    "power": "hw.power",
    "energy": "hw.energy",
    "interconnect": "hw.gpu.io",
    "errors": "hw.errors",
}

CORE_METRICS = ("utilization", "memory_used")
OPTIONAL_METRICS = ("temperature", "power", "energy", "interconnect")

VENDORS = {
    "nvidia": {
        "name": "nvidia",
        "display": "NVIDIA",
        "resources": ("nvidia.com/gpu",),
        "partition_prefixes": ("nvidia.com/mig-",),
        "labels": {
            "present": "nvidia.com/gpu.present",
            "count": "nvidia.com/gpu.count",
            "product": "nvidia.com/gpu.product",
            "memory": "nvidia.com/gpu.memory",
            "sharing": "nvidia.com/gpu.sharing-strategy",
            "replicas": "nvidia.com/gpu.replicas",
        },
        "shared_product_suffix": "-SHARED",
        "taint_key": "nvidia.com/gpu",
        "runtime_class": "nvidia",
        "dra": {
            "drivers": ("gpu.nvidia.com",),
            "driver_name": "the NVIDIA DRA driver (chart nvidia-dra-driver-gpu, role k8s_ai.conformance.dra_driver)",
            "device_class": "gpu.nvidia.com",
            "known_classes": ("gpu.nvidia.com", "mig.nvidia.com", "vfio.gpu.nvidia.com",
                              "compute-domain-daemon.nvidia.com", "compute-domain-default-channel.nvidia.com"),
            "attribute_domain": "gpu.nvidia.com",
            "product_attribute": "productName",
            "uuid_attribute": "uuid",
        },
        "devices": {
            "glob": "/dev/nvidia[0-9]*",
            "result_glob": "/dev/nvidia*",
            "pattern": r"^/dev/nvidia(?P<minor>\d+)$",
            "visible_env": "NVIDIA_VISIBLE_DEVICES",
        },
        "listing": {
            "binary": "nvidia-smi",
            "command": "nvidia-smi -L",
            # GPU 0: Tesla T4 (UUID: GPU-960adb66-4b24-7335-74f2-f334f2220a84)
            "patterns": (r"^GPU (?P<index>\d+): (?P<name>.+?) \(UUID: (?P<uuid>[^)\s]+)\)",),
        },
        "exporter": {
            "name": "NVIDIA DCGM exporter",
            "install": "the GPU operator's dcgmExporter, or the dcgm-exporter chart (role k8s_ai.conformance.dcgm_exporter)",
            "selectors": ("app=nvidia-dcgm-exporter", "app.kubernetes.io/name=dcgm-exporter"),
            "port": 9400,
            "port_names": ("gpu-metrics", "metrics"),
            "path": "/metrics",
        },
        "metrics": {
            "uuid_labels": ("UUID", "uuid"),
            "index_labels": ("gpu",),
            "model_labels": ("modelName",),
            "host_labels": ("Hostname",),
            "pod_labels": ("pod", "exported_pod"),
            "names": {
                "utilization": ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"),
                "memory_used": ("DCGM_FI_DEV_FB_USED",),
                "memory_free": ("DCGM_FI_DEV_FB_FREE",),
                "temperature": ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_MEMORY_TEMP"),
                "power": ("DCGM_FI_DEV_POWER_USAGE",),
                "energy": ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",),
                "interconnect": ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_PROF_NVLINK_TX_BYTES",
                                 "DCGM_FI_PROF_NVLINK_RX_BYTES", "DCGM_FI_PROF_PCIE_TX_BYTES",
                                 "DCGM_FI_PROF_PCIE_RX_BYTES", "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
                                 "DCGM_FI_DEV_PCIE_RX_THROUGHPUT"),
            },
            # percent -> ratio for hw.gpu.utilization; DCGM_FI_PROF_* ratios are already 0..1
            "utilization_scale": {"DCGM_FI_DEV_GPU_UTIL": 1.0, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 100.0},
        },
        "load": {
            "image": "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04",
            "command": "dcgmproftester12 --no-dcgm-validation -t 1004 -d {seconds}",
        },
    },
    "amd": {
        "name": "amd",
        "display": "AMD",
        "resources": ("amd.com/gpu",),
        "partition_prefixes": (),
        "labels": {
            "present": "feature.node.kubernetes.io/amd-gpu",
            "count": "amd.com/gpu.count",
            "product": "amd.com/gpu.product-name",
        },
        "taint_key": "amd.com/gpu",
        "runtime_class": None,
        "dra": {
            "drivers": ("gpu.amd.com",),
            "driver_name": "AMD's GPU DRA driver (k8s-gpu-dra-driver)",
            "device_class": "gpu.amd.com",
            "known_classes": ("gpu.amd.com",),
            "attribute_domain": "gpu.amd.com",
            "product_attribute": "productName",
            "uuid_attribute": "uuid",
        },
        "devices": {
            "glob": "/dev/dri/renderD*",
            "result_glob": "/dev/dri/renderD*",
            "pattern": r"^/dev/dri/renderD(?P<minor>\d+)$",
            "visible_env": None,
        },
        "listing": {
            "binary": "amd-smi",
            "command": "amd-smi list",
            # GPU: 0 / BDF: ... / UUID: ...
            "patterns": (r"^GPU: (?P<index>\d+)", r"^\s*UUID: (?P<uuid>\S+)"),
        },
        "exporter": {
            "name": "AMD device metrics exporter",
            "install": "the AMD GPU operator's metricsExporter, or AMD's device-metrics-exporter chart",
            "selectors": ("app.kubernetes.io/name=device-metrics-exporter", "app=amd-device-metrics-exporter"),
            "port": 5000,
            "port_names": ("http", "metrics"),
            "path": "/metrics",
        },
        "metrics": {
            "uuid_labels": ("gpu_uuid", "GPU_UUID"),
            "index_labels": ("gpu_id",),
            "model_labels": ("card_model",),
            "host_labels": ("hostname",),
            "pod_labels": ("pod", "exported_pod"),
            "names": {
                "utilization": ("gpu_gfx_activity", "gpu_usage"),
                "memory_used": ("gpu_used_vram",),
                "memory_total": ("gpu_total_vram", "gpu_total_memory"),
                "temperature": ("gpu_junction_temperature", "gpu_edge_temperature", "gpu_memory_temperature"),
                "power": ("gpu_package_power", "gpu_power_usage", "gpu_average_package_power"),
                "energy": ("gpu_energy_consumed",),
                "interconnect": ("gpu_xgmi_link_rx", "gpu_xgmi_link_tx", "pcie_bandwidth"),
            },
            "utilization_scale": {},
        },
        "load": None,
    },
    "intel": {
        "name": "intel",
        "display": "Intel",
        "resources": ("gpu.intel.com/i915", "gpu.intel.com/xe"),
        "partition_prefixes": (),
        "labels": {
            "present": "intel.feature.node.kubernetes.io/gpu",
        },
        "taint_key": "gpu.intel.com/i915",
        "runtime_class": None,
        "dra": {
            "drivers": ("gpu.intel.com",),
            "driver_name": "Intel's GPU resource driver (intel-resource-drivers-for-kubernetes)",
            "device_class": "gpu.intel.com",
            "known_classes": ("gpu.intel.com",),
            "attribute_domain": "gpu.intel.com",
            "product_attribute": "model",
            "uuid_attribute": "uuid",
        },
        "devices": {
            "glob": "/dev/dri/renderD*",
            "result_glob": "/dev/dri/renderD*",
            "pattern": r"^/dev/dri/renderD(?P<minor>\d+)$",
            "visible_env": None,
        },
        "listing": {
            "binary": "xpu-smi",
            "command": "xpu-smi discovery",
            "patterns": (r"Device ID: (?P<index>\d+)", r"UUID: (?P<uuid>\S+)"),
        },
        "exporter": {
            "name": "Intel XPU Manager exporter",
            "install": "Intel's XPU Manager exporter DaemonSet (xpumanager with its Prometheus endpoint)",
            "selectors": ("app=intel-xpumanager", "app.kubernetes.io/name=xpumanager"),
            "port": 29999,
            "port_names": ("metrics",),
            "path": "/metrics",
        },
        "metrics": {
            "uuid_labels": ("uuid",),
            "index_labels": ("dev_file", "pci_bdf"),
            "model_labels": ("dev_name",),
            "host_labels": ("node",),
            "pod_labels": ("kube_pod",),
            "names": {
                "utilization": ("xpum_engine_group_compute_all_ratio", "xpum_engine_group_ratio",
                                "hw_gpu_utilization_ratio"),
                "memory_used": ("xpum_memory_used_bytes", "hw_memory_usage_bytes"),
                "temperature": ("xpum_temperature_celsius", "xpum_gpu_temeperature_celsius", "hw_temperature_celsius"),
                "power": ("xpum_power_watts", "hw_power_watts"),
                "energy": ("xpum_energy_joules", "hw_energy_joules"),
                "interconnect": ("xpum_pcie_read_bytes_total", "xpum_pcie_write_bytes_total", "hw_gpu_io_bytes_total"),
            },
            "utilization_scale": {"xpum_engine_group_compute_all_ratio": 100.0, "xpum_engine_group_ratio": 100.0,
                                  "hw_gpu_utilization_ratio": 100.0},
        },
        "load": None,
    },
}

# Accelerators we can recognise on nodes but have no vendor entry for: checks that need in-container
# probing or exporter knowledge report them as needing manual verification.
OTHER_ACCELERATOR_RESOURCES = ("aws.amazon.com/neuron", "aws.amazon.com/neuroncore", "aws.amazon.com/neurondevice",
                               "google.com/tpu", "habana.ai/gaudi")


class UnknownVendor(ValueError):
    """A vendor name the table does not know."""


def vendor(name):
    """The table entry for `name` (nvidia, amd, intel)."""
    try:
        return VENDORS[name]
    except KeyError:
        raise UnknownVendor("unknown accelerator vendor %r: use one of %s, or auto to detect it"
                            % (name, ", ".join(VENDOR_CHOICES)))


def quantity_int(value):
    """An extended-resource quantity ("8", 8, "0") as int; None when absent or not a whole number."""
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def default_tolerations(entry):
    """Tolerations probe pods need on the vendor's accelerator nodes (the upstream test tolerates
    `nvidia.com/gpu` with effect NoSchedule)."""
    return [{"key": entry["taint_key"], "operator": "Exists", "effect": "NoSchedule"}]


def _label(node, key):
    return ((node.get("metadata") or {}).get("labels") or {}).get(key) if key else None


def _status_int(node, field, resource):
    return quantity_int(((node.get("status") or {}).get(field) or {}).get(resource))


def summarize_node(node, entry):
    """What a node says about the vendor's accelerators, or None when it has none of them.

    count: whole accelerators by the device plugin's allocatable, else the feature-discovery count
    label; `physical` is the label count (time-slicing multiplies allocatable, not the label).
    """
    allocatable = None
    capacity = None
    for resource in entry["resources"]:
        value = _status_int(node, "allocatable", resource)
        if value is not None:
            allocatable = (allocatable or 0) + value
        value = _status_int(node, "capacity", resource)
        if value is not None:
            capacity = (capacity or 0) + value
    labels = entry["labels"]
    label_count = quantity_int(_label(node, labels.get("count")))
    present = str(_label(node, labels.get("present")) or "").lower() == "true"
    partitions = {}
    for resource, value in ((node.get("status") or {}).get("allocatable") or {}).items():
        if any(resource.startswith(prefix) for prefix in entry.get("partition_prefixes") or ()):
            partitions[resource] = quantity_int(value)
    if not (allocatable or label_count or present or partitions):
        return None
    product = _label(node, labels.get("product")) or ""
    sharing = _label(node, labels.get("sharing")) or ""
    shared = bool(sharing and sharing != "none") or \
        bool(entry.get("shared_product_suffix") and product.endswith(entry["shared_product_suffix"]))
    return {
        "name": node["metadata"]["name"],
        "vendor": entry["name"],
        "allocatable": allocatable,
        "capacity": capacity,
        "label_count": label_count,
        "physical": label_count if label_count is not None else allocatable,
        "count": allocatable if allocatable else (label_count or 0),
        "product": product,
        "present_label": present,
        "partitions": partitions,
        "shared": shared,
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "taints": list((node.get("spec") or {}).get("taints") or []),
        "labels": dict((node.get("metadata") or {}).get("labels") or {}),
    }


def accelerator_nodes(nodes, entry):
    """Summaries of the nodes that carry the vendor's accelerators, sorted by name."""
    out = [summarize_node(node, entry) for node in nodes]
    return sorted((s for s in out if s), key=lambda s: s["name"])


def other_accelerators(nodes):
    """{node name: {resource: count}} for accelerators outside the vendor table (Neuron, TPU, ...)."""
    found = {}
    for node in nodes:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        hits = {r: quantity_int(v) for r, v in allocatable.items() if r in OTHER_ACCELERATOR_RESOURCES and quantity_int(v)}
        if hits:
            found[node["metadata"]["name"]] = hits
    return found


def detect_vendor(nodes, slice_drivers=()):
    """The vendor with the most accelerator nodes (ties: table order), else the one whose DRA driver
    publishes slices; None when the cluster shows no accelerator the table knows."""
    best, best_count = None, 0
    for name, entry in VENDORS.items():
        count = len(accelerator_nodes(nodes, entry))
        if count > best_count:
            best, best_count = name, count
    if best:
        return best
    for name, entry in VENDORS.items():
        if set(entry["dra"]["drivers"]) & set(slice_drivers):
            return name
    return None


def detect_vendors(nodes, slice_drivers=()):
    """Every vendor of the table present on the cluster, in table order: accelerator nodes by resources or
    labels, or a DRA driver of the vendor publishing devices. Empty when none is."""
    return [name for name, entry in VENDORS.items()
            if accelerator_nodes(nodes, entry) or set(entry["dra"]["drivers"]) & set(slice_drivers)]


def resolve_vendor(requested, nodes, slice_drivers=()):
    """(vendor name, how it was chosen). `requested` is a VENDOR_CHOICES value."""
    if requested != "auto":
        vendor(requested)
        return requested, "set by the vendor option"
    found = detect_vendor(nodes, slice_drivers)
    if found:
        return found, "detected from node resources, labels or DRA drivers"
    return "nvidia", "nothing detected; NVIDIA names used for the checks"


def parse_listing(entry, text):
    """Accelerators named by the vendor's listing command output: [{index, name, uuid}] in order.

    Each vendor pattern may set index/name/uuid; a match that sets uuid completes one accelerator
    (NVIDIA prints everything on one line, AMD and Intel across lines).
    """
    patterns = [re.compile(p) for p in entry["listing"]["patterns"]]
    found, current = [], {}
    for line in (text or "").splitlines():
        for pattern in patterns:
            match = pattern.search(line)
            if not match:
                continue
            current.update({k: v for k, v in match.groupdict().items() if v is not None})
            if "uuid" in current:
                found.append({"index": current.get("index"), "name": current.get("name", ""), "uuid": current["uuid"]})
                current = {}
            break
    return found


def device_nodes(entry, lines):
    """Device node paths in `lines` that are accelerators for the vendor (/dev/nvidia0, not nvidiactl)."""
    pattern = re.compile(entry["devices"]["pattern"])
    return [line.strip() for line in lines if pattern.match(line.strip())]


def metric_names(entry, kind):
    """Candidate metric names for a metric kind (utilization, memory_used, temperature, ...)."""
    return tuple(entry["metrics"]["names"].get(kind) or ())


def otel_name(entry, metric):
    """The OpenTelemetry hardware metric a vendor metric maps to, or "" when none does."""
    for kind, names in entry["metrics"]["names"].items():
        if metric in names:
            return OTEL.get(kind, "")
    return ""


def utilization_percent(entry, metric, value):
    """A utilisation sample in percent (DCGM GPU_UTIL is percent; profiling ratios are 0..1)."""
    scale = entry["metrics"].get("utilization_scale", {}).get(metric, 1.0)
    return float(value) * scale
