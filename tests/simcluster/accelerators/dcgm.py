"""The DCGM exporter: Prometheus metrics of a node's GPUs on :9400/metrics, as dcgm-exporter serves them.

The counters come from a dcgm-exporter counters CSV, like the real exporter: the file named by
DCGM_EXPORTER_COLLECTORS (or `-f`), e.g. a ConfigMap mounted into the pod, else the exporter's default
set (data/default-counters.csv, the upstream file). Each counter is written with its HELP and TYPE lines
and one series per GPU, labelled gpu, UUID, pci_bus_id, device, modelName, Hostname and (a `label`
counter) DCGM_FI_DRIVER_VERSION; GPUs in use carry container/namespace/pod attribution as with
DCGM_EXPORTER_KUBERNETES=true. Values move with simulated time and react to load (see inventory.py):
utilisation, memory, clocks, temperature, power, the energy counter and PCIe/NVLink traffic.
"""
from __future__ import annotations

import hashlib
import math
import os

DEFAULT_COUNTERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "default-counters.csv")
IMAGE_PATTERN = "*/dcgm-exporter"
BOOT_SECONDS = 86400.0


def parse_counters(text):
    """[(field, prometheus type, help)] from a counters CSV (comments and blank lines skipped)."""
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
    return out


def _jitter(uuid, bucket, salt=""):
    return int(hashlib.sha256(("%s/%s/%d" % (uuid, salt, bucket)).encode()).hexdigest()[:6], 16) / float(0xFFFFFF)


