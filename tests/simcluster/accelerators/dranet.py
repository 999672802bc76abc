"""DRANET (kubernetes-sigs/dranet), the DRA driver `dra.net` for network interfaces, on the simulated nodes.

Modelled from the upstream source (pkg/apis/attributes.go, pkg/names/names.go, pkg/driver/dra_hooks.go,
pkg/driver/nri_hooks.go, pkg/driver/hostdevice.go) and the live ResourceSlices its examples carry
(examples/oci_oke_examples/.../resourceslice-dranet.yaml, examples/aws_eks_examples/gpu-efa/...):

* NICs: `settings.dranet` gives the nodes that have RDMA NICs (`nodeSelector` on node labels) and how many
  (`nicsPerNode`); NIC i of a node is `<ifNamePrefix><i>` (rdma0, rdma1, ... as on OKE's GB200 nodes) with
  the host address 192.168.<10+i>.<10+node ordinal>/24: one subnet per rail, as RDMA fabrics are wired.
* Driver (DranetController): while a pod of the DRANET DaemonSet (label app=dranet, install.yaml) runs on a
  node with NICs, the node has one ResourceSlice `<node>-dra.net-<random>` (driver dra.net, pool = node)
  whose devices are named after the PCI address (`pci-0000-03-00-0`, names.NormalizePCIAddress) with the
  attributes dra.net/ifName, mac, mtu, numaNode, pciAddress, pciDevice, pciVendor, rdma, rdmaDevice,
  sriov, sriovVfs, state, type, virtual, encapsulation, ipv4 and resource.kubernetes.io/pcieRoot.
  DeviceClasses come from whoever installs DRANET (GKE, or the manifests), never from the driver.
* NRI hooks: RunPodSandbox moves each allocated interface into the pod's network namespace, keeping its
  name (or the claim config's `interface.name`) and its global addresses (or the config's
  `interface.addresses`), and writes the claim's status.devices entry (condition Ready, reason
  NetworkDeviceReady, networkData interfaceName/hardwareAddress/ips). Every container of the pod then sees
  the interface (`ip`). `settings.dranet.nri: false` models containerd without NRI enabled: the claim is
  allocated and the pod runs, but no hook runs, so the interface never reaches the pod.
* Data plane: `ping` from a pod reaches a pod IP, and a secondary address held by a running pod when the
  sender has an interface in the same subnet (same rail); anything else is lost (busybox's output).
"""
from __future__ import annotations

import copy
import hashlib
import ipaddress
import math
import random
import re
import string

from ..controllers.manager import NODES, PODS, Controller
from ..errors import ApiError
from ..selectors import label_selector_predicate
from .dra import CLAIMS, SLICES, allocation_results

DRIVER = "dra.net"
IMAGE_PATTERN = "*/networking/dranet"
DAEMON_LABEL = ("app", "dranet")
HEALTH_PORT = 9177
PCI_VENDOR = "Mellanox Technologies"
PCI_DEVICE = "CX8 Family [ConnectX-8]"
# PCI domains of the NIC pairs of an OKE BM.GPU.GB200-v3.4 node (rdma0/1 on 0000, rdma2/3 on 0002, ...)
PCI_DOMAINS = (0x0000, 0x0002, 0x0010, 0x0012)
DEFAULTS = {"nodeSelector": None, "nicsPerNode": 0, "nri": True, "ifNamePrefix": "rdma", "mtu": 9000}


def _suffix(length=5):
    rng = random.SystemRandom()
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for dummy in range(length))


def normalize_pci_address(address):
    """names.NormalizePCIAddress: 0000:03:00.0 -> pci-0000-03-00-0."""
    return "pci-" + address.replace(":", "-").replace(".", "-")


