# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""robust_controller: at least one complex AI operator with a CRD is installed and works reliably.

observe(): for every operator of OPERATORS (KubeRay, Kubeflow Trainer, training-operator, KServe,
LeaderWorkerSet, NIM operator): its CRDs and their Established/NamesAccepted conditions, its controller
Deployment (ready, pods restarting or not), and every validating or mutating webhook whose rules cover
its API groups, each with its backing Service's ready endpoints and its caBundle.
probe() (KubeRay only; other operators are judged passively and capped): in a fresh namespace,
(1) a server-side dry run (dryRun=All) of a RayCluster the CRD schema accepts but KubeRay's validation
refuses (two worker groups share a name): only a denial by one of the operator's own webhooks counts,
never a CRD schema error or another policy webhook; (2) a small CPU RayCluster must reach state ready
with its head pod, worker pod and `<name>-head-svc`; (3) deleting it must remove the pods it owns.
judge(): pure; see docs/checks/robust_controller.md.
"""
from __future__ import annotations

import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils import cluster as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import (
    IMPLEMENTED, NOT_IMPLEMENTED, PARTIAL, Result)

REQUIREMENT_ID = "robust_controller"
CRD_API = "apiextensions.k8s.io/v1"
ADMISSION_API = "admissionregistration.k8s.io/v1"
RAY_API = "ray.io/v1"
RESTART_LIMIT = 3          # more restarts than this in a controller pod = not stable
DENIAL = re.compile(r'admission webhook "([^"]+)" denied the request')
DUPLICATE_GROUPS = "worker group names must be unique"

ARG_SPEC = {
    "ray_image": {"type": "str", "default": "rayproject/ray:2.46.0"},
    "cascade_timeout": {"type": "int", "default": 120},
}

# The AI operators this check recognises. `deployments`: controller Deployment names the operator's
# manifests and charts use; `webhooks`: the operator's own webhook names (kubebuilder markers).
OPERATORS = (
    {"name": "KubeRay", "key": "kuberay", "groups": ["ray.io"],
     "crds": ["rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io"],
     "deployments": ["kuberay-operator"],
     "webhooks": ["vraycluster.kb.io", "vrayjob.kb.io", "vrayservice.kb.io"],
     "fix": "install KubeRay with its validating webhook enabled (the kuberay role does: kuberay_webhook_enabled)"},
    {"name": "Kubeflow Trainer", "key": "kubeflow-trainer", "groups": ["trainer.kubeflow.org"],
     "crds": ["trainjobs.trainer.kubeflow.org", "clustertrainingruntimes.trainer.kubeflow.org",
              "trainingruntimes.trainer.kubeflow.org"],
     "deployments": ["kubeflow-trainer-controller-manager"],
     "webhooks": ["validator.trainjob.trainer.kubeflow.org", "validator.trainingruntime.trainer.kubeflow.org",
                  "validator.clustertrainingruntime.trainer.kubeflow.org"],
     "fix": "keep the Trainer's validating webhook installed"},
    {"name": "Kubeflow training-operator", "key": "training-operator", "groups": ["kubeflow.org"],
     "crds": ["pytorchjobs.kubeflow.org", "tfjobs.kubeflow.org", "mpijobs.kubeflow.org"],
     "deployments": ["training-operator"],
     "webhooks": ["validate.pytorchjob.kubeflow.org", "validate.tfjob.kubeflow.org", "validate.mpijob.kubeflow.org"],
     "fix": "keep the training-operator's validating webhook installed"},
    {"name": "KServe", "key": "kserve", "groups": ["serving.kserve.io"],
     "crds": ["inferenceservices.serving.kserve.io", "servingruntimes.serving.kserve.io"],
     "deployments": ["kserve-controller-manager"],
     "webhooks": ["inferenceservice.kserve-webhook-server.validator", "inferenceservice.kserve-webhook-server.defaulter"],
     "fix": "keep KServe's webhook server installed"},
    {"name": "LeaderWorkerSet", "key": "lws", "groups": ["leaderworkerset.x-k8s.io"],
     "crds": ["leaderworkersets.leaderworkerset.x-k8s.io"],
     "deployments": ["lws-controller-manager"],
     "webhooks": ["vleaderworkerset.kb.io", "mleaderworkerset.kb.io"],
     "fix": "keep LeaderWorkerSet's webhooks installed"},
    {"name": "NVIDIA NIM Operator", "key": "nim-operator", "groups": ["apps.nvidia.com"],
     "crds": ["nimservices.apps.nvidia.com", "nimcaches.apps.nvidia.com"],
     "deployments": ["k8s-nim-operator"],
     "webhooks": [],
     "fix": "check the NIM Operator's installation"},
)
PROBED = ("kuberay",)


def operator_entry(key):
    for entry in OPERATORS:
        if entry["key"] == key:
            return entry
    return None


# --------------------------------------------------------------------------------------------- pure helpers
def crd_state(crd):
    """{"name", "established", "names_accepted", "versions"} of one CRD."""
    conditions = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
    versions = [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]
    return {"name": crd["metadata"]["name"], "established": conditions.get("Established") == "True",
            "names_accepted": conditions.get("NamesAccepted") == "True", "versions": versions}


def deployment_state(deployment, pods):
    """Readiness and stability of a controller Deployment from its object and its pods."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    want = spec.get("replicas", 1) if spec.get("replicas") is not None else 1
    ready = status.get("readyReplicas") or 0
    restarts, waiting = 0, []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            restarts = max(restarts, int(cs.get("restartCount") or 0))
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            if reason:
                waiting.append("%s: %s" % (pod["metadata"]["name"], reason))
    return {"name": deployment["metadata"]["name"], "namespace": deployment["metadata"]["namespace"],
            "replicas": want, "ready": ready, "restarts": restarts, "waiting": waiting,
            "healthy": want > 0 and ready >= want and not waiting and restarts <= RESTART_LIMIT}


