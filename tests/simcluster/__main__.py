"""Run a simulated cluster in the foreground.

    PYTHONPATH=tests python -m simcluster --scenario conformant --kubeconfig .work/sim/kubeconfig

Prints one line containing "ready" (with the URL and the kubeconfig path) once it serves and the
scenario has settled: every workload (DaemonSets, Deployments, StatefulSets, the accelerator stack) runs
or is in a steady failure (CrashLoopBackOff, ImagePullBackOff, Unschedulable), which the line names. Runs
until SIGINT or SIGTERM, on which it stops cleanly (exit code 0), in any phase: the signal handler only
records the signal (it takes no lock, so it cannot deadlock with the main thread), and the main thread
looks at it between short steps. A stop that takes longer than --stop-timeout ends the process anyway.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

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
    parser.add_argument("--stop-timeout", type=float, default=10.0,
                        help="real seconds a stop may take before the process exits anyway (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="log every request and controller action")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.speed is not None and args.speed <= 0:
        sys.stderr.write("error: --speed must be a positive number of simulated seconds per real second\n")
        return 2
    signals = []     # appended to by the handler: no lock, no Event, nothing the main thread may hold

    def on_signal(signum, frame):
        del frame
        signals.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # imported after the handlers are in: loading the simulator takes a while
    from .cluster import SimCluster   # pylint: disable=import-outside-toplevel
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
    not_ready = []
    if not args.no_controllers and not signals:
        try:
            not_ready = sim.wait_settled(timeout=args.settle_timeout, should_stop=lambda: bool(signals)) or []
        except TimeoutError as exc:
            stop(sim, args.stop_timeout)
            sys.stderr.write("error: %s (see --verbose)\n" % exc)
            return 1
    if not signals:
        sys.stdout.write("simcluster ready: scenario=%s url=%s kubeconfig=%s%s\n" % (
            sim.scenario.get("name"), sim.url, sim.kubeconfig,
            (" not ready: %s" % "; ".join(not_ready)) if not_ready else ""))
        sys.stdout.flush()
    while not signals:
        time.sleep(0.1)
    code = stop(sim, args.stop_timeout)
    # More signals of the same burst would find Python's handlers reset to the default at interpreter exit
    # and end the process by a signal after a clean stop: ignore them from here on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


def stop(sim, timeout):
    """Stop the cluster within `timeout` real seconds; past that, say so and end the process anyway."""
    worker = threading.Thread(target=sim.stop, name="simcluster-stop", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        sys.stderr.write("error: the simulated cluster did not stop within %ss; exiting anyway\n" % timeout)
        sys.stderr.flush()
        os._exit(1)   # pylint: disable=protected-access
    sys.stdout.write("simcluster stopped\n")
    sys.stdout.flush()
    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if lingering:
        sys.stderr.write("warning: threads still running after stop (%s); exiting anyway\n" % ", ".join(lingering))
        sys.stderr.flush()
        os._exit(0)   # pylint: disable=protected-access
    return 0


if __name__ == "__main__":
    sys.exit(main())
