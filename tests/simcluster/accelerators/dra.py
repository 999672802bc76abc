"""Dynamic Resource Allocation for the simulated GPUs: the NVIDIA DRA driver, the resourceclaim controller
and the scheduler's DynamicResources plugin.

* Driver (DraDriverController): a node gets a ResourceSlice of its GPUs (driver gpu.nvidia.com, pool = node, attributes type,
  uuid, productName, brand, architecture, cudaComputeCapability, driverVersion, cudaDriverVersion, index,
  minor, resource.kubernetes.io/pciBusID; capacity memory) while the plugin's pod runs there. The driver
  never creates DeviceClasses: its chart does (`helm install` on a real cluster, the scenario's manifests
  here, rendered for the served API version by `render_chart_object`).
* resourceclaim controller (ClaimController): a pod's `resourceClaims[].resourceClaimTemplateName`
  becomes a ResourceClaim `<pod>-<claim>-<random>` owned by the pod, recorded in the pod's
  status.resourceClaimStatuses; when the pod is done or deleted its reservation is dropped, claims
  generated for it are deleted and shared claims nobody reserves any more are deallocated.
* Scheduling (DraPlugin, registered with the scheduler): a pod waits until its claims exist; a node fits
  when every unallocated claim's requests can be met from the node's published devices that no other claim
  holds, matching the DeviceClass and request CEL selectors (the subset in cel.py); reserve writes
  status.allocation (results + nodeSelector) and reservedFor.

The objects are kept in the store's canonical form (requests nested under `exactly`, slice devices without
`basic`), which the API server converts for v1beta1 clients.
"""
from __future__ import annotations

import copy
import os
import random
import string
import threading


from ..controllers.manager import NODES, PODS, Controller
from ..errors import ApiError
from . import cel

GROUP = "resource.k8s.io"
CLAIMS = (GROUP, "resourceclaims")
TEMPLATES = (GROUP, "resourceclaimtemplates")
SLICES = (GROUP, "resourceslices")
CLASSES = (GROUP, "deviceclasses")
DRIVER = "gpu.nvidia.com"
PLUGIN_DAEMONSET = ("nvidia-dra-driver", "nvidia-dra-driver-gpu-kubelet-plugin")
PLUGIN_LABEL = ("nvidia-dra-driver-gpu-component", "kubelet-plugin")
POD_CLAIM_ANNOTATION = "resource.kubernetes.io/pod-claim-name"
CLASSES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifests",
                            "nvidia-dra-driver-gpu-deviceclasses.yaml")
# Fields the chart's templates write only when they render for resource.k8s.io/v1
# (deviceclass-gpu.yaml: `{{- if eq $resourceApiVersion "resource.k8s.io/v1" }} extendedResourceName`).
V1_ONLY_FIELDS = {"DeviceClass": (("spec", "extendedResourceName"),)}
CANNOT_ALLOCATE = "cannot allocate all claims"


def _suffix(length=5):
    rng = random.SystemRandom()
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for dummy in range(length))


def render_chart_object(obj, served_versions):
    """A resource.k8s.io object of the driver's chart (rendered for v1) as `helm install` renders it on a
    cluster serving `served_versions` (oldest first): the chart's helper resourceApiVersion picks the newest
    served version, and v1-only fields are left out below v1. None when the cluster serves no DRA API."""
    if not served_versions:
        return None
    version = served_versions[-1]
    out = copy.deepcopy(obj)
    out["apiVersion"] = "%s/%s" % (GROUP, version)
    if version != "v1":
        for path in V1_ONLY_FIELDS.get(out.get("kind"), ()):
            parent = out
            for part in path[:-1]:
                parent = parent.get(part) or {}
            parent.pop(path[-1], None)
    return out


def is_plugin_pod(pod):
    return ((pod.get("metadata") or {}).get("labels") or {}).get(PLUGIN_LABEL[0]) == PLUGIN_LABEL[1]


def semver(version):
    """A driver's dotted version as the DRA driver publishes it, a semantic version: three numeric parts
    without leading zeros (580.126.09 -> 580.126.9, CUDA 12.8 -> 12.8.0)."""
    parts = [str(int(p)) if p.isdigit() else p for p in str(version).split(".")]
    return ".".join((parts + ["0", "0"])[:3])


