"""The NVIDIA device plugin and the kubelet's device manager, as far as GPUs go.

* Capacity: a node advertises `nvidia.com/gpu` in capacity/allocatable only while a device-plugin pod
  (the GPU operator's `nvidia-device-plugin-daemonset`, or the standalone chart's pods) is Running on it;
  without one the resource is absent, as on a real node whose plugin never registered. A scenario
  describes a running cluster: nodes that a device-plugin DaemonSet targets when the simulator starts
  keep the capacity the scenario declares until their plugin pod has run (or gone), so there is no
  window in which a freshly started "conformant" cluster lacks GPUs.
* Allocation: when a container that requests `nvidia.com/gpu` starts, the device manager hands it that
  many free GPUs of its node (lowest index first) and remembers the assignment per pod uid and container,
  so restarts keep their GPUs. Assignments are released as soon as the pod is terminal or deleted.

The release happens in the store subscription (a dictionary update under this module's own lock, which
is never held while calling the store), so a GPU freed by a finished pod is free for the next one at once.
"""
from __future__ import annotations

import copy
import threading

from ..controllers import podutil
from ..controllers.manager import NODES, PODS, Controller
from . import sharing

RESOURCE = "nvidia.com/gpu"
DAEMONSETS = ("apps", "daemonsets")
DEVICE_PLUGIN_LABELS = (("app", "nvidia-device-plugin-daemonset"), ("app.kubernetes.io/name", "nvidia-device-plugin"))
TERMINAL = ("Succeeded", "Failed")


def is_device_plugin_pod(pod):
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return any(labels.get(k) == v for k, v in DEVICE_PLUGIN_LABELS)


def gpu_request(container):
    """GPUs a container asks for: nvidia.com/gpu, or nvidia.com/gpu.shared where sharing renamed it."""
    res = container.get("resources") or {}
    total = 0
    for resource in (RESOURCE, RESOURCE + ".shared"):
        value = (res.get("limits") or {}).get(resource, (res.get("requests") or {}).get(resource))
        try:
            total += int(str(value)) if value is not None else 0
        except ValueError:
            pass
    return total


def pod_done(pod):
    return pod is None or bool((pod.get("metadata") or {}).get("deletionTimestamp")) or \
        (pod.get("status") or {}).get("phase") in TERMINAL


