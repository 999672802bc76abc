"""The runtime's shell and commands as pure logic: a container started in-process on a store with no
server, run to a given simulated time. Expected outputs are what dash (Debian/Ubuntu `sh`), BusyBox
ash and bash print for the same scripts."""
from __future__ import annotations

import math
import types

import pytest

from simcluster.clock import Clock
from simcluster.runtime import Runtime, expand_dollar_paren, normalize_image
from simcluster.store import Store

T0 = 1_800_000_000.0


def _runtime():
    clock = Clock(speed=1, start=T0)
    sim = types.SimpleNamespace(store=Store(clock), clock=clock, settings={}, log=lambda msg: None)
    return Runtime(sim)


def _pod(container, name="p", uid="uid-1", extra=None):
    pod = {"metadata": {"name": name, "namespace": "ns1", "uid": uid, "labels": {"app": "demo"}},
           "spec": {"nodeName": "node-a", "containers": [container], "restartPolicy": "Never"}}
    pod["spec"].update(extra or {})
    return pod


def run(script, image="busybox:1.36", shell="sh", until=1000.0, runtime=None, **container):
    """Start `shell -c script` in an `image` container at T0 and advance it to T0 + until."""
    runtime = runtime or _runtime()
    spec = dict({"name": "c", "image": image, "command": [shell, "-c", script]}, **container)
    result = runtime.start_container(_pod(spec), spec, now=T0, pod_ip="10.128.0.7", host_ip="172.18.0.2")
    result.advance(T0 + until)
    return result


@pytest.mark.parametrize("script,expected", [
    ("echo hello world", "hello world\n"),
    ("echo \"a  b\" 'c  d' e\\ \\ f", "a  b c  d e  f\n"),
    ("X=1; echo $X ${X} ${Y:-dflt} ${#X} \"${Z-unset}\" ${X:+set}", "1 1 dflt 1 unset set\n"),
    ("n=$(echo a b c | wc -w); echo $((n * 2)) $(( 7 / 2 )) $(( 7 % 2 ))", "6 3 1\n"),
    ("false; echo $?; true; echo $?", "1\n0\n"),
    ("false && echo no || echo yes", "yes\n"),
    ("x=2; if [ $x -eq 1 ]; then echo one; elif [ $x -eq 2 ]; then echo two; else echo many; fi", "two\n"),
    ("for f in /etc/host*; do echo $f; done", "/etc/hostname\n/etc/hosts\n"),
    ("i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i", "3\n"),
    ("case web-1 in db-*) echo db;; web-*) echo web;; esac", "web\n"),
    ("printf 'b\\na\\nc\\n' | sort | head -n 2", "a\nb\n"),
    # a container's /dev: core fd full mqueue null ptmx pts random shm stderr stdin stdout
    # termination-log tty urandom zero
    ("ls /dev | grep -c null; ls /dev | wc -l | tr -d ' '", "1\n16\n"),
    ("echo x > /tmp/f; echo y >> /tmp/f; cat /tmp/f; cat /nope 2>/dev/null || echo missing", "x\ny\nmissing\n"),
    ("cat <<EOF\nhost=$(cat /etc/hostname)\nEOF", "host=p\n"),
    ("greet() { echo \"hi $1\"; }; greet bob", "hi bob\n"),
    ("printf '%s=%05d %x %%\\n' n 42 255", "n=00042 ff %\n"),
    ("set -- a b c; echo $# $2; shift; echo \"$@\"", "3 b\nb c\n"),
    ("v=path/to/file.tar.gz; echo ${v##*/} ${v%%.*} ${v#*/}", "file.tar.gz path/to/file to/file.tar.gz\n"),
    ("echo a,b,c | cut -d, -f2; echo HeLLo | tr 'A-Z' 'a-z'", "b\nhello\n"),
    ("echo 'k1 v1\nk2 v2' | awk '{print $2}'", "v1\nv2\n"),
    ("echo 'one two' | sed 's/one/1/'", "1 two\n"),
    ("[ -c /dev/null ] && [ -f /etc/hosts ] && [ ! -e /nope ] && echo tests", "tests\n"),
    ("grep -q 'search ns1.svc.cluster.local' /etc/resolv.conf && echo dns", "dns\n"),
])
def test_scripts_print_what_a_posix_shell_prints(script, expected):
    result = run(script)
    assert (result.text(), result.exit_code) == (expected, 0)


@pytest.mark.parametrize("image,shell,expected", [
    ("ubuntu:22.04", "sh", "sh: 1: nvidia-smi: not found\n"),            # dash
    ("busybox:1.36", "sh", "sh: nvidia-smi: not found\n"),               # busybox ash
    ("ubuntu:22.04", "bash", "bash: line 1: nvidia-smi: command not found\n"),
])
def test_unknown_commands_fail_with_the_shells_own_words(image, shell, expected):
    result = run("nvidia-smi -L", image=image, shell=shell)
    assert (result.text(), result.exit_code) == (expected, 127)


