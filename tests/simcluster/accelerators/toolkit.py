"""What a container sees of the GPUs: the NVIDIA container toolkit's decisions, and the GPU tools.

Devices (the runtime's device provider):
  * the GPUs granted by the device plugin (an `nvidia.com/gpu` request) and by DRA (claims the container
    names), as /dev/nvidia<minor>, plus /dev/nvidiactl, /dev/nvidia-uvm(-tools), /dev/nvidia-modeset;
  * NVIDIA_VISIBLE_DEVICES (from the pod or the image, e.g. CUDA images set `all`) is ignored for
    unprivileged containers, as the toolkit does with accept-nvidia-visible-devices-envvar-when-unprivileged
    = false (the GPU operator's default with the volume-mounts/CDI device list strategy); the scenario switch
    `settings.accelerators.acceptEnvvarWhenUnprivileged: true` makes it honoured (`all`, indices or UUIDs);
  * privileged containers see every GPU of their node (by design, out of the requirement's scope);
  * `settings.runtime.deviceIsolation: false` (the gpu-leak scenario) shows every container on a GPU node
    all of the node's GPUs.
Tools: `nvidia-smi` exists only in containers that got a GPU (the toolkit injects it), else the shell's
"not found" (exit 127); `dcgmproftester12` (and 11) load their GPUs for `-d` seconds; the DRA driver's
`gpu-kubelet-plugin` runs until stopped.
"""
from __future__ import annotations

import math
import re

from ..runtime import profile_for
from . import dra
from .inventory import control_devices

VISIBLE_ENV = "NVIDIA_VISIBLE_DEVICES"


class Toolkit(object):
    def __init__(self, sim, inventory, device_manager, dra_state):
        self.sim = sim
        self.inventory = inventory
        self.devices = device_manager
        self.dra_state = dra_state

    def _setting(self, section, key, default):
        return ((getattr(self.sim, "settings", None) or {}).get(section) or {}).get(key, default)

    def _visible_env(self, container):
        value = profile_for(container.get("image")).env.get(VISIBLE_ENV)
        for item in container.get("env") or ():
            if item.get("name") == VISIBLE_ENV and item.get("value") is not None:
                value = item["value"]
        return value

    def _by_env(self, gpus, value):
        if not value or value in ("void", "none"):
            return []
        if value == "all":
            return list(gpus)
        wanted = set(v.strip() for v in value.split(","))
        return [g for g in gpus if str(g.index) in wanted or g.uuid in wanted]

    def granted(self, pod, container):
        """The Gpu objects visible in the container."""
        node = (pod.get("spec") or {}).get("nodeName")
        gpus = self.inventory.gpus(node)
        if not gpus:
            return []
        if not self._setting("runtime", "deviceIsolation", True):
            return gpus
        if ((container.get("securityContext") or {}).get("privileged")):
            return gpus
        chosen = list(self.devices.allocate(pod, container))
        for gpu in dra.devices_for(self.dra_state, self.inventory, pod, container):
            if gpu not in chosen:
                chosen.append(gpu)
        if self._setting("accelerators", "acceptEnvvarWhenUnprivileged", False):
            for gpu in self._by_env(gpus, self._visible_env(container)):
                if gpu not in chosen:
                    chosen.append(gpu)
        return sorted(chosen, key=lambda g: g.index)

    def provide(self, pod, container):
        """The runtime's device provider: device nodes for the granted GPUs (+ control devices)."""
        gpus = self.granted(pod, container)
        if not gpus:
            return []
        node = (pod.get("spec") or {}).get("nodeName")
        return [g.device(node) for g in gpus] + control_devices()


def _gpus_of(inventory, proc):
    """The GPUs whose device nodes the container has (a MIG device's parent GPU counts as one)."""
    out = []
    for device in proc.devices or ():
        if device.get("vendor") == "nvidia" and not device.get("control"):
            gpu = inventory.by_uuid(device.get("parent_uuid") or device.get("uuid"))
            if gpu is not None and gpu not in out:
                out.append(gpu)
    return sorted(out, key=lambda g: g.index)


def _migs_of(proc, gpu):
    """MIG devices (sharing.MigDevice.device dicts) of `gpu` granted to the container."""
    return [d for d in proc.devices or () if d.get("mig_profile") and d.get("parent_uuid") == gpu.uuid]


def _has_gpu(proc):
    return any(d.get("vendor") == "nvidia" and not d.get("control") for d in proc.devices or ())


QUERY_FIELDS = {
    "index": lambda i, g, u: str(i),
    "name": lambda i, g, u: g.name,
    "uuid": lambda i, g, u: g.uuid,
    "driver_version": lambda i, g, u: g.driver_version,
    "pci.bus_id": lambda i, g, u: g.pci_bus_id,
    "memory.total": lambda i, g, u: "%d MiB" % g.memory_mib,
    "memory.used": lambda i, g, u: "%d MiB" % u["memory"],
    "utilization.gpu": lambda i, g, u: "%d %%" % u["util"],
    "compute_cap": lambda i, g, u: g.info["cc"],
    "serial": lambda i, g, u: g.serial,
}


