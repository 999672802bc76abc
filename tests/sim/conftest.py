"""Helpers for the simulator tests: run the real kubectl/helm binaries and the real Python client
against a SimCluster (fixtures sim_cluster/make_sim come from tests/conftest.py)."""
from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
import yaml
from kubernetes import client, config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, ".tools", "bin")
FIXTURES = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "upstream")


class Tool(object):
    """Runs kubectl or helm against one simulated cluster, as a given scenario user."""

    def __init__(self, binary, sim, cache_dir):
        self.binary = os.path.join(TOOLS, binary)
        self.sim = sim
        self.cache_dir = str(cache_dir)

    def env(self, user=None):
        env = dict(os.environ)
        env["KUBECONFIG"] = self.sim.kubeconfig_for(user) if user else self.sim.kubeconfig
        env["KUBECACHEDIR"] = os.path.join(self.cache_dir, "kube")
        env["HELM_CACHE_HOME"] = os.path.join(self.cache_dir, "helm-cache")
        env["HELM_CONFIG_HOME"] = os.path.join(self.cache_dir, "helm-config")
        env["HELM_DATA_HOME"] = os.path.join(self.cache_dir, "helm-data")
        return env

    def __call__(self, *args, user=None, check=True, stdin=None, timeout=120):
        proc = subprocess.run([self.binary] + [str(a) for a in args], env=self.env(user), input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s %s failed (%d):\n%s\n%s" % (os.path.basename(self.binary), " ".join(map(str, args)),
                                                                 proc.returncode, proc.stdout, proc.stderr))
        return proc

    def json(self, *args, user=None):
        return json.loads(self(*(args + ("-o", "json")), user=user).stdout)


@pytest.fixture
def kubectl(sim_cluster, tmp_path):
    return Tool("kubectl", sim_cluster, tmp_path)


@pytest.fixture
def tools(tmp_path):
    """tools(sim) -> (kubectl, helm) for a cluster from make_sim."""
    def make(sim):
        return Tool("kubectl", sim, tmp_path), Tool("helm", sim, tmp_path)
    return make


def api_client(sim, user=None):
    return config.new_client_from_config(sim.kubeconfig_for(user) if user else sim.kubeconfig)


@pytest.fixture
def core(sim_cluster):
    return client.CoreV1Api(api_client(sim_cluster))


@pytest.fixture
def namespace(sim_cluster):
    """A fresh namespace in the session cluster (removed from the store afterwards)."""
    name = "t-" + uuid.uuid4().hex[:8]
    sim_cluster.store.create(("", "namespaces"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def load_yaml(path):
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


class Raw(object):
    """Plain HTTPS requests to the simulated API server (for what typed clients hide: headers, Status)."""

    def __init__(self, sim, user=None):
        import ssl
        self.sim = sim
        self.context = ssl.create_default_context(cadata=sim.ca_pem)
        self.token = sim.user(user)["token"]

    def __call__(self, method, path, body=None, headers=None, token=None):
        import http.client
        conn = http.client.HTTPSConnection(self.sim.host, self.sim.port, context=self.context, timeout=30)
        all_headers = {"Authorization": "Bearer %s" % (token if token is not None else self.token),
                       "Accept": "application/json"}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict(resp.getheaders()), data

    def json(self, method, path, body=None, headers=None, token=None):
        status, headers, data = self(method, path, body, headers, token)
        return status, json.loads(data) if data else None


@pytest.fixture
def raw(sim_cluster):
    return Raw(sim_cluster)
