"""Scale benchmark of the simulated API server (`make bench`): prints figures, asserts nothing.

Loads a 5,000-node, 100,000-pod cluster in-process (pods already bound and Running; no controllers),
serves it over HTTPS and measures, through the real `kubernetes` Python client: a label-selector list
of ~50 pods, a field-selector list by spec.nodeName, a paged walk (limit=500) over all pods, an unpaged
node list, plus load time, server start time, peak RSS and the number of requests made.

    PYTHONPATH=tests python -m simcluster.bench [--nodes 5000] [--pods 100000] [--samples 20]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time

from kubernetes import client, config

from .cluster import SimCluster
from .scenario import node_objects

NAMESPACES = 100
PODS_PER_APP = 50


def bench_pod(index, node, timestamp):
    """A Running pod as a kubelet would have reported it (no ownerReferences: nothing to garbage-collect)."""
    app = "app-%d" % (index // PODS_PER_APP)
    name = "%s-%05d" % (app, index)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "bench-%02d" % (index % NAMESPACES),
                     "labels": {"app": app, "tier": "bench"}},
        "spec": {"nodeName": node, "containers": [{
            "name": "main", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
        "status": {"phase": "Running", "podIP": "10.%d.%d.%d" % (index >> 16 & 255, index >> 8 & 255, index & 255),
                   "startTime": timestamp, "conditions": [
                       {"type": t, "status": "True", "lastTransitionTime": timestamp}
                       for t in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready",
                                 "PodScheduled")],
                   "containerStatuses": [{"name": "main", "ready": True, "started": True, "restartCount": 0,
                                          "image": "registry.k8s.io/pause:3.10", "imageID": "",
                                          "containerID": "containerd://%032x" % index,
                                          "state": {"running": {"startedAt": timestamp}}}]},
    }


def load(nodes, pods):
    sim = SimCluster("conformant", controllers=False, kubeconfig=os.path.join(tempfile.mkdtemp(prefix="simcluster-bench-"), "kubeconfig"))
    start = time.monotonic()
    sim.load()
    stamp = sim.clock.timestamp()
    names = []
    for node in node_objects({"name": "node", "count": nodes, "cpu": "64", "memory": "256Gi", "pods": "110"},
                             sim.version["gitVersion"], stamp, first_index=10):
        sim.restore(node)
        names.append(node["metadata"]["name"])
    for i in range(NAMESPACES):
        sim.restore({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-%02d" % i}})
    for i in range(pods):
        sim.restore(bench_pod(i, names[i % len(names)], stamp))
    return sim, time.monotonic() - start


def _timed(fn, samples):
    times = []
    for _unused in range(samples):
        began = time.monotonic()
        fn()
        times.append(time.monotonic() - began)
    times.sort()
    return statistics.median(times), times[max(0, int(round(0.95 * len(times))) - 1)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m simcluster.bench")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=100000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args(argv)

    sim, load_seconds = load(args.nodes, args.pods)
    began = time.monotonic()
    sim.start()
    start_seconds = time.monotonic() - began
    api = config.new_client_from_config(sim.kubeconfig)
    core = client.CoreV1Api(api)
    requests = [0]

    def raw_list(**kwargs):
        requests[0] += 1
        resp = core.list_pod_for_all_namespaces(_preload_content=False, **kwargs)
        return json.loads(resp.data)

    try:
        label = _timed(lambda: raw_list(label_selector="app=app-17"), args.samples)
        label_size = len(raw_list(label_selector="app=app-17")["items"])
        field = _timed(lambda: raw_list(field_selector="spec.nodeName=node-17"), args.samples)
        field_size = len(raw_list(field_selector="spec.nodeName=node-17")["items"])
        began, seen, pages, token = time.monotonic(), 0, 0, None
        while True:
            page = raw_list(limit=500, _continue=token) if token else raw_list(limit=500)
            seen += len(page["items"])
            pages += 1
            token = page["metadata"].get("continue")
            if not token:
                break
        paged_seconds = time.monotonic() - began

        def node_list():
            requests[0] += 1
            return json.loads(core.list_node(_preload_content=False).data)
        nodes = _timed(node_list, max(3, args.samples // 4))
    finally:
        sim.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("simcluster bench: %d nodes, %d pods" % (args.nodes, args.pods))
    print("  load (in-process, through the store):   %.1f s" % load_seconds)
    print("  server start:                           %.2f s" % start_seconds)
    print("  peak RSS:                               %.0f MiB" % rss_mib)
    print("  label-selector list (%d pods):          p50 %.3f s, p95 %.3f s" % ((label_size,) + label))
    print("  field-selector list by spec.nodeName (%d pods): p50 %.3f s, p95 %.3f s" % ((field_size,) + field))
    print("  paged list, limit=500:                  %.1f s for %d pods in %d pages" % (paged_seconds, seen, pages))
    print("  unpaged node list (%d nodes):         p50 %.3f s, p95 %.3f s" % ((args.nodes,) + nodes))
    print("  requests made:                          %d" % requests[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