def webhooks_for_groups(configurations, kind, groups):
    """The webhooks of `configurations` whose rules cover one of `groups` (or every group)."""
    out = []
    for config in configurations:
        for hook in config.get("webhooks") or []:
            covered = set()
            for rule in hook.get("rules") or []:
                covered.update(rule.get("apiGroups") or [])
            if "*" in covered or covered.intersection(groups):
                client = hook.get("clientConfig") or {}
                out.append({"configuration": config["metadata"]["name"], "kind": kind, "name": hook.get("name"),
                            "service": client.get("service"), "url": client.get("url"),
                            "ca_bundle": bool(client.get("caBundle")),
                            "failure_policy": hook.get("failurePolicy", "Fail")})
    return out


def classify_denial(outcome, entry, own_webhooks):
    """What the dry run of the invalid object proved: ("webhook", detail) only when one of the operator's
    own webhooks denied it for the expected reason; else "accepted", "schema", "other-webhook",
    "webhook-error" or "error"."""
    if outcome.get("allowed"):
        return "accepted", "the API server accepted the invalid object: nothing but the CRD schema validates it"
    message = outcome.get("message") or ""
    match = DENIAL.search(message)
    if match:
        name = match.group(1)
        if name in own_webhooks or name in entry["webhooks"]:
            if DUPLICATE_GROUPS in message:
                return "webhook", message
            return "other-reason", "the operator's webhook %s denied it, but not for the duplicated worker group: %s" % (
                name, message)
        return "other-webhook", ("denied by webhook %s, which is not the operator's own (%s): another policy "
                                 "webhook does not count" % (name, ", ".join(own_webhooks or entry["webhooks"])))
    if "failed calling webhook" in message or "failed to call webhook" in message:
        return "webhook-error", "the API server could not call the webhook: %s" % message
    if outcome.get("status") == 422 or "is invalid" in message:
        return "schema", "refused by the CRD schema, not by a webhook: %s" % message
    return "error", message or "no answer"


