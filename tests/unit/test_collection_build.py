"""`ansible-galaxy collection build` ships exactly the collection: its own files and nothing a run in the
checkout left behind (output/, .work/, .venv/, .tools/, caches, earlier tarballs), whatever was run before;
galaxy.yml and meta/runtime.yml say what publishing needs.

What "the collection" is, is stated here independently of galaxy.yml's manifest: the project's files (git's
tracked and unignored files, so new modules, roles and docs count as soon as they exist) under the shipped
directories, plus a few top-level files.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GALAXY = os.path.join(ROOT, ".venv", "bin", "ansible-galaxy")
SHIPPED_DIRS = ("meta/", "plugins/", "roles/", "playbooks/", "docs/", "files/", "data/", "changelogs/fragments/")
SHIPPED_FILES = ("README.md", "LICENSE", "CHANGELOG.rst", "requirements.txt", "requirements.yml",
                 "changelogs/changelog.yaml", "changelogs/config.yaml")
# What runs in a checkout leave behind (make demo, make build, pytest, ansible-lint, setup, editors...).
LEFT_BEHIND = (
    "output/v1.33/simulated-ai-cluster/PRODUCT.yaml", "output/v1.33/simulated-ai-cluster/evidence/dra_support.md",
    "my-run/v1.33/simulated-ai-cluster/PRODUCT.yaml", ".work/sim/kubeconfig", ".work/build/k8s_ai-conformance-0.1.0.tar.gz",
    ".work/demo/conform.log", ".venv/bin/activate", ".venv/lib/python3.11/site-packages/x.py", ".tools/bin/kubectl",
    ".tools/collections/ansible_collections/kubernetes/core/MANIFEST.json", "tests/output/junit.xml",
    ".pytest_cache/v/cache/nodeids", "tests/.pytest_cache/README.md", ".ansible/tmp/x", ".mypy_cache/x.json",
    "k8s_ai-conformance-0.1.0.tar.gz", "plugins/modules/__pycache__/dra_support.cpython-311.pyc",
    "plugins/module_utils/__pycache__/result.cpython-311.pyc", "plugins/module_utils/result.pyc",
    "roles/conform/tasks/.main.yml.swp", "roles/conform/tasks/main.yml~", "roles/conform/tasks/main.yml.orig",
    "changelogs/.plugin-cache.yaml", "docs/.DS_Store", "extensions/molecule/default/.cache/x", "hack/scratch.sh",
)


def project_files(root):
    """The project's files: tracked or untracked but not ignored (what `git add -A` would take)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    return sorted(name for name in out.split("\0") if name and os.path.isfile(os.path.join(root, name)))


def collection_files(files):
    return {name for name in files if name in SHIPPED_FILES or name.startswith(SHIPPED_DIRS)}


