"""Run simulator-backed tests again and again with every core kept busy, and print pass counts per test.

    .venv/bin/python hack/flake.py                         # tests/sim and tests/integration, 20 runs
    .venv/bin/python hack/flake.py --runs 5 tests/sim/test_helm.py -k upgrade
    make flake RUNS=20

Each run is one pytest session (`-p no:randomly`, JUnit XML into a temporary directory); meanwhile one
busy-loop process per core (`--load`, default: as many as cores) competes for the CPU, as on a loaded CI
machine. The busy loops end with the script (also on Ctrl-C). The table lists every test that ran with its
pass count; a test that failed shows its first failure message. Exit status 1 when any test failed in any
run. Figures are for people; nothing here is timed against a threshold.
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TESTS = ["tests/sim", "tests/integration"]


def burn(stop_at):
    """A busy loop on one core until `stop_at` (time.time()); bounded, so it ends even if orphaned."""
    x = 0
    while time.time() < stop_at:
        for step in range(100000):
            x += step & 1


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=20, help="pytest sessions to run (default: %(default)s)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2,
                        help="busy-loop processes competing for the CPU (default: one per core, %(default)s)")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers per run (default: %(default)s)")
    parser.add_argument("--max-hours", type=float, default=12.0, help="bound on the busy loops' life")
    parser.add_argument("pytest_args", nargs="*", help="tests and pytest options (default: %s)" % " ".join(DEFAULT_TESTS))
    return parser.parse_args(argv)


def run_once(index, pytest_args, workers, outdir):
    xml = os.path.join(outdir, "run-%02d.xml" % index)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers, "--junitxml", xml] + pytest_args
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    outcomes = {}
    if os.path.exists(xml):
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = "%s::%s" % (case.get("classname", ""), case.get("name", ""))
            failure = case.find("failure")
            if failure is None:
                failure = case.find("error")
            skipped = case.find("skipped")
            if skipped is not None:
                outcomes[name] = ("skipped", skipped.get("message", ""))
            elif failure is not None:
                outcomes[name] = ("failed", (failure.get("message") or failure.text or "").strip().splitlines()[0:1])
            else:
                outcomes[name] = ("passed", "")
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    return outcomes, seconds, last, proc.returncode


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pytest_args = args.pytest_args or DEFAULT_TESTS
    stop_at = time.time() + args.max_hours * 3600
    burners = [multiprocessing.Process(target=burn, args=(stop_at,), daemon=True) for _index in range(max(0, args.load))]
    for proc in burners:
        proc.start()
    passed = collections.Counter()
    ran = collections.Counter()
    first_failure = {}
    try:
        with tempfile.TemporaryDirectory(prefix="flake-") as outdir:
            for index in range(1, args.runs + 1):
                outcomes, seconds, last, code = run_once(index, pytest_args, args.workers, outdir)
                for name, (outcome, message) in outcomes.items():
                    ran[name] += 1
                    if outcome == "passed":
                        passed[name] += 1
                    elif outcome == "failed" and name not in first_failure:
                        first_failure[name] = "run %d: %s" % (index, " ".join(message))
                print("run %2d/%d: %.0f s, exit %d, %s" % (index, args.runs, seconds, code, last), flush=True)
    finally:
        for proc in burners:
            proc.terminate()
    width = max([len(n) for n in ran] + [4])
    print("\n%-*s  %s" % (width, "test", "passed/runs"))
    flaky = 0
    for name in sorted(ran, key=lambda n: (passed[n] == ran[n], n)):
        mark = "" if passed[name] == ran[name] else "   <- " + first_failure.get(name, "skipped")
        flaky += passed[name] != ran[name]
        print("%-*s  %d/%d%s" % (width, name, passed[name], ran[name], mark))
    print("\n%d tests, %d runs with %d busy-loop processes: %d with a failure" % (len(ran), args.runs, args.load, flaky))
    return 1 if flaky else 0


if __name__ == "__main__":
    sys.exit(main())
