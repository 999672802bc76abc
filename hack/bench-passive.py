"""What a passive run of each check costs as the cluster grows: API requests and seconds per check.

    .venv/bin/python hack/bench-passive.py --gpu-share 0.1       # 10, 500 and 5,000 nodes, every check
    .venv/bin/python hack/bench-passive.py --nodes 10 500 --checks accelerator_metrics
    make bench-passive

For each size it starts the `ai-stack` scenario in this process with its node pools grown to that many nodes
(`--gpu-share` of them GPU nodes, each with the operator's DaemonSet pods and its DRA ResourceSlice; `make
bench-passive` uses 10 %, a layout this machine settles at 5,000 nodes), waits until the
cluster has settled, then runs every check's passive mode once through the same code the module runs
(probe.run_check) as a user of its own, so the API server's per-user request count is exactly what the check
asked for. As the conform role does, it first detects the accelerator vendors once (accelerator_info, its own
row) and passes them to every check as `vendors_present`; `--standalone` runs each check as a lone module call
with `vendor: auto` instead, detecting for itself. It prints one table (requests and seconds per check and
size), the growth from the middle size to the largest, and the peak memory of the process. Figures for people: nothing is asserted against them. The
collection's promise (issue 12): at most 100 requests per check, and at most 1.2x more from 500 to 5,000 nodes.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import os
import resource
import shutil
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, ".tools", "collections")]

from simcluster.cluster import SimCluster  # noqa: E402  pylint: disable=wrong-import-position
from simcluster import scenario as scenario_mod  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe  # noqa: E402  pylint: disable=wrong-import-position

SCENARIO = "ai-stack"
BENCH_USER = "bench-passive"


def known_checks():
    with open(os.path.join(ROOT, "roles", "conform", "vars", "main.yml")) as handle:
        return yaml.safe_load(handle)["__conform_known_checks"]


def check_module(check_id):
    """The module file's argspec() and the requirement logic's run() of one check."""
    module = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.%s" % check_id)
    for name in ("ansible_collections.k8s_ai.conformance.plugins.module_utils.checks.%s" % check_id,
                 "ansible_collections.k8s_ai.conformance.plugins.module_utils.%s" % check_id):
        try:
            return module.argspec(), importlib.import_module(name).run
        except ImportError:
            continue
    raise SystemExit("no requirement logic found for %s" % check_id)


def params_for(spec, kubeconfig, vendors_present=None):
    params = {name: copy.deepcopy(option.get("default")) for name, option in spec.items()}
    params.update(kubeconfig=kubeconfig, mode="passive")
    if vendors_present is not None:
        params["vendors_present"] = vendors_present
    return params


DETECT = "accelerator_info (once)"


def detect_vendors(kubeconfig):
    """What the conform role's accelerator_info task does: (vendors, status)."""
    try:
        facts = probe.accelerator_presence(cl.Cluster.connect({"kubeconfig": kubeconfig}))
    except cl.ClusterError as err:
        return None, str(err)
    return facts["vendors"], "vendors: %s" % (", ".join(facts["vendors"]) or "none")


def grown_pools(total, gpu_share=0.5):
    """The scenario's pools with `total` nodes in all: `gpu_share` of them on the GPU pool, the rest on the CPU
    pool."""
    pools = copy.deepcopy(scenario_mod.load(SCENARIO)["nodePools"])
    fixed = sum(int(p.get("count", 1)) for p in pools if p["name"] not in ("cpu", "gpu"))
    gpu = max(2, int((total - fixed) * gpu_share))
    cpu = max(2, total - fixed - gpu)
    for pool in pools:
        if pool["name"] == "gpu":
            pool["count"] = gpu
        elif pool["name"] == "cpu":
            pool["count"] = cpu
    return pools


