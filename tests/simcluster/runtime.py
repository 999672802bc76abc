"""The simulated container runtime: what a container runs, prints and serves.

`start_container(pod, container)` decides from the image, command/args (with the kubelet's `$(VAR)`
expansion), environment (incl. downward API, ConfigMap/Secret references) and the devices granted to
the container what its main process is:

* `sh -c` / `bash -c` scripts (or script files) in images that have a shell run in the small POSIX
  shell of `runtime_shell`, with the commands of `runtime_commands` (coreutils-like tools, `curl`,
  `wget`, `nslookup`, ...) as far as the image family ships them;
* a bare command (`sleep 3600`, `nvidia-smi -L`, `curl ...`) runs that command;
* images with a registered app (`register_app`: pause, agnhost, http-echo, nginx, curl's entrypoint,
  and what later issues add, such as DCGM exporter) run the app;
* any other image gets the generic app: a long-running process that prints a start line, is ready and
  answers health checks, metrics and admission/conversion reviews on its declared ports (init
  containers and containers of run-to-completion pods finish successfully after a moment instead);
* a known image (busybox, alpine, ubuntu, debian, curl, ...) asked to exec a program it does not have
  fails to start like runc does (StartError, exit 128).

A program is a generator that yields the simulated seconds it sleeps; a container's processes
(the main one and any `cmd &` jobs) advance lazily to the time someone looks (the kubelet's timers,
`logs()`, `http()`), so idle containers cost nothing. Every line a program prints is kept with its
simulated timestamp for `logs()`.

Each container sees a simulated filesystem: /etc/hostname, /etc/hosts, /etc/resolv.conf, /etc/os-release,
/proc (cpuinfo, meminfo, uptime, ...), cgroup limits, the service-account token, its ConfigMap/Secret/
downwardAPI/projected volumes, emptyDirs shared between the pod's containers, /dev/null & co., and one
character device per granted device (`/dev/nvidia0`, ...). `devices_for()` is empty until a device
provider is registered (`register_device_provider`, used by the accelerator issue for device plugins
and DRA).
"""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import heapq
import itertools
import math
import posixpath
import re
import threading

from . import runtime_apps, runtime_commands
from .errors import ApiError
from .runtime_shell import IO, Output, Shell, ShellExit, is_builtin

PODS = ("", "pods")
SERVICES = ("", "services")
CONFIGMAPS = ("", "configmaps")
SECRETS = ("", "secrets")
ENDPOINTSLICES = ("discovery.k8s.io", "endpointslices")
SHELL_NAMES = {"sh": None, "bash": "bash", "ash": "ash", "dash": "dash", "zsh": "bash"}
CLUSTER_DOMAIN = "cluster.local"
DNS_SERVER = "10.96.0.10"
_MAX_OUTPUT_CHUNKS = 20000
_BUSY_STEPS = 100000


# ===================================================================================== images
class ImageProfile(object):
    """What we know about an image family: entrypoint/cmd, shell, userland, extra tools, env."""

    def __init__(self, name, entrypoint=(), cmd=(), shell=None, userland=None, tools=(), env=None,
                 os_release=None, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"):
        self.name = name
        self.entrypoint = list(entrypoint)
        self.cmd = list(cmd)
        self.shell = shell               # "dash" | "ash" | "bash" | None (no shell in the image)
        self.userland = userland         # "gnu" | "busybox" | None
        self.tools = set(tools)
        self.env = dict(env or {})
        self.os_release = os_release
        self.path = path

    @property
    def known(self):
        return self.name != "unknown"


_UBUNTU_RELEASE = ('PRETTY_NAME="Ubuntu 22.04.5 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.5 LTS '
                   '(Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n')
_DEBIAN_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                   'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')
_ALPINE_RELEASE = ('NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n')

