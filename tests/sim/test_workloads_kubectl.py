"""An operator's day with kubectl against the simulated cluster: create, expose, roll out, scale,
wait, read logs and events, and delete a namespace with everything in it."""
from __future__ import annotations

import json
import re


def test_kubectl_workflow(sim_cluster, kubectl, tmp_path):
    ns = "wf-" + tmp_path.name[-6:].lower().replace("_", "")
    kubectl("create", "namespace", ns)
    kubectl("create", "deployment", "echo", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53",
            "--replicas=2", "--port=8080", "-n", ns, "--", "/agnhost", "netexec", "--http-port=8080")
    kubectl("expose", "deployment", "echo", "--port=80", "--target-port=8080", "-n", ns)
    assert "successfully rolled out" in kubectl("rollout", "status", "deployment/echo", "-n", ns,
                                                "--timeout=60s").stdout
    ready = kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=echo", "-n", ns, "--timeout=60s").stdout
    assert len(re.findall(r"condition met", ready)) == 2

    listing = kubectl("get", "deployment", "echo", "-n", ns).stdout
    assert re.search(r"^echo\s+2/2\s+2\s+2\s", listing, re.M)
    endpoints = json.loads(kubectl("get", "endpoints", "echo", "-n", ns, "-o", "json").stdout)
    assert len(endpoints["subsets"][0]["addresses"]) == 2 and endpoints["subsets"][0]["ports"][0]["port"] == 8080

    kubectl("scale", "deployment/echo", "--replicas=3", "-n", ns)
    kubectl("rollout", "status", "deployment/echo", "-n", ns, "--timeout=60s")
    assert "Started HTTP server on port 8080" in kubectl("logs", "deployment/echo", "-n", ns).stdout

    scheduled = kubectl("get", "events", "-n", ns, "--field-selector", "reason=Scheduled", "-o", "json").stdout
    assert len(json.loads(scheduled)["items"]) == 3

    kubectl("run", "once", "--image=busybox:1.36", "--restart=Never", "-n", ns, "--", "sh", "-c", "echo done")
    kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/once", "-n", ns, "--timeout=60s")
    assert kubectl("logs", "once", "-n", ns).stdout == "done\n"

    kubectl("delete", "namespace", ns, "--timeout=60s")
    gone = kubectl("get", "namespace", ns, check=False)
    assert gone.returncode != 0 and 'namespaces "%s" not found' % ns in gone.stderr
