"""The KubeRay operator's admission webhook (quay.io/kuberay/operator).

What the real operator (ray-project/kuberay, ray-operator main.go and pkg/webhooks/v1) does that the
kuberay role relies on:

* Only with ENABLE_WEBHOOKS=true does it start controller-runtime's webhook server, on port 9443, with
  tls.crt/tls.key from /tmp/k8s-webhook-server/serving-certs. Without them the manager stops with
  "open .../tls.crt: no such file or directory" and the container exits 1 (CrashLoopBackOff).
* The RayCluster validator (path /validate-ray-io-v1-raycluster, webhook vraycluster.kb.io) refuses, on
  CREATE and UPDATE, a name that is not a DNS-1035 label of at most 63 characters, and worker groups
  that share a groupName ("worker group names must be unique"), answering with the Invalid status
  apierrors.NewInvalid builds (422, reason Invalid, `RayCluster.ray.io "<name>" is invalid: ...`).

Everything else of the operator (metrics on 8080, reconciling Ray objects) stays with the generic app
behaviour: metrics and health answers on its declared ports. Reconciliation is not simulated here.
"""
from __future__ import annotations

import json
import math
import posixpath
import re

from .. import runtime_apps

IMAGE_PATTERN = "*/kuberay/operator"
WEBHOOK_PORT = 9443
CERT_DIR = "/tmp/k8s-webhook-server/serving-certs"
VALIDATE_RAYCLUSTER = "/validate-ray-io-v1-raycluster"
MAX_NAME_LENGTH = 63
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def name_problem(name):
    """KubeRay's RayCluster metadata check: the name becomes part of Service names (DNS-1035)."""
    if len(name) > MAX_NAME_LENGTH:
        return "RayCluster name should be no more than %d characters" % MAX_NAME_LENGTH
    if not DNS1035_LABEL.match(name):
        return ("RayCluster name should be a valid DNS1035 label: a DNS-1035 label must consist of lower case "
                "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric "
                "character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    return None


def validate_raycluster(obj):
    """The field errors KubeRay's validator reports for a RayCluster, as (field path, value, detail)."""
    errors = []
    name = (obj.get("metadata") or {}).get("name") or ""
    problem = name_problem(name)
    if problem:
        errors.append(("metadata.name", json.dumps(name), problem))
    seen = set()
    for index, group in enumerate((obj.get("spec") or {}).get("workerGroupSpecs") or []):
        group_name = group.get("groupName")
        if group_name in seen:
            value = 'v1.WorkerGroupSpec{GroupName:%s, ...}' % json.dumps(group_name)
            errors.append(("spec.workerGroupSpecs[%d]" % index, value, "worker group names must be unique"))
            break
        seen.add(group_name)
    return errors


def invalid_status(name, errors):
    """The metav1.Status apierrors.NewInvalid makes for RayCluster `name`."""
    causes = [{"reason": "FieldValueInvalid", "message": "Invalid value: %s: %s" % (value, detail), "field": path}
              for path, value, detail in errors]
    messages = ["%s: Invalid value: %s: %s" % error for error in errors]
    details = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    return {"status": "Failure", "code": 422, "reason": "Invalid",
            "message": 'RayCluster.ray.io "%s" is invalid: %s' % (name, details),
            "details": {"name": name, "group": "ray.io", "kind": "RayCluster", "causes": causes}}


def review_response(review):
    """The AdmissionReview answer of the RayCluster validator."""
    request = review.get("request") or {}
    response = {"uid": request.get("uid"), "allowed": True}
    if request.get("operation") in ("CREATE", "UPDATE"):
        obj = request.get("object") or {}
        errors = validate_raycluster(obj)
        if errors:
            response = {"uid": request.get("uid"), "allowed": False,
                        "status": invalid_status((obj.get("metadata") or {}).get("name") or "", errors)}
    return {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview", "response": response}


def _webhook_handler(req):
    if req.method != "POST" or req.path != VALIDATE_RAYCLUSTER:
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, "404 page not found\n"
    try:
        review = json.loads(req.body)
    except ValueError:
        return 400, {"Content-Type": "text/plain; charset=utf-8"}, "couldn't get version/kind; json parse error\n"
    return 200, {"Content-Type": "application/json"}, json.dumps(review_response(review))


def operator_app(proc):
    """The operator process: the generic app's ports, plus the webhook server when enabled."""
    if not proc.argv or posixpath.basename(proc.argv[0]) != "manager" or proc.init:
        return None
    return _operator(proc)


def _operator(proc):
    prefix = runtime_apps._klog_prefix  # pylint: disable=protected-access
    proc.write('{"level":"info","logger":"setup","msg":"Setup manager"}\n')
    webhooks = (proc.env.get("ENABLE_WEBHOOKS") or "") == "true"
    if webhooks:
        for name in ("tls.crt", "tls.key"):
            path = posixpath.join(CERT_DIR, name)
            if not proc.fs.exists(path):
                proc.write('{"level":"error","logger":"setup","msg":"problem running manager","error":'
                           '"open %s: no such file or directory"}\n' % path, "stderr")
                return 1
        proc.listen(WEBHOOK_PORT, _webhook_handler)
        proc.write('{"level":"info","logger":"controller-runtime.webhook","msg":"Registering webhook",'
                   '"path":"%s"}\n' % VALIDATE_RAYCLUSTER)
        proc.write('{"level":"info","logger":"controller-runtime.webhook","msg":"Starting webhook server"}\n')
    for port in [int(p["containerPort"]) for p in proc.container.get("ports") or () if p.get("containerPort")]:
        if port != WEBHOOK_PORT:
            proc.listen(port, lambda req: runtime_apps.generic_http(proc, req))
    proc.write('%s main.go:300] "starting manager"\n' % prefix(proc))
    yield math.inf
    return 0


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, operator_app)
