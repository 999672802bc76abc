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

* The RayCluster controller (ray-operator/controllers/ray/raycluster_controller.go), while the operator
  process runs: a head pod (`<cluster>-head-<rand>`) and `replicas` worker pods per worker group
  (`<cluster>-<group>-worker-<rand>`, clamped to [minReplicas, maxReplicas], none while `suspend`), all
  labelled ray.io/cluster, ray.io/node-type, ray.io/group, ray.io/is-ray-node=yes and owned by the
  RayCluster (controller reference, so deleting the RayCluster cascades through the garbage collector);
  the head Service `<cluster>-head-svc` with the head container's ports (default gcs-server 6379,
  dashboard 8265, client 10001). Status: `state: ready` once every desired pod is Running and Ready,
  conditions HeadPodReady and RayClusterProvisioned, ready/available/desired worker counts, head pod IP
  and service IP, observedGeneration. Pods keep their template's command (the real operator rewrites it
  to `ray start ...`; the simulated ray image runs as a generic long-running app).
* The RayJob controller: a RayCluster `<job>-<rand>` from `rayClusterSpec` (jobDeploymentStatus
  Initializing), then, once it is ready, the submitter Job `<job>` (image of the head container,
  `ray job submit`); its completion gives jobDeploymentStatus Complete and jobStatus SUCCEEDED (FAILED
  when the Job fails); with shutdownAfterJobFinishes the RayCluster is deleted afterwards.