# --------------------------------------------------------------------------------------------- manifests
def invalid_raycluster(name, namespace, image):
    """Schema-valid, refused by KubeRay's validation: two worker groups share one groupName."""
    group = {"groupName": "workers", "replicas": 0, "minReplicas": 0, "maxReplicas": 1, "rayStartParams": {},
             "template": {"spec": {"containers": [{"name": "ray-worker", "image": image}]}}}
    return {"apiVersion": RAY_API, "kind": "RayCluster", "metadata": {"name": name, "namespace": namespace},
            "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": image}]}}},
                "workerGroupSpecs": [group, dict(group)]}}


def small_raycluster(name, namespace, image):
    """A small CPU RayCluster: a head and one worker, 200m CPU and 512Mi each."""
    def container(cname):
        return {"name": cname, "image": image, "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}
    return {"apiVersion": RAY_API, "kind": "RayCluster",
            "metadata": {"name": name, "namespace": namespace, "labels": {pr.PROBE_LABEL: name}},
            "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [container("ray-head")]}}},
                     "workerGroupSpecs": [{"groupName": "cpu", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                                           "rayStartParams": {},
                                           "template": {"spec": {"containers": [container("ray-worker")]}}}]}}


def raycluster_ready(obj):
    status = (obj or {}).get("status") or {}
    if status.get("state") == "ready":
        return True
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return conditions.get("RayClusterProvisioned") == "True" and conditions.get("HeadPodReady") == "True"


# --------------------------------------------------------------------------------------------- observe
def observe(cluster):
    """Operators found on the cluster, with CRDs, controller and webhooks."""
    crds = {c["metadata"]["name"]: c for c in cluster.list(CRD_API, "customresourcedefinitions")}
    validating = cluster.list(ADMISSION_API, "validatingwebhookconfigurations")
    mutating = cluster.list(ADMISSION_API, "mutatingwebhookconfigurations")
    found = []
    for entry in OPERATORS:
        present = [crd_state(crds[name]) for name in entry["crds"] if name in crds]
        if not present:
            continue
        controllers = []
        for name in entry["deployments"]:
            for deployment in cluster.list("apps/v1", "deployments", field_selector="metadata.name=%s" % name):
                selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                pods = cluster.list("v1", "pods", namespace=deployment["metadata"]["namespace"],
                                    label_selector=",".join("%s=%s" % kv for kv in sorted(selector.items()))) if selector else []
                controllers.append(deployment_state(deployment, pods))
        hooks = (webhooks_for_groups(validating, "validating", entry["groups"])
                 + webhooks_for_groups(mutating, "mutating", entry["groups"]))
        for hook in hooks:
            hook["ready_endpoints"] = service_ready_endpoints(cluster, hook.get("service")) if hook.get("service") else None
        found.append({"key": entry["key"], "name": entry["name"], "crds": present,
                      "missing_crds": [n for n in entry["crds"] if n not in crds],
                      "controllers": controllers, "webhooks": hooks})
    return {"operators": found}


def service_ready_endpoints(cluster, service):
    """Number of ready endpoints behind a webhook's Service (EndpointSlices), None when it does not exist."""
    namespace, name = service.get("namespace"), service.get("name")
    if cluster.get("v1", "services", name, namespace) is None:
        return None
    slices = cluster.list("discovery.k8s.io/v1", "endpointslices", namespace=namespace,
                          label_selector="kubernetes.io/service-name=%s" % name)
    return sum(1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))


# --------------------------------------------------------------------------------------------- probe
def dry_run_create(cluster, api_version, resource, body, namespace):
    """POST with dryRun=All: {"allowed": True} or {"allowed": False, "status": code, "message": text}."""
    path = cl.collection_path(api_version, resource, namespace)
    try:
        cluster.request("POST", path, query=[("dryRun", "All")], body=body)
    except cl.ForbiddenError as err:
        if not DENIAL.search(str(err)):
            raise
        return {"allowed": False, "status": 403, "message": status_message(str(err))}
    except cl.ApiRequestError as err:
        return {"allowed": False, "status": err.status, "message": status_message(str(err))}
    return {"allowed": True}


