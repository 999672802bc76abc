"""The Prometheus server (quay.io/prometheus/prometheus) of an operator-managed `Prometheus`: a REAL binary.

A pod the Prometheus operator's StatefulSet runs (label `operator.prometheus.io/name`) starts Debian's
prometheus 2.42 (`.tools/bin/prometheus`, fetched by hack/setup.sh) on a free port of 127.0.0.1 with the
configuration prometheus-operator generates (pkg/prometheus/promcfg.go), and its port `web` (9090) forwards
every HTTP request to it, so the API server's service and pod proxies, prometheus-adapter and the checks
talk to the real query API, /api/v1/targets and rule evaluation.

What is generated as the operator does it:

* Monitors: the `Prometheus`' serviceMonitorSelector/podMonitorSelector (nil selects nothing, `{}` every
  monitor) and their namespace selectors (nil: the Prometheus' own namespace), so kube-prometheus-stack's
  `release: <name>` selector ignores monitors without that label. Each ServiceMonitor endpoint becomes job
  `serviceMonitor/<ns>/<name>/<i>`, each PodMonitor endpoint `podMonitor/<ns>/<name>/<i>`, with the operator's
  relabel_configs (label-selector keep rules, port keep rule, namespace/service/pod/container/job/endpoint
  labels, the Failed/Succeeded filter, the monitor's own relabelings and metricRelabelings), honor_labels,
  honor_timestamps, path, params, scheme and interval.
* Rules: the PrometheusRules ruleSelector/ruleNamespaceSelector pick, one rule file each.
* External labels `prometheus=<ns>/<name>` and `prometheus_replica=<pod>`.

What differs, and why:

* Service discovery: instead of kubernetes_sd_configs against the API server, the simulator writes the
  targets Kubernetes SD would produce (every Endpoints address of every Service in the monitor's namespaces,
  or every container port of every pod, with the same `__meta_kubernetes_*` labels) into a file_sd file the
  job reads; the operator's relabelings then filter and label them inside Prometheus.
* Scraping: pods have no network, so every job scrapes through `proxy_url`, a forward HTTP proxy the
  simulator serves on 127.0.0.1 that hands `GET http://<podIP>:<port>/<path>` to the pod's simulated app.
* Time: Prometheus runs in real time while the cluster's clock runs `speed` times faster, so scrape and
  evaluation intervals are divided by the clock speed (never below 5 s of real time).

The binary is stopped when its container stops (the program's generator is closed), when the simulator
stops (SimCluster.stop_hooks) and, should the simulator die, by the kernel (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import atexit
import copy
import ctypes
import http.client
import http.server
import json
import os
import queue
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import urllib.parse

import yaml

from .. import selectors as sel

IMAGE_PATTERN = "*/prometheus/prometheus"
GROUP = "monitoring.coreos.com"
PROMETHEUSES = (GROUP, "prometheuses")
SERVICEMONITORS = (GROUP, "servicemonitors")
PODMONITORS = (GROUP, "podmonitors")
PROMETHEUSRULES = (GROUP, "prometheusrules")
NAMESPACES = ("", "namespaces")
SERVICES = ("", "services")
PODS = ("", "pods")
ENDPOINTSLICES = ("discovery.k8s.io", "endpointslices")
# libyaml when available: the configuration is regenerated whenever the store changes
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SYNC_SECONDS = 5.0              # simulated seconds between two config/target syncs (the operator's resync) ...
MIN_REAL_SYNC = 3.0             # ... but at most one per 3 real seconds: Prometheus reloads in real time anyway
MIN_REAL_INTERVAL = 5.0         # real seconds: shorter scrapes/evaluations only burn CPU on a shared machine
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def prometheus_binary():
    """Path of the real prometheus binary, or None (run hack/setup.sh)."""
    candidate = os.environ.get("SIMCLUSTER_PROMETHEUS") or os.path.join(ROOT, ".tools", "bin", "prometheus")
    return candidate if os.access(candidate, os.X_OK) else None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ============================================================================ duration helpers
def parse_duration(text, default=30.0):
    """Prometheus duration ("30s", "1m30s", "500ms") -> seconds."""
    if not text:
        return default
    total, found = 0.0, False
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", str(text)):
        found = True
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[unit]
    return total if found else default


def real_duration(sim_text, speed, default=30.0):
    """A simulated-time duration as the real-time duration Prometheus is given ("1500ms")."""
    seconds = max(MIN_REAL_INTERVAL, parse_duration(sim_text, default) / max(speed, 1e-9))
    return "%dms" % int(round(seconds * 1000))


def sanitize(name):
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


# ============================================================================ selection (resource_selector.go)
def selector_matches(selector, labels):
    """A metav1.LabelSelector; None matches nothing (the operator's nil selector), {} everything."""
    return sel.label_selector_predicate(selector)(labels or {})


def namespaces_for(store, namespace_selector, own_namespace):
    """Namespaces a Prometheus' *NamespaceSelector picks: nil -> its own namespace only."""
    if namespace_selector is None:
        return {own_namespace}
    return {ns["metadata"]["name"] for ns in store.list(NAMESPACES)[0]
            if sel.label_selector_predicate(namespace_selector)(ns["metadata"].get("labels") or {})}


def selected(store, prom, gr, selector_key, ns_selector_key):
    """The monitors (or rules) of type `gr` the Prometheus `prom` selects, sorted by namespace/name."""
    if gr not in store.types:
        return []
    spec = prom.get("spec") or {}
    selector = spec.get(selector_key)
    namespaces = namespaces_for(store, spec.get(ns_selector_key), prom["metadata"]["namespace"])
    out = [obj for obj in store.list(gr)[0]
           if obj["metadata"]["namespace"] in namespaces and selector_matches(selector, obj["metadata"].get("labels"))]
    return sorted(out, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


def monitor_namespaces(store, monitor):
    """The namespaces a monitor's own spec.namespaceSelector covers (default: the monitor's namespace)."""
    nsel = (monitor.get("spec") or {}).get("namespaceSelector") or {}
    if nsel.get("any"):
        return sorted(ns["metadata"]["name"] for ns in store.list(NAMESPACES)[0])
    return sorted(nsel.get("matchNames") or [monitor["metadata"]["namespace"]])


# ============================================================================ relabelings (promcfg.go)
RELABEL_KEYS = {"sourceLabels": "source_labels", "targetLabel": "target_label", "separator": "separator",
                "regex": "regex", "modulus": "modulus", "replacement": "replacement", "action": "action"}


def user_relabelings(configs):
    out = []
    for config in configs or ():
        item = {}
        for key, value in config.items():
            if key in RELABEL_KEYS:
                item[RELABEL_KEYS[key]] = value.lower() if key == "action" else value
        out.append(item)
    return out


def selector_relabelings(selector, kind):
    out = []
    for key in sorted((selector or {}).get("matchLabels") or {}):
        out.append({"action": "keep", "source_labels": ["__meta_kubernetes_%s_label_%s" % (kind, sanitize(key)),
                                                        "__meta_kubernetes_%s_labelpresent_%s" % (kind, sanitize(key))],
                    "regex": "(%s);true" % selector["matchLabels"][key]})
    for exp in (selector or {}).get("matchExpressions") or ():
        key, op, values = sanitize(exp.get("key", "")), exp.get("operator"), "|".join(exp.get("values") or [])
        label, present = "__meta_kubernetes_%s_label_%s" % (kind, key), "__meta_kubernetes_%s_labelpresent_%s" % (kind, key)
        if op == "In":
            out.append({"action": "keep", "source_labels": [label, present], "regex": "(%s);true" % values})
        elif op == "NotIn":
            out.append({"action": "drop", "source_labels": [label, present], "regex": "(%s);true" % values})
        elif op == "Exists":
            out.append({"action": "keep", "source_labels": [present], "regex": "true"})
        elif op == "DoesNotExist":
            out.append({"action": "drop", "source_labels": [present], "regex": "true"})
    return out


RUNNING_FILTER = {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}


def endpoint_common(job, endpoint, speed, proxy_url, sd_file):
    cfg = {"job_name": job}
    if endpoint.get("honorLabels"):
        cfg["honor_labels"] = True
    if endpoint.get("honorTimestamps") is not None:
        cfg["honor_timestamps"] = bool(endpoint["honorTimestamps"])
    cfg["file_sd_configs"] = [{"files": [sd_file], "refresh_interval": "1m"}]   # fsnotify sees rewrites at once
    if endpoint.get("interval"):
        cfg["scrape_interval"] = real_duration(endpoint["interval"], speed)
    if endpoint.get("scrapeTimeout"):
        cfg["scrape_timeout"] = real_duration(endpoint["scrapeTimeout"], speed, 10.0)
    if endpoint.get("path"):
        cfg["metrics_path"] = endpoint["path"]
    if endpoint.get("params"):
        cfg["params"] = endpoint["params"]
    if endpoint.get("scheme"):
        cfg["scheme"] = endpoint["scheme"]
    cfg["proxy_url"] = proxy_url
    return cfg


def service_monitor_job(monitor, index, endpoint, speed, proxy_url, sd_file):
    """The scrape config the operator generates for one ServiceMonitor endpoint (role endpoints)."""
    meta, spec = monitor["metadata"], monitor.get("spec") or {}
    cfg = endpoint_common("serviceMonitor/%s/%s/%d" % (meta["namespace"], meta["name"], index), endpoint, speed, proxy_url, sd_file)
    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    relabel += selector_relabelings(spec.get("selector"), "service")
    if endpoint.get("port"):
        relabel.append({"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"]})
    elif endpoint.get("targetPort") is not None:
        target = endpoint["targetPort"]
        source = "__meta_kubernetes_pod_container_port_name" if isinstance(target, str) else "__meta_kubernetes_pod_container_port_number"
        relabel.append({"action": "keep", "source_labels": [source], "regex": str(target)})
    kind_name = ["__meta_kubernetes_endpoint_address_target_kind", "__meta_kubernetes_endpoint_address_target_name"]
    relabel += [
        {"source_labels": kind_name, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
        {"source_labels": kind_name, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
    ]
    if endpoint.get("filterRunning", True):
        relabel.append(dict(RUNNING_FILTER))
    for label in spec.get("targetLabels") or ():
        relabel.append({"source_labels": ["__meta_kubernetes_service_label_" + sanitize(label)], "target_label": sanitize(label),
                        "regex": "(.+)", "replacement": "${1}"})
    for label in spec.get("podTargetLabels") or ():
        relabel.append({"source_labels": ["__meta_kubernetes_pod_label_" + sanitize(label)], "target_label": sanitize(label),
                        "regex": "(.+)", "replacement": "${1}"})
    relabel.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"})
    if spec.get("jobLabel"):
        relabel.append({"source_labels": ["__meta_kubernetes_service_label_" + sanitize(spec["jobLabel"])], "target_label": "job",
                        "regex": "(.+)", "replacement": "${1}"})
    if endpoint.get("port"):
        relabel.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    elif endpoint.get("targetPort") is not None:
        relabel.append({"target_label": "endpoint", "replacement": str(endpoint["targetPort"])})
    relabel += user_relabelings(endpoint.get("relabelings"))
    cfg["relabel_configs"] = relabel
    if endpoint.get("metricRelabelings"):
        cfg["metric_relabel_configs"] = user_relabelings(endpoint["metricRelabelings"])
    return cfg


def pod_monitor_job(monitor, index, endpoint, speed, proxy_url, sd_file):
    """The scrape config the operator generates for one PodMonitor podMetricsEndpoint (role pod)."""
    meta, spec = monitor["metadata"], monitor.get("spec") or {}
    cfg = endpoint_common("podMonitor/%s/%s/%d" % (meta["namespace"], meta["name"], index), endpoint, speed, proxy_url, sd_file)
    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    if endpoint.get("filterRunning", True):
        relabel.append(dict(RUNNING_FILTER))
    relabel += selector_relabelings(spec.get("selector"), "pod")
    if endpoint.get("port"):
        relabel.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": endpoint["port"]})
    elif endpoint.get("portNumber"):
        relabel.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                        "regex": str(endpoint["portNumber"])})
    relabel += [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    for label in spec.get("podTargetLabels") or ():
        relabel.append({"source_labels": ["__meta_kubernetes_pod_label_" + sanitize(label)], "target_label": sanitize(label),
                        "regex": "(.+)", "replacement": "${1}"})
    relabel.append({"target_label": "job", "replacement": "%s/%s" % (meta["namespace"], meta["name"])})
    if spec.get("jobLabel"):
        relabel.append({"source_labels": ["__meta_kubernetes_pod_label_" + sanitize(spec["jobLabel"])], "target_label": "job",
                        "regex": "(.+)", "replacement": "${1}"})
    if endpoint.get("port"):
        relabel.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    relabel += user_relabelings(endpoint.get("relabelings"))
    cfg["relabel_configs"] = relabel
    if endpoint.get("metricRelabelings"):
        cfg["metric_relabel_configs"] = user_relabelings(endpoint["metricRelabelings"])
    return cfg


# ============================================================================ discovery (what kubernetes_sd yields)
def _label_meta(prefix, labels):
    out = {}
    for key, value in (labels or {}).items():
        out["%s_label_%s" % (prefix, sanitize(key))] = str(value)
        out["%s_labelpresent_%s" % (prefix, sanitize(key))] = "true"
    return out


def _pod_meta(pod):
    status, spec = pod.get("status") or {}, pod.get("spec") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    meta = {"__meta_kubernetes_pod_name": pod["metadata"]["name"], "__meta_kubernetes_pod_ip": status.get("podIP") or "",
            "__meta_kubernetes_pod_node_name": spec.get("nodeName") or "", "__meta_kubernetes_pod_phase": status.get("phase") or "",
            "__meta_kubernetes_pod_ready": "true" if ready else "false", "__meta_kubernetes_pod_host_ip": status.get("hostIP") or "",
            "__meta_kubernetes_pod_uid": pod["metadata"].get("uid") or ""}
    meta.update(_label_meta("__meta_kubernetes_pod", pod["metadata"].get("labels")))
    return meta


def _container_for_port(pod, number):
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if int(port.get("containerPort") or 0) == int(number):
                return container["name"], port
    return None, None


def endpoints_targets(store, namespaces):
    """Targets of kubernetes_sd role `endpoints` for every Service in `namespaces`."""
    groups = []
    if ENDPOINTSLICES not in store.types:
        return groups
    for namespace in namespaces:
        services = {svc["metadata"]["name"]: svc for svc in store.list(SERVICES, namespace=namespace)[0]}
        pods = {pod["metadata"]["name"]: pod for pod in store.list(PODS, namespace=namespace)[0]}
        for eps in store.list(ENDPOINTSLICES, namespace=namespace)[0]:
            svc = services.get((eps["metadata"].get("labels") or {}).get("kubernetes.io/service-name"))
            if svc is None:
                continue
            base = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_service_name": svc["metadata"]["name"],
                    "__meta_kubernetes_endpoints_name": svc["metadata"]["name"]}
            base.update(_label_meta("__meta_kubernetes_service", svc["metadata"].get("labels")))
            for endpoint in eps.get("endpoints") or ():
                ref = endpoint.get("targetRef") or {}
                pod = pods.get(ref.get("name")) if ref.get("kind") == "Pod" else None
                for address in endpoint.get("addresses") or ():
                    for port in eps.get("ports") or ():
                        labels = dict(base)
                        labels.update({"__address__": "%s:%s" % (address, port.get("port")),
                                       "__meta_kubernetes_endpoint_port_name": port.get("name") or "",
                                       "__meta_kubernetes_endpoint_port_protocol": port.get("protocol") or "TCP",
                                       "__meta_kubernetes_endpoint_ready": "true" if (endpoint.get("conditions") or {}).get("ready")
                                       else "false",
                                       "__meta_kubernetes_endpoint_address_target_kind": ref.get("kind") or "",
                                       "__meta_kubernetes_endpoint_address_target_name": ref.get("name") or ""})
                        if pod is not None:
                            labels.update(_pod_meta(pod))
                            container, cport = _container_for_port(pod, port.get("port") or 0)
                            if container:
                                labels.update({"__meta_kubernetes_pod_container_name": container,
                                               "__meta_kubernetes_pod_container_port_name": cport.get("name") or "",
                                               "__meta_kubernetes_pod_container_port_number": str(cport.get("containerPort")),
                                               "__meta_kubernetes_pod_container_port_protocol": cport.get("protocol") or "TCP"})
                        groups.append({"targets": [labels.pop("__address__")], "labels": labels})
    return groups


def pod_targets(store, namespaces):
    """Targets of kubernetes_sd role `pod`: one per declared container port of every pod with an IP."""
    groups = []
    for namespace in namespaces:
        for pod in store.list(PODS, namespace=namespace)[0]:
            ip = (pod.get("status") or {}).get("podIP")
            if not ip:
                continue
            base = {"__meta_kubernetes_namespace": namespace}
            base.update(_pod_meta(pod))
            for container in (pod.get("spec") or {}).get("containers") or ():
                for port in container.get("ports") or ():
                    labels = dict(base)
                    labels.update({"__meta_kubernetes_pod_container_name": container["name"],
                                   "__meta_kubernetes_pod_container_port_name": port.get("name") or "",
                                   "__meta_kubernetes_pod_container_port_number": str(port.get("containerPort")),
                                   "__meta_kubernetes_pod_container_port_protocol": port.get("protocol") or "TCP"})
                    groups.append({"targets": ["%s:%s" % (ip, port.get("containerPort"))], "labels": labels})
    return groups


def generate(store, prom, pod_name, speed, proxy_url, workdir):
    """(prometheus.yml text, {file name: text}) for Prometheus `prom`: the operator's configuration."""
    spec = prom.get("spec") or {}
    meta = prom["metadata"]
    files = {}
    jobs = []
    for monitor in selected(store, prom, SERVICEMONITORS, "serviceMonitorSelector", "serviceMonitorNamespaceSelector"):
        targets = None
        for index, endpoint in enumerate((monitor.get("spec") or {}).get("endpoints") or ()):
            if targets is None:
                targets = endpoints_targets(store, monitor_namespaces(store, monitor))
            name = "sd-servicemonitor-%s-%s-%d.json" % (monitor["metadata"]["namespace"], monitor["metadata"]["name"], index)
            files[name] = json.dumps(targets, sort_keys=True)
            jobs.append(service_monitor_job(monitor, index, endpoint, speed, proxy_url, os.path.join(workdir, name)))
    for monitor in selected(store, prom, PODMONITORS, "podMonitorSelector", "podMonitorNamespaceSelector"):
        targets = None
        for index, endpoint in enumerate((monitor.get("spec") or {}).get("podMetricsEndpoints") or ()):
            if targets is None:
                targets = pod_targets(store, monitor_namespaces(store, monitor))
            name = "sd-podmonitor-%s-%s-%d.json" % (monitor["metadata"]["namespace"], monitor["metadata"]["name"], index)
            files[name] = json.dumps(targets, sort_keys=True)
            jobs.append(pod_monitor_job(monitor, index, endpoint, speed, proxy_url, os.path.join(workdir, name)))
    rule_files = []
    for rule in selected(store, prom, PROMETHEUSRULES, "ruleSelector", "ruleNamespaceSelector"):
        groups = copy.deepcopy((rule.get("spec") or {}).get("groups") or [])
        for group in groups:
            if group.get("interval"):
                group["interval"] = real_duration(group["interval"], speed)
            group.pop("partial_response_strategy", None)
        name = "rules-%s-%s.yaml" % (rule["metadata"]["namespace"], rule["metadata"]["name"])
        files[name] = yaml.dump({"groups": groups}, Dumper=_DUMPER, sort_keys=False)
        rule_files.append(os.path.join(workdir, name))
    config = {
        "global": {"scrape_interval": real_duration(spec.get("scrapeInterval"), speed),
                   "scrape_timeout": real_duration(spec.get("scrapeTimeout") or "10s", speed, 10.0),
                   "evaluation_interval": real_duration(spec.get("evaluationInterval"), speed),
                   "external_labels": dict(spec.get("externalLabels") or {},
                                           prometheus="%s/%s" % (meta["namespace"], meta["name"]),
                                           prometheus_replica=pod_name)},
        "rule_files": rule_files,
        "scrape_configs": jobs,
    }
    # scrape_timeout may not exceed scrape_interval once both are scaled
    glob = config["global"]
    if parse_duration(glob["scrape_timeout"]) > parse_duration(glob["scrape_interval"]):
        glob["scrape_timeout"] = glob["scrape_interval"]
    for job in jobs:
        interval = parse_duration(job.get("scrape_interval") or glob["scrape_interval"])
        if parse_duration(job.get("scrape_timeout") or glob["scrape_timeout"]) > interval:
            job["scrape_timeout"] = "%dms" % int(interval * 1000)
    return yaml.dump(config, Dumper=_DUMPER, sort_keys=False), files


# ============================================================================ process supervision
class Supervisor(object):
    """Per simulated cluster: the scrape proxy and every prometheus process, all stopped with the cluster."""

    def __init__(self, sim):
        self.sim = sim
        self.lock = threading.Lock()
        self.procs = []
        self.tmpdir = tempfile.mkdtemp(prefix="simcluster-prometheus-")     # every server's files, removed by stop()
        self.requests = queue.Queue()
        self.spawner = threading.Thread(target=self._spawn_loop, name="prometheus-spawner", daemon=True)
        self.spawner.start()
        runtime = sim.runtime

        class ProxyHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's naming)
                url = urllib.parse.urlsplit(self.path)
                result = runtime.request(None, "GET", url.hostname or "", url.port or 80, url.path or "/", url.query,
                                         dict(self.headers.items()))
                if result[0] == "ok":
                    _ok, status, headers, body = result
                else:
                    status, headers, body = 502, {"Content-Type": "text/plain"}, ("proxy: %s %s" % result).encode()
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass            # Prometheus gave up on this scrape (its timeout); it records the failure

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.proxy = Server(("127.0.0.1", 0), ProxyHandler)
        self.proxy_url = "http://127.0.0.1:%d" % self.proxy.server_address[1]
        self.proxy_thread = threading.Thread(target=self.proxy.serve_forever, name="prometheus-scrape-proxy", daemon=True)
        self.proxy_thread.start()
        atexit.register(self.stop)

    def _spawn_loop(self):
        # Children are forked from this long-lived thread: PR_SET_PDEATHSIG fires when the forking thread ends.
        while True:
            item = self.requests.get()
            if item is None:
                return
            argv, log_path, box, done = item
            try:
                with open(log_path, "ab") as log:
                    # preexec_fn only calls prctl (resolved in the parent beforehand): the kernel then kills
                    # prometheus when this thread's process dies, even by SIGKILL.
                    box.append(subprocess.Popen(  # pylint: disable=consider-using-with,subprocess-popen-preexec-fn
                        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent, close_fds=True))
            except OSError as exc:
                box.append(exc)
            done.set()

    def spawn(self, argv, log_path):
        box, done = [], threading.Event()
        self.requests.put((argv, log_path, box, done))
        done.wait(10)
        if not box or isinstance(box[0], Exception):
            raise OSError("cannot start %s: %s" % (argv[0], box[0] if box else "timeout"))
        with self.lock:
            self.procs.append(box[0])
        return box[0]

    @staticmethod
    def terminate(popen, wait=5.0):
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(wait)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)

    def stop(self):
        with self.lock:
            procs, self.procs = self.procs, []
        for popen in procs:
            self.terminate(popen)
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy.server_close()
            self.proxy = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)


