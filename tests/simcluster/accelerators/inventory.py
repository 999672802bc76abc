"""The simulated GPUs: which node has which GPUs, and how busy each one is.

GPUs come from the scenario's node pools (`accelerators: {vendor: nvidia, count, product}`), with stable
UUIDs and PCI bus ids derived from the node name, so two runs of one scenario show the same hardware.
Product data (marketing name, memory, compute capability, power) follows what `nvidia-smi` and GPU feature
discovery report for that product. Load is recorded per GPU as intervals of simulated time (a load tool such
as dcgmproftester marks its GPUs busy for its duration); the DCGM exporter reads utilisation, memory, power
and energy from it. Only NVIDIA GPUs have behaviour; other vendors' pools keep S1's capacity and labels.
"""
from __future__ import annotations

import hashlib
import threading

DRIVER_VERSION = "570.133.20"
CUDA_VERSION = "12.8"

# product label (nvidia.com/gpu.product) -> what the hardware reports
PRODUCTS = {
    "NVIDIA-H100-80GB-HBM3": {"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "cc": "9.0", "arch": "Hopper",
                              "family": "hopper", "idle_w": 71.0, "max_w": 700.0, "sm_mhz": (345, 1980),
                              "mem_mhz": (2619, 2619), "reserved_mib": 529},
    "NVIDIA-A100-SXM4-40GB": {"name": "NVIDIA A100-SXM4-40GB", "memory_mib": 40960, "cc": "8.0", "arch": "Ampere",
                              "family": "ampere", "idle_w": 55.0, "max_w": 400.0, "sm_mhz": (210, 1410),
                              "mem_mhz": (1215, 1215), "reserved_mib": 498},
    "NVIDIA-L40S": {"name": "NVIDIA L40S", "memory_mib": 46068, "cc": "8.9", "arch": "Ada Lovelace", "family": "ada-lovelace",
                    "idle_w": 35.0, "max_w": 350.0, "sm_mhz": (210, 2520), "mem_mhz": (405, 9001), "reserved_mib": 608},
    "Tesla-T4": {"name": "Tesla T4", "memory_mib": 15360, "cc": "7.5", "arch": "Turing", "family": "turing",
                 "idle_w": 14.5, "max_w": 70.0, "sm_mhz": (300, 1590), "mem_mhz": (405, 5000), "reserved_mib": 447},
    # NVIDIA vGPU (a time-sliced C-series profile of an A100 40GB, as a VM guest sees it): the guest driver names
    # it by its profile (VKS: nvidia.com/gpu.product GRID-A100-40C, DRA productName "GRID A100-40C").
    "GRID-A100-40C": {"name": "GRID A100-40C", "memory_mib": 40960, "cc": "8.0", "arch": "Ampere", "family": "ampere",
                      "idle_w": 55.0, "max_w": 400.0, "sm_mhz": (210, 1410), "mem_mhz": (1215, 1215),
                      "reserved_mib": 2496, "vgpu": True},
}
DEFAULT_PRODUCT = "NVIDIA-H100-80GB-HBM3"
# PCI buses of the eight GPUs of an HGX H100 board, in nvidia-smi order
PCI_BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)


def _hex(seed, length):
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class Gpu(object):
    """One GPU of a node (physical, or a vGPU when the product is a vGPU profile).

    `accel` is the pool's `accelerators` mapping: `driverVersion`/`cudaVersion` (the driver the node runs,
    default DRIVER_VERSION/CUDA_VERSION), `labelledDriverVersion` (what GPU feature discovery last labelled,
    default the running driver: differs after a driver upgrade GFD did not see), and for vGPU profiles
    `vgpu: {hostDriverVersion, hostDriverBranch, licensed}` (the hypervisor's vGPU manager and the guest's
    licence; licensed defaults to true)."""

    def __init__(self, node, index, product_label, seed, accel=None):
        accel = accel or {}
        info = PRODUCTS.get(product_label) or PRODUCTS[DEFAULT_PRODUCT]
        self.driver_version = str(accel.get("driverVersion") or DRIVER_VERSION)
        self.cuda_version = str(accel.get("cudaVersion") or CUDA_VERSION)
        self.labelled_driver_version = str(accel.get("labelledDriverVersion") or self.driver_version)
        self.vgpu = None
        if info.get("vgpu"):
            vgpu = accel.get("vgpu") or {}
            self.vgpu = {"host_driver_version": str(vgpu.get("hostDriverVersion") or self.driver_version),
                         "host_driver_branch": str(vgpu.get("hostDriverBranch") or "r%s_00" % self.driver_version.split(".", maxsplit=1)[0]),
                         "licensed": bool(vgpu.get("licensed", True))}
        self.node = node
        self.index = index
        self.minor = index
        self.product_label = product_label
        self.name = info["name"]
        self.info = info
        self.memory_mib = info["memory_mib"]
        h = _hex("%s/%s/%d" % (seed, node, index), 32)
        self.uuid = "GPU-%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])
        bus = PCI_BUSES[index] if index < len(PCI_BUSES) else 0x10 + index
        self.pci_bus_id = "00000000:%02X:00.0" % bus
        self.serial = str(int(_hex("serial/%s/%d" % (node, index), 10), 16))[:13]

    @property
    def device_name(self):
        return "gpu-%d" % self.index

    def device(self, pod_node=None):
        """The device dict the runtime turns into /dev/nvidia<minor>."""
        return {"vendor": "nvidia", "uuid": self.uuid, "index": self.index, "minor": self.minor, "major": 195,
                "path": "/dev/nvidia%d" % self.minor, "node": pod_node or self.node, "name": self.name}