class Nic(object):
    """One RDMA NIC (a ConnectX VF/PF with its netdev and RDMA device) of a node."""

    def __init__(self, node, ordinal, index, settings):
        self.node = node
        self.index = index
        self.if_name = "%s%d" % (settings["ifNamePrefix"], index)
        domain = PCI_DOMAINS[index // 2] if index // 2 < len(PCI_DOMAINS) else 0x20 + index // 2
        self.pci_address = "%04x:03:00.%d" % (domain, index % 2)
        self.device_name = normalize_pci_address(self.pci_address)
        digest = hashlib.sha256(("%s/%d" % (node, index)).encode()).hexdigest()
        self.mac = "60:5e:65:%s:%s:%s" % (digest[0:2], digest[2:4], digest[4:6])
        self.mtu = int(settings["mtu"])
        self.numa = 0 if index < 4 else 1
        self.rdma_device = "mlx5_%d" % index
        self.pcie_root = "pci%04x:00" % int(self.pci_address.split(":", 1)[0], 16)
        self.ipv4 = "192.168.%d.%d/24" % (10 + index, 10 + ordinal)

    def attributes(self):
        return {
            "dra.net/ifName": {"string": self.if_name},
            "dra.net/mac": {"string": self.mac},
            "dra.net/mtu": {"int": self.mtu},
            "dra.net/numaNode": {"int": self.numa},
            "dra.net/pciAddress": {"string": self.pci_address},
            "dra.net/pciDevice": {"string": PCI_DEVICE},
            "dra.net/pciVendor": {"string": PCI_VENDOR},
            "dra.net/rdma": {"bool": True},
            "dra.net/rdmaDevice": {"string": self.rdma_device},
            "dra.net/sriov": {"bool": True},
            "dra.net/sriovVfs": {"int": 0},
            "dra.net/state": {"string": "up"},
            "dra.net/type": {"string": "device"},
            "dra.net/virtual": {"bool": False},
            "dra.net/encapsulation": {"string": "ether"},
            "dra.net/ipv4": {"string": self.ipv4},
            "resource.kubernetes.io/pcieRoot": {"string": self.pcie_root},
        }


class Dranet(object):
    """The NIC inventory and what DRANET did with it (read by the runtime's `ip` and `ping`)."""

    def __init__(self, sim, dra_state):
        self.sim = sim
        self.dra_state = dra_state
        self.settings = dict(DEFAULTS, **((getattr(sim, "settings", None) or {}).get("dranet") or {}))
        self._nics = None

    def nics(self, node):
        """{device name: Nic} of `node` (nodes are matched once the scenario's Node objects exist)."""
        if self._nics is None:
            if not self.settings.get("nicsPerNode"):
                self._nics = {}
                return {}
            nodes = self.sim.store.list(NODES)[0]
            if not nodes:
                return {}
            selector = self.settings.get("nodeSelector") or {}
            matches = label_selector_predicate({"matchLabels": selector})
            chosen = [n["metadata"]["name"] for n in nodes if matches(n["metadata"].get("labels") or {})]
            table = {}
            for ordinal, name in enumerate(sorted(chosen)):
                table[name] = {}
                for index in range(int(self.settings["nicsPerNode"])):
                    nic = Nic(name, ordinal, index, self.settings)
                    table[name][nic.device_name] = nic
            self._nics = table
        return self._nics.get(node, {})

    def nodes(self):
        self.nics("")
        return sorted(self._nics or {})

    def daemon_running(self, node):
        store = self.sim.store
        for namespace, name in list(self.sim.controllers.index.pods_by_node.get(node, ())):
            pod = store.try_get(PODS, namespace, name)
            if pod is not None and is_daemon_pod(pod) and not pod["metadata"].get("deletionTimestamp") and \
                    (pod.get("status") or {}).get("phase") == "Running":
                return True
        return False

    def hooks_run(self, node):
        """True when DRANET's NRI hooks run on `node` (the plugin runs and the runtime has NRI enabled)."""
        return bool(self.settings.get("nri", True)) and self.daemon_running(node)

    def pod_interfaces(self, pod):
        """[{name, mac, mtu, addresses, device}] DRANET moved into `pod`'s network namespace."""
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or not self.nics(node) or not self.hooks_run(node):
            return []
        out = []
        for dummy, claim in self.dra_state.claims_of_pod(pod):
            if claim is None:
                continue
            config = claim_interface_config(claim)
            for result in allocation_results(claim):
                nic = self.nics(node).get(result.get("device"))
                if result.get("driver") != DRIVER or result.get("pool") != node or nic is None:
                    continue
                cfg = config.get(result.get("request")) or config.get(None) or {}
                out.append({"name": cfg.get("name") or nic.if_name, "mac": nic.mac, "mtu": nic.mtu,
                            "addresses": list(cfg.get("addresses") or [nic.ipv4]), "device": nic.device_name,
                            "rdma": nic.rdma_device})
        return out

    def interfaces_for(self, proc):
        return self.pod_interfaces(proc.pod)

    def owner_of(self, address):
        """(pod, interface) of the running pod holding secondary `address`, or (None, None)."""
        store = self.sim.store
        for claim in self.dra_state.all_claims():
            if not any(r.get("driver") == DRIVER for r in allocation_results(claim)):
                continue
            for ref in (claim.get("status") or {}).get("reservedFor") or ():
                pod = store.try_get(PODS, claim["metadata"]["namespace"], ref.get("name"))
                if pod is None or (pod.get("status") or {}).get("phase") != "Running":
                    continue
                for iface in self.pod_interfaces(pod):
                    if any(a.split("/", 1)[0] == address for a in iface["addresses"]):
                        return pod, iface
        return None, None

    def settled(self):
        """Every node with NICs whose DRANET pod runs has published its slice."""
        if SLICES not in self.sim.store.types:
            return True
        slices = self.sim.store.list(SLICES)[0]
        for node in self.nodes():
            if self.daemon_running(node) and not any(
                    (s.get("spec") or {}).get("nodeName") == node and (s.get("spec") or {}).get("driver") == DRIVER
                    for s in slices):
                return False
        return True


def is_daemon_pod(pod):
    return ((pod.get("metadata") or {}).get("labels") or {}).get(DAEMON_LABEL[0]) == DAEMON_LABEL[1]


def claim_interface_config(claim):
    """{request name or None: {name, addresses}} from the claim's opaque dra.net config (apis.InterfaceConfig)."""
    out = {}
    for entry in ((claim.get("spec") or {}).get("devices") or {}).get("config") or ():
        opaque = entry.get("opaque") or {}
        if opaque.get("driver") != DRIVER:
            continue
        iface = (opaque.get("parameters") or {}).get("interface") or {}
        for request in entry.get("requests") or [None]:
            out[request] = {"name": iface.get("name"), "addresses": iface.get("addresses")}
    return out


class DranetController(Controller):
    """DRANET's kubelet plugin (slices) and its NRI RunPodSandbox hook (claim status.devices)."""

    name = "accelerators-dranet"

    def __init__(self, manager, dranet):
        super(DranetController, self).__init__(manager)
        self.dranet = dranet
        self.routes = {PODS: self._on_pod, NODES: self._on_node, CLAIMS: self._on_claim}

    def initial_keys(self):
        return [("node", n) for n in self.dranet.nodes()]

    def _on_pod(self, event):
        for obj in (event.old, event.obj):
            if obj is None or not (obj.get("spec") or {}).get("nodeName"):
                continue
            if is_daemon_pod(obj):
                self.enqueue(("node", obj["spec"]["nodeName"]))
            elif (obj.get("spec") or {}).get("resourceClaims") and event.type != "DELETED":
                self.enqueue(("pod", obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_node(self, event):
        self.enqueue(("node", event.obj["metadata"]["name"]))

    def _on_claim(self, event):
        if event.type != "DELETED":
            for ref in (event.obj.get("status") or {}).get("reservedFor") or ():
                self.enqueue(("pod", event.obj["metadata"]["namespace"], ref.get("name")))

    def reconcile(self, key):
        if SLICES not in self.store.types:
            return
        if key[0] == "node":
            self._sync_slice(key[1])
        else:
            self._run_pod_sandbox(key[1], key[2])

    def _sync_slice(self, node_name):
        node = self.read(NODES, None, node_name)
        items = self.store.list(SLICES)[0]
        mine = [s for s in items if (s.get("spec") or {}).get("nodeName") == node_name and
                (s.get("spec") or {}).get("driver") == DRIVER]
        nics = self.dranet.nics(node_name)
        if node is None or not nics or not self.dranet.daemon_running(node_name):
            for obj in mine:
                self.store.delete(SLICES, None, obj["metadata"]["name"])
            return
        if mine:
            return
        self.store.create(SLICES, {
            "apiVersion": self.store.types[SLICES].api_version(),
            "kind": "ResourceSlice",
            "metadata": {"name": "%s-%s-%s" % (node_name, DRIVER, _suffix()),
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                              "uid": node["metadata"]["uid"], "controller": True}]},
            "spec": {"driver": DRIVER, "nodeName": node_name,
                     "pool": {"name": node_name, "generation": 1, "resourceSliceCount": 1},
                     "devices": [{"name": nic.device_name, "attributes": nic.attributes()}
                                 for nic in sorted(nics.values(), key=lambda n: n.index)]},
        })
        self.manager.scheduler.retry()

    def _run_pod_sandbox(self, namespace, name):
        """The NRI hook: status.devices of the pod's dra.net claims (once per claim)."""
        pod = self.read(PODS, namespace, name)
        if pod is None or pod["metadata"].get("deletionTimestamp") or \
                (pod.get("status") or {}).get("phase") not in ("Pending", "Running"):
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or not self.dranet.hooks_run(node):
            return
        interfaces = {i["device"]: i for i in self.dranet.pod_interfaces(pod)}
        for dummy, claim in self.dranet.dra_state.claims_of_pod(pod):
            results = [r for r in allocation_results(claim) if r.get("driver") == DRIVER] if claim else []
            if not results or (claim.get("status") or {}).get("devices"):
                continue
            fresh = copy.deepcopy(self.read(CLAIMS, namespace, claim["metadata"]["name"]))
            if fresh is None:
                continue
            devices = []
            for result in results:
                iface = interfaces.get(result.get("device"))
                if iface is None:
                    continue
                devices.append({
                    "driver": DRIVER, "pool": result.get("pool"), "device": result.get("device"),
                    "conditions": [{"type": "Ready", "status": "True", "reason": "NetworkDeviceReady", "message": "",
                                    "lastTransitionTime": self.clock.timestamp()}],
                    "networkData": {"interfaceName": iface["name"], "hardwareAddress": iface["mac"],
                                    "ips": iface["addresses"]}})
            if not devices:
                continue
            fresh.setdefault("status", {})["devices"] = devices
            try:
                self.dranet.dra_state.put_claim(self.store.update(CLAIMS, fresh, subresource="status"))
            except ApiError as err:
                if err.code != 404:
                    raise


# --------------------------------------------------------------------------------------------- runtime
def health_app(proc):
    """The DRANET container: serves /healthz and /metrics on 9177 and runs until stopped."""
    def handler(request):
        if request.path.rstrip("/") == "/healthz":
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, b"ok"
        if request.path.rstrip("/") == "/metrics":
            return 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, b""
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"

    def program():
        proc.write('I0101 00:00:00.000000       1 app.go:150] "dranet started" node="%s"\n'
                   % ((proc.pod.get("spec") or {}).get("nodeName") or ""))
        proc.listen(HEALTH_PORT, handler)
        yield math.inf
        return 0
    return program()


def make_ping(dranet):
    """busybox `ping [-c N] [-W S] [-w S] [-I IFACE] HOST`."""
    def command(ctx, argv):
        count, iface, target = 4, None, None
        args = list(argv[1:])
        while args:
            arg = args.pop(0)
            if arg in ("-c", "-W", "-w", "-I", "-s", "-i", "-t") and args:
                value = args.pop(0)
                if arg == "-c":
                    count = int(value) if value.isdigit() else 4
                elif arg == "-I":
                    iface = value
            elif not arg.startswith("-"):
                target = arg
        if not target:
            ctx.err("BusyBox v1.36.1 (2023-05-18 22:34:17 UTC) multi-call binary.\n\nUsage: ping [OPTIONS] HOST\n")
            return 1
        try:
            ipaddress.ip_address(target)
        except ValueError:
            ctx.err("ping: bad address '%s'\n" % target)
            return 1
        ok = _reachable(dranet, ctx.host, target, iface)
        ctx.out("PING %s (%s): 56 data bytes\n" % (target, target))
        received = 0
        for seq in range(count):
            if ok:
                ctx.out("64 bytes from %s: seq=%d ttl=64 time=0.%03d ms\n" % (target, seq, 80 + seq % 7))
                received += 1
            yield 1.0
        ctx.out("\n--- %s ping statistics ---\n%d packets transmitted, %d packets received, %d%% packet loss\n"
                % (target, count, received, 100 * (count - received) // max(count, 1)))
        if received:
            ctx.out("round-trip min/avg/max = 0.080/0.083/0.086 ms\n")
        return 0 if received else 1
    return command


def _reachable(dranet, proc, target, iface):
    own = dranet.pod_interfaces(proc.pod)
    if iface is None or iface == "eth0":
        for pod in dranet.sim.store.list(PODS)[0]:
            if (pod.get("status") or {}).get("podIP") == target and (pod.get("status") or {}).get("phase") == "Running":
                return True
    pod, dummy = dranet.owner_of(target)
    if pod is None:
        return False
    address = ipaddress.ip_address(target)
    for mine in own:
        if iface not in (None, mine["name"]):
            continue
        for cidr in mine["addresses"]:
            if address in ipaddress.ip_interface(cidr).network:
                return True
    return False


def devices_for(dranet, pod, container):
    """The RDMA character devices DRANET's CreateContainer hook adds (/dev/infiniband/uverbsN, rdma_cm)."""
    out = []
    for iface in dranet.pod_interfaces(pod):
        index = int(re.search(r"(\d+)$", iface["rdma"]).group(1)) if re.search(r"\d$", iface["rdma"]) else 0
        out.append({"vendor": "dranet", "path": "/dev/infiniband/uverbs%d" % index, "major": 231,
                    "minor": 192 + index, "node": (pod.get("spec") or {}).get("nodeName"), "control": True})
    if out:
        out.append({"vendor": "dranet", "path": "/dev/infiniband/rdma_cm", "major": 10, "minor": 122,
                    "node": (pod.get("spec") or {}).get("nodeName"), "control": True})
    return out


def install(sim, acc):
    """Wire DRANET into `sim` (called from accelerators.install)."""
    dranet = Dranet(sim, acc.dra_state)
    runtime = sim.runtime
    runtime.register_app(IMAGE_PATTERN, health_app)
    runtime.register_command("ping", make_ping(dranet), tool="ping")
    runtime.register_interface_provider(dranet.interfaces_for)
    runtime.register_device_provider(lambda pod, container: devices_for(dranet, pod, container))
    sim.controllers.add_controller(DranetController(sim.controllers, dranet))
    return dranet