try:
    PRCTL = ctypes.CDLL(None, use_errno=True).prctl       # resolved before any fork: the child only calls it
except (OSError, AttributeError):
    PRCTL = None


def _die_with_parent():
    if PRCTL is not None:
        PRCTL(1, int(signal.SIGKILL))                     # PR_SET_PDEATHSIG


def supervisor(sim):
    with SUPERVISOR_LOCK:
        sup = getattr(sim, "prometheus_supervisor", None)
        if sup is None:
            sup = Supervisor(sim)
            sim.prometheus_supervisor = sup
            hooks = getattr(sim, "stop_hooks", None)
            if hooks is not None:
                hooks.append(sup.stop)
        return sup


SUPERVISOR_LOCK = threading.Lock()


class PrometheusServer(object):
    """One container's real prometheus: its working directory, configuration, process and HTTP forwarding."""

    def __init__(self, proc):
        self.proc = proc
        self.sim = proc.runtime.sim
        self.sup = supervisor(self.sim)
        self.workdir = tempfile.mkdtemp(prefix="server-", dir=self.sup.tmpdir)
        self.port = free_port()
        self.popen = None
        self.config_text = None
        self.files = {}
        self.log_path = os.path.join(self.workdir, "prometheus.log")
        self.log_offset = 0
        labels = proc.pod["metadata"].get("labels") or {}
        self.prom_key = (proc.pod["metadata"]["namespace"], labels.get("operator.prometheus.io/name") or labels.get("prometheus"))
        self.seen_rv = None

    def prom(self):
        return self.sim.store.try_get(PROMETHEUSES, *self.prom_key) if PROMETHEUSES in self.sim.store.types else None

    def sync(self):
        """Regenerate the configuration when the store changed; write what changed; reload (or start) the binary."""
        if self.popen is not None and self.sim.store.rv == self.seen_rv:
            return
        self.seen_rv = self.sim.store.rv
        prom = self.prom()
        if prom is None:
            prom = {"metadata": {"namespace": self.prom_key[0], "name": self.prom_key[1] or "k8s"}, "spec": {}}
        with self.sim.store.lock:
            config, files = generate(self.sim.store, prom, self.proc.pod["metadata"]["name"], self.sim.clock.speed,
                                     self.sup.proxy_url, self.workdir)
        for name, text in files.items():
            if self.files.get(name) != text:
                path = os.path.join(self.workdir, name)
                with open(path + ".tmp", "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(path + ".tmp", path)
        self.files = files
        if config != self.config_text:
            with open(os.path.join(self.workdir, "prometheus.yml"), "w", encoding="utf-8") as handle:
                handle.write(config)
            if self.popen is not None:
                self.request("POST", "/-/reload", "")
            self.config_text = config
        if self.popen is None:
            binary = prometheus_binary()
            self.popen = self.sup.spawn([binary, "--config.file=" + os.path.join(self.workdir, "prometheus.yml"),
                                         "--storage.tsdb.path=" + os.path.join(self.workdir, "data"),
                                         "--web.listen-address=127.0.0.1:%d" % self.port, "--web.enable-lifecycle",
                                         "--storage.tsdb.retention.time=1d", "--log.level=info"], self.log_path)

    def pump_logs(self):
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self.log_offset)
                chunk = handle.read()
        except OSError:
            return
        self.log_offset += len(chunk)
        if chunk:
            self.proc.write(chunk.decode("utf-8", "replace"), "stderr")

    def request(self, method, path, query, headers=None, body=b""):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path + ("?" + query if query else ""), body=body or None, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k: v for k, v in resp.getheaders()
                                 if k.lower() not in ("content-length", "connection", "transfer-encoding")}, resp.read()
        finally:
            conn.close()

    def handle(self, req):
        headers = {k: v for k, v in req.headers.items() if k in ("content-type", "accept")}
        try:
            return self.request(req.method, req.path, req.query, headers, req.body)
        except OSError as exc:
            return 503, {"Content-Type": "text/plain"}, ("dial tcp: connect: connection refused (%s)" % exc).encode()

    def ready(self):
        try:
            return self.request("GET", "/-/ready", "")[0] == 200
        except OSError:
            return False

    def stop(self):
        if self.popen is not None:
            self.sup.terminate(self.popen)
            with self.sup.lock:
                if self.popen in self.sup.procs:
                    self.sup.procs.remove(self.popen)
            self.popen = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def server_app(proc):
    if proc.init:
        return None
    labels = proc.pod["metadata"].get("labels") or {}
    if "operator.prometheus.io/name" not in labels:
        return None  # not operator-managed: the generic app
    return _server(proc)


def _web_port(proc):
    for port in proc.container.get("ports") or ():
        if port.get("name") == "web" or int(port.get("containerPort") or 0) == 9090:
            return int(port["containerPort"])
    return 9090


def _server(proc):
    if prometheus_binary() is None:
        proc.write('ts=0 level=error msg="prometheus binary not found: run hack/setup.sh (it fetches Debian\'s '
                   'prometheus package into .tools/bin)"\n', "stderr")
        return 1
    server = PrometheusServer(proc)
    proc.set_ready(False)
    proc.listen(_web_port(proc), server.handle)
    is_ready = False
    try:
        while True:
            server.sync()
            server.pump_logs()
            if server.popen is not None and server.popen.poll() is not None:
                server.pump_logs()
                return server.popen.returncode or 1
            if not is_ready and server.ready():
                is_ready = True
                proc.set_ready(True)
            yield max(SYNC_SECONDS, MIN_REAL_SYNC * proc.runtime.clock.speed) if is_ready else 1.0
    finally:
        server.stop()


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, server_app)