def slice_devices(gpus):
    """ResourceSlice devices for GPUs, with the attributes the NVIDIA DRA driver publishes."""
    out = []
    for gpu in gpus:
        major, minor = gpu.info["cc"].split(".")
        out.append({
            "name": gpu.device_name,
            "attributes": {
                "type": {"string": "gpu"},
                "uuid": {"string": gpu.uuid},
                "productName": {"string": gpu.name},
                "brand": {"string": "NvidiaVCS" if gpu.vgpu else "Nvidia"},
                "architecture": {"string": gpu.info["arch"]},
                "cudaComputeCapability": {"version": "%s.%s.0" % (major, minor)},
                "driverVersion": {"version": semver(gpu.driver_version)},
                "cudaDriverVersion": {"version": semver(gpu.cuda_version)},
                "index": {"int": gpu.index},
                "minor": {"int": gpu.minor},
                "resource.kubernetes.io/pciBusID": {"string": gpu.pci_bus_id.lower()[4:]},
            },
            "capacity": {"memory": {"value": "%dMi" % gpu.memory_mib}},
        })
    return out


def _requests(claim):
    return ((claim.get("spec") or {}).get("devices") or {}).get("requests") or []


def allocation_results(claim):
    return (((claim or {}).get("status") or {}).get("allocation") or {}).get("devices", {}).get("results") or []