def status_message(text):
    """The API server's Status message out of the collection's error text (which names host and URL)."""
    return re.sub(r"^the Kubernetes API at \S+ answered \S+ \S+ with \d+ [^:]*: ", "", text)


def reconcile_and_delete(cluster, opts, namespace, name, deadline):
    """(reconcile facts, cascade facts) of the probe RayCluster `name`: ready, then deleted with its pods."""
    try:
        obj = cluster.wait_for_object("RayCluster %s/%s to reach state ready" % (namespace, name), RAY_API,
                                      "rayclusters", name, namespace, raycluster_ready,
                                      deadline.bound(opts.wait_timeout), opts.wait_sleep, deadline)
        error = ""
    except cl.WaitTimeout as err:
        obj, error = err.last, str(err)
    selector = "ray.io/cluster=%s" % name
    pods = cluster.list("v1", "pods", namespace=namespace, label_selector=selector)
    service = cluster.get("v1", "services", "%s-head-svc" % name, namespace)
    status = (obj or {}).get("status") or {}
    reconcile = {
        "ready": raycluster_ready(obj), "error": error, "state": status.get("state"),
        "conditions": [{k: c.get(k) for k in ("type", "status", "reason")} for c in status.get("conditions") or []],
        "pods": sorted("%s (%s, %s)" % (p["metadata"]["name"], (p["metadata"].get("labels") or {}).get("ray.io/node-type"),
                                        (p.get("status") or {}).get("phase")) for p in pods),
        "head_pods": len([p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "head"]),
        "worker_pods": len([p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "worker"]),
        "head_service": service["metadata"]["name"] if service else None}
    if obj is None:
        return reconcile, None
    cluster.delete(RAY_API, "rayclusters", name, namespace)
    try:
        cl.wait_until("the pods of RayCluster %s/%s to be deleted with it" % (namespace, name),
                      lambda: cluster.list("v1", "pods", namespace=namespace, label_selector=selector),
                      lambda items: not items, deadline.bound(int(opts.get("cascade_timeout", 120))), opts.wait_sleep, deadline)
        return reconcile, {"gone": True, "before": len(pods)}
    except cl.WaitTimeout as err:
        return reconcile, {"gone": False, "before": len(pods), "error": str(err)}


def probe_kuberay(cluster, opts, deadline):
    """The three active steps against KubeRay; never raises for an unmet requirement."""
    out = {"denial": None, "reconcile": None, "cascade": None}
    image = opts.get("ray_image", "rayproject/ray:2.46.0")
    with cl.ProbeNamespace(cluster, REQUIREMENT_ID, deadline, sleep=opts.wait_sleep) as namespace:
        out["namespace"] = namespace.name
        outcome = dry_run_create(cluster, RAY_API, "rayclusters",
                                 invalid_raycluster("aic-invalid-groups", namespace.name, image), namespace.name)
        out["denial"] = outcome
        name = "aic-raycluster"
        try:
            cluster.create(RAY_API, "rayclusters", small_raycluster(name, namespace.name, image), namespace=namespace.name)
        except (cl.ApiRequestError, cl.ConflictError) as err:
            out["reconcile"] = {"ready": False, "error": "the probe RayCluster was refused: %s" % status_message(str(err))}
        else:
            out["reconcile"], out["cascade"] = reconcile_and_delete(cluster, opts, namespace.name, name, deadline)
    out["cleanup_note"] = namespace.cleanup_note
    return out


