"""product_report when the output cannot be written: an unwritable output directory and a disk that fills up
while PRODUCT.yaml is being written. The real ansible-playbook runs the real action plugin in a child process
whose limits make the kernel refuse the writes:

* unwritable: the output directory is mode 0555. Root ignores modes through CAP_DAC_OVERRIDE, so the child
  drops that capability (and CAP_DAC_READ_SEARCH) from its bounding set before exec (prctl PR_CAPBSET_DROP);
  an unprivileged user needs nothing.
* full disk: RLIMIT_FSIZE caps the size of any file the child writes, with SIGXFSZ ignored, so write() fails
  with EFBIG mid-file exactly as a full disk fails with ENOSPC. A tmpfs or loop device would need mount
  privileges this machine does not grant; the limit needs none and can be placed between the sizes of the
  other files and the new PRODUCT.yaml, so the failure hits the PRODUCT.yaml write itself.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import signal
import subprocess

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import _report_files as rf
from ansible_collections.k8s_ai.conformance.plugins.module_utils import report as rp

from test_report import ROOT, full_results, metadata_for, run

PLAYBOOK = """
- name: Write the submission
  hosts: localhost
  gather_facts: false
  vars:
    results: %(results)s
  tasks:
    - name: Write the submission
      k8s_ai.conformance.product_report:
        output_dir: "%(out)s"
        conformance_version: "1.35"
        metadata: %(metadata)s
        results: "{{ results }}"
"""
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def playbook(tmp_path, out, results):
    path = tmp_path / "write.yml"
    path.write_text(PLAYBOOK % {"results": json.dumps(results), "out": out,
                                "metadata": json.dumps(metadata_for("1.35"))})
    return str(path)


def ansible_playbook(path, preexec):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), path], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=120, preexec_fn=preexec)


def without_dac_override():
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def file_size_limit(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def tree(directory):
    """{relative path: bytes} of every file under `directory`."""
    found = {}
    for dirpath, _dirs, files in os.walk(str(directory)):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, str(directory))] = handle.read()
    return found


def changed_results():
    results = full_results("1.35")
    for item in results:
        item["notes"] = (item.get("notes") or "") + " Re-run on the upgraded cluster, with every probe repeated twice."
    return results


def test_unwritable_output_directory_fails_with_the_fix_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        proc = ansible_playbook(playbook(tmp_path, str(out), full_results("1.35")), without_dac_override)
    finally:
        out.chmod(0o755)
    assert proc.returncode != 0, proc.stdout
    assert "cannot write the report under %s" % out in proc.stdout, proc.stdout
    assert "Permission denied" in proc.stdout
    assert "The output directory is not writable: choose a writable output_dir or fix its permissions" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert tree(out) == {}


def test_output_path_through_a_file_names_the_fix(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output directory should be\n")
    proc = ansible_playbook(playbook(tmp_path, str(blocker / "sub"), full_results("1.35")), None)
    assert proc.returncode != 0
    assert "Not a directory" in proc.stdout, proc.stdout
    assert "Check output_dir: every part of that path must be a directory you may read (not a file)" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_full_disk_while_writing_product_yaml_keeps_the_old_one_intact(tmp_path):
    out = tmp_path / "out"
    first = run(out, results=full_results("1.35"))                       # the submission as it was
    old = tree(out)
    product = os.path.relpath(first["path"], str(out))
    # what the second run writes, planned in check mode (nothing written), to place the limit
    planned = run(tmp_path / "scratch", results=changed_results())
    new = tree(tmp_path / "scratch")
    others = max(len(v) for k, v in new.items() if k != os.path.relpath(planned["path"], str(tmp_path / "scratch")))
    new_product = len(new[os.path.relpath(planned["path"], str(tmp_path / "scratch"))])
    limit = (others + new_product) // 2
    assert others < limit < new_product, (others, new_product)   # so the failure is the PRODUCT.yaml write itself
    assert new_product > len(old[product])

    proc = ansible_playbook(playbook(tmp_path, str(out), changed_results()), file_size_limit(limit))
    assert proc.returncode != 0, proc.stdout
    assert "File too large" in proc.stdout, proc.stdout
    assert "The disk is full or a size limit was hit: free space (or raise the quota) and run again" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    after = tree(out)
    assert after[product] == old[product]                                # byte for byte
    assert not [p for p in after if p.endswith(".tmp")], sorted(after)   # no half-written temporary file
    # a backup of the old PRODUCT.yaml may exist (it is a copy); nothing else but the run's own files
    assert set(after) - set(old) <= {p for p in after if p.endswith(".bak")}, sorted(set(after) - set(old))
    # and with space again, the same run completes
    assert run(out, results=changed_results())["changed"] is True
    assert rf.read_text(os.path.join(str(out), product)) == new[os.path.relpath(planned["path"], str(tmp_path / "scratch"))].decode()


# ----------------------------------------------------------------------------------------- bad files in the product dir
# (duplicate keys in PRODUCT.yaml and the overrides' own schema errors are in test_report.py)
@pytest.mark.parametrize("name, content, message", [
    ("PRODUCT.yaml", b"metadata:\n  vendorName: \xff\xfe\n", "PRODUCT.yaml is not UTF-8 text: fix it or move it away; nothing was written"),
    ("PRODUCT.yaml", b"- a\n- list\n", "is not a PRODUCT.yaml (no metadata/spec mapping): move it away; nothing was written"),
    ("PRODUCT.yaml", b"x" * (5 * 1024 * 1024), "is not a PRODUCT.yaml (no metadata/spec mapping): move it away"),
    ("PRODUCT.yaml", b"spec: [\n", "PRODUCT.yaml cannot be parsed"),
    ("overrides.yaml", b"overrides:\n  dra_support: \xff\n", "overrides.yaml is not UTF-8 text: fix it or move it away"),
    ("overrides.yaml", b"- a list\n", "must hold one key, overrides:"),
])
def test_unusable_files_in_the_product_dir_stop_the_run_and_stay_as_they_were(tmp_path, name, content, message):
    product_dir = tmp_path / "v1.35" / "turbo-encabulator"
    product_dir.mkdir(parents=True)
    (product_dir / name).write_bytes(content)
    with pytest.raises(rp.ReportError, match=re.escape(message)):
        run(tmp_path, results=full_results("1.35"))
    assert (product_dir / name).read_bytes() == content
    assert sorted(os.listdir(str(product_dir))) == [name]          # nothing else was written


def test_a_product_yaml_of_the_wrong_shape_is_replaced_only_with_a_backup(tmp_path):
    product_dir = tmp_path / "v1.35" / "turbo-encabulator"
    product_dir.mkdir(parents=True)
    old = b"metadata: 5\nspec: []\n"
    (product_dir / "PRODUCT.yaml").write_bytes(old)
    out = run(tmp_path, results=full_results("1.35"))
    assert out["changed"] is True
    backups = [p for p in os.listdir(str(product_dir)) if p.endswith(".bak")]
    assert len(backups) == 1 and (product_dir / backups[0]).read_bytes() == old
