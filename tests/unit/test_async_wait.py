"""k8s_ai.conformance.async_wait: how a job status file is read, and the action plugin in a real playbook (jobs
that succeed, fail, run too long or never started; results in the order asked; status files removed)."""
from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.k8s_ai.conformance.plugins.module_utils._async_wait import job_ids, parse_status

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_job_ids_keep_the_order_and_leave_out_jobs_that_never_started():
    jobs = {"b": {"ansible_job_id": "j2.1", "started": 1}, "skipped": {"skipped": True, "changed": False},
            "foreground": {"result": {"status": "Implemented"}, "changed": False}, "a": {"ansible_job_id": "j1.1"},
            "not_a_dict": "x"}
    assert job_ids(jobs) == [("b", "j2.1"), ("a", "j1.1")]


def test_parse_status_reads_files_as_async_status_does():
    # the wrapper's first write: started, not finished
    assert parse_status('{"started": 1, "finished": 0, "ansible_job_id": "j1"}', "j1") == (
        False, {"started": 1, "finished": False, "ansible_job_id": "j1"})
    # an empty or half-written file: still starting
    assert parse_status("", "j1")[0] is False
    assert parse_status('{"started": 1, "fini', "j1")[0] is False
    # the module's own result replaces the file: no "started" key, so finished
    finished, data = parse_status('{"changed": false, "result": {"status": "Implemented"}}', "j1")
    assert finished is True and data == {"changed": False, "result": {"status": "Implemented"}, "finished": True,
                                         "ansible_job_id": "j1"}
    # a failed module is a finished job that carries its failure
    finished, data = parse_status('{"failed": true, "msg": "boom"}', "j1")
    assert finished and data["failed"] is True and data["msg"] == "boom"


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: quick
      ansible.builtin.shell: sleep 1; echo quick
      register: quick
      async: 60
      poll: 0
    - name: broken
      ansible.builtin.shell: echo broken >&2; exit 3
      register: broken
      async: 60
      poll: 0
    - name: slow (the async wrapper ends it after 8 s)
      ansible.builtin.command: sleep 60
      register: slow
      async: 8
      poll: 0
    - name: never started
      ansible.builtin.command: "true"
      register: skipped
      when: false
    - name: wait for all
      k8s_ai.conformance.async_wait:
        jobs: "{{ dict(['slow', 'quick', 'skipped', 'broken'] | zip([slow, quick, skipped, broken])) }}"
        timeout: 4
        interval: 0.2
      register: waited
    - name: keep what the wait returned
      ansible.builtin.copy:
        content: "{{ waited | to_json }}"
        dest: "%(out)s"
"""


def test_playbook_waits_for_every_job_in_one_task(tmp_path):
    async_dir = tmp_path / "async"
    out = tmp_path / "waited.json"
    playbook = tmp_path / "wait.yml"
    playbook.write_text(PLAYBOOK % {"out": out})
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_ASYNC_DIR=str(async_dir))
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), str(playbook)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    waited = json.loads(out.read_text())
    assert waited["changed"] is False and waited["timed_out"] == ["slow"]
    by_name = {r["async_wait_job"]: r for r in waited["results"]}
    # in the order of `jobs`, the never-started one left out
    assert [r["async_wait_job"] for r in waited["results"]] == ["slow", "quick", "broken"]
    assert by_name["quick"]["finished"] is True and by_name["quick"]["rc"] == 0
    assert by_name["quick"]["stdout"] == "quick"
    assert by_name["broken"]["finished"] is True and by_name["broken"]["rc"] == 3
    assert by_name["broken"]["failed"] is True and by_name["broken"]["stderr"] == "broken"
    slow = by_name["slow"]
    assert slow["finished"] is False and slow["failed"] is True
    assert slow["msg"].startswith("slow did not finish within 4 s") and "conform_check_timeout" in slow["msg"]
    # the finished jobs' status files are gone; the slow job's stays for its wrapper to finish
    left = sorted(os.listdir(str(async_dir)))
    assert by_name["quick"]["ansible_job_id"] not in left and by_name["broken"]["ansible_job_id"] not in left
    assert slow["ansible_job_id"] in left