class DeviceManager(object):
    """GPU assignments of the device-plugin path: node -> {(pod uid, container): [gpu indices]}."""

    def __init__(self, inventory):
        self.inventory = inventory
        self._lock = threading.Lock()
        self._assigned = {}
        self._owners = {}            # pod uid -> (namespace, name)
        self.replicas = {}           # node -> replicas per GPU (time-slicing/MPS; absent = 1)
        self.mig = {}                # node -> (MIG strategy, [sharing.MigDevice]) while the plugin advertises MIG
        self._mig_assigned = {}      # node -> {(pod uid, container): [MIG uuids]}

    def allocate(self, pod, container):
        """GPUs for a starting container (by its nvidia.com/gpu request); [] when it asks for none. On a node
        whose plugin advertises MIG, MIG devices (sharing.MigDevice) for its MIG (or, single strategy, GPU)
        request."""
        node = (pod.get("spec") or {}).get("nodeName")
        if node in self.mig:
            return self._allocate_mig(pod, container, node)
        want = gpu_request(container)
        if not want or not node:
            return []
        meta = pod["metadata"]
        key = (meta.get("uid"), container["name"])
        gpus = self.inventory.gpus(node)
        with self._lock:
            table = self._assigned.setdefault(node, {})
            if key not in table:
                replicas = self.replicas.get(node, 1)
                in_use = {}
                for indices in table.values():
                    for i in indices:
                        in_use[i] = in_use.get(i, 0) + 1
                if replicas > 1:
                    slots = [g.index for g in gpus for _r in range(max(0, replicas - in_use.get(g.index, 0)))]
                    table[key] = sharing.distributed(slots, in_use, want)
                else:
                    free = [g.index for g in gpus if g.index not in in_use]
                    table[key] = free[:want]
                self._owners[meta.get("uid")] = (meta.get("namespace"), meta["name"])
            indices = set(table[key])
        return [g for g in gpus if g.index in indices]

    def _allocate_mig(self, pod, container, node):
        strategy, devices = self.mig[node]
        res = container.get("resources") or {}
        wanted = {}
        for table in (res.get("requests") or {}, res.get("limits") or {}):
            for name, value in table.items():
                if name.startswith(sharing.MIG_PREFIX) or (strategy == "single" and name == RESOURCE):
                    try:
                        wanted[name] = max(wanted.get(name, 0), int(str(value)))
                    except ValueError:
                        pass
        if not wanted:
            return []
        meta = pod["metadata"]
        key = (meta.get("uid"), container["name"])
        with self._lock:
            table = self._mig_assigned.setdefault(node, {})
            if key not in table:
                used = set(u for uuids in table.values() for u in uuids)
                chosen = []
                for name, count in sorted(wanted.items()):
                    free = [d for d in devices if d.uuid not in used and d.uuid not in chosen and
                            (name == RESOURCE or d.resource == name)]
                    chosen.extend(d.uuid for d in free[:count])
                table[key] = chosen
                self._owners[meta.get("uid")] = (meta.get("namespace"), meta["name"])
            uuids = set(table[key])
        return [d for d in devices if d.uuid in uuids]

    def release(self, uid, when):
        """Forget a pod's assignments; its GPUs stop any load it ran."""
        freed = []
        with self._lock:
            self._owners.pop(uid, None)
            for table in self._mig_assigned.values():
                for key in [k for k in table if k[0] == uid]:
                    del table[key]
            for node, table in self._assigned.items():
                for key in [k for k in table if k[0] == uid]:
                    freed.extend((node, i) for i in table.pop(key))
        for node, index in freed:
            for gpu in self.inventory.gpus(node):
                if gpu.index == index:
                    self.inventory.stop_load(gpu.uuid, when)

    def mig_users(self, node):
        """{gpu index: [(MIG profile, GPU instance id, (namespace, pod, container) or None)]} of a node whose GPUs
        the plugin advertises as MIG devices ({} otherwise)."""
        with self._lock:
            entry = self.mig.get(node)
            if entry is None:
                return {}
            owners = {}
            for (uid, container), uuids in (self._mig_assigned.get(node) or {}).items():
                owner = self._owners.get(uid)
                for uuid in uuids:
                    if owner:
                        owners[uuid] = (owner[0], owner[1], container)
            out = {}
            for dev in entry[1]:
                out.setdefault(dev.index, []).append((dev.profile, dev.gi, owners.get(dev.uuid)))
            return out

    def users(self, node):
        """{gpu index: (namespace, pod, container)} of the GPUs assigned on `node`."""
        with self._lock:
            out = {}
            for (uid, container), indices in (self._assigned.get(node) or {}).items():
                owner = self._owners.get(uid)
                if owner:
                    for index in indices:
                        out[index] = (owner[0], owner[1], container)
            return out