def nvidia_smi(inventory):
    """`nvidia-smi` for the GPUs the container was given (indices renumbered from 0, as inside a container)."""
    def command(ctx, argv):
        gpus = _gpus_of(inventory, ctx.host)
        if not gpus:
            ctx.out("No devices were found\n")
            return 6
        args = argv[1:]
        if "-L" in args or "--list-gpus" in args:
            for i, gpu in enumerate(gpus):
                ctx.out("GPU %d: %s (UUID: %s)\n" % (i, gpu.name, gpu.uuid))
                for n, mig in enumerate(_migs_of(ctx.host, gpu)):
                    ctx.out("  MIG %-11s Device %2d: (UUID: %s)\n" % (mig["mig_profile"], n, mig["uuid"]))
            return 0
        query = next((a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")), None)
        if query is not None:
            return _query(ctx, inventory, gpus, query, next((a.split("=", 1)[1] for a in args
                                                             if a.startswith("--format=")), ""))
        ctx.out("+-----------------------------------------------------------------------------------------+\n")
        ctx.out("| NVIDIA-SMI %s             Driver Version: %s     CUDA Version: %s     |\n"
                % (gpus[0].driver_version, gpus[0].driver_version, gpus[0].cuda_version))
        for i, gpu in enumerate(gpus):
            usage = _usage(inventory, gpu, ctx.now())
            ctx.out("|   %d  %-30s | %s | %6dMiB / %6dMiB | %3d%% |\n" % (
                i, gpu.name, gpu.pci_bus_id, usage["memory"], gpu.memory_mib, usage["util"]))
        return 0
    return command


def _usage(inventory, gpu, now):
    load = inventory.load_at(gpu.uuid, now)
    return {"util": int(load.util) if load else 0, "memory": int(load.memory_mib) if load else 0}


def _query(ctx, inventory, gpus, query, fmt):
    fields = [f.strip() for f in query.split(",") if f.strip()]
    for field in fields:
        if field not in QUERY_FIELDS:
            ctx.err('Field "%s" is not a valid field to query.\n' % field)
            return 2
    options = set(fmt.split(",")[1:]) if fmt else set()
    if "noheader" not in options:
        ctx.out(", ".join(fields) + "\n")
    for i, gpu in enumerate(gpus):
        usage = _usage(inventory, gpu, ctx.now())
        values = [QUERY_FIELDS[f](i, gpu, usage) for f in fields]
        if "nounits" in options:
            values = [re.sub(r" (MiB|%)$", "", v) for v in values]
        ctx.out(", ".join(values) + "\n")
    return 0


def dcgmproftester(inventory):
    """dcgmproftester: generates load on the container's GPUs for `-d` seconds (simulated time)."""
    def command(ctx, argv):
        gpus = _gpus_of(inventory, ctx.host)
        seconds = 30.0
        args = list(argv[1:])
        for i, arg in enumerate(args):
            if arg in ("-d", "--duration") and i + 1 < len(args):
                seconds = float(args[i + 1])
        if not gpus:
            ctx.err("Error: no GPUs are visible to this container (is a GPU requested?)\n")
            return 255
        start = ctx.now()
        for gpu in gpus:
            inventory.add_load(gpu.uuid, start, seconds)
            ctx.out("Running test 1004 (tensor core load) on GPU %s for %.0f seconds\n" % (gpu.uuid, seconds))
        yield seconds
        ctx.out("Test finished.\n")
        return 0
    return command


# The NVIDIA DRA driver's image, under its first name and under the kubernetes-sigs name it moved to.
DRA_DRIVER_IMAGES = ("k8s-dra-driver-gpu", "dra-driver-nvidia-gpu")


def kubelet_plugin(driver):
    """A DRA driver's kubelet plugin (gpu-kubelet-plugin, compute-domain-kubelet-plugin): it registers
    with the kubelet and serves until stopped."""
    def command(ctx, argv):
        del argv
        ctx.out("I0101 00:00:00.000000       1 driver.go:110] Starting %s kubelet plugin\n" % driver)
        yield math.inf
        return 0
    return command


def register(runtime, inventory):
    runtime.register_command("nvidia-smi", nvidia_smi(inventory), available=_has_gpu)
    for name in ("dcgmproftester12", "dcgmproftester11"):
        runtime.register_command(name, dcgmproftester(inventory), available=_image_has("/dcgm"))
    for name, driver in (("gpu-kubelet-plugin", "gpu.nvidia.com"),
                         ("compute-domain-kubelet-plugin", "compute-domain.nvidia.com")):
        runtime.register_command(name, kubelet_plugin(driver), available=_image_has_any(DRA_DRIVER_IMAGES))


def _image_has(fragment):
    """`available` predicate: the tool ships only in images whose name contains `fragment`."""
    return _image_has_any((fragment,))


def _image_has_any(fragments):
    """`available` predicate: the tool ships only in images whose name contains one of `fragments`."""
    return lambda proc: any(fragment in (proc.container.get("image") or "") for fragment in fragments)