CONTROL_DEVICES = (("/dev/nvidiactl", 195, 255), ("/dev/nvidia-uvm", 510, 0), ("/dev/nvidia-uvm-tools", 510, 1),
                   ("/dev/nvidia-modeset", 195, 254))


def control_devices():
    """The device nodes the container toolkit adds next to any GPU (not GPUs themselves)."""
    return [{"vendor": "nvidia", "path": path, "major": major, "minor": minor, "control": True}
            for path, major, minor in CONTROL_DEVICES]


class Load(object):
    __slots__ = ("start", "end", "util", "memory_mib")

    def __init__(self, start, end, util, memory_mib):
        self.start = start
        self.end = end
        self.util = util
        self.memory_mib = memory_mib


class Inventory(object):
    """GPUs per node and their load over simulated time. Thread-safe."""

    def __init__(self, scenario, seed=None):
        self._lock = threading.Lock()
        self._nodes = {}
        self._by_uuid = {}
        self._loads = {}
        seed = seed or scenario.get("name", "sim")
        # cluster-wide driver defaults (settings.accelerators.driverVersion, cudaVersion, labelledDriverVersion);
        # a pool's own `accelerators` keys win
        settings = (scenario.get("settings") or {}).get("accelerators") or {}
        defaults = {k: settings[k] for k in ("driverVersion", "cudaVersion", "labelledDriverVersion") if settings.get(k)}
        for pool in scenario.get("nodePools") or []:
            accel = pool.get("accelerators") or {}
            if not accel or accel.get("vendor", "nvidia") != "nvidia":
                continue
            accel = dict(defaults, **accel)
            if settings.get("vgpuLicenseServer") == "unreachable":   # no guest gets a licence
                accel["vgpu"] = dict(accel.get("vgpu") or {}, licensed=False)
            product = accel.get("product", DEFAULT_PRODUCT)
            for i in range(int(pool.get("count", 1))):
                node = "%s-%d" % (pool["name"], i)
                gpus = [Gpu(node, n, product, seed, accel) for n in range(int(accel.get("count", 1)))]
                self._nodes[node] = gpus
                for gpu in gpus:
                    self._by_uuid[gpu.uuid] = gpu

    def nodes(self):
        return sorted(self._nodes)

    def add_node(self, node, count, product=DEFAULT_PRODUCT, seed="autoscaled"):
        """GPUs of a node that joins later (a cluster autoscaler's new node); no-op when already known."""
        with self._lock:
            if node in self._nodes:
                return
            gpus = [Gpu(node, n, product, seed) for n in range(int(count))]
            self._nodes[node] = gpus
            for gpu in gpus:
                self._by_uuid[gpu.uuid] = gpu

    def remove_node(self, node):
        """Forget a node that was removed (scaled down); its GPUs' load history goes with it."""
        with self._lock:
            for gpu in self._nodes.pop(node, ()):
                self._by_uuid.pop(gpu.uuid, None)
                self._loads.pop(gpu.uuid, None)

    def gpus(self, node):
        return list(self._nodes.get(node) or ())

    def by_uuid(self, uuid):
        return self._by_uuid.get(uuid)

    def by_device_name(self, node, device_name):
        for gpu in self._nodes.get(node) or ():
            if gpu.device_name == device_name:
                return gpu
        return None

    # ------------------------------------------------------------------------------------- load
    def add_load(self, uuid, start, seconds, util=97.0, memory_mib=None):
        gpu = self._by_uuid.get(uuid)
        if gpu is None:
            return
        memory = memory_mib if memory_mib is not None else int(gpu.memory_mib * 0.62)
        with self._lock:
            self._loads.setdefault(uuid, []).append(Load(start, start + float(seconds), util, memory))

    def stop_load(self, uuid, when):
        """End the GPU's running loads at `when` (the process using it went away)."""
        with self._lock:
            for load in self._loads.get(uuid, ()):
                if load.start <= when < load.end:
                    load.end = when

    def load_at(self, uuid, when):
        """The Load active at simulated time `when`, or None."""
        with self._lock:
            for load in reversed(self._loads.get(uuid, ())):
                if load.start <= when < load.end:
                    return load
        return None

    def busy_seconds(self, uuid, until):
        """Simulated seconds the GPU was under load up to `until` (for the energy counter)."""
        with self._lock:
            return sum(max(0.0, min(load.end, until) - load.start) for load in self._loads.get(uuid, ()))
