"""The tests find the upstream charts in K8S_AI_CHARTS_DIR, ../shared or a cache of the role-pinned versions."""
from __future__ import annotations

import os
import shutil

import pytest

import upstream_charts


def test_the_env_dir_wins(tmp_path, monkeypatch):
    shutil.copytree(os.path.join(upstream_charts.SHARED, "kuberay-operator"), tmp_path / "kuberay-operator")
    monkeypatch.setenv("K8S_AI_CHARTS_DIR", str(tmp_path))
    assert upstream_charts.chart("kuberay-operator") == str(tmp_path / "kuberay-operator")
    with pytest.raises(upstream_charts.ChartsMissing) as err:
        upstream_charts.chart("kueue")
    assert "K8S_AI_CHARTS_DIR" in str(err.value) and str(tmp_path) in str(err.value)


def test_a_missing_env_dir_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("K8S_AI_CHARTS_DIR", str(tmp_path / "nope"))
    with pytest.raises(upstream_charts.ChartsMissing, match="is not a directory"):
        upstream_charts.charts_dir()


def test_shared_fixtures_are_next(monkeypatch):
    monkeypatch.delenv("K8S_AI_CHARTS_DIR", raising=False)
    assert upstream_charts.charts_dir() == upstream_charts.SHARED
    assert os.path.isfile(os.path.join(upstream_charts.chart("kueue"), "Chart.yaml"))


def test_without_either_the_cache_of_pinned_charts_is_used(monkeypatch, tmp_path):
    monkeypatch.delenv("K8S_AI_CHARTS_DIR", raising=False)
    monkeypatch.setattr(upstream_charts, "SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "k8s-ai-conformance" / "charts" / "kueue"
    cached.mkdir(parents=True)
    assert upstream_charts.chart("kueue") == str(cached)     # already fetched: no helm pull
    # what a fetch would pull: the version the role pins, from the role's own reference
    assert upstream_charts.pinned("kueue") == ("oci://registry.k8s.io/kueue/charts/kueue", "", "0.19.2")
    assert upstream_charts.pinned("kuberay-operator")[2] == "1.7.0"
    with pytest.raises(upstream_charts.ChartsMissing, match="K8S_AI_CHARTS_DIR"):
        upstream_charts.chart("volcano")          # no role pins it: nothing to fetch
