"""The collection as users get it: the built tarball installed with `ansible-galaxy collection install` into an
empty collections path (kubernetes.core beside it, as an install with dependencies gives), then run from
directories outside the checkout with no project ansible.cfg, against one simulated cluster:

1. `ansible-playbook k8s_ai.conformance.conform` and `k8s_ai.conformance.install` with a plain inventory and a
   variables file; the installed copy writes the same PRODUCT.yaml as the checkout on the same cluster;
2. a play in an "infra repository" layout (its own ansible.cfg, requirements.yml, inventory and group_vars)
   that includes the collection's roles and calls a check module with module_defaults.

kubernetes.core comes, offline, from the copy hack/setup.sh installed in .tools/collections (taken from the
`ansible` wheel), packed as the artifact Galaxy would serve.
"""
from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest
import yaml

from checks_support import ROOT, leftovers, start_sim
import upstream_charts

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
TOOLS_BIN = os.path.join(ROOT, ".tools", "bin")
K8S_CORE = os.path.join(ROOT, ".tools", "collections", "ansible_collections", "kubernetes", "core")
CHECKS_RUN = ("dra_support", "secure_accelerator_access", "accelerator_metrics")
# Short windows: the simulated cluster answers in seconds (hack/demo-vars.yml explains the settings). The
# metrics probe stops as soon as the load shows, so its bound only costs time when the load never shows.
FAST = {"conform_wait_timeout": 60, "conform_wait_sleep": 0.5, "conform_dra_unschedulable_window": 2,
        "conform_metrics_load_seconds": 60}
STACK_ROLES = ("prometheus", "gpu_operator", "dra_driver", "dcgm_exporter", "gateway_api", "kueue", "kuberay")


def user_env(**extra):
    """The environment of someone who installed the collection: no ANSIBLE_* settings pointing at the checkout,
    no PYTHONPATH; the project's virtualenv (ansible-core, kubernetes) and kubectl/helm on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(PATH=os.pathsep.join([VENV_BIN, TOOLS_BIN, os.environ.get("PATH", "")]), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0", **extra)
    return env


def run(argv, cwd, env, timeout=300):
    proc = subprocess.run(argv, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout, check=False)
    proc.out = proc.stdout + proc.stderr
    return proc


def pack_installed_collection(src, dest):
    """An installed collection (MANIFEST.json, FILES.json and its files) packed as a Galaxy artifact."""
    with tarfile.open(dest, "w:gz") as tar:
        for name in sorted(os.listdir(src)):
            tar.add(os.path.join(src, name), arcname=name)
    return dest


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The collection's tarball built from the checkout, and kubernetes.core's artifact."""
    base = tmp_path_factory.mktemp("artifacts")
    build = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(base), ROOT],
                base, user_env())
    assert build.returncode == 0, build.out
    tarball = next(base.glob("k8s_ai-conformance-*.tar.gz"))
    with open(os.path.join(K8S_CORE, "MANIFEST.json"), encoding="utf-8") as handle:
        version = json.load(handle)["collection_info"]["version"]
    core = pack_installed_collection(K8S_CORE, str(base / ("kubernetes-core-%s.tar.gz" % version)))
    return str(tarball), core


@pytest.fixture(scope="module")
def installed(artifacts, tmp_path_factory):
    """An empty collections path with both artifacts installed by ansible-galaxy, offline."""
    path = tmp_path_factory.mktemp("collections")
    proc = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p", str(path)]
               + list(artifacts), path, user_env())
    assert proc.returncode == 0, proc.out
    return str(path)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    cluster = start_sim("conformant", tmp_path_factory.mktemp("installed-sim"))
    yield cluster
    cluster.stop()