def claim_owner_uid(claim):
    for ref in (claim.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Pod" and ref.get("controller"):
            return ref.get("uid")
    return None


class _Added(object):
    """A store event of type ADDED, for priming DraState from objects that were there before it started."""

    type = "ADDED"

    def __init__(self, gr, obj):
        self.gr = gr
        self.obj = obj


class DraState(object):
    """What the plugin and the device provider read: claims, slices, classes (kept from store events).

    Guarded by its own lock, never held while calling the store.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.claims = {}        # (namespace, name) -> stored claim
        self.slices = {}        # name -> stored slice
        self.classes = {}       # name -> stored class

    def apply(self, event):
        """Store subscription: keep the table of the event's type current (runs under the store lock)."""
        table = {CLAIMS: self.claims, SLICES: self.slices, CLASSES: self.classes}.get(event.gr)
        if table is None:
            return
        meta = event.obj["metadata"]
        key = (meta.get("namespace"), meta["name"]) if event.gr == CLAIMS else meta["name"]
        with self.lock:
            if event.type == "DELETED":
                table.pop(key, None)
            else:
                table[key] = event.obj

    def prime(self, store):
        """Take in what the store already holds (a scenario's DeviceClasses, slices, claims) at start; later
        changes arrive through apply(). Runs under the store lock, like apply()."""
        for gr in (CLAIMS, SLICES, CLASSES):
            if gr in store.types:
                for obj in store.list(gr)[0]:
                    self.apply(_Added(gr, obj))

    def put_claim(self, claim):
        with self.lock:
            self.claims[(claim["metadata"]["namespace"], claim["metadata"]["name"])] = claim

    def all_claims(self):
        with self.lock:
            return list(self.claims.values())

    def claims_of_pod(self, pod):
        """[(pod claim name, claim or None)] for every entry of pod.spec.resourceClaims."""
        meta = pod["metadata"]
        statuses = {s.get("name"): s.get("resourceClaimName")
                    for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []}
        out = []
        with self.lock:
            for entry in (pod.get("spec") or {}).get("resourceClaims") or []:
                name = entry.get("resourceClaimName") or statuses.get(entry["name"])
                claim = self.claims.get((meta["namespace"], name)) if name else None
                if claim is None and entry.get("resourceClaimTemplateName"):
                    claim = next((c for (ns, _n), c in self.claims.items() if ns == meta["namespace"] and
                                  claim_owner_uid(c) == meta.get("uid") and
                                  (c["metadata"].get("annotations") or {}).get(POD_CLAIM_ANNOTATION) == entry["name"]),
                                 None)
                out.append((entry["name"], claim))
        return out

    def node_devices(self, node):
        """[(driver, pool, device dict)] published for `node`."""
        with self.lock:
            out = []
            for obj in self.slices.values():
                spec = obj.get("spec") or {}
                if spec.get("nodeName") == node:
                    for device in spec.get("devices") or []:
                        out.append((spec.get("driver"), (spec.get("pool") or {}).get("name"), device))
            return out

    def taken(self):
        """{(driver, pool, device)} held by allocated claims."""
        with self.lock:
            return set((r.get("driver"), r.get("pool"), r.get("device"))
                       for claim in self.claims.values() for r in allocation_results(claim))

    def class_selectors(self, name):
        with self.lock:
            obj = self.classes.get(name)
        if obj is None:
            return None
        return [((s.get("cel") or {}).get("expression") or "") for s in (obj.get("spec") or {}).get("selectors") or []]


class DraPlugin(object):
    """The scheduler's DynamicResources plugin (filter / reserve / unreserve)."""

    resolvable = False

    def __init__(self, manager, state):
        self.manager = manager
        self.store = manager.store
        self.state = state

    @staticmethod
    def _has_claims(pod):
        return bool((pod.get("spec") or {}).get("resourceClaims"))

    def pre_filter(self, pod):
        if not self._has_claims(pod):
            return None
        if GROUP not in [gr[0] for gr in self.store.types]:
            return "resource.k8s.io is not served, so the pod's resource claims cannot be allocated"
        for name, claim in self.state.claims_of_pod(pod):
            if claim is None:
                return 'waiting for dynamic resource controller to create the resourceclaim "%s-%s"' % (
                    pod["metadata"]["name"], name)
        return None

    def filter(self, pod, node):
        if not self._has_claims(pod):
            return None
        plan, reason = self._plan(pod, node["metadata"]["name"])
        return reason if plan is None else None

    def _plan(self, pod, node):
        """({claim key: [results]}, None) for the claims to allocate on `node`, or (None, reason)."""
        claims = [c for dummy, c in self.state.claims_of_pod(pod)]
        if any(c is None for c in claims):
            return None, CANNOT_ALLOCATE
        pending = []
        for claim in claims:
            results = allocation_results(claim)
            if results:
                if any(r.get("pool") != node for r in results):
                    return None, CANNOT_ALLOCATE
            else:
                pending.append(claim)
        taken = self.state.taken()
        devices = [d for d in self.state.node_devices(node) if (d[0], d[1], d[2]["name"]) not in taken]
        plan = {}
        for claim in pending:
            results = []
            for request in _requests(claim):
                body = request.get("exactly") or request
                selectors = self.state.class_selectors(body.get("deviceClassName"))
                if selectors is None:
                    return None, CANNOT_ALLOCATE
                selectors = selectors + [((s.get("cel") or {}).get("expression") or "") for s in body.get("selectors") or []]
                try:
                    predicates = [cel.compile_expression(expr) for expr in selectors if expr]
                except cel.CelUnsupported:
                    return None, CANNOT_ALLOCATE
                matching = [d for d in devices if all(p(dict(d[2], driver=d[0])) for p in predicates)]
                want = len(matching) if body.get("allocationMode") == "All" else int(body.get("count") or 1)
                if want == 0 or len(matching) < want:
                    return None, CANNOT_ALLOCATE
                for driver, pool, device in matching[:want]:
                    results.append({"request": request["name"], "driver": driver, "pool": pool, "device": device["name"]})
                    devices.remove((driver, pool, device))
            plan[(claim["metadata"]["namespace"], claim["metadata"]["name"])] = results
        return plan, None

    def reserve(self, pod, node):
        if not self._has_claims(pod):
            return
        node_name = node["metadata"]["name"]
        plan, reason = self._plan(pod, node_name)
        if plan is None:
            raise ApiError(409, "Conflict", "resource claims of pod %s changed: %s" % (pod["metadata"]["name"], reason))
        ref = {"resource": "pods", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
        for _name, claim in self.state.claims_of_pod(pod):
            fresh = copy.deepcopy(self.store.get(CLAIMS, claim["metadata"]["namespace"], claim["metadata"]["name"]))
            status = fresh.setdefault("status", {})
            key = (claim["metadata"]["namespace"], claim["metadata"]["name"])
            if key in plan:
                status["allocation"] = {"devices": {"results": plan[key]}, "nodeSelector": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}}
            reserved = status.setdefault("reservedFor", [])
            if not any(r.get("uid") == ref["uid"] for r in reserved):
                reserved.append(ref)
            self.state.put_claim(self.store.update(CLAIMS, fresh, subresource="status"))

    def unreserve(self, pod, node):
        if self._has_claims(pod):
            release_pod_claims(self.store, self.state, pod, delete_generated=False)


def release_pod_claims(store, state, pod, delete_generated=True):
    """Drop `pod` from its claims' reservations; delete claims generated for it (when it is done) and
    deallocate claims nobody reserves any more."""
    uid = pod["metadata"].get("uid")
    for claim in state.all_claims():
        reserved = (claim.get("status") or {}).get("reservedFor") or []
        owned = claim_owner_uid(claim) == uid
        if not owned and not any(r.get("uid") == uid for r in reserved):
            continue
        ns, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
        if owned and delete_generated:
            try:
                store.delete(CLAIMS, ns, name)
            except ApiError:
                pass
            continue
        try:
            fresh = copy.deepcopy(store.get(CLAIMS, ns, name))
        except ApiError:
            continue
        status = fresh.setdefault("status", {})
        status["reservedFor"] = [r for r in status.get("reservedFor") or [] if r.get("uid") != uid]
        if not status["reservedFor"]:
            status.pop("reservedFor")
            status.pop("allocation", None)
        state.put_claim(store.update(CLAIMS, fresh, subresource="status"))


class ClaimController(Controller):
    """kube-controller-manager's resourceclaim controller for pods with resource claims."""

    name = "accelerators-resourceclaim"

    def __init__(self, manager, state, inventory):
        super(ClaimController, self).__init__(manager)
        self.state = state
        self.inventory = inventory
        self.routes = {PODS: self._on_pod, CLAIMS: self._on_claim, TEMPLATES: self._on_template}

    def _on_pod(self, event):
        pod = event.obj
        if (pod.get("spec") or {}).get("resourceClaims"):
            meta = pod["metadata"]
            self.enqueue((meta["namespace"], meta["name"], meta.get("uid"), event.type == "DELETED"))

    def _on_claim(self, event):
        self.state.apply(event)
        if event.type == "DELETED" or event.old is None or \
                allocation_results(event.old) != allocation_results(event.obj):
            self.manager.scheduler.retry()

    def _on_template(self, event):
        if event.type != "DELETED":
            self.manager.scheduler.retry()

    def reconcile(self, key):
        namespace, name, uid, deleted = key
        pod = None if deleted else self.read(PODS, namespace, name)
        if pod is None or pod["metadata"].get("uid") != uid:
            gone = {"metadata": {"namespace": namespace, "name": name, "uid": uid}}
            self._stop_loads(gone)
            release_pod_claims(self.store, self.state, gone)
            return
        done = bool(pod["metadata"].get("deletionTimestamp")) or (pod.get("status") or {}).get("phase") in (
            "Succeeded", "Failed")
        if done:
            self._stop_loads(pod)
            release_pod_claims(self.store, self.state, pod)
            return
        self._create_claims(pod)

    def _create_claims(self, pod):
        meta = pod["metadata"]
        statuses = list((pod.get("status") or {}).get("resourceClaimStatuses") or [])
        known = set(s.get("name") for s in statuses)
        created = False
        for entry in (pod.get("spec") or {}).get("resourceClaims") or []:
            template_name = entry.get("resourceClaimTemplateName")
            if not template_name or entry["name"] in known:
                continue
            existing = [c for n, c in self.state.claims_of_pod(pod) if n == entry["name"] and c is not None]
            if existing:
                claim_name = existing[0]["metadata"]["name"]
            else:
                template = self.read(TEMPLATES, meta["namespace"], template_name)
                if template is None:
                    self.enqueue_after(2.0, (meta["namespace"], meta["name"], meta.get("uid"), False))
                    continue
                spec = template.get("spec") or {}
                claim = {
                    "apiVersion": self.store.types[CLAIMS].api_version(),
                    "kind": "ResourceClaim",
                    "metadata": {
                        "name": "%s-%s-%s" % (meta["name"], entry["name"], _suffix()),
                        "namespace": meta["namespace"],
                        "labels": dict((spec.get("metadata") or {}).get("labels") or {}),
                        "annotations": dict((spec.get("metadata") or {}).get("annotations") or {},
                                            **{POD_CLAIM_ANNOTATION: entry["name"]}),
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                             "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
                    },
                    "spec": copy.deepcopy(spec.get("spec") or {}),
                }
                claim_name = self.store.create(CLAIMS, claim)["metadata"]["name"]
            statuses.append({"name": entry["name"], "resourceClaimName": claim_name})
            created = True
        if created:
            fresh = copy.deepcopy(self.read(PODS, meta["namespace"], meta["name"]))
            fresh.setdefault("status", {})["resourceClaimStatuses"] = statuses
            self.store.update(PODS, fresh, subresource="status")
            self.manager.scheduler.retry()

    def _stop_loads(self, pod):
        now = self.clock.now()
        for claim in self.state.all_claims():
            reserved = (claim.get("status") or {}).get("reservedFor") or []
            if claim_owner_uid(claim) == pod["metadata"].get("uid") or \
                    any(r.get("uid") == pod["metadata"].get("uid") for r in reserved):
                for result in allocation_results(claim):
                    gpu = self.inventory.by_device_name(result.get("pool"), result.get("device"))
                    if gpu is not None:
                        self.inventory.stop_load(gpu.uuid, now)


class DraDriverController(Controller):
    """The NVIDIA DRA driver's kubelet plugin: one ResourceSlice per node it runs on. DeviceClasses come from
    the chart (helm, or the scenario's manifests), never from the driver."""

    name = "accelerators-dra-driver"

    def __init__(self, manager, state, inventory):
        super(DraDriverController, self).__init__(manager)
        self.state = state
        self.inventory = inventory
        self.routes = {PODS: self._on_pod, NODES: self._on_node, SLICES: self.state.apply,
                       CLASSES: self._on_class}

    def initial_keys(self):
        self.state.prime(self.store)
        return list(self.inventory.nodes())

    def _on_pod(self, event):
        for obj in (event.old, event.obj):
            if obj is not None and is_plugin_pod(obj) and (obj.get("spec") or {}).get("nodeName"):
                self.enqueue(obj["spec"]["nodeName"])

    def _on_node(self, event):
        if event.obj["metadata"]["name"] in self.inventory.nodes():
            self.enqueue(event.obj["metadata"]["name"])

    def _on_class(self, event):
        self.state.apply(event)
        self.manager.scheduler.retry()   # pods waiting for a class the chart has just created

    def reconcile(self, key):
        if SLICES not in self.store.types:
            return
        self._sync_slice(key)

    def _plugin_running(self, node):
        for namespace, name in list(self.manager.index.pods_by_node.get(node, ())):
            pod = self.read(PODS, namespace, name)
            if pod is not None and is_plugin_pod(pod) and not pod["metadata"].get("deletionTimestamp") and \
                    (pod.get("status") or {}).get("phase") == "Running":
                return True
        return False

    def _sync_slice(self, node_name):
        node = self.read(NODES, None, node_name)
        items, _rv, _token, _rest = self.store.list(SLICES)
        mine = [s for s in items if (s.get("spec") or {}).get("nodeName") == node_name and
                (s.get("spec") or {}).get("driver") == DRIVER]
        gpus = self.inventory.gpus(node_name)
        if node is None or not gpus or not self._plugin_running(node_name):
            for obj in mine:
                self.store.delete(SLICES, None, obj["metadata"]["name"])
            return
        if mine:
            return
        obj = {
            "apiVersion": self.store.types[SLICES].api_version(),
            "kind": "ResourceSlice",
            "metadata": {"name": "%s-%s-%s" % (node_name, DRIVER, _suffix()),
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                              "uid": node["metadata"]["uid"], "controller": True}]},
            "spec": {"driver": DRIVER, "nodeName": node_name,
                     "pool": {"name": node_name, "generation": 1, "resourceSliceCount": 1},
                     "devices": slice_devices(gpus)},
        }
        self.store.create(SLICES, obj)
        self.manager.scheduler.retry()


def devices_for(state, inventory, pod, container):
    """GPUs a container gets through DRA: the allocation results of the claims it names."""
    node = (pod.get("spec") or {}).get("nodeName")
    wanted = [(c.get("name"), c.get("request")) for c in (container.get("resources") or {}).get("claims") or []]
    if not wanted or not node:
        return []
    claims = dict(state.claims_of_pod(pod))
    out = []
    for name, request in wanted:
        for result in allocation_results(claims.get(name)):
            if result.get("driver") != DRIVER or (request and result.get("request") != request):
                continue
            gpu = inventory.by_device_name(result.get("pool"), result.get("device"))
            if gpu is not None and gpu not in out:
                out.append(gpu)
    return out


def users(state, node):
    """{gpu device name: (namespace, pod name)} of DRA allocations reserved for pods on `node`."""
    out = {}
    with state.lock:
        for claim in state.claims.values():
            reserved = (claim.get("status") or {}).get("reservedFor") or []
            for result in allocation_results(claim):
                if result.get("pool") == node and reserved:
                    out[result.get("device")] = (claim["metadata"]["namespace"], reserved[0].get("name"))
    return out