Metrics and health answers on the operator's other declared ports stay with the generic app.
"""
from __future__ import annotations

import copy
import json
import posixpath
import re

from .. import runtime_apps
from ..controllers import podutil
from ..errors import ApiError

IMAGE_PATTERN = "*/kuberay/operator"
WEBHOOK_PORT = 9443
CERT_DIR = "/tmp/k8s-webhook-server/serving-certs"
VALIDATE_RAYCLUSTER = "/validate-ray-io-v1-raycluster"
MAX_NAME_LENGTH = 63
RECONCILE_SECONDS = 2.0
RAYCLUSTERS = ("ray.io", "rayclusters")
RAYJOBS = ("ray.io", "rayjobs")
PODS = ("", "pods")
SERVICES = ("", "services")
JOBS = ("batch", "jobs")
DEFAULT_HEAD_PORTS = (("gcs-server", 6379), ("dashboard", 8265), ("client", 10001))
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
    store, clock = proc.runtime.sim.store, proc.runtime.sim.clock
    while True:   # like the real manager: runs until the pod stops
        reconcile_all(store, clock)
        yield RECONCILE_SECONDS


# ------------------------------------------------------------------------------------------- reconcile
def reconcile_all(store, clock):
    """One pass of the RayCluster and RayJob controllers over every object."""
    if RAYJOBS in store.types:
        for job in store.list(RAYJOBS)[0]:
            _guard(reconcile_rayjob, store, clock, job)
    if RAYCLUSTERS in store.types:
        for cluster in store.list(RAYCLUSTERS)[0]:
            _guard(reconcile_raycluster, store, clock, cluster)


def _guard(fn, store, clock, obj):
    try:
        fn(store, clock, obj)
    except ApiError:
        pass  # a conflict or a vanished object: the next pass looks again


def _owned(store, gr, owner):
    uid = owner["metadata"]["uid"]
    return [o for o in store.list(gr, namespace=owner["metadata"]["namespace"])[0]
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or ())]


def _labels(cluster, node_type, group):
    return {"ray.io/cluster": cluster["metadata"]["name"], "ray.io/node-type": node_type,
            "ray.io/group": group, "ray.io/is-ray-node": "yes",
            "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"}


def _head_ports(template):
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    ports = [(p.get("name") or str(p["containerPort"]), int(p["containerPort"]))
             for p in (containers[0].get("ports") if containers else None) or () if p.get("containerPort")]
    return ports or list(DEFAULT_HEAD_PORTS)


def _worker_count(group, suspended):
    if suspended:
        return 0
    replicas = int(group.get("replicas", 1) if group.get("replicas") is not None else 1)
    low, high = int(group.get("minReplicas") or 0), group.get("maxReplicas")
    replicas = max(replicas, low)
    if high is not None:
        replicas = min(replicas, int(high))
    return replicas * int(group.get("numOfHosts") or 1)


def reconcile_raycluster(store, clock, cluster):
    """Pods and head Service for one RayCluster, then its status."""
    meta = cluster["metadata"]
    if meta.get("deletionTimestamp"):
        return
    spec = cluster.get("spec") or {}
    suspended = bool(spec.get("suspend"))
    pods = [p for p in _owned(store, PODS, cluster) if not p["metadata"].get("deletionTimestamp")]
    head_spec = spec.get("headGroupSpec") or {}
    want = [("head", "headgroup", head_spec.get("template"), 0 if suspended else 1)]
    for group in spec.get("workerGroupSpecs") or []:
        want.append(("worker", group.get("groupName") or "", group.get("template"), _worker_count(group, suspended)))
    for node_type, group, template, count in want:
        mine = [p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/group") == group
                and (p["metadata"].get("labels") or {}).get("ray.io/node-type") == node_type]
        for dummy in range(count - len(mine)):
            prefix = "%s-head-" % meta["name"] if node_type == "head" else "%s-%s-worker-" % (meta["name"], group)
            pod = podutil.pod_from_template(template, cluster, "ray.io/v1", "RayCluster", generate_name=prefix,
                                            labels=_labels(cluster, node_type, group))
            store.create(PODS, pod)
        for pod in mine[count:] if count < len(mine) else ():
            store.delete(PODS, meta["namespace"], pod["metadata"]["name"])
    service_name = "%s-head-svc" % meta["name"]
    if not suspended and store.try_get(SERVICES, meta["namespace"], service_name) is None:
        store.create(SERVICES, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service_name, "namespace": meta["namespace"],
                         "labels": _labels(cluster, "head", "headgroup"),
                         "ownerReferences": [podutil.owner_reference(cluster, "ray.io/v1", "RayCluster")]},
            "spec": {"selector": {"ray.io/cluster": meta["name"], "ray.io/node-type": "head"},
                     "ports": [{"name": name, "port": port, "targetPort": port, "protocol": "TCP"}
                               for name, port in _head_ports(head_spec.get("template"))]}})
    _raycluster_status(store, clock, cluster, want)


def _raycluster_status(store, clock, cluster, want):
    meta = cluster["metadata"]
    pods = [p for p in _owned(store, PODS, cluster) if not p["metadata"].get("deletionTimestamp")]
    heads = [p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "head"]
    workers = [p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "worker"]
    desired_workers = sum(count for node_type, _g, _t, count in want if node_type == "worker")
    ready_workers = len([p for p in workers if podutil.is_ready(p)])
    head_ready = bool(heads) and podutil.is_ready(heads[0])
    suspended = bool((cluster.get("spec") or {}).get("suspend"))
    old = cluster.get("status") or {}
    status = copy.deepcopy(old)
    status.update({"desiredWorkerReplicas": desired_workers, "readyWorkerReplicas": ready_workers,
                   "availableWorkerReplicas": ready_workers, "observedGeneration": meta.get("generation")})
    service = store.try_get(SERVICES, meta["namespace"], "%s-head-svc" % meta["name"])
    head = {}
    if heads and (heads[0].get("status") or {}).get("podIP"):
        head.update({"podIP": heads[0]["status"]["podIP"], "podName": heads[0]["metadata"]["name"]})
    if service is not None:
        head.update({"serviceIP": (service.get("spec") or {}).get("clusterIP"), "serviceName": service["metadata"]["name"]})
    if head:
        status["head"] = head
    conditions = list(status.get("conditions") or [])
    provisioned = head_ready and ready_workers >= desired_workers
    podutil.set_condition(conditions, "HeadPodReady", "True" if head_ready else "False",
                          "HeadPodRunningAndReady" if head_ready else "HeadPodNotFound" if not heads else "ContainersNotReady",
                          None, clock.timestamp())
    podutil.set_condition(conditions, "RayClusterProvisioned", "True" if provisioned else "False",
                          "AllPodRunningAndReadyFirstTime" if provisioned else "RayClusterPodsProvisioning",
                          None, clock.timestamp())
    status["conditions"] = conditions
    if suspended:
        status["state"] = "suspended"
    elif provisioned:
        status["state"] = "ready"
    if status.get("state") and status.get("state") != old.get("state"):
        times = dict(status.get("stateTransitionTimes") or {})
        times[status["state"]] = clock.timestamp()
        status["stateTransitionTimes"] = times
    if _same(status, old):
        return
    updated = copy.deepcopy(cluster)
    updated["status"] = status
    store.update(RAYCLUSTERS, updated, subresource="status")


def _same(new, old):
    def strip(status):
        out = copy.deepcopy(status)
        for cond in out.get("conditions") or ():
            cond.pop("lastTransitionTime", None)
        return out
    return strip(new) == strip(old)


def reconcile_rayjob(store, clock, job):
    """RayCluster, then submitter Job, then the RayJob's status from the Job's outcome."""
    meta = job["metadata"]
    if meta.get("deletionTimestamp"):
        return
    spec = job.get("spec") or {}
    status = copy.deepcopy(job.get("status") or {})
    old = copy.deepcopy(status)
    namespace = meta["namespace"]
    if status.get("jobDeploymentStatus") in ("Complete", "Failed"):
        name = status.get("rayClusterName")
        if spec.get("shutdownAfterJobFinishes") and name and store.try_get(RAYCLUSTERS, namespace, name) is not None:
            store.delete(RAYCLUSTERS, namespace, name)
        return
    if not status.get("rayClusterName"):
        status.update({"rayClusterName": "%s-%s" % (meta["name"], meta["uid"].replace("-", "")[:5]),
                       "jobId": "%s-%s" % (meta["name"], meta["uid"].replace("-", "")[5:10]),
                       "jobDeploymentStatus": "Initializing", "startTime": clock.timestamp()})
    name = status["rayClusterName"]
    cluster = store.try_get(RAYCLUSTERS, namespace, name)
    if cluster is None:
        cluster = store.create(RAYCLUSTERS, {
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": name, "namespace": namespace, "labels": {"ray.io/originated-from-crd": "RayJob"},
                         "ownerReferences": [podutil.owner_reference(job, "ray.io/v1", "RayJob")]},
            "spec": copy.deepcopy(spec.get("rayClusterSpec") or {})})
    if (cluster.get("status") or {}).get("state") == "ready":
        submitter = store.try_get(JOBS, namespace, meta["name"])
        if submitter is None:
            head = ((((spec.get("rayClusterSpec") or {}).get("headGroupSpec") or {}).get("template") or {})
                    .get("spec") or {}).get("containers") or [{}]
            address = "http://%s-head-svc.%s.svc.cluster.local:8265" % (name, namespace)
            store.create(JOBS, {
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": meta["name"], "namespace": namespace,
                             "ownerReferences": [podutil.owner_reference(job, "ray.io/v1", "RayJob")]},
                "spec": {"backoffLimit": int(spec.get("submitterConfig", {}).get("backoffLimit", 2)),
                         "template": {"spec": {"restartPolicy": "Never", "containers": [{
                             "name": "ray-job-submitter", "image": head[0].get("image") or "rayproject/ray:2.46.0",
                             "command": ["ray", "job", "submit", "--address", address, "--submission-id",
                                         status["jobId"], "--", spec.get("entrypoint") or "python -c pass"],
                             "resources": {"requests": {"cpu": "500m", "memory": "200Mi"}}}]}}}})
            status.update({"jobDeploymentStatus": "Running", "jobStatus": "PENDING",
                           "dashboardURL": "%s-head-svc.%s.svc.cluster.local:8265" % (name, namespace)})
        else:
            outcome = {c.get("type"): c.get("status") for c in (submitter.get("status") or {}).get("conditions") or ()}
            if outcome.get("Complete") == "True":
                status.update({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": clock.timestamp(),
                               "message": "Job finished successfully."})
            elif outcome.get("Failed") == "True":
                status.update({"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "endTime": clock.timestamp(),
                               "reason": "SubmissionFailed", "message": "the submitter Job failed"})
            else:
                status.update({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"})
    status["observedGeneration"] = meta.get("generation")
    if status != old:
        updated = copy.deepcopy(job)
        updated["status"] = status
        store.update(RAYJOBS, updated, subresource="status")


def register(sim):
    sim.runtime.register_app(IMAGE_PATTERN, operator_app)