def build(source, output):
    proc = subprocess.run([GALAXY, "collection", "build", "--force", "--output-path", str(output), str(source)],
                          capture_output=True, text=True, cwd=str(source), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarballs = list(output.glob("k8s_ai-conformance-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    with tarfile.open(tarballs[0]) as tar:
        members = tar.getmembers()
        listed = json.load(tar.extractfile("FILES.json"))["files"]
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    return proc, {m.name for m in members if m.isfile()}, {f["name"] for f in listed if f["ftype"] == "file"}, manifest


@pytest.fixture(scope="module")
def polluted(tmp_path_factory):
    """A copy of the project after a bit of everything was run in it, with the symlink setup makes."""
    base = tmp_path_factory.mktemp("polluted")
    src = base / "src"
    files = project_files(ROOT)
    for name in files:
        os.makedirs(os.path.dirname(str(src / name)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), str(src / name))
    for name in LEFT_BEHIND:
        os.makedirs(os.path.dirname(str(src / name)), exist_ok=True)
        (src / name).write_text("left behind\n")
    link = src / ".tools" / "collections" / "ansible_collections" / "k8s_ai" / "conformance"
    os.makedirs(os.path.dirname(str(link)), exist_ok=True)
    os.symlink("../../../..", str(link))
    out = base / "out"
    out.mkdir()
    return files, build(src, out)


def test_tarball_holds_exactly_the_collection_after_runs_in_the_checkout(polluted):
    files, (_proc, names, listed, _manifest) = polluted
    expected = collection_files(files) | {"MANIFEST.json", "FILES.json"}
    assert "plugins/module_utils/result.py" in expected and "roles/conform/tasks/main.yml" in expected
    assert sorted(names - expected) == [], "unexpected in the tarball"
    assert sorted(expected - names) == [], "missing from the tarball"
    assert listed == names - {"FILES.json", "MANIFEST.json"}


def test_tarball_of_this_checkout_holds_nothing_unexpected(tmp_path):
    """The checkout as it is now (whatever ran in it): the tarball has the collection's files and no others."""
    proc, names, listed, _manifest = build(ROOT, tmp_path)
    expected = collection_files(project_files(ROOT)) | {"MANIFEST.json", "FILES.json"}
    assert sorted(names ^ expected) == []
    assert listed == names - {"FILES.json", "MANIFEST.json"}
    for name in names:
        assert name.split("/", 1)[0] not in ("output", ".work", ".venv", ".tools", "tests", "hack", "extensions"), name
        assert "__pycache__" not in name and not name.endswith(".pyc") and "/." not in "/" + name, name
    assert "galaxy.yml" not in names   # replaced by MANIFEST.json, as in every built collection
    assert "WARNING" not in proc.stdout + proc.stderr and proc.stderr == "", proc.stdout + proc.stderr


def test_galaxy_metadata_is_complete_for_publishing(polluted):
    manifest = polluted[1][3]
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    for key in ("repository", "documentation", "issues"):
        assert re.match(r"^https://\S+$", galaxy.get(key) or ""), key
        assert manifest[key] == galaxy[key]
    assert re.match(r"^\d+\.\d+\.\d+$", str(galaxy["version"]))
    assert galaxy["readme"] == "README.md" and galaxy["license"] == ["Apache-2.0"] and galaxy["authors"]
    assert "infrastructure" in galaxy["tags"]   # one of Galaxy's required categories
    for tag in galaxy["tags"]:
        assert re.match(r"^[a-z0-9_]{1,64}$", tag), tag
    assert galaxy["dependencies"] and manifest["dependencies"] == galaxy["dependencies"]
    with open(os.path.join(ROOT, "requirements.yml"), encoding="utf-8") as handle:
        wanted = {c["name"]: c["version"] for c in yaml.safe_load(handle)["collections"]}
    for name, spec in galaxy["dependencies"].items():
        specifier = SpecifierSet(spec)
        assert any(s.operator in (">=", ">") for s in specifier) and any(s.operator in ("<", "<=") for s in specifier), \
            "%s: %s is not a version range with both bounds" % (name, spec)
        assert wanted.get(name) == spec, "requirements.yml and galaxy.yml disagree on %s" % name
    # the kubernetes.core every test runs with (hack/setup.sh installs it) is inside the range
    with open(os.path.join(ROOT, ".tools", "collections", "ansible_collections", "kubernetes", "core", "MANIFEST.json"),
              encoding="utf-8") as handle:
        tested = json.load(handle)["collection_info"]["version"]
    assert Version(tested) in SpecifierSet(galaxy["dependencies"]["kubernetes.core"]), tested


def test_requires_ansible_is_what_the_tests_run_on():
    import ansible.release

    with open(os.path.join(ROOT, "meta", "runtime.yml"), encoding="utf-8") as handle:
        spec = SpecifierSet(yaml.safe_load(handle)["requires_ansible"])
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as handle:
        pinned = re.search(r"^ansible-core==(\S+)$", handle.read(), re.M).group(1)
    assert pinned == ansible.release.__version__
    assert Version(pinned) in spec
    # the lowest ansible-core it admits is the minor release the tests run on, not an untested older one
    lowest = [Version(s.version) for s in spec if s.operator == ">="]
    assert len(lowest) == 1 and lowest[0].release[:2] == Version(pinned).release[:2], str(spec)