def measure(total, checks, settle_timeout, gpu_share=0.5, show_requests=False, standalone=False):
    pools = grown_pools(total, gpu_share)
    began = time.monotonic()
    sim = SimCluster(SCENARIO, overrides={"nodePools": pools})
    sim.start()
    try:
        try:
            not_ready = sim.wait_settled(timeout=settle_timeout)
            if not_ready:
                print("  (%d nodes: settled with %s not Ready)" % (total, ", ".join(not_ready[:5])), flush=True)
        except TimeoutError as err:
            print("  (%d nodes: %s; measuring anyway)" % (total, err), flush=True)
        print("%d nodes (%s) ready in %.0f s" % (total, ", ".join("%s %s" % (p["name"], p.get("count", 1)) for p in pools),
                                                 time.monotonic() - began), flush=True)
        sim.add_user(BENCH_USER, "bench-passive-token", groups=["system:masters"])
        kubeconfig = sim.kubeconfig_for(BENCH_USER)
        # The kubernetes client caches discovery in the temporary directory by API address, and an earlier cluster
        # on the same port would leave its own there. Every size starts from a fresh directory, warmed by one
        # connection before counting, as the conform role's first task (k8s_cluster_info, invalidate_cache) leaves it.
        tempfile.tempdir = tempfile.mkdtemp(prefix="bench-passive-")
        cl.Cluster.connect({"kubeconfig": kubeconfig})
        counts = sim.server.requests_by_user
        row = {}
        vendors = None
        for check_id in ([] if standalone else [DETECT]) + list(checks):
            before = counts.get(BENCH_USER, 0)
            sim.server.request_log[BENCH_USER] = log = []
            started = time.monotonic()
            if check_id == DETECT:
                vendors, status = detect_vendors(kubeconfig)
            else:
                spec, run = check_module(check_id)
                result, error = probe.run_check(check_id, run, params_for(spec, kubeconfig, vendors), True)
                status = error if error else result["status"]
            seconds = time.monotonic() - started
            row[check_id] = (counts.get(BENCH_USER, 0) - before, seconds, status)
            print("  %-28s %5d requests %7.2f s  %s" % (check_id, row[check_id][0], seconds, status), flush=True)
            if show_requests:
                for line in log:
                    print("      " + line, flush=True)
        return row
    finally:
        sim.stop()
        if tempfile.tempdir and os.path.basename(tempfile.tempdir).startswith("bench-passive-"):
            shutil.rmtree(tempfile.tempdir, ignore_errors=True)
            tempfile.tempdir = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 500, 5000])
    parser.add_argument("--checks", nargs="+", default=None, help="default: every check the conform role knows")
    parser.add_argument("--settle-timeout", type=int, default=600)
    parser.add_argument("--gpu-share", type=float, default=0.5,
                        help="share of the nodes on the GPU pool (default: %(default)s); 0.1 is a lighter layout that "
                             "this machine can settle at 5,000 nodes (every GPU node runs the operator's DaemonSets "
                             "and is scraped by the real Prometheus)")
    parser.add_argument("--show-requests", action="store_true", help="print each request a check made")
    parser.add_argument("--standalone", action="store_true",
                        help="run each check alone with vendor: auto (it detects the vendors itself) instead of "
                             "detecting them once and passing vendors_present, as the conform role does")
    args = parser.parse_args(argv)
    checks = args.checks or known_checks()
    rows = {}
    for total in args.nodes:
        rows[total] = measure(total, checks, args.settle_timeout, args.gpu_share, args.show_requests, args.standalone)
    sizes = args.nodes
    print("\npassive run per check (requests / seconds) on the %s scenario grown to each size, %d%% GPU nodes, %s"
          % (SCENARIO, round(100 * args.gpu_share), "each check alone (vendor: auto)" if args.standalone else
             "vendors detected once and passed to every check (as the conform role runs them)"))
    if not args.standalone:
        checks = [DETECT] + list(checks)
    header = "%-28s" % "check" + "".join("%18s" % ("%d nodes" % n) for n in sizes)
    if len(sizes) > 1:
        header += "%12s" % ("%d->%d" % (sizes[-2], sizes[-1]))
    print(header)
    worst = 0
    for check_id in checks:
        line = "%-28s" % check_id
        for total in sizes:
            requests, seconds, _status = rows[total][check_id]
            worst = max(worst, requests)
            line += "%18s" % ("%d / %.2f s" % (requests, seconds))
        if len(sizes) > 1:
            before, after = rows[sizes[-2]][check_id][0], rows[sizes[-1]][check_id][0]
            line += "%12s" % ("%.2fx" % (float(after) / before if before else float("inf")))
        print(line)
    print("most requests by one check: %d; peak memory of this process (simulated cluster included): %.0f MiB" % (
        worst, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
