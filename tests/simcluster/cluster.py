"""SimCluster: one simulated cluster built from a scenario (store, types, runtime, controllers, server).

    sim = SimCluster("conformant", kubeconfig="/tmp/kc").start()
    ... real clients use sim.kubeconfig / sim.url ...
    sim.stop()

Attributes every part may use (the contract in README.md): clock, store, scenario, settings,
runtime, controllers, version, minor, log(msg). The API server adds url, kubeconfig, ca_pem,
users and kubeconfig_for(user).
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

from . import scenario as scenario_mod
from .accelerators import install as install_accelerators
from .apiservices import APIServiceAvailability
from .hpa import HorizontalPodAutoscalerController
from .apps import register_all as register_apps
from .accelerators import dra
from .builtin import builtin_types, dra_versions, _sorted_versions
from .clock import Clock
from .controllers import ControllerManager
from .crd import CRDRegistry
from .errors import ApiError
from .objcopy import clone
from .runtime import Runtime
from .selectors import label_selector_predicate
from .store import Store
from .tls import ServingCerts, kubeconfig as make_kubeconfig, write_kubeconfig

DEFAULT_VERSION = "v1.33.5"

# Behaviour switches and their defaults. Scenarios override them under `settings:`; parts of the
# simulator read their own section with .get() so new switches can be added without touching this.
DEFAULT_SETTINGS = {
    "api": {
        "draVersions": None,              # None: what the minor serves; [] none; or a list such as [v1, v1beta2]
        "serviceCIDR": "10.96.0.0/12",
        "watchTimeoutSeconds": 300,       # real seconds; the upper bound of one watch request
        "bookmarkIntervalSeconds": 10,    # real seconds between BOOKMARK events when a client allows them
        "historyLimit": 200000,           # events kept for watch resumption before "compaction"
        "localAPIServices": True,         # create the Local APIService objects a real cluster has
    },
    "runtime": {"deviceIsolation": True, "containerStartSeconds": 2},
}

GO_VERSIONS = {32: "go1.23.12", 33: "go1.24.6", 34: "go1.24.6", 35: "go1.25.3", 36: "go1.25.5"}
CREATE_ORDER = ("Namespace", "CustomResourceDefinition", "PriorityClass", "ClusterRole", "ServiceAccount")


def version_info(git_version):
    """What GET /version returns for a release (fields as kube-apiserver fills them)."""
    parts = git_version.lstrip("v").split("-")[0].split("+")[0].split(".")
    minor = int(parts[1])
    info = {
        "major": parts[0], "minor": str(minor),
        "gitVersion": git_version,
        "gitCommit": "0d5e9f1a7b3c4e2f8a6b9c1d3e5f7a9b2c4d6e8f",
        "gitTreeState": "clean",
        "buildDate": "2025-09-09T19:45:21Z",
        "goVersion": GO_VERSIONS.get(minor, "go1.25.5"),
        "compiler": "gc",
        "platform": "linux/amd64",
    }
    if minor >= 33:
        info.update({"emulationMajor": parts[0], "emulationMinor": str(minor),
                     "minCompatibilityMajor": parts[0], "minCompatibilityMinor": str(minor - 1)})
    return info


def _render_dra_chart(sim, obj):
    """A resource.k8s.io object of a chart that picks its API version from the cluster's capabilities, as
    `helm install` would have rendered it here (None when no DRA API is served: the chart renders nothing)."""
    return dra.render_chart_object(obj, _sorted_versions(dra_versions(sim.minor, sim.settings)))


# `render` values of scenario `manifests` mappings: how a chart's objects would have been rendered for this
# cluster when it was installed (`helm template` output is version-specific, the scenario file is not).
MANIFEST_RENDERS = {"dra-api-version": _render_dra_chart}


WORKLOAD_KINDS = ((("apps", "daemonsets"), "daemonset"), (("apps", "deployments"), "deployment"),
                  (("apps", "statefulsets"), "statefulset"))
# Container waiting reasons kubelet keeps reporting until someone changes the pod: steady failures.
STEADY_WAITING = frozenset(("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                            "CreateContainerConfigError", "CreateContainerError", "RunContainerError"))


def _steady_failures(workload, pods):
    """The steady failure (a reason) of each pod of `workload` that is in one: a container waiting for a
    STEADY_WAITING reason, or no node fits (PodScheduled=False, Unschedulable)."""
    meta = workload["metadata"]
    selects = label_selector_predicate((workload.get("spec") or {}).get("selector"))
    out = []
    for pod in pods:
        pmeta = pod["metadata"]
        if pmeta.get("namespace") != meta.get("namespace") or pmeta.get("deletionTimestamp") or \
                not selects(pmeta.get("labels") or {}):
            continue
        status = pod.get("status") or {}
        reasons = [((c.get("state") or {}).get("waiting") or {}).get("reason")
                   for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])]
        steady = [r for r in reasons if r in STEADY_WAITING]
        if steady:
            out.append(steady[0])
        elif any(c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
                 for c in status.get("conditions") or []):
            out.append("Unschedulable")
    return out


class SimCluster(object):
    """A simulated cluster. `overrides` deep-merge into the scenario (e.g. {"settings": {...}})."""

    def __init__(self, scenario="conformant", overrides=None, speed=None, port=0, host="127.0.0.1",
                 kubeconfig=None, controllers=True, verbose=False, log_stream=None):
        self.scenario = scenario_mod.load(scenario, overrides)
        self.settings = scenario_mod.deep_merge(DEFAULT_SETTINGS, self.scenario.get("settings") or {})
        clock_speed = speed if speed is not None else (self.scenario.get("clock") or {}).get("speed", 1)
        self.clock = Clock(float(clock_speed))
        self.store = Store(self.clock, history_limit=int(self.settings["api"]["historyLimit"]))
        self.stop_hooks = []          # called by stop(): apps stop the real processes they started
        self.version = version_info(str(self.scenario.get("kubernetesVersion", DEFAULT_VERSION)))
        self.minor = int(self.version["minor"])
        self.users = list(self.scenario["users"])
        self.host = host
        self.port = port
        self.verbose = verbose
        self._log_stream = log_stream or sys.stderr
        self._log_lock = threading.Lock()
        self._kubeconfig_path = kubeconfig
        self._tmpdir = None
        self._run_controllers = controllers
        self._loaded = False
        self.server = None
        self.certs = None
        self.url = None
        for rtype, indexes in builtin_types(self.minor, self.settings):
            self.store.register(rtype, indexes=indexes)
        self.crds = CRDRegistry(self)
        self.runtime = Runtime(self)
        self.controllers = ControllerManager(self)
        install_accelerators(self)   # GPUs, device plugin, DRA driver, DCGM exporter (tests/simcluster/accelerators)
        register_apps(self)          # the stack's operators as the roles install them (tests/simcluster/apps)
        self.controllers.add_controller(APIServiceAvailability(self.controllers, self))
        self.controllers.add_controller(HorizontalPodAutoscalerController(self.controllers, self))

    # ------------------------------------------------------------------------------- logging
    def log(self, msg):
        """Diagnostics for people debugging a test; printed only with verbose=True."""
        if self.verbose:
            with self._log_lock:
                self._log_stream.write("[simcluster %.3f] %s\n" % (time.time(), msg))
                self._log_stream.flush()

    # ------------------------------------------------------------------------------- loading
    def load(self):
        """Create the scenario's nodes and objects in the store (no admission, like a restored etcd)."""
        if self._loaded:
            return self
        self._loaded = True
        objects = [clone(o) for o in self.scenario.get("objects") or []]
        for entry in self.scenario.get("manifests") or []:
            objects.extend(self._manifest(entry))
        objects.sort(key=lambda o: CREATE_ORDER.index(o["kind"]) if o.get("kind") in CREATE_ORDER
                     else len(CREATE_ORDER))
        first = 0
        for pool in self.scenario.get("nodePools") or []:
            nodes = scenario_mod.node_objects(pool, self.version["gitVersion"], self.clock.timestamp(), first)
            first += len(nodes)
            objects.extend(nodes)
        for obj in objects:
            self.restore(obj)
        if self.settings["api"].get("localAPIServices"):
            self._local_apiservices()
        return self

    def _manifest(self, entry):
        """The objects of one `manifests` entry: a path, or {path, render} rendered for this cluster."""
        if not isinstance(entry, dict):
            return scenario_mod.manifest_objects(entry)
        render = MANIFEST_RENDERS.get(entry.get("render"))
        if render is None:
            raise scenario_mod.ScenarioError("scenario %s: manifest %s: unknown render %r (known: %s)" % (
                self.scenario.get("name"), entry["path"], entry.get("render"), ", ".join(sorted(MANIFEST_RENDERS))))
        return [o for o in (render(self, obj) for obj in scenario_mod.manifest_objects(entry["path"])) if o is not None]

    def restore(self, obj):
        """Create one object as it is described, status included (a scenario describes existing state)."""
        rtype = self.store.type_by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if rtype is None:
            raise scenario_mod.ScenarioError(
                "scenario %s: no served type for %s %s (is its CRD listed before it, and is the API "
                "version served by %s?)" % (self.scenario.get("name"), obj.get("apiVersion"), obj.get("kind"),
                                            self.version["gitVersion"]))
        obj = clone(obj)
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            meta.setdefault("namespace", "default")
        convert_in = getattr(rtype, "convert_in", None)
        version = obj["apiVersion"].rpartition("/")[2]
        if convert_in is not None:
            obj = convert_in(obj, version)
        obj = self.crds.admit(rtype, version, obj) if hasattr(rtype, "crd") else obj
        status = obj.get("status")
        try:
            stored = self.store.create(rtype.gr, obj)
        except ApiError as exc:
            raise scenario_mod.ScenarioError("scenario %s: cannot create %s %s/%s: %s" % (
                self.scenario.get("name"), obj.get("kind"), meta.get("namespace", ""), meta.get("name"), exc.message))
        if status and rtype.strategy.has_status_subresource and stored.get("status") != status:
            stored["status"] = status
            stored = self.store.update(rtype.gr, stored, subresource="status")
        return stored

    def _local_apiservices(self):
        seen = set()
        for rtype in list(self.store.types.values()):
            if getattr(rtype, "crd", None) is not None:
                continue
            for version in rtype.versions:
                name = "%s.%s" % (version, rtype.group)
                if name in seen or self.store.try_get(("apiregistration.k8s.io", "apiservices"), None, name):
                    continue
                seen.add(name)
                self.store.create(("apiregistration.k8s.io", "apiservices"), {
                    "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                    "metadata": {"name": name, "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                    "spec": {"group": rtype.group, "version": version, "groupPriorityMinimum": 18000,
                             "versionPriority": 15}})

    # ------------------------------------------------------------------------------- lifecycle
    def start(self):
        """Load the scenario, serve HTTPS, write the kubeconfig, start the controllers. Returns self."""
        from .server import ApiServer  # the server imports this module's types
        self.load()
        self.certs = ServingCerts(self.host)
        self.server = ApiServer(self, self.host, self.port, self.certs.server_context())
        self.server.start()
        self.port = self.server.port
        self.url = "https://%s:%d" % (self.host, self.port)
        if self._kubeconfig_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="simcluster-")
            self._kubeconfig_path = os.path.join(self._tmpdir, "kubeconfig")
        self.kubeconfig_for(None, self._kubeconfig_path)
        if self._run_controllers:
            self.controllers.start()
        self.log("serving %s (%s) with kubeconfig %s" % (self.url, self.scenario.get("name"), self._kubeconfig_path))
        return self

    def settled(self):
        """True when the scenario has settled (see settle_report)."""
        return self.settle_report()[0]

    def settle_report(self):
        """(settled, not_ready): the scenario has settled when every DaemonSet, Deployment and StatefulSet
        reports all its pods ready, or each of its pods that is not is in a steady failure (a crash loop, an
        image that cannot be pulled, no node that fits), and the simulated accelerators have published their
        state. `not_ready` names each workload that is not Ready and why, settled or not."""
        store = self.store
        settled, not_ready = True, []
        pods = None
        for gr, kind in WORKLOAD_KINDS:
            for obj in store.list(gr)[0]:
                status = obj.get("status") or {}
                if kind == "daemonset":
                    want, ready = status.get("desiredNumberScheduled"), status.get("numberReady", 0)
                else:
                    want, ready = (obj.get("spec") or {}).get("replicas", 1), status.get("readyReplicas", 0)
                if want is not None and ready >= want:
                    continue
                if pods is None:
                    pods = store.list(("", "pods"))[0]
                failures = _steady_failures(obj, pods)
                where = "%s %s/%s" % (kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                if want is None or len(failures) < want - ready:
                    settled = False
                    not_ready.append("%s (starting)" % where)
                else:
                    not_ready.append("%s (%s)" % (where, ", ".join(sorted(set(failures)))))
        accelerators = getattr(self, "accelerators", None)
        if accelerators is not None and not accelerators.settled():
            settled = False
            not_ready.append("accelerators (device plugin capacity or DRA ResourceSlices not published yet)")
        return settled, not_ready

    def wait_settled(self, timeout=60.0, should_stop=None):
        """Bounded wait for settled(); returns the names of what is not Ready (steady failures), raises
        TimeoutError naming what is still starting. `should_stop()` true ends the wait early (None)."""
        deadline = time.monotonic() + timeout
        report = (False, [])
        while time.monotonic() < deadline:
            if should_stop is not None and should_stop():
                return None
            began = time.monotonic()
            with self.store.lock:
                report = self.settle_report()
            if report[0]:
                return report[1]
            # a report scans every workload and pod under the store's lock: on a cluster of thousands of nodes it
            # takes long enough that looking every 50 ms would starve the controllers it waits for
            time.sleep(max(0.05, 10 * (time.monotonic() - began)))
        raise TimeoutError("the %s scenario's workloads did not settle within %ss: %s"
                           % (self.scenario.get("name"), timeout, "; ".join(report[1]) or "nothing reported"))

    def stop(self):
        """Stop controllers and the server; open watches and log streams end promptly."""
        if self._run_controllers:
            self.controllers.stop()
        for hook in list(self.stop_hooks):   # processes the apps started (the real Prometheus servers)
            hook()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------------------- access
    @property
    def kubeconfig(self):
        return self._kubeconfig_path

    @property
    def ca_pem(self):
        """The cluster CA certificate in PEM (str), what kube-root-ca.crt and clients trust."""
        return self.certs.ca_pem.decode() if self.certs else None

    def user(self, name=None):
        """The scenario user called `name` (default: the first, the kubeconfig's user)."""
        if name is None:
            return self.users[0]
        for user in self.users:
            if user["name"] == name:
                return user
        raise KeyError("scenario %s has no user %r (users: %s)" % (
            self.scenario.get("name"), name, ", ".join(u["name"] for u in self.users)))

    def kubeconfig_for(self, user=None, path=None):
        """Write a kubeconfig whose current context uses scenario user `user`; returns its path."""
        if self.url is None:
            raise RuntimeError("start() the cluster before asking for a kubeconfig")
        current = self.user(user)["name"]
        if path is None:
            if self._tmpdir is None:
                self._tmpdir = tempfile.mkdtemp(prefix="simcluster-")
            path = os.path.join(self._tmpdir, "kubeconfig-%s" % current)
        return write_kubeconfig(path, make_kubeconfig(self.url, self.certs.ca_pem, self.users, current_user=current))

    def add_user(self, name, token, groups=()):
        """Add a bearer-token user at run time (tests that need a fresh identity)."""
        self.users.append({"name": name, "token": token, "groups": list(groups)})
