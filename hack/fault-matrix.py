"""Print the fault matrix (`make fault-matrix`): fault x check -> verdict, error text, leftovers, traceback.

Every accelerator check runs against one simulated cluster (scenario `conformant` unless --scenario) while
each fault of tests/integration/fault_matrix.py is injected; the first table line per check is the healthy
verdict the rows compare with. Exit status 1 when a row is not what it must be (marked "!!").
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, ".tools", "collections"), os.path.join(ROOT, "tests"),
                os.path.join(ROOT, "tests", "integration")]

import fault_matrix  # noqa: E402  (needs the paths above)
from checks_support import start_sim  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="conformant")
    parser.add_argument("--fault", action="append", choices=sorted(fault_matrix.FAULTS), help="only these faults")
    parser.add_argument("--check", action="append", choices=sorted(fault_matrix.CHECKS), help="only these checks")
    args = parser.parse_args()
    started = time.monotonic()
    sim = start_sim(args.scenario, tempfile.mkdtemp(prefix="fault-matrix-"))
    rows = []
    try:
        healthy = fault_matrix.baseline(sim)
        for fault in args.fault or list(fault_matrix.FAULTS):
            for check in args.check or list(fault_matrix.CHECKS):
                rows.append(fault_matrix.run_row(sim, fault, check, healthy))
                print("%-20s %-26s %s" % (fault, check, rows[-1]["outcome"]), file=sys.stderr, flush=True)
    finally:
        sim.stop()
    print("healthy verdicts (%s): %s" % (args.scenario, ", ".join("%s=%s" % kv for kv in sorted(healthy.items()))))
    print(fault_matrix.table(rows))
    bad = [r for r in rows if not r["ok"]]
    print("%d rows, %d not as required, %.0fs" % (len(rows), len(bad), time.monotonic() - started))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
