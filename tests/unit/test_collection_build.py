"""`ansible-galaxy collection build` ships the collection without tests, caches or virtualenvs."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_build_tarball_holds_no_test_data_caches_or_venvs(tmp_path):
    galaxy = os.path.join(ROOT, ".venv", "bin", "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(tmp_path), ROOT],
                   check=True, capture_output=True, cwd=ROOT)
    tarballs = list(tmp_path.glob("k8s_ai-conformance-*.tar.gz"))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as tar:
        names = tar.getnames()
        files = json.load(tar.extractfile("FILES.json"))["files"]
    listed = [f["name"] for f in files]
    assert "galaxy.yml" not in names  # replaced by MANIFEST.json, as for every built collection
    assert "MANIFEST.json" in names and "README.md" in names and "plugins/module_utils/result.py" in names
    forbidden = (".venv", ".tools", ".work", ".git", "tests", "hack", ".ci", "extensions")
    for name in names + listed:
        top = name.split("/", 1)[0]
        assert top not in forbidden, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