#: (glob on the repository path, profile); the first match wins
IMAGE_PROFILES = [
    ("*/library/busybox", ImageProfile("busybox", cmd=["sh"], shell="ash", userland="busybox",
                                       tools={"wget", "nslookup", "ip", "ping"},
                                       path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")),
    ("*/library/alpine", ImageProfile("alpine", cmd=["/bin/sh"], shell="ash", userland="busybox",
                                      tools={"wget", "nslookup", "ip", "ping"}, os_release=_ALPINE_RELEASE)),
    ("*/library/ubuntu", ImageProfile("ubuntu", cmd=["/bin/bash"], shell="dash", userland="gnu",
                                      tools={"getent"}, os_release=_UBUNTU_RELEASE)),
    ("*/library/debian", ImageProfile("debian", cmd=["bash"], shell="dash", userland="gnu", tools={"getent"},
                                      os_release=_DEBIAN_RELEASE)),
    ("*/nvidia/cuda", ImageProfile("cuda", entrypoint=["/opt/nvidia/nvidia_entrypoint.sh"], cmd=["/bin/bash"],
                                   shell="dash", userland="gnu", tools={"getent"}, os_release=_UBUNTU_RELEASE,
                                   env={"NVIDIA_VISIBLE_DEVICES": "all",
                                        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"})),
    ("*/curlimages/curl", ImageProfile("curl", entrypoint=["/entrypoint.sh"], cmd=["curl"], shell="ash",
                                       userland="busybox", tools={"curl", "wget", "nslookup"},
                                       os_release=_ALPINE_RELEASE)),
    ("*/nicolaka/netshoot", ImageProfile("netshoot", cmd=["zsh"], shell="ash", userland="busybox",
                                         tools={"curl", "wget", "nslookup", "getent", "ip", "ping"},
                                         os_release=_ALPINE_RELEASE)),
    ("*/e2e-test-images/agnhost", ImageProfile("agnhost", entrypoint=["/agnhost"], shell="ash",
                                               userland="busybox", tools={"curl", "wget", "nslookup", "ip", "ping"},
                                               os_release=_ALPINE_RELEASE)),
    ("*/hashicorp/http-echo", ImageProfile("http-echo", entrypoint=["/http-echo"])),
    ("*/pause", ImageProfile("pause", entrypoint=["/pause"])),
    ("*/library/nginx", ImageProfile("nginx", entrypoint=["/docker-entrypoint.sh"],
                                     cmd=["nginx", "-g", "daemon off;"], shell="dash", userland="gnu",
                                     tools={"curl", "getent"}, os_release=_DEBIAN_RELEASE)),
]
UNKNOWN_IMAGE = ImageProfile("unknown")


def normalize_image(image):
    """`busybox:1.36` -> `docker.io/library/busybox:1.36` (what containerd reports)."""
    image = (image or "").strip()
    name, digest = image, ""
    if "@" in image:
        name, digest = image.split("@", 1)
        digest = "@" + digest
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = ("docker.io/library/" if "/" not in name else "docker.io/") + name
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    return name + digest


def image_repository(image):
    """docker.io/library/busybox:1.36 -> docker.io/library/busybox."""
    ref = normalize_image(image).split("@", 1)[0]
    head, _slash, last = ref.rpartition("/")
    return head + "/" + last.split(":", 1)[0]


def profile_for(image):
    repo = image_repository(image)
    for pattern, profile in IMAGE_PROFILES:
        if fnmatch.fnmatchcase(repo, pattern):
            return profile
    return UNKNOWN_IMAGE


# ===================================================================================== filesystem
class _Entry(object):
    __slots__ = ("kind", "content", "major", "minor")

    def __init__(self, kind, content="", major=0, minor=0):
        self.kind = kind          # "file" | "chardev" | "socket"
        self.content = content    # str or callable() -> str
        self.major = major
        self.minor = minor


class SimFS(object):
    """A container's files: a path -> entry map with implicit directories and shared mounts."""

    def __init__(self):
        self.entries = {}
        self.dirs = {"/"}
        self.mounts = {}          # mount path -> SimFS (emptyDir volumes shared by the pod's containers)
        self.readonly = ("/proc", "/sys")

    # -- mount resolution
    def _locate(self, path):
        path = posixpath.normpath(path) if path != "/" else "/"
        if path.startswith("//"):
            path = path[1:]
        for mount in sorted(self.mounts, key=len, reverse=True):
            if path == mount or path.startswith(mount + "/"):
                rel = path[len(mount):] or "/"
                return self.mounts[mount], rel
        return self, path

    def mount(self, path, other):
        self.mounts[posixpath.normpath(path)] = other
        self.mkdir(posixpath.dirname(posixpath.normpath(path)))
        self.dirs.add(posixpath.normpath(path))

    # -- queries
    def kind(self, path):
        fs, rel = self._locate(path)
        if fs is not self:
            return fs.kind(rel)
        if rel in fs.dirs:
            return "dir"
        entry = fs.entries.get(rel)
        return entry.kind if entry else None

    def exists(self, path):
        return self.kind(path) is not None

    def isdir(self, path):
        return self.kind(path) == "dir"

    def entry(self, path):
        fs, rel = self._locate(path)
        if fs is not self:
            return fs.entry(rel)
        return fs.entries.get(rel)

    def read(self, path):
        """File content, or None for a missing path or a directory."""
        entry = self.entry(path)
        if entry is None:
            return None
        if entry.kind == "chardev":
            return ""
        return entry.content() if callable(entry.content) else entry.content

    def listdir(self, path):
        fs, rel = self._locate(path)
        if fs is not self:
            return fs.listdir(rel)
        prefix = "/" if rel == "/" else rel + "/"
        names = set()
        for item in list(fs.entries) + list(fs.dirs) + list(fs.mounts):
            if item.startswith(prefix) and item != rel:
                names.add(item[len(prefix):].split("/", 1)[0])
        return sorted(n for n in names if n)

    def glob(self, pattern, cwd="/"):
        """Paths matching a shell glob, sorted; relative patterns match relative to `cwd`."""
        absolute = pattern.startswith("/")
        base = "/" if absolute else cwd
        parts = [p for p in pattern.split("/") if p]
        results = [base]
        for index, part in enumerate(parts):
            nxt = []
            for current in results:
                if not any(c in part for c in "*?["):
                    candidate = posixpath.join(current, part)
                    if self.exists(candidate):
                        nxt.append(candidate)
                    continue
                if not self.isdir(current):
                    continue
                for name in self.listdir(current):
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(posixpath.join(current, name))
            results = nxt if index == len(parts) - 1 else [r for r in nxt if self.isdir(r)]
        if not absolute:
            prefix = cwd.rstrip("/") + "/"
            results = [r[len(prefix):] if r.startswith(prefix) else r for r in results]
        return sorted(results)

    # -- changes
    def add(self, path, content="", kind="file", major=0, minor=0):
        fs, rel = self._locate(path)
        if fs is not self:
            fs.add(rel, content, kind, major, minor)
            return
        fs.mkdir(posixpath.dirname(rel))
        fs.entries[rel] = _Entry(kind, content, major, minor)

    def mkdir(self, path):
        fs, rel = self._locate(path)
        if fs is not self:
            fs.mkdir(rel)
            return
        while rel not in fs.dirs:
            fs.dirs.add(rel)
            rel = posixpath.dirname(rel)

    def writable(self, path):
        """None if `path` can be written, else the error text the shell prints."""
        norm = posixpath.normpath(path)
        if any(norm == r or norm.startswith(r + "/") for r in self.readonly):
            return "Read-only file system"
        if self.isdir(norm):
            return "Is a directory"
        if not self.isdir(posixpath.dirname(norm)):
            return "Directory nonexistent"
        return None

    def write(self, path, text, append=False):
        entry = self.entry(path)
        if entry is not None and entry.kind == "chardev":
            return
        if append and entry is not None:
            current = entry.content() if callable(entry.content) else entry.content
            self.add(path, current + text)
        else:
            self.add(path, text)

    def remove(self, path):
        fs, rel = self._locate(path)
        if fs is not self:
            return fs.remove(rel)
        if rel in fs.entries:
            del fs.entries[rel]
            return True
        if rel in fs.dirs:
            prefix = rel + "/"
            for item in [e for e in fs.entries if e.startswith(prefix)]:
                del fs.entries[item]
            fs.dirs = {d for d in fs.dirs if d != rel and not d.startswith(prefix)}
            return True
        return False


# ===================================================================================== processes
class HttpRequest(object):
    def __init__(self, method, path, query, headers, body, client_ip="", host=""):
        self.method = method
        self.path = path or "/"
        self.query = query or ""
        self.headers = {str(k).lower(): v for k, v in (headers or {}).items()}
        self.body = body or b""
        self.client_ip = client_ip
        self.host = host


class Task(object):
    """One process of a container (the main one or a background `cmd &`)."""

    __slots__ = ("gen", "wake", "done", "status", "pid")

    def __init__(self, gen, pid, wake):
        self.gen = gen
        self.wake = wake
        self.done = False
        self.status = None
        self.pid = pid


class Process(object):
    """The view a program has of its container: argv, env, files, devices, time, output, ports.

    Programs (generators) call `write`, `listen`, `set_ready`, `now()` and yield sleep durations.
    It is also the `host` of the shell (find_command, spawn, run_shell, fs, unknown_ok).
    """

    def __init__(self, run, argv, env, cwd, fs, profile, devices):
        self.run = run
        self.runtime = run.runtime
        self.pod = run.pod
        self.container = run.container
        self.init = run.init
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd or "/"
        self.fs = fs
        self.profile = profile
        self.devices = devices
        self.unknown_ok = not profile.known
        self.handles_term = True

    # -- output, ports, readiness
    def now(self):
        return self.run.vt

    def write(self, text, stream="stdout"):
        self.run.emit(text, stream)

    def stdout(self):
        return Output(lambda text: self.run.emit(text, "stdout"))

    def stderr(self):
        return Output(lambda text: self.run.emit(text, "stderr"))

    def listen(self, port, handler):
        """Serve HTTP on `port` with handler(HttpRequest) -> (status, headers, body)."""
        self.run.listeners[int(port)] = handler

    def set_ready(self, ready, delay=0.0):
        """Readiness from now (+delay); callable from the program or from an HTTP handler.

        From the program's own flow "now" is its virtual time: a program that says "not ready" in its first
        step is not ready from the moment it started, which the kubelet may already be reporting (the clock
        has moved on since). From a handler, outside the flow, "now" is the clock's."""
        if delay:
            when = self.run.vt + delay
        elif self.run.stepping == threading.get_ident():
            when = self.run.vt
        else:
            when = max(self.run.vt, self.runtime.clock.now())
        self.run.readiness.append((when, bool(ready)))
        self.runtime.notify(self.run)

    def exit(self, code):
        self.run.exit(code)

    # -- shell host interface
    def find_command(self, name):
        return self.runtime.find_command(posixpath.basename(name), self)

    def command_path(self, name):
        return ("/bin/" if self.profile.userland == "busybox" else "/usr/bin/") + posixpath.basename(name)

    def spawn(self, gen):
        return self.run.spawn(gen)

    def run_shell(self, ctx, argv):
        """`sh -c script`, `sh script.sh` or `sh` (reads stdin) inside a running program (generator)."""
        return run_shell_argv(self, argv, IO(ctx.stdin, ctx.stdout, ctx.stderr), env=ctx.env, cwd=ctx.cwd)

    @property
    def hostname(self):
        spec = self.pod.get("spec") or {}
        return (spec.get("hostname") or self.pod["metadata"]["name"])[:63]

    @property
    def pod_ip(self):
        return self.run.pod_ip or ""


def run_shell_argv(proc, argv, io, env=None, cwd=None):
    """Run a shell invocation (argv[0] is sh/bash/...) to completion; generator returning the status."""
    name = posixpath.basename(argv[0])
    flavor = SHELL_NAMES.get(name) or proc.profile.shell or "dash"
    if name == "sh" and proc.profile.shell:
        flavor = proc.profile.shell
    args = list(argv[1:])
    options = set()
    script = None
    positional = []
    while args and args[0].startswith("-") and args[0] not in ("-", "--"):
        flag = args.pop(0)
        if flag in ("-c",) or (flag.startswith("-") and "c" in flag[1:] and not flag.startswith("--")):
            options.update(c for c in flag[1:] if c in "ex")
            if not args:
                io.stderr.write("%s: -c: option requires an argument\n" % argv[0])
                return 2
            script = args.pop(0)
        elif flag == "-o" and args:
            opt = args.pop(0)
            if opt == "pipefail":
                options.add("P")
            elif opt == "errexit":
                options.add("e")
        else:
            options.update(c for c in flag[1:] if c in "ex")
    if args and args[0] == "--":
        args.pop(0)
    argv0 = argv[0]
    if script is None:
        if args:
            path = args[0] if args[0].startswith("/") else posixpath.join(cwd or proc.cwd, args[0])
            content = proc.fs.read(path)
            if content is None:
                if proc.unknown_ok:
                    return 0
                if flavor == "bash":
                    io.stderr.write("%s: %s: No such file or directory\n" % (argv[0], args[0]))
                else:
                    io.stderr.write("%s: 0: cannot open %s: No such file\n" % (argv[0], args[0]) if flavor == "dash"
                                    else "%s: can't open '%s': No such file or directory\n" % (argv[0], args[0]))
                return 127 if flavor == "bash" else 2
            script = content
            argv0 = args[0]
            positional = args[1:]
        else:
            script = io.stdin or ""
    else:
        if args:
            argv0 = args[0]
            positional = args[1:]
    shell = Shell(proc, flavor, argv0, positional, env if env is not None else proc.env, cwd or proc.cwd, io)
    shell.options.update(options)
    return (yield from shell.run_script(script))


class ContainerRun(object):
    """One run of a container (a restart makes a new one): its processes, output, ports, exit."""

    def __init__(self, runtime, pod, container, init, now, restart_count, pod_ip, host_ip):
        self.runtime = runtime
        self.pod = pod
        self.container = container
        self.init = init
        self.name = container["name"]
        self.restart_count = restart_count
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        self.image = normalize_image(container.get("image"))
        digest = hashlib.sha256(self.image.split("@", 1)[0].encode()).hexdigest()
        self.image_id = "%s@sha256:%s" % (image_repository(container.get("image")), digest)
        self.container_id = "containerd://" + hashlib.sha256(("%s/%s/%d/%s" % (
            pod["metadata"].get("uid"), self.name, restart_count, now)).encode()).hexdigest()
        self.started_at = now
        self.finished_at = None
        self.exit_code = None
        self.reason = None
        self.message = None
        self.start_error = None
        self.vt = now
        self.output = []              # [(sim time, stream, text)]
        self.listeners = {}           # port -> handler
        self.readiness = [(now, True)]  # [(sim time, ready)]; at equal times the later entry wins
        self.stepping = None          # the thread running a step of the program (set_ready then uses vt)
        self.proc = None
        self._jobs = []               # heap of (wake, seq, Task)
        self._seq = itertools.count()
        self._pids = itertools.count(1)
        self.main = None

    # -- lifecycle
    @property
    def finished(self):
        return self.exit_code is not None

    def begin(self, gen):
        self.main = self.spawn(gen)

    def spawn(self, gen):
        job = Task(gen, next(self._pids), self.vt)
        heapq.heappush(self._jobs, (job.wake, next(self._seq), job))
        return job

    def fail_to_start(self, message):
        self.start_error = message
        self._finish(128, "StartError", message)

    def _finish(self, code, reason=None, message=None):
        self.exit_code = code
        self.finished_at = self.vt
        self.reason = reason or ("Completed" if code == 0 else "Error")
        self.message = message
        self.listeners = {}
        jobs, self._jobs = self._jobs, []
        for entry in jobs:
            job = entry[2]
            job.gen.close()

    def exit(self, code):
        """The program exits now from outside its own flow (an HTTP handler such as netexec's /exit)."""
        with self.runtime.lock:
            if self.finished:
                return
            self.vt = max(self.vt, self.runtime.clock.now())
            self._finish(int(code))
        self.runtime.notify(self)

    def advance(self, now):
        """Run the container's processes up to simulated time `now`."""
        with self.runtime.lock:
            steps = 0
            while not self.finished and self._jobs and self._jobs[0][0] <= now:
                wake, _seq, job = heapq.heappop(self._jobs)
                self.vt = max(self.vt, wake)
                self.stepping = threading.get_ident()
                try:
                    delay = next(job.gen)
                except StopIteration as stop:
                    self._job_done(job, stop.value)
                    continue
                except ShellExit as done:
                    self._job_done(job, done.code)
                    continue
                except Exception as exc:  # pylint: disable=broad-except
                    self.runtime.log("runtime: %s/%s container %s crashed: %r" % (
                        self.pod["metadata"]["namespace"], self.pod["metadata"]["name"], self.name, exc))
                    self.emit("panic: %s\n" % exc, "stderr")
                    self._job_done(job, 2)
                    continue
                finally:
                    self.stepping = None
                delay = float(delay or 0.0)
                steps = steps + 1 if delay <= 0 else 0
                if steps > _BUSY_STEPS:
                    delay = math.inf       # a busy loop: it spins forever without output
                    steps = 0
                job.wake = self.vt + delay
                heapq.heappush(self._jobs, (job.wake, next(self._seq), job))
            if not self.finished:
                self.vt = max(self.vt, min(now, self.next_wake() or now))

    def wake(self, job, when):
        """Reschedule `job` (waiting forever, e.g. for input) to run at `when`."""
        with self.runtime.lock:
            if job.done or self.finished:
                return
            job.wake = when
            self._jobs = [(job.wake if entry[2] is job else entry[0], entry[1], entry[2]) for entry in self._jobs]
            heapq.heapify(self._jobs)

    def _job_done(self, job, status):
        job.done = True
        job.status = int(status or 0)
        if job is self.main:
            self._finish(job.status)

    def next_wake(self):
        """Simulated time of the next thing a process does (inf when all wait forever; None when done)."""
        if self.finished:
            return None
        return self._jobs[0][0] if self._jobs else math.inf

    def terminate(self, now):
        """SIGTERM: apps shut down; a shell script as PID 1 ignores it (the kubelet kills it later)."""
        self.advance(now)
        if not self.finished and self.proc is not None and self.proc.handles_term:
            self.vt = max(self.vt, now)
            self._finish(0 if not self.proc.profile.shell else 143)

    def kill(self, now):
        """SIGKILL."""
        self.advance(now)
        if not self.finished:
            self.vt = max(self.vt, now)
            self._finish(137, "Error")

    # -- output and readiness
    def emit(self, text, stream="stdout"):
        if not text:
            return
        self.output.append((self.vt, stream, text))
        if len(self.output) > _MAX_OUTPUT_CHUNKS:
            del self.output[:_MAX_OUTPUT_CHUNKS // 10]

    def ready(self, now):
        if self.finished:
            return False
        state, latest = True, None
        for when, flag in self.readiness:     # the latest change up to `now`; ties: the one made last
            if when <= now and (latest is None or when >= latest):
                state, latest = flag, when
        return state

    def ready_changes_at(self, now):
        future = [when for when, _flag in self.readiness if when > now]
        return min(future) if future else None

    def text(self, now=None, timestamps=False, since=None):
        parts = []
        for when, _stream, text in self.output:
            if now is not None and when > now:
                break
            if since is not None and when < since:
                continue
            if timestamps:
                stamp = self.runtime.clock.micro_timestamp(when).replace("Z", "000Z")
                parts.extend("%s %s\n" % (stamp, line) for line in text.splitlines())
            else:
                parts.append(text)
        return "".join(parts)


# ===================================================================================== the runtime
class Runtime(object):
    def __init__(self, sim):
        self.sim = sim
        self.store = sim.store
        self.clock = sim.clock
        self.lock = threading.RLock()
        self._apps = []               # [(pattern, factory)]
        self._commands = {}           # name -> (fn, available)
        self._device_providers = []
        self._interface_providers = []
        self._resolvers = []
        self._runs = {}               # (namespace, pod name) -> {"uid": uid, "containers": {name: [runs]}}
        self._ips = {}                # pod IP -> (namespace, name)
        self._rr = {}                 # service -> round-robin counter
        self._watchers = []
        runtime_commands.register_all(self)
        runtime_apps.register_all(self)

    def log(self, message):
        logger = getattr(self.sim, "log", None)
        if logger is not None:
            logger(message)

    def watch(self, fn):
        """fn(run) is called when a run changes outside the kubelet's view (exit or readiness from an
        HTTP handler); the kubelet uses it to look at the pod again."""
        self._watchers.append(fn)

    def notify(self, run):
        for fn in list(self._watchers):
            fn(run)

    # ----------------------------------------------------------------------------- extension points
    def register_app(self, pattern, app_factory):
        """Run `app_factory(proc)` (a program generator) for images whose repository matches `pattern`
        (a glob such as "*/agnhost" on e.g. "registry.k8s.io/e2e-test-images/agnhost"). Later
        registrations win. The factory may return None to decline (then the next candidate runs)."""
        self._apps.insert(0, (pattern, app_factory))

    def register_command(self, name, fn, available=None, tool=None):
        """A command for shells and bare `command:` lists: fn(ctx, argv) -> exit code or a generator
        yielding sleeps. `available(proc) -> bool` decides per container (missing -> "not found");
        `tool` names a tool group an image profile must list (None: every image has it)."""
        self._commands[name] = (fn, available, tool)

    def register_device_provider(self, fn):
        """fn(pod, container) -> [device dicts] granted to the container (device plugins, DRA)."""
        self._device_providers.append(fn)

    def register_interface_provider(self, fn):
        """fn(proc) -> [{name, mac, mtu, addresses}]: network interfaces of the container's pod besides lo and
        eth0 (DRA network drivers such as DRANET move them into the pod's network namespace); `ip` lists them."""
        self._interface_providers.append(fn)

    def interfaces_for(self, proc):
        out = []
        for provider in self._interface_providers:
            out.extend(provider(proc) or ())
        return out

    def register_resolver(self, fn):
        """fn(host, port, proc) -> handler(HttpRequest) or (pod, port) or None, consulted by curl/wget
        before cluster DNS (e.g. a Gateway's address)."""
        self._resolvers.insert(0, fn)

    def devices_for(self, pod, container):
        devices = []
        for provider in self._device_providers:
            devices.extend(provider(pod, container) or ())
        return devices

    def find_command(self, name, proc):
        entry = self._commands.get(name)
        if entry is None:
            return None
        fn, available, tool = entry
        if tool is not None and proc.profile.known:
            have = tool == "core" and proc.profile.userland or tool in proc.profile.tools
            if not have:
                return None
        if available is not None and not available(proc):
            return None
        return fn

    # ----------------------------------------------------------------------------- containers
    def start_container(self, pod, container, init=False, now=None, restart_count=0, pod_ip=None, host_ip=None):
        """Start one run of `container` of `pod` (both dicts) and return its ContainerRun."""
        now = self.clock.now() if now is None else now
        run = ContainerRun(self, pod, container, init, now, restart_count, pod_ip, host_ip)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        with self.lock:
            record = self._runs.get(key)
            if record is None or record["uid"] != pod["metadata"]["uid"]:
                record = self._runs[key] = {"uid": pod["metadata"]["uid"], "containers": {}, "volumes": {}}
            runs = record["containers"].setdefault(container["name"], [])
            runs.append(run)
            del runs[:-2]
            if pod_ip:
                self._ips[pod_ip] = key
        profile = profile_for(container.get("image"))
        devices = self.devices_for(pod, container)
        env = self._environment(pod, container, profile, pod_ip, host_ip)
        argv = self._argv(container, profile, env)
        fs = self._filesystem(pod, container, profile, devices, record, pod_ip)
        proc = Process(run, argv, env, container.get("workingDir"), fs, profile, devices)
        run.proc = proc
        program, error = self._program(proc)
        if error:
            run.fail_to_start(error)
            return run
        run.begin(program)
        run.advance(now)
        return run

    def forget(self, namespace, name, uid=None):
        """The pod is gone: drop its runs (logs of a deleted pod are gone too)."""
        with self.lock:
            record = self._runs.get((namespace, name))
            if record is not None and (uid is None or record["uid"] == uid):
                del self._runs[(namespace, name)]
                for ip in [ip for ip, key in self._ips.items() if key == (namespace, name)]:
                    del self._ips[ip]

    def _argv(self, container, profile, env):
        """command/args over the image's ENTRYPOINT/CMD, with the kubelet's $(VAR) expansion."""
        command = container.get("command")
        args = container.get("args")
        if command:
            argv = list(command) + list(args or [])
        else:
            argv = list(profile.entrypoint) + list(args if args is not None else profile.cmd)
        return [expand_dollar_paren(a, env) for a in argv]

    def _program(self, proc):
        """(generator, None) or (None, start error message)."""
        argv = proc.argv
        name = posixpath.basename(argv[0]) if argv else ""
        profile = proc.profile
        if name in SHELL_NAMES and (profile.shell or not profile.known):
            proc.handles_term = False       # PID 1 without a SIGTERM handler: killed after the grace period
            return self._shell_program(proc), None
        if name and (is_builtin(name) and name not in ("cd", "exit", "export", "set", "eval", ".") or
                     self.find_command(name, proc) is not None) and not self._app_entrypoint(proc, argv[0]):
            proc.handles_term = False
            return self._command_program(proc), None
        for pattern, factory in self._apps:
            if fnmatch.fnmatchcase(image_repository(proc.container.get("image")), pattern):
                program = factory(proc)
                if program is not None:
                    return program, None
        if profile.known:
            shown = argv[0] if argv else ""
            return None, ('failed to create containerd task: failed to create shim task: OCI runtime create failed: '
                          'runc create failed: unable to start container process: error during container init: '
                          'exec: "%s": executable file not found in $PATH: unknown' % shown)
        return runtime_apps.generic_app(proc), None

    @staticmethod
    def _app_entrypoint(proc, arg0):
        """True when argv[0] is the image's own entrypoint (an app handles it, not a command)."""
        return bool(proc.profile.entrypoint) and arg0 == proc.profile.entrypoint[0]

    def _shell_program(self, proc):
        from . import runtime_exec  # pylint: disable=import-outside-toplevel
        waiting = runtime_exec.container_stdin_program(proc)       # `stdin: true`: reads what attach sends
        if waiting is not None:
            return (yield from waiting)
        status = yield from run_shell_argv(proc, proc.argv, IO("", proc.stdout(), proc.stderr()))
        return status

    def _command_program(self, proc):
        shell = Shell(proc, proc.profile.shell or "dash", "sh", (), proc.env, proc.cwd,
                      IO("", proc.stdout(), proc.stderr()))
        try:
            status = yield from shell.execute(proc.argv, shell.io)
        except ShellExit as done:
            status = done.code
        return status

    # ----------------------------------------------------------------------------- environment
    def _environment(self, pod, container, profile, pod_ip, host_ip):
        """The container's environment in the order the kubelet builds it."""
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        env = {"PATH": profile.path}
        env.update(profile.env)
        env["HOSTNAME"] = (spec.get("hostname") or meta["name"])[:63]
        if spec.get("enableServiceLinks", True):
            env.update(self._service_env(meta["namespace"]))
        env.update({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                    "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
                    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
                    "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"})
        for source in container.get("envFrom") or ():
            prefix = source.get("prefix") or ""
            for key, value in self._env_source(meta["namespace"], source).items():
                env[prefix + key] = value
        for item in container.get("env") or ():
            value = item.get("value")
            if value is not None:
                value = expand_dollar_paren(value, env)
            elif item.get("valueFrom"):
                value = self._env_value_from(pod, container, item["valueFrom"], pod_ip, host_ip)
                if value is None:
                    continue
            else:
                value = ""
            env[item["name"]] = value
        env.setdefault("HOME", "/root")
        return env

    def _service_env(self, namespace):
        out = {}
        if SERVICES not in self.store.types:
            return out
        for svc in self.store.list(SERVICES, namespace=namespace)[0]:
            spec = svc.get("spec") or {}
            ip = spec.get("clusterIP")
            if not ip or ip == "None" or not spec.get("ports"):
                continue
            name = svc["metadata"]["name"].upper().replace("-", "_")
            first = spec["ports"][0]
            out["%s_SERVICE_HOST" % name] = ip
            out["%s_SERVICE_PORT" % name] = str(first.get("port"))
            out["%s_PORT" % name] = "%s://%s:%s" % ((first.get("protocol") or "TCP").lower(), ip, first.get("port"))
        return out

    def _env_source(self, namespace, source):
        if source.get("configMapRef"):
            obj = self._get(CONFIGMAPS, namespace, source["configMapRef"].get("name"))
            return dict((obj or {}).get("data") or {})
        if source.get("secretRef"):
            obj = self._get(SECRETS, namespace, source["secretRef"].get("name"))
            return {k: _b64(v) for k, v in ((obj or {}).get("data") or {}).items()}
        return {}

    def _env_value_from(self, pod, container, value_from, pod_ip, host_ip):
        if value_from.get("fieldRef"):
            return field_ref(pod, value_from["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        if value_from.get("resourceFieldRef"):
            return resource_field_ref(pod, container, value_from["resourceFieldRef"], self)
        ref = value_from.get("configMapKeyRef") or value_from.get("secretKeyRef")
        if ref:
            gr = CONFIGMAPS if value_from.get("configMapKeyRef") else SECRETS
            obj = self._get(gr, pod["metadata"]["namespace"], ref.get("name"))
            data = (obj or {}).get("data") or {}
            if ref.get("key") not in data:
                return None
            return data[ref["key"]] if gr == CONFIGMAPS else _b64(data[ref["key"]])
        return None

    def _get(self, gr, namespace, name):
        if gr not in self.store.types or not name:
            return None
        try:
            return self.store.get(gr, namespace, name, copy_=False)
        except ApiError:
            return None

    # ----------------------------------------------------------------------------- filesystem
    def _filesystem(self, pod, container, profile, devices, record, pod_ip):
        fs = SimFS()
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        hostname = (spec.get("hostname") or meta["name"])[:63]
        for directory in ("/tmp", "/root", "/dev/shm", "/etc", "/var/run", "/run", "/home", "/usr/bin", "/bin"):
            fs.mkdir(directory)
        fs.add("/etc/hostname", hostname + "\n")
        fqdn = hostname
        if spec.get("subdomain"):
            fqdn = "%s.%s.%s.svc.%s" % (hostname, spec["subdomain"], meta["namespace"], CLUSTER_DOMAIN)
        hosts = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if pod_ip:
            hosts += "%s\t%s\n" % (pod_ip, fqdn if fqdn == hostname else "%s\t%s" % (fqdn, hostname))
        fs.add("/etc/hosts", hosts)
        fs.add("/etc/resolv.conf", "search %s.svc.%s svc.%s %s\nnameserver %s\noptions ndots:5\n" % (
            meta["namespace"], CLUSTER_DOMAIN, CLUSTER_DOMAIN, CLUSTER_DOMAIN, DNS_SERVER))
        if profile.os_release:
            fs.add("/etc/os-release", profile.os_release)
        fs.add("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        fs.add("/etc/group", "root:x:0:\nnogroup:x:65534:\n")
        for name, (major, minor) in (("null", (1, 3)), ("zero", (1, 5)), ("random", (1, 8)), ("urandom", (1, 9)),
                                     ("tty", (5, 0)), ("full", (1, 7)), ("ptmx", (5, 2))):
            fs.add("/dev/" + name, kind="chardev", major=major, minor=minor)
        for directory in ("/dev/pts", "/dev/mqueue", "/dev/fd"):
            fs.mkdir(directory)
        for name in ("core", "stdin", "stdout", "stderr"):
            fs.add("/dev/" + name, "")
        fs.add(container.get("terminationMessagePath") or "/dev/termination-log", "")
        for device in devices:
            if device.get("path"):
                fs.add(device["path"], kind="chardev", major=int(device.get("major", 195)),
                       minor=int(device.get("minor", device.get("index", 0)) or 0))
        self._proc_files(fs, pod, container)
        if profile.known:
            bindir = "/bin/" if profile.userland == "busybox" else "/usr/bin/"
            for name in self._commands:
                if self._commands[name][2] in (None, "core") or self._commands[name][2] in profile.tools:
                    fs.add(bindir + name, "")
            for shell_name in ("sh", profile.shell or "sh", "bash" if profile.userland == "gnu" else "sh"):
                fs.add("/bin/" + shell_name, "")
        self._service_account_files(fs, pod)
        self._volumes(fs, pod, container, record, pod_ip)
        return fs

    def _proc_files(self, fs, pod, container):
        limits = (container.get("resources") or {}).get("limits") or {}
        cpus = _cpu_count(limits.get("cpu")) or 4
        start = self.clock.now()
        fs.add("/proc/cpuinfo", "".join(
            "processor\t: %d\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
            "cpu cores\t: %d\n\n" % (i, cpus) for i in range(cpus)))
        mem_kb = int(_memory_bytes(limits.get("memory")) // 1024) or 263921016
        fs.add("/proc/meminfo", "MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n" % (
            mem_kb, mem_kb * 9 // 10, mem_kb * 9 // 10))
        fs.add("/proc/uptime", lambda: "%.2f %.2f\n" % (
            self.clock.now() - start + 86400, (self.clock.now() - start) * 3))
        fs.add("/proc/version", "Linux version 5.15.0-119-generic (buildd@lcy02-amd64-086) (gcc (Ubuntu "
                                "11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38) #129-Ubuntu "
                                "SMP Fri Aug 2 19:25:20 UTC 2024\n")
        fs.add("/proc/loadavg", "0.42 0.38 0.35 2/311 42\n")
        fs.add("/proc/1/cmdline", "\0".join(container.get("command") or container.get("args") or ["/pause"]) + "\0")
        fs.add("/proc/sys/kernel/hostname", ((pod.get("spec") or {}).get("hostname") or
                                             pod["metadata"]["name"])[:63] + "\n")
        cpu_max = "max 100000"
        if limits.get("cpu"):
            cpu_max = "%d 100000" % int(float(_cpu_millis(limits["cpu"])) * 100)
        fs.add("/sys/fs/cgroup/cpu.max", cpu_max + "\n")
        fs.add("/sys/fs/cgroup/memory.max", ("%d\n" % _memory_bytes(limits["memory"])) if limits.get("memory")
               else "max\n")

    def _service_account_files(self, fs, pod):
        spec = pod.get("spec") or {}
        if spec.get("automountServiceAccountToken") is False:
            return
        base = "/var/run/secrets/kubernetes.io/serviceaccount/"
        account = spec.get("serviceAccountName") or "default"
        token = "sim-token-" + hashlib.sha256(("%s/%s" % (pod["metadata"]["namespace"], account)).encode()).hexdigest()
        fs.add(base + "token", token)
        fs.add(base + "namespace", pod["metadata"]["namespace"])
        fs.add(base + "ca.crt", getattr(self.sim, "ca_pem", "") or "")

    def _volumes(self, fs, pod, container, record, pod_ip):
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
        namespace = pod["metadata"]["namespace"]
        for mount in container.get("volumeMounts") or ():
            volume = volumes.get(mount.get("name"))
            path = mount.get("mountPath")
            if volume is None or not path:
                continue
            if "emptyDir" in volume:
                shared = record["volumes"].setdefault(volume["name"], SimFS())
                fs.mount(path, shared)
                continue
            fs.mkdir(path)
            files = self._volume_files(volume, namespace, pod, container, pod_ip)
            sub = mount.get("subPath")
            for rel, content in files.items():
                if sub:
                    if rel == sub:
                        fs.add(path, content)
                    continue
                fs.add(posixpath.join(path, rel), content)

    def _volume_files(self, volume, namespace, pod, container, pod_ip):
        """{relative path: content} of a configMap/secret/downwardAPI/projected volume."""
        out = {}
        if "configMap" in volume or "secret" in volume:
            source = volume.get("configMap") or volume.get("secret") or {}
            is_secret = "secret" in volume
            obj = self._get(SECRETS if is_secret else CONFIGMAPS, namespace,
                            source.get("secretName") if is_secret else source.get("name"))
            data = dict((obj or {}).get("data") or {})
            if is_secret:
                data = {k: _b64(v) for k, v in data.items()}
            items = source.get("items")
            if items:
                for item in items:
                    if item.get("key") in data:
                        out[item.get("path") or item["key"]] = data[item["key"]]
            else:
                out.update(data)
        elif "downwardAPI" in volume:
            for item in volume["downwardAPI"].get("items") or ():
                out[item.get("path")] = self._downward_item(item, pod, container, pod_ip)
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or ():
                if "serviceAccountToken" in source:
                    path = source["serviceAccountToken"].get("path") or "token"
                    out[path] = "sim-token-" + hashlib.sha256(pod["metadata"]["uid"].encode()).hexdigest()
                for kind in ("configMap", "secret"):
                    if kind in source:
                        sub = {kind: dict(source[kind], secretName=source[kind].get("name"))}
                        out.update(self._volume_files(sub, namespace, pod, container, pod_ip))
                if "downwardAPI" in source:
                    out.update(self._volume_files({"downwardAPI": source["downwardAPI"]}, namespace, pod,
                                                  container, pod_ip))
        return out

    def _downward_item(self, item, pod, container, pod_ip):
        if item.get("fieldRef"):
            path = item["fieldRef"].get("fieldPath", "")
            if path in ("metadata.labels", "metadata.annotations"):
                values = pod["metadata"].get(path.split(".")[1]) or {}
                return "\n".join('%s="%s"' % (k, v) for k, v in sorted(values.items()))
            return field_ref(pod, path, pod_ip, None) or ""
        if item.get("resourceFieldRef"):
            return resource_field_ref(pod, container, item["resourceFieldRef"], self) or ""
        return ""

    # ----------------------------------------------------------------------------- logs
    def _record(self, namespace, pod_name):
        record = self._runs.get((namespace, pod_name))
        pod = self._get(PODS, namespace, pod_name)
        if record is not None and pod is not None and record["uid"] != pod["metadata"]["uid"]:
            return None, pod
        return record, pod

    def logs(self, namespace, pod_name, container, previous=False, tail_lines=None, timestamps=False,
             since_seconds=None):
        """What `kubectl logs` shows; raises ApiError 400 with the kubelet's wording when there is nothing."""
        now = self.clock.now()
        with self.lock:
            record, pod = self._record(namespace, pod_name)
            runs = list(((record or {}).get("containers") or {}).get(container) or ())
        if previous:
            runs = runs[:-1]
            if not runs:
                raise ApiError.bad_request('previous terminated container "%s" in pod "%s" not found'
                                           % (container, pod_name))
        if not runs:
            if pod is not None and _adopted(pod, container):
                return ""
            reason = _waiting_reason(pod, container) or "ContainerCreating"
            raise ApiError.bad_request('container "%s" in pod "%s" is waiting to start: %s'
                                       % (container, pod_name, reason))
        run = runs[-1]
        run.advance(now)
        since = now - float(since_seconds) if since_seconds else None
        text = run.text(now, timestamps=timestamps, since=since)
        if tail_lines is not None:
            lines = text.splitlines(True)
            text = "".join(lines[-int(tail_lines):]) if int(tail_lines) > 0 else ""
        return text

    def container_running(self, namespace, pod_name, container):
        """True while the container's current run has not exited (for `logs --follow`)."""
        now = self.clock.now()
        with self.lock:
            record = self._record(namespace, pod_name)[0]
            runs = ((record or {}).get("containers") or {}).get(container) or ()
            run = runs[-1] if runs else None
        if run is None:
            return False
        run.advance(now)
        return not run.finished

    # ----------------------------------------------------------------------------- HTTP
    def http(self, pod, port, method, path, query, headers, body, client_ip=""):
        """Serve a request to `pod` on `port` (number or container port name):
        (status, headers, body bytes). 503 when nothing listens there."""
        faults = getattr(self.sim, "faults", None)
        canned = faults.http_answer(pod, path) if faults is not None else None
        if canned is not None:   # a fault (simcluster/faults.py): the app answers garbage
            return canned
        port_num = _container_port(pod, port)
        handler = self._listener(pod, port_num) if port_num is not None else None
        if handler is None:
            ip = (pod.get("status") or {}).get("podIP") or ""
            text = "Error trying to reach service: 'dial tcp %s:%s: connect: connection refused'" % (ip, port)
            return 503, {"Content-Type": "text/plain; charset=utf-8"}, text.encode()
        req = HttpRequest(method, path, query, headers, body, client_ip=client_ip)
        return _normalize_response(handler(req))

    def _listener(self, pod, port):
        now = self.clock.now()
        with self.lock:
            record = self._record(pod["metadata"]["namespace"], pod["metadata"]["name"])[0]
            if record is None or record["uid"] != pod["metadata"].get("uid"):
                return None
            runs = [r[-1] for r in record["containers"].values() if r]
        for run in runs:
            run.advance(now)
            if not run.finished and port in run.listeners:
                return run.listeners[port]
        return None

    def resolve_service(self, namespace, name, port):
        """(pod, target port) of a ready endpoint of service `name` for service `port` (number or
        name; None = first port), round-robin like kube-proxy's IPVS mode. Raises ApiError 503."""
        svc = self._get(SERVICES, namespace, name)
        if svc is None:
            raise ApiError.not_found("", "services", name)
        target = self._service_endpoints(svc, port)
        if not target:
            raise ApiError.service_unavailable('no endpoints available for service "%s"' % name)
        counter = self._rr.get((namespace, name), 0)
        self._rr[(namespace, name)] = counter + 1
        return target[counter % len(target)]

    def _service_endpoints(self, svc, port):
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        chosen = None
        for candidate in ports:
            if port is None or str(candidate.get("port")) == str(port) or candidate.get("name") == port:
                chosen = candidate
                break
        if chosen is None:
            return []
        namespace = svc["metadata"]["namespace"]
        out = []
        if ENDPOINTSLICES in self.store.types:
            slices = self.store.list(ENDPOINTSLICES, namespace=namespace,
                                     label=lambda labels: (labels or {}).get("kubernetes.io/service-name")
                                     == svc["metadata"]["name"])[0]
            for eps in slices:
                port_num = None
                for slice_port in eps.get("ports") or ():
                    if (slice_port.get("name") or "") == (chosen.get("name") or ""):
                        port_num = slice_port.get("port")
                for endpoint in eps.get("endpoints") or ():
                    ref = endpoint.get("targetRef") or {}
                    if not (endpoint.get("conditions") or {}).get("ready") or ref.get("kind") != "Pod":
                        continue
                    pod = self._get(PODS, namespace, ref.get("name"))
                    if pod is not None and port_num is not None:
                        out.append((pod, port_num))
        return sorted(out, key=lambda item: item[0]["metadata"]["name"])

    def route(self, host, port, proc=None):
        """What a connection from a container to host:port reaches: a handler, (pod, port), or an
        error string ("resolve" for unknown names, "refused", "timeout")."""
        for resolver in self._resolvers:
            found = resolver(host, port, proc)
            if found is not None:
                return found
        namespace = proc.pod["metadata"]["namespace"] if proc is not None else "default"
        if host in ("localhost", "127.0.0.1", "::1") and proc is not None:
            return (proc.pod, port)
        ip = host if re.match(r"^\d+\.\d+\.\d+\.\d+$", host) else None
        if ip is None:
            ip = self.dns_lookup(host, namespace)
            if ip is None:
                return "resolve"
            found = self._dns_pod(host, namespace)
            if found is not None:
                return (found, port)
        svc = self._service_by_ip(ip)
        if svc is not None:
            endpoints = self._service_endpoints(svc, port)
            if not endpoints:
                return "refused"
            key = (svc["metadata"]["namespace"], svc["metadata"]["name"], port)
            counter = self._rr.get(key, 0)
            self._rr[key] = counter + 1
            return endpoints[counter % len(endpoints)]
        with self.lock:
            pod_key = self._ips.get(ip)
        pod = self._get(PODS, *pod_key) if pod_key else None
        if pod is not None:
            return (pod, port)
        return "timeout"

    def dns_lookup(self, name, namespace):
        """Cluster DNS: a service's ClusterIP (or a headless service's first pod), a pod's A record."""
        name = name.rstrip(".")
        labels = name.split(".")
        suffix = "svc." + CLUSTER_DOMAIN
        candidates = []
        if name.endswith("." + suffix):
            candidates.append(labels[:-3])
        elif name.endswith(".svc"):
            candidates.append(labels[:-1])
        else:
            candidates.extend([labels + [namespace], labels])
        for parts in candidates:
            if len(parts) == 2:
                svc = self._get(SERVICES, parts[1], parts[0])
                if svc is not None:
                    ip = (svc.get("spec") or {}).get("clusterIP")
                    if ip and ip != "None":
                        return ip
                    endpoints = self._service_endpoints(svc, None)
                    if endpoints:
                        return (endpoints[0][0].get("status") or {}).get("podIP")
                    return None
            if len(parts) == 3:
                pod = self._dns_pod(".".join(parts) + "." + suffix, namespace)
                if pod is not None:
                    return (pod.get("status") or {}).get("podIP")
        if name.endswith(".pod." + CLUSTER_DOMAIN) and len(labels) >= 4:
            return labels[0].replace("-", ".")
        return None

    def _dns_pod(self, name, namespace):
        """hostname.subdomain.namespace.svc.cluster.local -> the pod (StatefulSet pods)."""
        labels = name.rstrip(".").split(".")
        if len(labels) < 3:
            return None
        if name.endswith(".svc." + CLUSTER_DOMAIN):
            labels = labels[:-3]
        if len(labels) != 3:
            return None
        hostname, subdomain, ns = labels
        if PODS not in self.store.types:
            return None
        for pod in self.store.list(PODS, namespace=ns)[0]:
            spec = pod.get("spec") or {}
            if spec.get("subdomain") == subdomain and (spec.get("hostname") or pod["metadata"]["name"]) == hostname:
                return pod
        return None

    def _service_by_ip(self, ip):
        if SERVICES not in self.store.types:
            return None
        for svc in self.store.list(SERVICES)[0]:
            if (svc.get("spec") or {}).get("clusterIP") == ip:
                return svc
        return None

    def request(self, proc, method, host, port, path, query="", headers=None, body=b""):
        """An HTTP request from a container: ("ok", status, headers, body) or (error, detail)."""
        target = self.route(host, port, proc)
        if isinstance(target, str):
            return (target, host)
        client_ip = proc.pod_ip if proc is not None else ""
        if callable(target):
            req = HttpRequest(method, path, query, headers, body, client_ip=client_ip, host=host)
            status, out_headers, out_body = _normalize_response(target(req))
            return ("ok", status, out_headers, out_body)
        pod, target_port = target
        port_num = _container_port(pod, target_port)
        handler = self._listener(pod, port_num) if port_num is not None else None
        if handler is None:
            return ("refused", (pod.get("status") or {}).get("podIP") or host)
        req = HttpRequest(method, path, query, headers, body, client_ip=client_ip, host=host)
        status, out_headers, out_body = _normalize_response(handler(req))
        return ("ok", status, out_headers, out_body)


# ===================================================================================== helpers
def _normalize_response(result):
    status, headers, body = result
    if isinstance(body, str):
        body = body.encode()
    return int(status), dict(headers or {}), body or b""


def _container_port(pod, port):
    if port is None:
        return None
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for container in (pod.get("spec") or {}).get("containers") or ():
        for declared in container.get("ports") or ():
            if declared.get("name") == port:
                return int(declared.get("containerPort"))
    return None


def _adopted(pod, container):
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == container and "running" in (status.get("state") or {}):
            return True
    return False


def _waiting_reason(pod, container):
    status = (pod or {}).get("status") or {}
    for item in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if item.get("name") == container:
            return ((item.get("state") or {}).get("waiting") or {}).get("reason")
    return None


def _b64(value):
    try:
        return base64.b64decode(value).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return ""


def expand_dollar_paren(text, env):
    """The kubelet's $(VAR) expansion in command, args and env values ($$ escapes)."""
    if "$" not in str(text):
        return text

    def repl(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, str(text))


def field_ref(pod, path, pod_ip, host_ip):
    meta = pod["metadata"]
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    match = re.match(r"^metadata\.(labels|annotations)\['(.*)'\]$", path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    values = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
              "status.hostIP": host_ip or status.get("hostIP"), "status.hostIPs": host_ip or status.get("hostIP"),
              "status.podIP": pod_ip or status.get("podIP"), "status.podIPs": pod_ip or status.get("podIP")}
    value = values.get(path)
    return "" if value is None else str(value)


def resource_field_ref(pod, container, ref, runtime):
    name = ref.get("containerName")
    target = container
    if name:
        for candidate in (pod.get("spec") or {}).get("containers") or ():
            if candidate.get("name") == name:
                target = candidate
    resource = ref.get("resource", "")
    kind, _dot, res = resource.partition(".")
    value = ((target.get("resources") or {}).get(kind) or {}).get(res)
    divisor = ref.get("divisor") or "1"
    if value is None:
        if kind == "limits":
            return "4" if res == "cpu" else str(_memory_bytes("256Gi"))
        return "0"
    if res == "cpu":
        millis = _cpu_millis(value)
        div = _cpu_millis(divisor)
        return str(int(math.ceil(millis / div)))
    return str(int(math.ceil(_memory_bytes(value) / max(_memory_bytes(divisor), 1))))


def _cpu_millis(value):
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1])
    try:
        return float(text) * 1000
    except ValueError:
        return 1000.0


def _cpu_count(value):
    if value is None:
        return 0
    return max(1, int(math.ceil(_cpu_millis(value) / 1000)))


_MEM_UNITS = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "K": 1000, "M": 1000 ** 2,
              "G": 1000 ** 3, "T": 1000 ** 4, "k": 1000}


def _memory_bytes(value):
    if value is None:
        return 0
    text = str(value)
    for unit in sorted(_MEM_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return int(float(text[:-len(unit)]) * _MEM_UNITS[unit])
            except ValueError:
                return 0
    try:
        return int(float(text))
    except ValueError:
        return 0
