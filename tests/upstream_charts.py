"""Where the tests find the real upstream Helm charts, so a clone anywhere runs the suite:

1. `K8S_AI_CHARTS_DIR`, when set (a directory with one chart directory per name);
2. ../shared/fixtures/upstream/charts beside the repository (the byte-identical copies SOURCES.md lists);
3. otherwise a cache (`$XDG_CACHE_HOME/k8s-ai-conformance/charts`, default ~/.cache/...) filled once with
   `helm pull --untar` of the versions the stack roles pin (roles/<role>/defaults/main.yml), for the charts
   the roles install. A chart that is in none of them is an error that names these three places.
"""
from __future__ import annotations

import os
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "upstream", "charts")
HELM = os.path.join(ROOT, ".tools", "bin", "helm")
# chart directory name -> (role, variable prefix in the role's defaults)
ROLE_CHARTS = {
    "gpu-operator": ("gpu_operator", "gpu_operator_chart"),
    "dra-driver-nvidia-gpu": ("dra_driver", "dra_driver_chart"),
    "gateway-helm": ("gateway_api", "gateway_api_chart"),
    "kueue": ("kueue", "kueue_chart"),
    "kube-prometheus-stack": ("prometheus", "prometheus_chart"),
    "prometheus-adapter": ("prometheus", "prometheus_adapter_chart"),
    "dcgm-exporter": ("dcgm_exporter", "dcgm_exporter_chart"),
    "kuberay-operator": ("kuberay", "kuberay_chart"),
}


class ChartsMissing(RuntimeError):
    """No directory holds the chart and it could not be fetched."""


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "k8s-ai-conformance", "charts")


def pinned(name):
    """(ref, repo_url, version) the stack role pins for chart `name`, or None."""
    if name not in ROLE_CHARTS:
        return None
    role, prefix = ROLE_CHARTS[name]
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    return defaults[prefix + "_ref"], defaults.get(prefix + "_repo_url") or "", str(defaults[prefix + "_version"])


def charts_dir():
    """The directory of upstream charts the tests use (see the module docstring for the order)."""
    configured = os.environ.get("K8S_AI_CHARTS_DIR")
    if configured:
        if not os.path.isdir(configured):
            raise ChartsMissing("K8S_AI_CHARTS_DIR=%s is not a directory" % configured)
        return os.path.abspath(configured)
    if os.path.isdir(SHARED):
        return SHARED
    return cache_dir()


def chart(name):
    """The path of chart `name`, fetching the role-pinned version into the cache when it is the source."""
    base = charts_dir()
    path = os.path.join(base, name)
    if os.path.isdir(path):
        return path
    if base != cache_dir() or pinned(name) is None:
        raise ChartsMissing("chart %s is not in %s; set K8S_AI_CHARTS_DIR to a directory of the upstream charts, "
                            "or keep ../shared/fixtures/upstream/charts beside the repository" % (name, base))
    ref, repo, version = pinned(name)
    os.makedirs(base, exist_ok=True)
    cmd = [HELM, "pull", ref, "--version", version, "--untar", "--untardir", base]
    if repo:
        cmd += ["--repo", repo]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0 or not os.path.isdir(path):
        raise ChartsMissing("chart %s: neither K8S_AI_CHARTS_DIR nor %s holds it, and `%s` failed: %s" % (
            name, SHARED, " ".join(cmd), (proc.stderr or proc.stdout).strip()))
    return path
