"""Run a simulated cluster in the foreground.

    PYTHONPATH=tests python -m simcluster --scenario conformant --kubeconfig .work/sim/kubeconfig

Prints one line containing "ready" (with the URL and the kubeconfig path) once it serves and the
scenario's workloads (DaemonSets, Deployments, StatefulSets, the accelerator stack) run, then runs
until SIGINT or SIGTERM, on which it stops cleanly (exit code 0).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .cluster import SimCluster
from .scenario import ScenarioError, available


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m simcluster", description="Run the simulated AI cluster.")
    parser.add_argument("--scenario", default="conformant",
                        help="scenario name (%s) or path to a scenario YAML file" % ", ".join(available()))
    parser.add_argument("--kubeconfig", default=os.path.join(".work", "sim", "kubeconfig"),
                        help="where to write the kubeconfig (default: %(default)s)")
    parser.add_argument("--speed", type=float, default=None,
                        help="simulated seconds per real second (default: the scenario's clock.speed)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on, 0 for any free port (default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--no-controllers", action="store_true", help="serve the API only, run no controllers")
    parser.add_argument("--settle-timeout", type=float, default=120.0,
                        help="real seconds to wait for the scenario's workloads to run before saying ready")
    parser.add_argument("--verbose", action="store_true", help="log every request and controller action")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.speed is not None and args.speed <= 0:
        sys.stderr.write("error: --speed must be a positive number of simulated seconds per real second\n")
        return 2
    try:
        sim = SimCluster(args.scenario, speed=args.speed, port=args.port, host=args.host,
                         kubeconfig=os.path.abspath(args.kubeconfig), controllers=not args.no_controllers,
                         verbose=args.verbose)
        sim.start()
    except ScenarioError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 2
    except OSError as exc:
        sys.stderr.write("error: cannot serve on %s:%s: %s (pick another --port, or 0 for any free port)\n"
                         % (args.host, args.port, exc.strerror or exc))
        return 2
    if not args.no_controllers:
        try:
            sim.wait_settled(timeout=args.settle_timeout)
        except TimeoutError as exc:
            sim.stop()
            sys.stderr.write("error: %s (see --verbose)\n" % exc)
            return 1
    done = threading.Event()

    def on_signal(signum, frame):
        del signum, frame
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sys.stdout.write("simcluster ready: scenario=%s url=%s kubeconfig=%s\n"
                     % (sim.scenario.get("name"), sim.url, sim.kubeconfig))
    sys.stdout.flush()
    while not done.wait(0.5):
        pass
    sim.stop()
    sys.stdout.write("simcluster stopped\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