def gpu_values(gpu, load, now, busy_seconds, start):
    """Every counter's value for one GPU at simulated time `now`."""
    info = gpu.info
    bucket = int(now // 5)
    j = _jitter(gpu.uuid, bucket)
    busy = load is not None
    util = min(100, int(load.util - 4 + 8 * j)) if busy else int(3 * j)
    used = int(load.memory_mib) if busy else 0
    reserved = info["reserved_mib"]
    power_idle, power_max = info["idle_w"], info["max_w"]
    power = power_idle + 4 * j + ((power_max - power_idle) * 0.78 if busy else 0.0)
    uptime = now - start + BOOT_SECONDS
    energy_mj = (power_idle * uptime + (power_max - power_idle) * 0.78 * busy_seconds) * 1000.0
    temp = 31 + int(3 * j) + (36 if busy else 0)
    sm_idle, sm_max = info["sm_mhz"]
    mem_idle, mem_max = info["mem_mhz"]
    pcie = 180000 + int(40000 * j) + (9500000000 if busy else 0)
    return {
        "DCGM_FI_DEV_SM_CLOCK": sm_max if busy else sm_idle,
        "DCGM_FI_DEV_MEM_CLOCK": mem_max if busy else mem_idle,
        "DCGM_FI_DEV_MEMORY_TEMP": temp + 4,
        "DCGM_FI_DEV_GPU_TEMP": temp,
        "DCGM_FI_DEV_POWER_USAGE": "%.6f" % power,
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": int(energy_mj),
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": 0,
        "DCGM_FI_DEV_GPU_UTIL": util,
        "DCGM_FI_DEV_MEM_COPY_UTIL": int(util * 0.45),
        "DCGM_FI_DEV_ENC_UTIL": 0,
        "DCGM_FI_DEV_DEC_UTIL": 0,
        "DCGM_FI_DEV_XID_ERRORS": 0,
        "DCGM_FI_DEV_FB_FREE": gpu.memory_mib - reserved - used,
        "DCGM_FI_DEV_FB_USED": used,
        "DCGM_FI_DEV_FB_RESERVED": reserved,
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": int(busy_seconds * 2.4e9),
        "DCGM_FI_DEV_VGPU_LICENSE_STATUS": 1 if gpu.vgpu and gpu.vgpu["licensed"] else 0,
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": 0,
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": 0,
        "DCGM_FI_DEV_ROW_REMAP_FAILURE": 0,
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "%.6f" % (util / 100.0),
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "%.6f" % (0.61 if busy else 0.0),
        "DCGM_FI_PROF_DRAM_ACTIVE": "%.6f" % (0.42 if busy else 0.0001 * j),
        "DCGM_FI_PROF_PCIE_TX_BYTES": pcie,
        "DCGM_FI_PROF_PCIE_RX_BYTES": pcie + 3000,
    }


def exposition(counters, gpus, node, now, inventory, users, start, migs=None):
    """The /metrics body for the node's GPUs. `migs` ({gpu index: [(profile, GPU instance id, user or None)]})
    adds, for GPUs in MIG mode, one series per GPU instance of each profiling (DCGM_FI_PROF_*) counter labelled
    GPU_I_PROFILE and GPU_I_ID, attributed to the instance's pod (dcgm-exporter's GPU-instance entities)."""
    with_driver = any(field == "DCGM_FI_DRIVER_VERSION" and kind == "label" for field, kind, _h in counters)
    series = []
    for gpu in gpus:
        labels = [("gpu", str(gpu.index)), ("UUID", gpu.uuid), ("pci_bus_id", gpu.pci_bus_id),
                  ("device", "nvidia%d" % gpu.minor), ("modelName", gpu.name), ("Hostname", node)]
        if with_driver:
            labels.append(("DCGM_FI_DRIVER_VERSION", gpu.driver_version))
        user = users.get(gpu.index)
        if user:
            labels.extend([("container", user[2]), ("namespace", user[0]), ("pod", user[1])])
        text = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')) for k, v in labels)
        values = gpu_values(gpu, inventory.load_at(gpu.uuid, now), now, inventory.busy_seconds(gpu.uuid, now), start)
        series.append((text, values))
        for profile, gi, owner in (migs or {}).get(gpu.index, ()):
            mig_labels = [kv for kv in labels if kv[0] not in ("container", "namespace", "pod")]
            mig_labels += [("GPU_I_PROFILE", profile), ("GPU_I_ID", str(gi))]
            if owner:
                mig_labels.extend([("container", owner[2]), ("namespace", owner[0]), ("pod", owner[1])])
            mig_text = ",".join('%s="%s"' % (k, v) for k, v in mig_labels)
            series.append((mig_text, {k: v for k, v in values.items() if k.startswith("DCGM_FI_PROF_")}))
    lines = []
    for field, kind, help_text in counters:
        if kind == "label":
            continue
        lines.append("# HELP %s %s" % (field, help_text))
        lines.append("# TYPE %s %s" % (field, kind))
        for text, values in series:
            if "GPU_I_PROFILE=" in text and field not in values:
                continue        # GPU-instance entities have the profiling fields only
            lines.append("%s{%s} %s" % (field, text, values.get(field, 0)))
    return "\n".join(lines) + "\n"


class Exporter(object):
    """The app behind dcgm-exporter images (registered with the runtime by image pattern)."""

    def __init__(self, sim, inventory, users, migs=None):
        self.sim = sim
        self.inventory = inventory
        self.users = users
        self.migs = migs
        self.start = sim.clock.now()

    def _counters(self, proc):
        path = proc.env.get("DCGM_EXPORTER_COLLECTORS")
        argv = list(proc.argv)
        for i, arg in enumerate(argv):
            if arg in ("-f", "--collectors") and i + 1 < len(argv):
                path = argv[i + 1]
        if path and proc.fs.exists(path):
            return parse_counters(proc.fs.read(path)), path
        with open(DEFAULT_COUNTERS, encoding="utf-8") as handle:
            return parse_counters(handle.read()), "/etc/dcgm-exporter/default-counters.csv"

    def app(self, proc):
        counters, source = self._counters(proc)
        listen = proc.env.get("DCGM_EXPORTER_LISTEN", ":9400")
        port = int(listen.rsplit(":", 1)[-1] or 9400)
        node = (proc.pod.get("spec") or {}).get("nodeName") or ""
        gpus = self.inventory.gpus(node)

        def handler(request):
            if request.path.rstrip("/") == "/metrics":
                body = exposition(counters, gpus, node, self.sim.clock.now(), self.inventory, self.users(node),
                                  self.start, self.migs(node) if self.migs else None)
                return 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, body.encode()
            if request.path.rstrip("/") == "/health":
                return 200, {"Content-Type": "text/plain; charset=utf-8"}, b"OK\n"
            return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"

        def program():
            proc.write('time="%s" level=info msg="Starting dcgm-exporter" version=4.2.3-4.1.3\n'
                       % self.sim.clock.timestamp())
            proc.write('time="%s" level=info msg="Initializing system entities of type: GPU" count=%d\n'
                       % (self.sim.clock.timestamp(), len(gpus)))
            proc.write('time="%s" level=info msg="Collecting DCP metrics" counters=%d source=%s\n'
                       % (self.sim.clock.timestamp(), len(counters), source))
            proc.listen(port, handler)
            proc.write('time="%s" level=info msg="Starting webserver" address=%s\n' % (self.sim.clock.timestamp(), listen))
            yield math.inf
            return 0
        return program()
