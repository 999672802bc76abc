"""`python -m simcluster`: prints a `ready` line once it serves, stops cleanly on SIGTERM, and reports a bad
scenario in one line that names the fix."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import ROOT


def _run(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests"))
    return subprocess.Popen([sys.executable, "-m", "simcluster"] + list(args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_foreground_server_prints_ready_and_stops_on_sigterm(tmp_path):
    kubeconfig = tmp_path / "kc"
    proc = _run("--scenario", "conformant", "--kubeconfig", str(kubeconfig), "--no-controllers")
    try:
        line = proc.stdout.readline()
        assert "ready" in line and "url=https://127.0.0.1:" in line and str(kubeconfig) in line
        assert "certificate-authority-data" in kubeconfig.read_text()
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_unknown_scenario_is_a_one_line_error(tmp_path):
    proc = _run("--scenario", "no-such-scenario", "--kubeconfig", str(tmp_path / "kc"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == ""
    assert err.startswith("error: unknown scenario 'no-such-scenario': pass one of ") and "conformant" in err
    assert "Traceback" not in err