# --------------------------------------------------------------------------------------------- judge
def judge_operator(operator):
    """(healthy, problems) of one operator from the passive facts."""
    problems = []
    for crd in operator["crds"]:
        if not (crd["established"] and crd["names_accepted"]):
            problems.append("CRD %s is not Established and NamesAccepted" % crd["name"])
    if not operator["controllers"]:
        problems.append("no controller Deployment (%s) was found" % ", ".join(operator_entry(operator["key"])["deployments"]))
    for ctrl in operator["controllers"]:
        if not ctrl["healthy"]:
            problems.append("controller %s/%s is not ready and stable (%d/%d ready, %d restarts%s)" % (
                ctrl["namespace"], ctrl["name"], ctrl["ready"], ctrl["replicas"], ctrl["restarts"],
                ("; " + ", ".join(ctrl["waiting"])) if ctrl["waiting"] else ""))
    for hook in operator["webhooks"]:
        if hook.get("service") and not hook.get("ready_endpoints"):
            problems.append("webhook %s (%s) has no ready endpoints behind Service %s/%s" % (
                hook["name"], hook["configuration"], hook["service"].get("namespace"), hook["service"].get("name")))
        if not hook["ca_bundle"]:
            problems.append("webhook %s (%s) has no caBundle" % (hook["name"], hook["configuration"]))
    return not problems, problems


def judge(facts, probes=None, passive_reason=""):
    """The verdict from observed facts and, in active mode, the KubeRay probe outcome."""
    result = Result(REQUIREMENT_ID, mode="passive" if passive_reason else "active")
    operators = facts.get("operators") or []
    rows = []
    for op in operators:
        controllers = ", ".join("%s/%s %d/%d r%d" % (c["namespace"], c["name"], c["ready"], c["replicas"], c["restarts"])
                                for c in op["controllers"])
        hooks = ", ".join("%s(%s)" % (h["name"], h.get("ready_endpoints")) for h in op["webhooks"])
        rows.append([op["name"], len(op["crds"]), controllers or "-", hooks or "-"])
    result.add_evidence("AI operators (name, CRDs, controller ready/replicas restarts, webhooks(ready endpoints))",
                        pr.text_table(["operator", "crds", "controller", "webhooks"], rows), kind="table")
    if not operators:
        result.finding("AI operator installed", False, "no CRDs of %s" % ", ".join(e["name"] for e in OPERATORS))
        result.note("No AI operator with a CRD was found. Install one with its admission webhook, for example "
                    "KubeRay with the collection's kuberay role.")
        return result.set(NOT_IMPLEMENTED, "no AI operator (KubeRay, Kubeflow Trainer, KServe, LWS, NIM) is installed").to_dict()
    verdicts = []
    for op in operators:
        healthy, problems = judge_operator(op)
        result.finding("%s CRDs established, controller ready and stable, webhooks backed" % op["name"], healthy,
                       "; ".join(problems) or "%d CRDs, %d controller(s), %d webhook(s)" % (
                           len(op["crds"]), len(op["controllers"]), len(op["webhooks"])))
        result.add_evidence("%s CRDs" % op["name"], op["crds"], kind="yaml")
        if op["webhooks"]:
            result.add_evidence("%s webhook configurations" % op["name"], op["webhooks"], kind="yaml")
        verdicts.append(judge_one(result, op, healthy, problems, probes if op["key"] in PROBED else None,
                                  passive_reason))
    order = (IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED)
    best = min(verdicts, key=lambda v: order.index(v[0]))
    result.set(best[0], best[1])
    if probes and probes.get("cleanup_note"):
        result.note(probes["cleanup_note"])
    return result.to_dict()