@pytest.mark.parametrize("image,expected,code", [
    ("ubuntu:22.04", "ls: cannot access '/dev/nvidia*': No such file or directory\n", 2),      # GNU coreutils
    ("busybox:1.36", "ls: /dev/nvidia*: No such file or directory\n", 1),                      # BusyBox
])
def test_listing_missing_devices(image, expected, code):
    result = run("ls /dev/nvidia*", image=image)
    assert (result.text(), result.exit_code) == (expected, code)


def test_granted_devices_appear_as_character_devices():
    runtime = _runtime()
    runtime.register_device_provider(lambda pod, container: [
        {"vendor": "nvidia", "uuid": "GPU-%d" % i, "index": i, "minor": i, "path": "/dev/nvidia%d" % i}
        for i in range(2)])
    result = run("ls /dev/nvidia*; [ -c /dev/nvidia1 ] && echo chardev; ls -l /dev/nvidia0", runtime=runtime)
    lines = result.text().splitlines()
    assert lines[:3] == ["/dev/nvidia0", "/dev/nvidia1", "chardev"]
    assert lines[3].startswith("crw-rw-rw- 1 root root 195,   0 ")


def test_missing_file_wording_per_userland():
    assert run("cat /nope", image="ubuntu:22.04").text() == "cat: /nope: No such file or directory\n"
    assert run("cat /nope").text() == "cat: can't open '/nope': No such file or directory\n"


def test_exit_status_errexit_and_syntax_errors():
    assert run("echo before; exit 3; echo after").exit_code == 3
    result = run("set -e; echo one; false; echo two")
    assert (result.text(), result.exit_code) == ("one\n", 1)
    result = run("if true; then echo x", image="ubuntu:22.04")
    assert (result.text(), result.exit_code) == ('sh: 1: Syntax error: end of file unexpected (expecting "fi")\n', 2)


def test_sleep_advances_simulated_time():
    result = run("echo a; sleep 5; echo b", until=3)
    assert (result.text(), result.finished) == ("a\n", False)
    assert result.next_wake() == T0 + 5
    result.advance(T0 + 6)
    assert (result.text(), result.exit_code, result.finished_at - result.started_at) == ("a\nb\n", 0, 5)


def test_background_jobs_timeout_and_busy_loops():
    result = run("sleep 10 & echo started; wait; echo done", until=4)
    assert (result.text(), result.finished) == ("started\n", False)
    result.advance(T0 + 11)
    assert (result.text(), result.exit_code) == ("started\ndone\n", 0)
    result = run("timeout 2 sleep 10; echo rc=$?")
    assert (result.text(), result.finished_at - result.started_at) == ("rc=124\n", 2)
    # a loop that never sleeps spins forever without blocking the simulator
    spinning = run("while true; do :; done")
    assert not spinning.finished and spinning.next_wake() == math.inf


def test_environment_downward_api_and_kubelet_expansion():
    container = {"name": "c", "image": "busybox:1.36",
                 "command": ["sh", "-c", "echo $(GREETING) $POD $NS $NODE $APP $IP; echo '$$(GREETING)'"],
                 "env": [{"name": "GREETING", "value": "hello"},
                         {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                         {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                         {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    runtime = _runtime()
    result = runtime.start_container(_pod(container), container, now=T0, pod_ip="10.128.0.7")
    result.advance(T0 + 1)
    # $(GREETING) is expanded by the kubelet before the shell runs; $$( escapes it
    assert result.text() == "hello p ns1 node-a demo 10.128.0.7\n$(GREETING)\n"
    assert expand_dollar_paren("$(A)-$$(A)-$(B)", {"A": "x"}) == "x-$(A)-$(B)"


@pytest.mark.parametrize("image,normal", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("nvidia/cuda:12.4.1-base-ubuntu22.04", "docker.io/nvidia/cuda:12.4.1-base-ubuntu22.04"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("localhost:5000/app@sha256:" + "a" * 64, "localhost:5000/app@sha256:" + "a" * 64),
])
def test_image_references_are_normalised_like_containerd(image, normal):
    assert normalize_image(image) == normal


def test_exec_of_a_missing_binary_is_a_start_error():
    runtime = _runtime()
    spec = {"name": "c", "image": "busybox:1.36", "command": ["/opt/tool"]}
    result = runtime.start_container(_pod(spec), spec, now=T0)
    assert (result.exit_code, result.reason) == (128, "StartError")
    assert 'exec: "/opt/tool": executable file not found in $PATH' in result.start_error
    # an image we do not model may hold any program: it runs as a generic long-running process
    spec = {"name": "c", "image": "example.com/operator:v1", "command": ["/manager"], "args": ["--leader-elect"]}
    result = runtime.start_container(_pod(spec, extra={"restartPolicy": "Always"}), spec, now=T0)
    result.advance(T0 + 100)
    assert not result.finished and result.ready(T0 + 100)
    assert '"Starting" component="c" image="example.com/operator:v1"' in result.text()
