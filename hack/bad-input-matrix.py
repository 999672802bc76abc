"""Print the bad-input matrix (`make bad-input-matrix`): bad input x module -> outcome, message, leftovers, traceback.

Each row gives one module one kind of bad input, for real: damaged kubeconfig files, an unreachable API, a
bad token, a user without RBAC rules, exporters answering garbage through the pod proxy, unusable files in
the product directory, an unwritable output directory and a full disk (RLIMIT_FSIZE) for product_report.
The tests asserting the same cases: tests/unit/test_cluster.py, tests/integration/test_checks_modes.py,
test_checks_rbac.py, test_bad_input.py, tests/unit/test_report.py and test_report_write_faults.py.
Exit status 1 when a row has leftovers, a traceback, or no message naming a fix.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, ".tools", "collections"), os.path.join(ROOT, "tests"),
                os.path.join(ROOT, "tests", "integration"), os.path.join(ROOT, "tests", "unit")]

# pylint: disable=wrong-import-position
import fault_matrix  # noqa: E402
import test_bad_input  # noqa: E402
import test_report_write_faults as writes  # noqa: E402
from checks_support import FAST, kubeconfig, run_module, start_sim  # noqa: E402
from test_report import full_results, run as report_run  # noqa: E402

CHECKS = list(fault_matrix.CHECKS)
FIXES = ("kubectl config view --raw", "K8S_AUTH_", "Check that the cluster is up", "refresh the kubeconfig",
         "bind the ClusterRole", "Not Implemented", "free space", "writable output_dir", "move it away",
         "must hold one key")


def check_rows(sim, tmp):
    rows = []

    def add(what, module, params, mode="active"):
        out = run_module(module, dict(FAST, mode=mode, **params, **fault_matrix.CHECKS.get(module, {})))
        text = out.get("msg") if out.get("failed") else "%s: %s | %s" % (
            out["result"]["status"], out["result"]["summary"], out["result"]["notes"])
        rows.append({"input": what, "module": module, "outcome": "failed" if out.get("failed") else
                     out["result"]["status"], "message": text or "", "leftovers": len(fault_matrix.settle_leftovers(sim, 10)),
                     "traceback": "Traceback" in json.dumps(out)})

    files = {
        "kubeconfig: missing file": None,
        "kubeconfig: malformed YAML": b"apiVersion: v1\nusers:\n- name: u\n  user: {token: secret-token, x: [\n",
        "kubeconfig: not UTF-8": b"apiVersion: v1\n\xff\xfe\n",
        "kubeconfig: not a kubeconfig": b"- a\n- list\n",
    }
    for index, (what, content) in enumerate(files.items()):
        path = os.path.join(tmp, "kc-%d" % index)
        if content is not None:
            with open(path, "wb") as handle:
                handle.write(content)
        add(what, CHECKS[index % len(CHECKS)], {"kubeconfig": path})
    add("kubeconfig: unknown context", "dra_support", {"kubeconfig": sim.kubeconfig, "context": "prod"})
    add("unreachable host (127.0.0.1:9)", "secure_accelerator_access",
        {"kubeconfig": kubeconfig(os.path.join(tmp, "kc-down"), "https://127.0.0.1:9", None, "t")})
    add("401: bad token", "accelerator_metrics",
        {"kubeconfig": kubeconfig(os.path.join(tmp, "kc-401"), sim.url, sim.ca_pem, "not-a-token")})
    for module in CHECKS:
        add("403: user without the roles", module, {"kubeconfig": sim.kubeconfig_for("nobody")}, mode="passive")
    for kind, (body, _message) in sorted(test_bad_input.BODIES.items()):
        sim.faults.set(httpAnswers=[{"podPrefix": "nvidia-dcgm-exporter", "path": "/metrics", "body": body}])
        try:
            add("metrics: %s (%d bytes)" % (kind, len(body)), "accelerator_metrics", {"kubeconfig": sim.kubeconfig},
                mode="passive")
        finally:
            sim.faults.clear()
    return rows


def report_rows(tmp):
    rows = []
    cases = {
        "PRODUCT.yaml: not UTF-8": ("PRODUCT.yaml", b"metadata:\n  vendorName: \xff\n"),
        "PRODUCT.yaml: a list": ("PRODUCT.yaml", b"- a\n"),
        "PRODUCT.yaml: 5 MiB of junk": ("PRODUCT.yaml", b"x" * (5 * 1024 * 1024)),
        "overrides.yaml: not UTF-8": ("overrides.yaml", b"overrides: \xff\n"),
        "overrides.yaml: a list": ("overrides.yaml", b"- a\n"),
    }
    for index, (what, (name, content)) in enumerate(cases.items()):
        base = os.path.join(tmp, "report-%d" % index)
        product_dir = os.path.join(base, "v1.35", "turbo-encabulator")
        os.makedirs(product_dir)
        with open(os.path.join(product_dir, name), "wb") as handle:
            handle.write(content)
        try:
            report_run(__import__("pathlib").Path(base), results=full_results("1.35"))
            outcome, message = "written", ""
        except Exception as exc:  # pylint: disable=broad-except
            outcome, message = "failed", str(exc)
        with open(os.path.join(product_dir, name), "rb") as handle:
            kept = handle.read() == content
        rows.append({"input": what, "module": "product_report", "outcome": outcome + ("" if kept else " (file changed!)"),
                     "message": message, "leftovers": 0, "traceback": "Traceback" in message})
    # unwritable directory and a full disk, through the real ansible-playbook
    out = os.path.join(tmp, "ro")
    os.makedirs(out)
    os.chmod(out, 0o555)
    proc = writes.ansible_playbook(writes.playbook(__import__("pathlib").Path(tmp), out, full_results("1.35")),
                                   writes.without_dac_override)
    os.chmod(out, 0o755)
    rows.append(_playbook_row("output dir: mode 0555", proc))
    full = os.path.join(tmp, "full")
    first = report_run(__import__("pathlib").Path(full), results=full_results("1.35"))
    with open(first["path"], "rb") as handle:
        old = handle.read()
    proc = writes.ansible_playbook(writes.playbook(__import__("pathlib").Path(tmp), full, writes.changed_results()),
                                   writes.file_size_limit(len(old)))
    with open(first["path"], "rb") as handle:
        intact = handle.read() == old
    row = _playbook_row("full disk while writing (RLIMIT_FSIZE)", proc)
    row["outcome"] += ", old PRODUCT.yaml intact" if intact else ", OLD PRODUCT.yaml CHANGED"
    rows.append(row)
    return rows


def _playbook_row(what, proc):
    line = [text for text in proc.stdout.splitlines() if "FAILED!" in text]
    message = json.loads(line[0].split("=> ", 1)[1]).get("msg", "") if line else proc.stdout[-300:]
    return {"input": what, "module": "product_report", "outcome": "failed" if proc.returncode else "written",
            "message": message, "leftovers": 0, "traceback": "Traceback" in proc.stdout + proc.stderr}


def table(rows, width=140):
    cols = ("bad input", "module", "outcome", "leftovers", "traceback", "message (start)")
    lines = [(r["input"], r["module"], r["outcome"] + ("" if r["ok"] else " !!"), str(r["leftovers"]),
              "yes" if r["traceback"] else "none", r["message"].replace("\n", " ")[:width]) for r in rows]
    widths = [max(len(x[i]) for x in [cols] + lines) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(widths[i]) for i, v in enumerate(x)).rstrip() for x in [cols] + lines)


def main():
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bad-input-")
    os.makedirs(os.path.join(tmp, "sim"))
    sim = start_sim("conformant", os.path.join(tmp, "sim"))
    try:
        rows = check_rows(sim, tmp)
    finally:
        sim.stop()
    rows += report_rows(tmp)
    for row in rows:
        row["ok"] = not row["leftovers"] and not row["traceback"] and any(fix in row["message"] for fix in FIXES)
    print(table(rows))
    bad = [r for r in rows if not r["ok"]]
    print("%d rows, %d not as required, %.0fs" % (len(rows), len(bad), time.monotonic() - started))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
