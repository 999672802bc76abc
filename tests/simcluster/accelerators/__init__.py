"""Simulated accelerators: GPUs, the NVIDIA device plugin, the NVIDIA DRA driver, the container toolkit and
the DCGM exporter, plugged into the simulator through its extension points.

`install(sim)` is called once the SimCluster has its runtime and controller manager, before `start()`:

  runtime     device provider (toolkit.Toolkit.provide), commands nvidia-smi / dcgmproftester /
              gpu-kubelet-plugin, the DCGM exporter app for */dcgm-exporter images
  scheduler   the DynamicResources plugin (dra.DraPlugin)
  controllers device-plugin capacity + GPU assignments, the DRA driver (DeviceClasses, ResourceSlices),
              the resourceclaim controller

Behaviour follows the components' real semantics as described in each module; scenario switches live
under `settings.accelerators` (acceptEnvvarWhenUnprivileged) and `settings.runtime.deviceIsolation`.
"""
from __future__ import annotations

from . import dcgm, dra, dranet, sharing, toolkit
from .deviceplugin import DeviceManager, DevicePluginController, is_device_plugin_pod
from .inventory import Inventory


class Accelerators(object):
    """Everything install() wires up, reachable as `sim.accelerators` for tests and debugging."""

    def __init__(self, sim):
        self.sim = sim
        self.inventory = Inventory(sim.scenario)
        self.devices = DeviceManager(self.inventory)
        self.dra_state = dra.DraState()
        self.toolkit = toolkit.Toolkit(sim, self.inventory, self.devices, self.dra_state)
        self.exporter = dcgm.Exporter(sim, self.inventory, self.users, self.devices.mig_users)

    def users(self, node):
        """{gpu index: (namespace, pod, container)} of the GPUs in use on `node` (device plugin and DRA)."""
        out = dict(self.devices.users(node))
        for device_name, (namespace, pod) in dra.users(self.dra_state, node).items():
            gpu = self.inventory.by_device_name(node, device_name)
            if gpu is not None and gpu.index not in out:
                out[gpu.index] = (namespace, pod, "")
        return out

    def settled(self):
        """True once every node whose device plugin pod runs advertises its GPUs and every node whose DRA
        kubelet plugin runs has published its ResourceSlice: what an installed stack looks like."""
        store = self.sim.store
        pods = store.list(("", "pods"))[0]
        for node in self.inventory.nodes():
            node_obj = store.try_get(("", "nodes"), None, node)
            if node_obj is None:
                return False
            on_node = [p for p in pods if (p.get("spec") or {}).get("nodeName") == node
                       and (p.get("status") or {}).get("phase") == "Running"]
            allocatable = node_obj.get("status", {}).get("allocatable") or {}
            if any(is_device_plugin_pod(p) for p in on_node) and not any(
                    allocatable.get(r) for r in allocatable
                    if r in ("nvidia.com/gpu", "nvidia.com/gpu.shared") or r.startswith("nvidia.com/mig-")):
                return False
            if any(dra.is_plugin_pod(p) for p in on_node) and dra.SLICES in store.types and \
                    not any((s.get("spec") or {}).get("nodeName") == node for s in store.list(dra.SLICES)[0]):
                return False
        dranet_state = getattr(self, "dranet", None)
        return dranet_state is None or dranet_state.settled()


def install(sim):
    """Wire the simulated accelerators into `sim` (idempotent); returns the Accelerators object.

    Meant to run before `sim.start()` (cluster.py does it); on a started cluster the controllers start at
    once and sync what is already there."""
    existing = getattr(sim, "accelerators", None)
    if existing is not None:
        return existing
    acc = Accelerators(sim)
    sim.accelerators = acc
    runtime = sim.runtime
    runtime.register_device_provider(acc.toolkit.provide)
    toolkit.register(runtime, acc.inventory)
    runtime.register_app(dcgm.IMAGE_PATTERN, acc.exporter.app)
    runtime.register_app(sharing.IMAGE_PATTERN, sharing.config_manager_app(sim.store))
    manager = sim.controllers
    manager.scheduler.register_plugin(dra.DraPlugin(manager, acc.dra_state))
    manager.add_controller(DevicePluginController(manager, acc.inventory, acc.devices))
    manager.add_controller(dra.DraDriverController(manager, acc.dra_state, acc.inventory))
    manager.add_controller(dra.ClaimController(manager, acc.dra_state, acc.inventory))
    acc.dranet = dranet.install(sim, acc)   # DRANET (dra.net): RDMA NICs of settings.dranet
    return acc
