"""Run the simulated GPU cluster the stack roles install onto, in the foreground, until stopped.

    .venv/bin/python tests/integration/roles/stack_sim.py --kubeconfig .work/sim/kubeconfig

Same as `make sim` with this directory's stackless-gpu.yaml scenario, plus what the roles' tests need from
the simulator (tests/integration/roles/harness.py): the apps of the operators the roles install. Prints a
line with "ready" once it serves; writes its pid to --pidfile if given (molecule's destroy step reads it).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))                  # tests/integration: `roles.harness`
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # tests: `simcluster`

from roles.harness import SCENARIO, start_stack_sim  # noqa: E402  pylint: disable=wrong-import-position


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=os.path.join(".work", "sim", "kubeconfig"))
    parser.add_argument("--scenario", default=SCENARIO)
    parser.add_argument("--pidfile", default=None)
    args = parser.parse_args()
    directory = os.path.dirname(os.path.abspath(args.kubeconfig))
    os.makedirs(directory, exist_ok=True)
    if args.pidfile:
        with open(args.pidfile, "w", encoding="utf-8") as handle:
            handle.write("%d\n" % os.getpid())
    sim = start_stack_sim(directory, scenario=args.scenario)
    if os.path.abspath(sim.kubeconfig) != os.path.abspath(args.kubeconfig):
        os.replace(sim.kubeconfig, args.kubeconfig)
    sys.stdout.write("stack simulator ready: url=%s kubeconfig=%s\n" % (sim.url, args.kubeconfig))
    sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    sim.stop()


if __name__ == "__main__":
    main()