class DevicePluginController(Controller):
    """Keeps each GPU node's nvidia.com/gpu capacity in step with its device-plugin pod, adds the
    CUDA labels GPU feature discovery sets, and releases GPU assignments of finished pods."""

    name = "accelerators-device-plugin"

    def __init__(self, manager, inventory, devices):
        super(DevicePluginController, self).__init__(manager)
        self.inventory = inventory
        self.devices = devices
        self.routes = {PODS: self._on_pod, NODES: self._on_node}
        self._grace = set()
        self._applied = {}           # (node, plugin pod uid) -> sharing settings the plugin started with

    def initial_keys(self):
        nodes = list(self.inventory.nodes())
        self._grace = set(n for n in nodes if self._targeted(n))
        return nodes

    def _targeted(self, node_name):
        """Does a device-plugin DaemonSet want a pod on this node (selector, affinity, taints)?"""
        node = self.read(NODES, None, node_name)
        if node is None or DAEMONSETS not in self.store.types:
            return False
        for ds in self.store.list(DAEMONSETS)[0]:
            template = (ds.get("spec") or {}).get("template") or {}
            if not is_device_plugin_pod(template):
                continue
            pod = {"spec": template.get("spec") or {}}
            if podutil.matches_node_selector_and_affinity(pod, node) and podutil.untolerated_taint(
                    pod["spec"].get("tolerations"), podutil.effective_taints(node)) is None:
                return True
        return False

    def _on_pod(self, event):
        pod = event.obj
        if event.type == "DELETED" or pod_done(pod):
            self.devices.release(pod["metadata"].get("uid"), self.clock.now())
        for obj in (event.old, event.obj):
            if obj is not None and is_device_plugin_pod(obj):
                node = (obj.get("spec") or {}).get("nodeName")
                if node:
                    if event.type == "DELETED" or pod_done(obj):
                        self._grace.discard(node)
                    self.enqueue(node)

    def _on_node(self, event):
        name = event.obj["metadata"]["name"]
        if name in self.inventory.nodes() and event.type != "DELETED":
            self.enqueue(name)

    def _plugin_running(self, node):
        for namespace, name in list(self.manager.index.pods_by_node.get(node, ())):
            pod = self.read(PODS, namespace, name)
            if pod is not None and is_device_plugin_pod(pod) and not pod["metadata"].get("deletionTimestamp") \
                    and (pod.get("status") or {}).get("phase") == "Running":
                return True
        return False

    def reconcile(self, key):
        node = self.read(NODES, None, key)
        if node is None:
            return
        gpus = self.inventory.gpus(key)
        running = self._plugin_running(key)
        if running:
            self._grace.discard(key)
        want = str(len(gpus)) if gpus and (running or key in self._grace) else None
        self._sync_labels(node, gpus)
        node = self.read(NODES, None, key)
        settings = self._sharing(key, node) if want is not None and running else None
        mig = self._mig(key, node, gpus, settings) if want is not None and running else None
        wanted = {RESOURCE: want} if want is not None else {}
        if mig is not None:
            strategy, devices = mig
            wanted = {}
            for dev in devices:
                name = RESOURCE if strategy == "single" else dev.resource
                wanted[name] = str(int(wanted.get(name, "0")) + 1)
            self._sync_sharing_labels(node, gpus, None, mig)
            node = self.read(NODES, None, key)
        elif settings is not None:
            wanted = {settings["resource"]: str(len(gpus) * settings["replicas"])}
            self._sync_sharing_labels(node, gpus, settings)
            node = self.read(NODES, None, key)
        status = node.get("status") or {}
        managed = set([RESOURCE, RESOURCE + ".shared"] + list(wanted))
        for field in ("capacity", "allocatable"):
            managed.update(r for r in (status.get(field) or {}) if r.startswith(sharing.MIG_PREFIX))
        if all((status.get(f) or {}).get(r) == wanted.get(r) for r in managed for f in ("capacity", "allocatable")):
            return
        fresh = copy.deepcopy(node)
        for field in ("capacity", "allocatable"):
            table = fresh.setdefault("status", {}).setdefault(field, {})
            for resource in managed:
                if wanted.get(resource) is None:
                    table.pop(resource, None)
                else:
                    table[resource] = wanted[resource]
        self.store.update(NODES, fresh, subresource="status")
        self.manager.scheduler.retry()

    def _sync_labels(self, node, gpus):
        """The labels GPU feature discovery sets: driver and CUDA versions (as GFD last saw them, see
        inventory.Gpu.labelled_driver_version), family and compute capability, and on vGPU guests
        nvidia.com/vgpu.present and the host's vGPU manager version and branch."""
        if not gpus:
            return
        driver = gpus[0].labelled_driver_version
        major, minor, rev = (driver.split(".") + ["", ""])[:3]
        cc_major, cc_minor = gpus[0].info["cc"].split(".")
        want = {"nvidia.com/cuda.driver-version.full": driver, "nvidia.com/cuda.driver-version.major": major,
                "nvidia.com/cuda.driver-version.minor": minor, "nvidia.com/cuda.driver-version.revision": rev,
                "nvidia.com/cuda.runtime-version.full": gpus[0].cuda_version, "nvidia.com/gpu.family": gpus[0].info["family"],
                "nvidia.com/gpu.compute.major": cc_major, "nvidia.com/gpu.compute.minor": cc_minor}
        cuda_major, cuda_minor = (gpus[0].cuda_version.split(".") + ["0"])[:2]
        want.update({"nvidia.com/cuda.runtime-version.major": cuda_major, "nvidia.com/cuda.runtime-version.minor": cuda_minor})
        if gpus[0].vgpu:
            want.update({"nvidia.com/vgpu.present": "true",
                         "nvidia.com/vgpu.host-driver-version": gpus[0].vgpu["host_driver_version"],
                         "nvidia.com/vgpu.host-driver-branch": gpus[0].vgpu["host_driver_branch"]})
        labels = (node.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in want.items()):
            return
        fresh = copy.deepcopy(node)
        fresh["metadata"].setdefault("labels", {}).update(want)
        self.store.update(NODES, fresh)

    # ------------------------------------------------------------------------------------- sharing
    def _plugin_pod(self, node):
        for namespace, name in list(self.manager.index.pods_by_node.get(node, ())):
            pod = self.read(PODS, namespace, name)
            if pod is not None and is_device_plugin_pod(pod) and not pod["metadata"].get("deletionTimestamp") \
                    and (pod.get("status") or {}).get("phase") == "Running":
                return pod
        return None

    def _sharing(self, key, node):
        """The sharing settings of the running plugin on the node (sharing.py), or None without a config.
        Replicas per GPU are handed to the device manager for allocation."""
        pod = self._plugin_pod(key)
        settings = None
        if pod is not None:
            applied = (key, pod["metadata"].get("uid"))
            try:
                name, text = sharing.resolve(self.store, pod, (node.get("metadata") or {}).get("labels") or {})
                settings = sharing.parse(text) if name is not None else None
                self._applied[applied] = settings
            except sharing.ConfigError:
                # config-manager's sidecar fails on a config it cannot use (a label naming a missing key); the
                # running plugin keeps the config it started with
                settings = self._applied.get(applied)
        with self.devices._lock:  # pylint: disable=protected-access
            if settings and settings["replicas"] > 1:
                self.devices.replicas[key] = settings["replicas"]
            else:
                self.devices.replicas.pop(key, None)
        return settings

    def _mig(self, key, node, gpus, settings):
        """(strategy, MIG devices) when the node's GPUs are in MIG mode (nvidia.com/mig.config, as the MIG manager
        applies it) and the running plugin advertises MIG (strategy single or mixed); None otherwise."""
        pod = self._plugin_pod(key)
        labels = (node.get("metadata") or {}).get("labels") or {}
        layout = sharing.mig_layout(labels.get("nvidia.com/mig.config"), gpus[0].product_label) if gpus else None
        strategy = sharing.mig_strategy(pod, settings) if pod is not None else "none"
        out = (strategy, sharing.mig_devices(gpus, layout)) if layout and strategy in ("single", "mixed") else None
        with self.devices._lock:  # pylint: disable=protected-access
            old = self.devices.mig.get(key)
            if out is None:
                self.devices.mig.pop(key, None)
            elif old is None or [d.uuid for d in old[1]] != [d.uuid for d in out[1]] or old[0] != out[0]:
                self.devices.mig[key] = out
            out = self.devices.mig.get(key)
        return out

    def _sync_sharing_labels(self, node, gpus, settings, mig=None):
        """GPU feature discovery's sharing (sharing.labels) or MIG (sharing.mig_labels) labels; nothing else on
        the node changes."""
        if not gpus:
            return
        if mig is not None:
            want = sharing.mig_labels(gpus[0].product_label, mig[1], mig[0])
        else:
            want = sharing.labels(gpus[0].product_label, len(gpus), settings)
        labels = (node.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in want.items()):
            return
        fresh = copy.deepcopy(node)
        fresh["metadata"].setdefault("labels", {}).update(want)
        self.store.update(NODES, fresh)