def demo_metadata():
    with open(os.path.join(ROOT, "hack", "demo-vars.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["conform_metadata"]


def write(path, data):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "w", encoding="utf-8") as handle:
        if isinstance(data, str):
            handle.write(data)
        else:
            yaml.safe_dump(data, handle, sort_keys=False)
    return str(path)


def inventory_line():
    return "localhost ansible_connection=local ansible_python_interpreter=%s\n" % os.path.join(VENV_BIN, "python")


def product(output_dir):
    paths = [os.path.join(d, f) for d, _s, files in os.walk(str(output_dir)) for f in files if f == "PRODUCT.yaml"]
    assert len(paths) == 1, paths
    with open(paths[0], encoding="utf-8") as handle:
        text = handle.read()
    return paths[0], text, {r["id"]: r for reqs in yaml.safe_load(text)["spec"].values() for r in reqs}


def test_the_tarball_alone_asks_for_kubernetes_core(artifacts, tmp_path):
    """galaxy.yml's dependency is real: without kubernetes.core at hand, an offline install refuses."""
    proc = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p", str(tmp_path),
                artifacts[0]], tmp_path, user_env())
    assert proc.returncode != 0
    assert "kubernetes.core:>=" in proc.out and "(dependency of k8s_ai.conformance:" in proc.out, proc.out


@pytest.mark.slow(seconds=117)
def test_installed_copy_runs_conform_and_install_and_writes_what_the_checkout_writes(installed, sim, tmp_path):
    ops = tmp_path / "ops"                      # a directory of the user's, outside the checkout, no ansible.cfg
    inventory = write(ops / "inventory.ini", "[controller]\n" + inventory_line())
    stack = {"%s_enabled" % role: role == "kuberay" for role in STACK_ROLES}
    variables = write(ops / "vars.yml", dict(
        FAST, conform_kubeconfig=sim.kubeconfig, conform_output_dir=str(ops / "submission"),
        conform_metadata=demo_metadata(), kubeconfig=sim.kubeconfig, helm_binary=os.path.join(TOOLS_BIN, "helm"),
        kuberay_chart_ref=upstream_charts.chart("kuberay-operator"), kuberay_wait_timeout=120, **stack))
    env = user_env(ANSIBLE_COLLECTIONS_PATH=installed)
    assert not os.path.exists(str(ops / "ansible.cfg")) and not str(ops).startswith(ROOT + os.sep)

    # the only k8s_ai.conformance this user's Ansible sees is the installed one
    listing = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "list", "k8s_ai.conformance"], ops, env)
    assert listing.returncode == 0, listing.out
    places = [line[2:] for line in listing.stdout.splitlines() if line.startswith("# ")]
    assert places == [os.path.join(installed, "ansible_collections")], listing.out

    conform = run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "-e", "@" + variables,
                   "k8s_ai.conformance.conform"], ops, env)
    assert conform.returncode == 0, conform.out[-4000:]
    installed_path, installed_text, installed_reqs = product(ops / "submission")

    # the checkout's playbook, the checkout's ansible.cfg, the same variables, the same cluster
    checkout_out = tmp_path / "checkout-submission"
    checkout = run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", "conform.yml"),
                    "-e", "@" + variables, "-e", "conform_output_dir=%s" % checkout_out], ROOT,
                   user_env(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")))
    assert checkout.returncode == 0, checkout.out[-4000:]
    checkout_path, checkout_text, checkout_reqs = product(checkout_out)
    assert os.path.relpath(installed_path, str(ops / "submission")) == os.path.relpath(checkout_path, str(checkout_out))
    for rid in CHECKS_RUN:   # the conformant scenario meets them (test_conform_playbook.py asserts it too)
        assert installed_reqs[rid]["status"] == "Implemented", installed_reqs[rid]["notes"]
    # the same verdicts, evidence and metadata (today the two files are byte for byte the same; notes are not
    # compared, so that a check whose notes carry measured values does not make this test flaky)
    assert {rid: (r["status"], r["evidence"]) for rid, r in installed_reqs.items()} == \
        {rid: (r["status"], r["evidence"]) for rid, r in checkout_reqs.items()}
    assert yaml.safe_load(installed_text)["metadata"] == yaml.safe_load(checkout_text)["metadata"]
    assert sorted(os.listdir(os.path.join(os.path.dirname(installed_path), "evidence"))) == \
        sorted(os.listdir(os.path.join(os.path.dirname(checkout_path), "evidence")))
    assert leftovers(sim) == []

    # the install playbook from the installed copy, one component switched on
    install = run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "-e", "@" + variables,
                   "k8s_ai.conformance.install"], ops, env)
    assert install.returncode == 0, install.out[-4000:]
    assert os.path.join(installed, "ansible_collections", "k8s_ai", "conformance", "roles", "kuberay") in install.out
    releases = subprocess.run([os.path.join(TOOLS_BIN, "helm"), "list", "-A", "-o", "json", "--kubeconfig", sim.kubeconfig],
                              capture_output=True, text=True, check=True).stdout
    assert [r["name"] for r in json.loads(releases)] == ["kuberay-operator"], releases


