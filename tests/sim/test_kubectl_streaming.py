"""The real kubectl 1.33 over the streaming subresources: exec, attach, cp, port-forward, logs -f, and RBAC
on them. kubectl speaks WebSocket first (v5.channel.k8s.io; SPDY tunnelled for port-forward) and SPDY/3.1
when told not to (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, KUBECTL_PORT_FORWARD_WEBSOCKETS=false): both
are exercised."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
import urllib.request

import pytest
import yaml

from conftest import Tool

PODS = """
apiVersion: v1
kind: Pod
metadata: {name: shell, namespace: %(ns)s}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "echo started; i=0; while true; i=$((i+1)); do echo tick $i; sleep 2; done"]
    env: [{name: GREETING, value: hello-from-env}]
  - name: side
    image: busybox:1.36
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: cuda, namespace: %(ns)s}
spec:
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  containers:
  - name: cuda
    image: nvidia/cuda:12.4.1-base-ubuntu22.04
    command: ["sleep", "infinity"]
    resources: {limits: {nvidia.com/gpu: "2"}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: %(ns)s, labels: {app: web}}
spec:
  containers:
  - name: agnhost
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
    ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %(ns)s}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""

EXEC_ONLY_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: exec-only, namespace: %(ns)s}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
- {apiGroups: [""], resources: [pods/exec], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: exec-only, namespace: %(ns)s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: exec-only}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: nobody}]
"""

NS = "streams"
SPDY_EXEC = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
SPDY_PORTFORWARD = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One conformant cluster for this module (the GPU pod takes GPUs other modules may count)."""
    from simcluster.cluster import SimCluster
    directory = tmp_path_factory.mktemp("sim-streaming")
    cluster = SimCluster("conformant", kubeconfig=str(directory / "kubeconfig")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def kc(sim, tmp_path_factory):
    """kubectl against the module's cluster, with the pods above running."""
    tool = Tool("kubectl", sim, tmp_path_factory.mktemp("kubectl-cache"))
    tool("create", "namespace", NS)
    tool("apply", "-f", "-", stdin=PODS % {"ns": NS})
    tool("wait", "-n", NS, "--for=condition=Ready", "pod/shell", "pod/cuda", "pod/web", "--timeout=60s")
    return tool


def run(kc, *args, env=None, user=None, stdin=None, timeout=60):
    """kubectl with extra environment variables (to choose the SPDY transport)."""
    full = kc.env(user)
    full.update(env or {})
    return subprocess.run([kc.binary] + list(args), env=full, input=stdin, capture_output=True, timeout=timeout,
                          check=False)


@pytest.mark.parametrize("env", [None, SPDY_EXEC], ids=["websocket", "spdy"])
def test_exec_runs_in_the_container_with_its_environment_and_exit_code(kc, env):
    done = run(kc, "exec", "-n", NS, "shell", "-c", "main", "--", "sh", "-c",
               'echo "$GREETING on $(hostname)"; echo oops >&2; exit 3', env=env)
    assert done.returncode == 3
    assert done.stdout == b"hello-from-env on shell\n"
    assert done.stderr.startswith(b"oops\n")
    assert b"command terminated with exit code 3" in done.stderr
    ok = run(kc, "exec", "-n", NS, "shell", "-c", "side", "--", "printenv", "GREETING", env=env)
    assert (ok.returncode, ok.stdout) == (1, b"")          # the other container has its own environment


def test_exec_sees_and_changes_the_containers_files(kc):
    assert run(kc, "exec", "-n", NS, "shell", "-c", "main", "--", "sh", "-c", "echo kept > /tmp/note").returncode == 0
    again = run(kc, "exec", "-n", NS, "shell", "-c", "main", "--", "cat", "/tmp/note")
    assert (again.returncode, again.stdout) == (0, b"kept\n")


def test_exec_of_a_missing_program_fails_like_runc(kc):
    done = run(kc, "exec", "-n", NS, "shell", "-c", "main", "--", "nvidia-smi", "-L")
    assert done.returncode == 1
    assert b'exec: "nvidia-smi": executable file not found in $PATH' in done.stderr


def _exporter_on(kc, node):
    """The DCGM exporter pod on `node`."""
    names = run(kc, "get", "pods", "-n", "gpu-operator", "-l", "app=nvidia-dcgm-exporter", "--field-selector",
                "spec.nodeName=" + node, "-o", "name").stdout.decode().split()
    assert len(names) == 1, names
    return names[0].split("/", 1)[1]


def _pod_metrics(kc, pod):
    return run(kc, "get", "--raw", "/api/v1/namespaces/gpu-operator/pods/%s:9400/proxy/metrics" % pod).stdout


def test_nvidia_smi_in_a_gpu_pod_lists_its_own_gpus(kc):
    done = run(kc, "exec", "-n", NS, "cuda", "--", "nvidia-smi", "-L")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 2 and all(re.match(r"GPU \d: NVIDIA H100 80GB HBM3 \(UUID: GPU-[0-9a-f-]+\)$", line) for line in lines)
    # the GPUs the DCGM exporter of the pod's node attributes to this pod (the device plugin's allocation)
    node = run(kc, "get", "pod", "-n", NS, "cuda", "-o", "jsonpath={.spec.nodeName}").stdout.decode()
    exporter = _exporter_on(kc, node)
    pattern = r'UUID="(GPU-[0-9a-f-]+)"[^}]*namespace="%s",pod="cuda"' % NS
    deadline = time.monotonic() + 20
    attributed = set()
    while len(attributed) != 2 and time.monotonic() < deadline:
        attributed = set(re.findall(pattern, _pod_metrics(kc, exporter).decode()))
        time.sleep(0.2)
    assert sorted(re.findall(r"GPU-[0-9a-f-]+", done.stdout.decode())) == sorted(attributed)


@pytest.mark.parametrize("env", [None, SPDY_EXEC], ids=["websocket", "spdy"])
def test_exec_reads_stdin_until_the_client_closes_it(kc, env):
    script = b"echo script from stdin\nhostname\nexit 4\necho not reached\n"
    done = run(kc, "exec", "-i", "-n", NS, "shell", "-c", "main", "--", "sh", stdin=script, env=env)
    assert done.returncode == 4, done.stderr
    assert done.stdout == b"script from stdin\nshell\n"
    counted = run(kc, "exec", "-i", "-n", NS, "shell", "-c", "main", "--", "wc", "-c", stdin=b"x" * 5000, env=env)
    assert counted.stdout.strip() == b"5000"


def test_python_client_exec_over_websocket_v4(sim, kc):
    """The kubernetes Python client (kubernetes.core's k8s_exec uses it) negotiates v4.channel.k8s.io."""
    from kubernetes import client, config
    from kubernetes.stream import stream
    del kc
    core = client.CoreV1Api(config.new_client_from_config(sim.kubeconfig))
    resp = stream(core.connect_get_namespaced_pod_exec, "shell", NS, container="main",
                  command=["sh", "-c", "echo $GREETING; echo bad >&2; exit 6"], stderr=True, stdin=False, stdout=True,
                  tty=False, _preload_content=False)
    resp.run_forever(timeout=20)
    assert (resp.read_stdout(), resp.read_stderr(), resp.returncode) == ("hello-from-env\n", "bad\n", 6)


def _pty_session(kc, args, keys, wait=8.0):
    """Run kubectl on a pseudo-terminal (so -t gets a TTY), type `keys` one chunk at a time."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        env = kc.env()
        os.execve(kc.binary, [kc.binary] + list(args), env)
    out = b""

    def drain(seconds):
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    return False
        return True

    drain(1.5)
    for chunk in keys:
        os.write(fd, chunk)
        drain(1.0)
    deadline = time.monotonic() + wait
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        drain(0.2)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("kubectl on a TTY did not end: %r" % out)
    drain(0.2)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def test_exec_with_a_tty_is_an_interactive_shell(kc):
    code, out = _pty_session(kc, ["exec", "-it", "-n", NS, "shell", "-c", "main", "--", "sh"],
                             [b"echo $GREETING\r", b"exit 5\r"])
    assert code == 5
    # the prompt, the echo of what was typed, and output lines ending in CR LF as on a terminal
    assert b"# echo $GREETING\r\nhello-from-env\r\n# exit 5\r\n" in out
    assert b"command terminated with exit code 5" in out


def test_exec_with_a_tty_but_no_stdin_translates_newlines(kc):
    code, out = _pty_session(kc, ["exec", "-t", "-n", NS, "shell", "-c", "main", "--", "sh", "-c", "echo a; echo b"],
                             [])
    assert code == 0
    assert b"a\r\nb\r\n" in out


def test_cp_both_ways(kc, tmp_path):
    payload = bytes(range(256)) * 40                 # not UTF-8: must survive unchanged
    src = tmp_path / "blob.bin"
    src.write_bytes(payload)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("beta\n")
    assert run(kc, "cp", str(src), "%s/shell:/tmp/blob.bin" % NS, "-c", "main").returncode == 0
    assert run(kc, "cp", str(tree), "%s/shell:/data" % NS, "-c", "main").returncode == 0
    listed = run(kc, "exec", "-n", NS, "shell", "-c", "main", "--", "sh", "-c", "cat /data/a.txt /data/sub/b.txt; "
                 "wc -c < /tmp/blob.bin")
    assert listed.stdout == b"alpha\nbeta\n10240\n"
    back = tmp_path / "back.bin"
    copied = run(kc, "cp", "%s/shell:/tmp/blob.bin" % NS, str(back), "-c", "main")
    assert copied.returncode == 0, copied.stderr
    assert back.read_bytes() == payload
    back_tree = tmp_path / "back-tree"
    assert run(kc, "cp", "%s/shell:/data" % NS, str(back_tree), "-c", "main").returncode == 0
    assert (back_tree / "sub" / "b.txt").read_text() == "beta\n"
    missing = run(kc, "cp", "%s/shell:/nope" % NS, str(tmp_path / "x"), "-c", "main")
    # kubectl shows the remote tar's complaint (on its stdout, as kubectl cp wires the remote stderr)
    assert b"tar: /nope: No such file or directory" in missing.stdout + missing.stderr


class PortForward(object):
    """`kubectl port-forward TARGET :PORT` in the background; .port is the local port it chose."""

    def __init__(self, kc, target, remote, env=None, namespace=NS):
        full = kc.env()
        full.update(env or {})
        self.proc = subprocess.Popen([kc.binary, "port-forward", "-n", namespace, target, ":%s" % remote], env=full,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
        if not match:
            self.stop()
            raise AssertionError("port-forward did not start: %r %r" % (line, self.proc.stderr.read()))
        self.port, self.remote = int(match.group(1)), int(match.group(2))

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=10) as resp:
            return resp.status, resp.read()

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()


@pytest.mark.parametrize("env", [None, SPDY_PORTFORWARD], ids=["websocket", "spdy"])
def test_port_forward_to_a_pod_answers_what_the_proxy_answers(kc, env):
    forward = PortForward(kc, "pod/web", 8080, env=env)
    try:
        assert forward.get("/hostname") == (200, b"web")
        proxied = run(kc, "get", "--raw", "/api/v1/namespaces/%s/pods/web:8080/proxy/echo?msg=hi" % NS).stdout
        assert forward.get("/echo?msg=hi") == (200, proxied)
        assert forward.get("/echo?msg=again")[1] == b"again"       # several connections over one session
    finally:
        forward.stop()


def test_port_forward_to_a_service_picks_a_ready_endpoint_and_its_target_port(kc):
    forward = PortForward(kc, "svc/web", 80)
    try:
        assert forward.remote == 8080                               # the named targetPort, resolved by kubectl
        assert forward.get("/hostname") == (200, b"web")
    finally:
        forward.stop()


def _series(text):
    return sorted(line.rsplit(" ", 1)[0] for line in text.decode().splitlines() if line and not line.startswith("#"))


def test_port_forward_to_the_dcgm_exporter_serves_the_proxy_metrics(kc):
    exporter = _exporter_on(kc, "gpu-0")
    forward = PortForward(kc, "pod/" + exporter, 9400, namespace="gpu-operator")
    try:
        status, text = forward.get("/metrics")
    finally:
        forward.stop()
    assert status == 200 and b"DCGM_FI_DEV_GPU_UTIL" in text
    # the same series as the API server's proxy to that pod (values such as energy counters move between scrapes)
    assert _series(text) == _series(_pod_metrics(kc, exporter))
    service = PortForward(kc, "svc/nvidia-dcgm-exporter", 9400, namespace="gpu-operator")
    try:
        status, text = service.get("/metrics")
    finally:
        service.stop()
    node = re.search(r'Hostname="([^"]+)"', text.decode()).group(1)
    assert status == 200 and _series(text) == _series(_pod_metrics(kc, _exporter_on(kc, node)))


def test_python_client_port_forward_over_the_websocket_channel_protocol(sim, kc):
    """kubernetes.stream.portforward speaks the kubelet's channel protocol (v4.channel.k8s.io)."""
    from kubernetes import client, config
    from kubernetes.stream import portforward
    del kc
    core = client.CoreV1Api(config.new_client_from_config(sim.kubeconfig))
    forward = portforward(core.connect_get_namespaced_pod_portforward, "web", NS, ports="8080")
    try:
        sock = forward.socket(8080)
        sock.setblocking(True)
        sock.sendall(b"GET /hostname HTTP/1.1\r\nHost: web\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nweb")
        assert forward.error(8080) is None
    finally:
        forward.close()


def test_port_forward_to_a_closed_port_reports_connection_refused(kc):
    forward = PortForward(kc, "pod/web", 9999)
    try:
        with pytest.raises(Exception):
            forward.get("/")
    finally:
        _out, err = forward.stop()
    assert b"connect: connection refused" in err


def test_attach_streams_what_the_container_prints_from_now_on(kc):
    before = run(kc, "logs", "-n", NS, "shell", "-c", "main").stdout.decode()
    last = max(int(n) for n in re.findall(r"tick (\d+)", before))
    proc = subprocess.Popen([kc.binary, "attach", "-n", NS, "shell", "-c", "main"], env=kc.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.5)
    proc.terminate()
    out, _err = proc.communicate(timeout=10)
    ticks = [int(n) for n in re.findall(r"tick (\d+)", out.decode())]
    assert ticks and ticks[0] > last and ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    assert b"started" not in out                                   # output from before the attach is not replayed


def test_run_attaches_stdin_to_a_waiting_shell(kc):
    """`kubectl run -i`: the container (stdin: true, stdinOnce) runs a shell that waits for what attach sends;
    its exit code comes back, and --rm deletes the pod."""
    done = run(kc, "run", "-i", "--rm", "piped", "-n", NS, "--image=busybox:1.36", "--restart=Never", "--", "sh",
               stdin=b"echo got $(hostname)\nexit 3\necho not reached\n")
    assert b"got piped\n" in done.stdout and b"not reached" not in done.stdout, done.stderr
    assert done.returncode == 3
    assert b'pod "piped" deleted' in done.stdout + done.stderr


def test_run_with_a_tty_is_an_interactive_shell(kc):
    code, out = _pty_session(kc, ["run", "-it", "--rm", "typed", "-n", NS, "--image=busybox:1.36",
                                  "--restart=Never", "--", "sh"], [b"\r", b"echo typed in $HOSTNAME\r", b"exit\r"])
    assert code == 0, out
    assert b"If you don't see a command prompt, try pressing enter." in out
    assert b"# echo typed in $HOSTNAME\r\ntyped in typed\r\n# exit\r\n" in out


def test_logs_follow_streams_until_the_container_ends(kc):
    kc("run", "counter", "-n", NS, "--restart=Never", "--image=busybox:1.36", "--", "sh", "-c",
       "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 5; done")
    kc("wait", "-n", NS, "--for=jsonpath={.status.phase}=Running", "pod/counter", "--timeout=30s")
    snapshot = run(kc, "logs", "-n", NS, "counter").stdout.decode().splitlines()
    done = run(kc, "logs", "-f", "-n", NS, "counter", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == ["line %d" % i for i in range(1, 9)], (snapshot, done.stdout)
    # 40 simulated seconds (2 s at the scenario's speed): when kubectl started, the lines were not all there
    assert len(snapshot) < 8


def test_forbidden_without_the_subresource_right(kc):
    kc("apply", "-f", "-", stdin=EXEC_ONLY_ROLE % {"ns": NS})
    viewer = run(kc, "exec", "-n", NS, "shell", "-c", "main", "--", "true", user="viewer")
    assert viewer.returncode == 1
    assert b'User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "streams"' in \
        viewer.stderr
    # exec is allowed for the user with create on pods/exec, but port-forward needs create on pods/portforward
    allowed = run(kc, "exec", "-n", NS, "shell", "-c", "main", "--", "echo", "ok", user="nobody")
    assert (allowed.returncode, allowed.stdout) == (0, b"ok\n"), allowed.stderr
    refused = run(kc, "port-forward", "-n", NS, "pod/web", ":8080", user="nobody", timeout=30)
    assert refused.returncode == 1
    assert b'cannot create resource "pods/portforward"' in refused.stderr
    assert run(kc, "auth", "can-i", "create", "pods/attach", "-n", NS, user="nobody").stdout == b"no\n"


METRICS_SERVER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
spec:
  selector: {matchLabels: {k8s-app: metrics-server}}
  template:
    metadata: {labels: {k8s-app: metrics-server}}
    spec:
      containers:
      - name: metrics-server
        image: registry.k8s.io/metrics-server/metrics-server:v0.7.2
        args: [--cert-dir=/tmp, --secure-port=10250, --kubelet-preferred-address-types=InternalIP]
        ports: [{containerPort: 10250, name: https, protocol: TCP}]
        resources: {requests: {cpu: 100m, memory: 200Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  selector: {k8s-app: metrics-server}
  ports: [{name: https, port: 443, targetPort: https}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {name: metrics-server, namespace: kube-system}
"""


def _table(text):
    lines = text.decode().splitlines()
    return [dict(zip(lines[0].split(), line.split())) for line in lines[1:]]


def test_top_needs_the_metrics_api_and_works_once_metrics_server_runs(kc):
    missing = run(kc, "top", "nodes")
    assert missing.returncode == 1 and b"error: Metrics API not available" in missing.stderr
    kc("apply", "-f", "-", stdin=METRICS_SERVER)
    try:
        kc("wait", "-n", "kube-system", "--for=condition=Available", "deployment/metrics-server", "--timeout=60s")
        pods = _table(run(kc, "top", "pods", "-n", "kube-system").stdout)
        server = [p for p in pods if p["NAME"].startswith("metrics-server-")]
        # usage is modelled as a tenth of the container's CPU request and a quarter of its memory request
        # (documented in apps/metrics_server.py): 100m and 200Mi requested
        assert server and server[0]["CPU(cores)"] == "10m" and server[0]["MEMORY(bytes)"] == "50Mi"
        assert {p["NAME"] for p in _table(run(kc, "top", "pods", "-n", NS).stdout)} >= {"shell", "cuda", "web"}
        node = run(kc, "get", "pods", "-n", "kube-system", server[0]["NAME"], "-o",
                   "jsonpath={.spec.nodeName}").stdout.decode()
        nodes = {row["NAME"]: row for row in _table(run(kc, "top", "nodes").stdout)}
        assert set(nodes) == {"cpu-0", "cpu-1", "gpu-0", "gpu-1"}
        # that node runs metrics-server (10m) and the system daemons (250m): at least 260m
        assert int(nodes[node]["CPU(cores)"].rstrip("m")) >= 260
        labelled = _table(run(kc, "top", "pods", "-n", NS, "-l", "app=web").stdout)
        assert [p["NAME"] for p in labelled] == ["web"]
    finally:
        kc("delete", "-f", "-", "--wait=false", stdin=METRICS_SERVER)


def test_discovery_lists_the_streaming_subresources(kc):
    resources = yaml.safe_load(run(kc, "get", "--raw", "/api/v1").stdout)["resources"]
    by_name = {r["name"]: r for r in resources}
    assert by_name["pods/exec"]["kind"] == "PodExecOptions" and "create" in by_name["pods/exec"]["verbs"]
    assert by_name["pods/portforward"]["kind"] == "PodPortForwardOptions"