def judge_one(result, op, healthy, problems, probes, passive_reason):
    """(status, summary) for one operator; adds its findings, evidence and notes to `result`."""
    entry = operator_entry(op["key"])
    if not healthy:
        where = ["kubectl -n %s logs deployment/%s --previous" % (c["namespace"], c["name"]) for c in op["controllers"]]
        result.note("%s is installed but not healthy: %s. Fix the operator first (%s; its events), then run the "
                    "check again." % (op["name"], "; ".join(problems), ", ".join(where) or entry["fix"]))
        return NOT_IMPLEMENTED, "%s is installed but not healthy" % op["name"]
    if passive_reason:
        result.finding("%s webhook denial and reconcile" % op["name"], None, passive_reason)
        result.note("%s looks healthy, but only an active run proves that its webhook refuses invalid objects and "
                    "that it reconciles (run with mode=active)." % op["name"])
        return PARTIAL, "%s is healthy; its webhook and reconcile were not exercised (passive)" % op["name"]
    if probes is None:
        result.finding("%s webhook denial and reconcile" % op["name"], None,
                       "no active probe for %s in this collection yet" % op["name"])
        result.note("%s looks healthy, but the collection has no active probe for it yet; verify its webhook and "
                    "reconcile by hand (KubeRay is probed)." % op["name"])
        return PARTIAL, "%s is healthy; its webhook and reconcile were not exercised" % op["name"]
    own = [h["name"] for h in op["webhooks"] if h["kind"] == "validating"]
    kind, detail = classify_denial(probes.get("denial") or {}, entry, own)
    denied = result.finding("dry run of a schema-valid, invalid RayCluster denied by the operator's webhook",
                            kind == "webhook", detail)
    result.add_evidence("dry run of the invalid RayCluster (worker groups share a name)", probes.get("denial") or {}, kind="yaml")
    rec = probes.get("reconcile") or {}
    reconciled = bool(rec.get("ready") and rec.get("head_pods") and rec.get("worker_pods") and rec.get("head_service"))
    result.finding("small CPU RayCluster reconciled to ready (head, worker, head Service)", reconciled,
                   "state=%s, head pods %s, worker pods %s, service %s%s" % (
                       rec.get("state"), rec.get("head_pods"), rec.get("worker_pods"), rec.get("head_service"),
                       ("; " + rec["error"]) if rec.get("error") else ""))
    result.add_evidence("probe RayCluster", rec, kind="yaml")
    cascade = probes.get("cascade") or {}
    cascaded = result.finding("deleting the RayCluster removes its pods", bool(cascade.get("gone")) if cascade else False,
                              cascade.get("error") or ("%d pods removed" % cascade.get("before", 0) if cascade else
                                                       "not tried: the RayCluster was not created"))
    if denied and reconciled and cascaded:
        return IMPLEMENTED, "%s is healthy, its own webhook refuses invalid objects and it reconciles and cleans up" % op["name"]
    if kind != "webhook":
        result.note("%s: the operator's own webhook did not refuse a schema-valid invalid RayCluster (%s); %s." % (
            op["name"], kind, entry["fix"]))
    if not reconciled:
        result.note("%s did not reconcile the probe RayCluster to ready: %s." % (
            op["name"], rec.get("error") or "state %s" % rec.get("state")))
    elif not cascaded:
        result.note("Deleting the RayCluster did not remove its pods: %s." % cascade.get("error", "not tried"))
    if denied or reconciled:
        return PARTIAL, "%s: %s" % (op["name"], "webhook denial without working reconcile" if denied else
                                    "reconcile without the operator's own admission validation")
    return NOT_IMPLEMENTED, "%s neither refused the invalid object nor reconciled" % op["name"]


def run(cluster, opts):
    """observe -> probe (active, KubeRay present and healthy) -> judge."""
    facts = observe(cluster)
    if not opts.active:
        return judge(facts, passive_reason=opts.passive_reason())
    kuberay = next((op for op in facts["operators"] if op["key"] == "kuberay"), None)
    probes = None
    if kuberay is not None and judge_operator(kuberay)[0]:
        deadline = cl.Deadline(opts.wait_timeout + int(opts.get("cascade_timeout", 120)) + 60)
        probes = probe_kuberay(cluster, opts, deadline)
    return judge(facts, probes)