INFRA_PLAY = """\
# site playbook of an infra repository that uses k8s_ai.conformance as an installed collection
- name: AI conformance of the GPU cluster
  hosts: gpu_clusters
  gather_facts: false
  module_defaults:
    group/k8s_ai.conformance.checks:
      kubeconfig: "{{ cluster_kubeconfig }}"
      mode: passive
    group/kubernetes.core.k8s:
      kubeconfig: "{{ cluster_kubeconfig }}"
    group/kubernetes.core.helm:
      kubeconfig: "{{ cluster_kubeconfig }}"
      binary_path: "{{ helm_path }}"
  tasks:
    - name: DRA support, straight from the module
      k8s_ai.conformance.dra_support:
      register: dra

    - name: The module ran passively against the cluster from module_defaults
      ansible.builtin.assert:
        that:
          - dra.result.id == 'dra_support'
          - dra.result.status in ['Implemented', 'Partially Implemented', 'Not Implemented', 'N/A']

    - name: The submission, from the collection's role
      ansible.builtin.include_role:
        name: k8s_ai.conformance.conform
      vars:
        conform_kubeconfig: "{{ cluster_kubeconfig }}"
        conform_mode: passive
        conform_checks: [dra_support]

    - name: KubeRay, from the collection's role
      ansible.builtin.include_role:
        name: k8s_ai.conformance.kuberay

    - name: Record the module's own verdict for the comparison
      ansible.builtin.copy:
        content: "{{ dra.result | to_nice_json }}"
        dest: "{{ playbook_dir }}/../reports/dra_support.json"
        mode: "0644"
"""


@pytest.mark.slow(seconds=35)
def test_infra_repository_includes_the_roles_and_calls_a_check_with_module_defaults(artifacts, sim, tmp_path):
    infra = tmp_path / "infra"
    write(infra / "ansible.cfg", "[defaults]\ncollections_path = ./collections\ninventory = ./inventory\n"
                                 "interpreter_python = auto_silent\n")
    requirements = write(infra / "collections" / "requirements.yml", {"collections": [
        {"name": artifacts[0], "type": "file"}, {"name": artifacts[1], "type": "file"}]})
    write(infra / "inventory" / "hosts.ini", "[gpu_clusters]\n" + inventory_line())
    write(infra / "inventory" / "group_vars" / "gpu_clusters.yml", dict(
        FAST, cluster_kubeconfig=sim.kubeconfig, helm_path=os.path.join(TOOLS_BIN, "helm"),
        conform_output_dir="{{ playbook_dir }}/../reports", conform_metadata=demo_metadata(),
        kuberay_chart_ref=upstream_charts.chart("kuberay-operator"), kuberay_wait_timeout=120))
    playbook = write(infra / "playbooks" / "conformance.yml", INFRA_PLAY)
    env = user_env(ANSIBLE_CONFIG=str(infra / "ansible.cfg"))

    install = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline", "-r", requirements,
                   "-p", str(infra / "collections")], infra, env)
    assert install.returncode == 0, install.out
    assert (infra / "collections" / "ansible_collections" / "k8s_ai" / "conformance" / "MANIFEST.json").is_file()

    play = run([os.path.join(VENV_BIN, "ansible-playbook"), playbook], infra, env)
    assert play.returncode == 0, play.out[-4000:]
    assert "failed=0" in play.out
    module_verdict = json.loads((infra / "reports" / "dra_support.json").read_text())
    _path, _text, reqs = product(infra / "reports")
    # the role's passive verdict is the module's passive verdict, both from the installed copy
    assert reqs["dra_support"]["status"] == module_verdict["status"] != ""
    assert reqs["secure_accelerator_access"]["status"] == ""      # not asked for
    assert leftovers(sim) == []
