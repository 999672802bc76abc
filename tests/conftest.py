"""Test-wide setup: make the collection (through .tools/collections) and the simulator importable."""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(ROOT, ".tools", "collections"), os.path.join(ROOT, "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)


def pytest_collection_modifyitems(items):
    """Tests marked slow run first, the longest first (`@pytest.mark.slow(seconds=N)`, N as measured on 2
    idle cores), the order otherwise kept: with pytest-xdist (`--dist loadfile --no-loadscope-reorder`, as
    hack/test.sh runs it) a long test that starts last is the whole run's tail, one started first overlaps
    with everything else."""
    def key(item):
        marker = item.get_closest_marker("slow")
        return (0, -float(marker.kwargs.get("seconds", 0))) if marker else (1, 0)
    items.sort(key=key)


# ----------------------------------------------------------------------------------------- simulator
# `sim_cluster`: one simulated cluster (the default scenario) for the whole test session, shared by
# tests that do not change cluster-wide state. `make_sim(scenario, **overrides)`: a fresh cluster per
# test, stopped afterwards. Both give a started SimCluster: .kubeconfig (path), .url, .store, ...
# Overrides deep-merge into the scenario (e.g. settings={"api": {...}}, kubernetesVersion="v1.34.1");
# `speed=` sets the clock and `controllers=False` serves the API alone.


def _start_sim(scenario, directory, overrides):
    from simcluster.cluster import SimCluster  # imported late: sys.path is set up above

    speed = overrides.pop("speed", None)
    controllers = overrides.pop("controllers", True)
    verbose = overrides.pop("verbose", bool(os.environ.get("SIMCLUSTER_VERBOSE")))
    sim = SimCluster(scenario, overrides=overrides or None, speed=speed, controllers=controllers, verbose=verbose,
                     kubeconfig=os.path.join(str(directory), "kubeconfig"))
    return sim.start()


@pytest.fixture(scope="session")
def sim_cluster(tmp_path_factory):
    """The default scenario, started once per test session (per xdist worker)."""
    sim = _start_sim("conformant", tmp_path_factory.mktemp("sim-session"), {})
    yield sim
    sim.stop()


@pytest.fixture
def make_sim(tmp_path):
    """Factory for per-test clusters: make_sim("conformant", speed=100, settings={...})."""
    started = []

    def factory(scenario="conformant", **overrides):
        directory = tmp_path / ("sim-%d" % len(started))
        directory.mkdir()
        sim = _start_sim(scenario, directory, overrides)
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()
