"""Scale benchmark of the controllers (prints figures, asserts nothing).

Loads the API benchmark's cluster (simcluster.bench: 5,000 nodes, 100,000 Running pods), starts the
controllers on it and measures, through the real `kubernetes` Python client: the initial sync (index
and adopt every pod), a 200-replica Deployment becoming available, a DaemonSet on every node becoming
available, and deleting a namespace of 1,000 pods; with the per-controller reconcile counts.

    PYTHONPATH=tests python -m simcluster.controllers.bench [--nodes 5000] [--pods 100000] [--speed 50]
"""
from __future__ import annotations

import argparse
import resource
import time

from .. import bench
from .testing import apps, core, wait_for

PAUSE = "registry.k8s.io/pause:3.10"


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(label, action, done, report, timeout):
    began = time.monotonic()
    action()
    wait_for(done, label, timeout=timeout, interval=0.2)
    report.append((label, time.monotonic() - began))


def _deployment(replicas):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "big"}},
                     "template": {"metadata": {"labels": {"app": "big"}},
                                  "spec": {"containers": [{"name": "c", "image": PAUSE,
                                                           "resources": {"requests": {"cpu": "10m"}}}]}}}}


def _daemonset():
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"tolerations": [{"operator": "Exists"}],
                                           "containers": [{"name": "c", "image": PAUSE}]}}}}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m simcluster.controllers.bench")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=100000)
    parser.add_argument("--speed", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=1200.0, help="real seconds allowed per step")
    args = parser.parse_args(argv)

    sim, load_seconds = bench.load(args.nodes, args.pods)
    sim.clock.speed = args.speed
    sim.start()                      # bench.load builds the cluster without controllers: start them here
    manager = sim.controllers
    report = [("load (API benchmark's cluster)", load_seconds)]
    try:
        _timed("controllers' initial sync", manager.start, manager.idle, report, args.timeout)
        rss_synced = _rss_mib()
        api = apps(sim)

        def available(read):
            status = read().status
            return bool(status) and (getattr(status, "available_replicas", None) or
                                     getattr(status, "number_available", None) or 0)

        _timed("Deployment of 200 replicas available",
               lambda: api.create_namespaced_deployment("default", _deployment(200)),
               lambda: available(lambda: api.read_namespaced_deployment("big", "default")) == 200,
               report, args.timeout)

        def daemonset_done():
            status = api.read_namespaced_daemon_set("agent", "default").status
            return bool(status and status.desired_number_scheduled and
                        status.number_available == status.desired_number_scheduled)

        _timed("DaemonSet on every node available",
               lambda: api.create_namespaced_daemon_set("default", _daemonset()), daemonset_done,
               report, args.timeout)
        namespace = "bench-07"
        in_namespace = sim.store.count(("", "pods"), namespace)

        def namespace_gone():
            return not [n for n in core(sim).list_namespace().items if n.metadata.name == namespace]

        _timed("namespace of %d pods deleted" % in_namespace, lambda: core(sim).delete_namespace(namespace),
               namespace_gone, report, args.timeout)
        stats = manager.stats()
    finally:
        sim.stop()
    print("simcluster controllers bench: %d nodes, %d pods, clock speed %g" % (args.nodes, args.pods, args.speed))
    for label, seconds in report:
        print("  %-45s %8.1f s" % (label, seconds))
    print("  %-45s %8.0f MiB (after sync), %.0f MiB (end)" % ("peak RSS", rss_synced, _rss_mib()))
    print("  reconciles (busy real seconds) per controller:")
    for name, (count, busy, _queued) in sorted(stats.items()):
        if count:
            print("    %-30s %8d  (%.1f s)" % (name, count, busy))


if __name__ == "__main__":
    main()
