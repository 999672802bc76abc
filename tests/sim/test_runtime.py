"""The simulated container runtime through the real API: what containers see (env, volumes, files),
print (kubectl logs) and serve (pods/proxy, services/proxy)."""
from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from simcluster.controllers.testing import core, wait_for

WORKLOAD = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast, config.yaml: "replicas: 3\\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: reader, labels: {team: ml}, annotations: {owner: alice}}
spec:
  restartPolicy: Never
  volumes:
  - {name: cfg, configMap: {name: settings}}
  - {name: sec, secret: {secretName: creds}}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}},
                          {path: name, fieldRef: {fieldPath: metadata.name}}]}
  - {name: shared, emptyDir: {}}
  containers:
  - name: writer
    image: busybox:1.36
    command: [sh, -c, 'echo "from writer" > /shared/note; sleep 3600']
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: main
    image: ubuntu:22.04
    env:
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    envFrom: [{configMapRef: {name: settings}, prefix: CFG_}]
    resources: {limits: {cpu: "2", memory: 1Gi}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/app}
    - {name: sec, mountPath: /etc/creds}
    - {name: info, mountPath: /etc/podinfo}
    - {name: shared, mountPath: /data}
    command:
    - bash
    - -c
    - |
      echo "mode=$MODE password=$PASSWORD cfg=$CFG_mode limit=$CPU_LIMIT node-set=${NODE:+yes}"
      cat /etc/app/config.yaml /etc/creds/password; echo
      cat /etc/podinfo/labels; echo; cat /etc/podinfo/name; echo
      until [ -f /data/note ]; do sleep 1; done; cat /data/note
      nproc; grep PRETTY_NAME /etc/os-release
      cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo
"""


def test_containers_see_env_volumes_and_shared_files(sim_cluster, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", stdin=WORKLOAD)

    def main_done():
        statuses = core(sim_cluster).read_namespaced_pod("reader", namespace).status.container_statuses or []
        return any(s.name == "main" and s.state.terminated for s in statuses)

    wait_for(main_done, "the main container to finish")
    logs = kubectl("logs", "-n", namespace, "reader", "-c", "main").stdout.splitlines()
    assert logs == ["mode=fast password=s3cret cfg=fast limit=2 node-set=yes",
                    "replicas: 3", "s3cret",
                    'team="ml"', "reader",
                    "from writer",
                    "2", 'PRETTY_NAME="Ubuntu 22.04.5 LTS"',
                    namespace]
    pod = core(sim_cluster).read_namespaced_pod("reader", namespace)
    # one container exited 0, the other still runs: the pod stays Running (restartPolicy Never)
    assert pod.status.phase == "Running"


ACCELERATOR_CHECK = ("if ls /dev/nvidia* > /dev/null 2>&1; then echo 'RESULT: ACCELERATOR_FOUND'; "
                     "else echo 'RESULT: ACCELERATOR_MISSING'; fi; ls /dev/nvidia*")


@pytest.mark.parametrize("image,error", [
    ("ubuntu:22.04", "ls: cannot access '/dev/nvidia*': No such file or directory"),
    ("busybox:1.36", "ls: /dev/nvidia*: No such file or directory"),
])
def test_accelerator_probe_without_devices(sim_cluster, kubectl, namespace, image, error):
    kubectl("run", "probe", "-n", namespace, "--image=" + image, "--restart=Never", "--command", "--",
            "sh", "-c", ACCELERATOR_CHECK)
    wait_for(lambda: core(sim_cluster).read_namespaced_pod("probe", namespace).status.phase in ("Succeeded", "Failed"),
             "the probe to finish")
    assert kubectl("logs", "-n", namespace, "probe").stdout == "RESULT: ACCELERATOR_MISSING\n%s\n" % error
    term = core(sim_cluster).read_namespaced_pod("probe", namespace).status.container_statuses[0].state.terminated
    assert term.exit_code == (2 if image.startswith("ubuntu") else 1)       # ls's own exit status


SERVERS = """
apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec:
  containers:
  - {name: echo, image: "hashicorp/http-echo:1.0", args: [-text=hello from echo], ports: [{containerPort: 5678}]}
---
apiVersion: v1
kind: Pod
metadata: {name: operator}
spec:
  containers:
  - name: manager
    image: example.com/acme/operator:v2.1.0
    args: [--leader-elect]
    ports: [{containerPort: 9443, name: webhook}, {containerPort: 8080, name: metrics}]
"""


def test_apps_serve_http_through_the_proxy(sim_cluster, kubectl, namespace, raw):
    kubectl("apply", "-n", namespace, "-f", "-", stdin=SERVERS)
    kubectl("wait", "--for=condition=Ready", "pod/echo", "pod/operator", "-n", namespace, "--timeout=60s")
    api = core(sim_cluster)
    assert api.connect_get_namespaced_pod_proxy_with_path("echo:5678", namespace, "anything") == "hello from echo\n"
    assert "server is listening on :5678" in kubectl("logs", "-n", namespace, "echo").stdout
    # the generic app of an image we do not model: health, metrics, and admission reviews allowed
    assert api.connect_get_namespaced_pod_proxy_with_path("operator:metrics", namespace, "healthz") == "ok"
    metrics = api.connect_get_namespaced_pod_proxy_with_path("operator:8080", namespace, "metrics")
    assert "process_start_time_seconds " in metrics
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "r-1"}}
    status, answer = raw.json("POST", "/api/v1/namespaces/%s/pods/operator:9443/proxy/validate" % namespace, review)
    assert (status, answer["response"]) == (200, {"uid": "r-1", "allowed": True})
    assert '"Starting" component="manager" image="example.com/acme/operator:v2.1.0"' in \
        kubectl("logs", "-n", namespace, "operator").stdout
    # nothing listens on port 7000 of the echo pod
    with pytest.raises(ApiException) as failure:
        api.connect_get_namespaced_pod_proxy_with_path("echo:7000", namespace, "x")
    assert failure.value.status == 503
    assert "connect: connection refused" in str(failure.value.body)


def test_unmodelled_images_finish_as_init_and_job_containers(sim_cluster, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", stdin="""
apiVersion: v1
kind: Pod
metadata: {name: chart-style}
spec:
  initContainers: [{name: wait-for-crds, image: "example.com/acme/kubectl:1.33", command: [bash, /scripts/wait.sh]}]
  containers: [{name: app, image: "example.com/acme/server:1.0"}]
---
apiVersion: v1
kind: Pod
metadata: {name: one-shot}
spec:
  restartPolicy: OnFailure
  containers: [{name: task, image: "example.com/acme/migrate:1.0", args: [--apply]}]
""")
    kubectl("wait", "--for=condition=Ready", "pod/chart-style", "-n", namespace, "--timeout=60s")
    wait_for(lambda: core(sim_cluster).read_namespaced_pod("one-shot", namespace).status.phase == "Succeeded",
             "the one-shot pod to succeed")
