"""`kubectl exec` and `kubectl attach` in simulated containers.

An exec session runs its command as a new process of the container's current run: the container's
environment, working directory, filesystem (shared: files it writes are the container's) and devices (so
`nvidia-smi -L` lists the GPUs granted to that container), with the image's shell and command table.
Simulated time applies (`sleep 5` takes 5 simulated seconds). Standard input:

* without a TTY, stdin is read until the client closes it (kubectl does when its input ends), then the
  command runs with it (`kubectl exec -i pod -- sh < script`, `kubectl cp` piping a tar archive);
* with a TTY, an interactive shell (`kubectl exec -it pod -- sh`) reads line by line, echoes what is typed,
  prints a prompt and ends on `exit` or Ctrl-D; output lines end in CR LF as a terminal's do.

The status sent when the command ends is what the kubelet sends: Success, or Failure/NonZeroExitCode with
the exit code as the cause (kubectl prints "command terminated with exit code N" and exits with N); a
program the image lacks fails like runc's exec (InternalError).

Attach streams what the container's main process prints from now on, until it exits or the client leaves.
"""
from __future__ import annotations

import hashlib
import math
import posixpath

from .errors import ApiError
from .runtime import PODS, SHELL_NAMES, Process
from .runtime_shell import IO, Output, Shell, ShellExit, is_builtin, parse, ShellSyntaxError
from .runtime_tar import to_bytes, to_text

INPUT = "input"            # yielded by the interactive shell: wait for the next typed line
POLL_SECONDS = 0.03        # the shortest wait of a session's connection loop
IDLE_SECONDS = 0.5         # the longest
_BUSY_STEPS = 100000


def current_run(runtime, pod, container):
    """The container's current ContainerRun, or None."""
    with runtime.lock:
        record = runtime._runs.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))  # pylint: disable=protected-access
        if record is None or record["uid"] != pod["metadata"].get("uid"):
            return None
        runs = record["containers"].get(container) or ()
        return runs[-1] if runs else None


def open_session(runtime, pod, container, command, tty=False, stdin=False):
    """An ExecSession (command given) or AttachSession (command None); ApiError when the container is not
    running, worded as the kubelet answers."""
    run = current_run(runtime, pod, container)
    if run is not None:
        run.advance(runtime.clock.now())
    if run is None or run.finished or run.proc is None:
        raise ApiError.bad_request('unable to upgrade connection: container not found ("%s")' % container)
    if command is None:
        return AttachSession(runtime, run, tty)
    return ExecSession(runtime, run, list(command), tty, stdin)


def listening(runtime, pod, port):
    """True when a process of the pod serves `port` (what a port-forward connects to)."""
    return runtime._listener(pod, int(port)) is not None  # pylint: disable=protected-access


def refused_message(pod, port):
    sandbox = hashlib.sha256(("sandbox/%s" % pod["metadata"].get("uid")).encode()).hexdigest()
    return ('error forwarding port %s to pod %s, uid : failed to execute portforward in network namespace '
            '"/var/run/netns/cni-%s": failed to connect to localhost:%s inside namespace "%s", IPv4: dial tcp4 '
            '127.0.0.1:%s: connect: connection refused IPv6 dial tcp6 [::1]:%s: connect: connection refused '
            % (port, sandbox, sandbox[:8] + "-" + sandbox[8:12], port, sandbox, port, port))


def reads_script_from_stdin(argv):
    """`sh`, `bash -i`, `sh -l`...: a shell that reads its commands from standard input."""
    return bool(argv) and posixpath.basename(argv[0]) in SHELL_NAMES and \
        all(a in ("-i", "-l", "-il", "-s", "-") for a in argv[1:])


class LineInput(object):
    """Standard input read line by line. With a TTY it behaves like a terminal in canonical mode: typed
    characters are echoed, CR ends a line, DEL erases, Ctrl-C drops the line, Ctrl-D on an empty line is EOF."""

    def __init__(self, tty, echo, wake):
        self.tty = tty
        self.echo = echo
        self.wake = wake
        self.lines = []
        self.line = ""
        self.open = True

    def feed(self, data):
        text = to_text(data)
        if not self.tty:
            parts = (self.line + text).split("\n")
            self.lines.extend(p + "\n" for p in parts[:-1])
            self.line = parts[-1]
        else:
            for char in text:
                self._char(char)
        if not self.open and self.line and not self.tty:
            self.lines.append(self.line)
            self.line = ""
        self.wake()

    def _char(self, char):
        if char in "\r\n":
            self.echo("\n")
            self.lines.append(self.line + "\n")
            self.line = ""
        elif char in "\x7f\b":
            if self.line:
                self.line = self.line[:-1]
                self.echo("\b \b")
        elif char == "\x03":
            self.echo("^C\n")
            self.line = ""
            self.lines.append("\n")
        elif char == "\x04":
            if not self.line:
                self.open = False
        else:
            self.line += char
            self.echo(char)

    def close(self):
        if self.open and self.line and not self.tty:
            self.lines.append(self.line)
            self.line = ""
        self.open = False
        self.wake()


def line_shell(proc, flavor, argv0, stdin, prompt=False):
    """A shell reading commands line by line from `stdin` (a LineInput); yields INPUT while it waits.
    With `prompt` (a TTY) it prints the prompt an interactive shell prints."""
    shell = Shell(proc, flavor, argv0, (), proc.env, proc.cwd, IO("", proc.stdout(), proc.stderr()))
    text = "# " if flavor != "bash" else "root@%s:%s# " % (proc.hostname, proc.cwd)
    while True:
        if prompt:
            proc.write(text)
        while not stdin.lines:
            if not stdin.open:
                if prompt:
                    proc.write("\n" if flavor != "bash" else "exit\n")
                return shell.status
            yield INPUT
        line = stdin.lines.pop(0)
        try:
            tree = parse(line)
        except ShellSyntaxError as exc:
            shell.error(shell.io, exc.message)
            shell.status = 2
            continue
        try:
            shell.status = yield from shell._run(tree, shell.io)  # pylint: disable=protected-access
        except ShellExit as done:
            return done.code


def container_stdin_program(proc):
    """The main program of a container with `stdin: true` whose command is a shell reading stdin
    (`kubectl run -i ... -- sh`): it waits for what `kubectl attach` sends. None for other containers."""
    container = proc.container
    if not container.get("stdin") or not reads_script_from_stdin(proc.argv):
        return None
    flavor = SHELL_NAMES.get(posixpath.basename(proc.argv[0])) or proc.profile.shell or "dash"
    run = proc.run
    holder = {}
    stdin = LineInput(bool(container.get("tty")), run.emit, lambda: _wake_main(run, holder))
    run.stdin = stdin
    return _waiting_forever(line_shell(proc, flavor, proc.argv[0], stdin, prompt=bool(container.get("tty"))),
                            holder)


def _waiting_forever(gen, holder):
    """Adapt a generator yielding INPUT to a container's scheduler: waiting for input is waiting forever
    until `_wake_main` reschedules it."""
    value = None
    while True:
        try:
            delay = gen.send(value)
        except StopIteration as stop:
            return stop.value
        holder["waiting"] = delay == INPUT
        value = yield (math.inf if delay == INPUT else delay)


def _wake_main(run, holder):
    if holder.get("waiting") and run.main is not None and not run.finished:
        holder["waiting"] = False
        run.wake(run.main, run.runtime.clock.now())


class ExecProcess(Process):
    """A process started by exec in a running container: its output goes to the session."""

    def __init__(self, session, run, argv):
        base = run.proc
        super().__init__(run, argv, dict(base.env), base.cwd, base.fs, base.profile, base.devices)
        self.session = session
        self.vt = run.runtime.clock.now()

    def now(self):
        return self.vt

    def write(self, text, stream="stdout"):
        self.session.emit(text, stream)

    def stdout(self):
        return Output(lambda text: self.session.emit(text, "stdout"))

    def stderr(self):
        return Output(lambda text: self.session.emit(text, "stderr"))


class _Session(object):
    def __init__(self, runtime, run, tty):
        self.runtime = runtime
        self.run = run
        self.tty = tty
        self.chunks = []
        self.code = None
        self.failure = None

    def emit(self, text, stream="stdout"):
        data = to_bytes(text)
        if self.tty:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            stream = "stdout"
        if self.chunks and self.chunks[-1][0] == stream:
            self.chunks[-1][1].extend(data)
        else:
            self.chunks.append((stream, bytearray(data)))

    def take_output(self):
        """[(stream, bytes)] written since the last call, in the order the process wrote them."""
        chunks, self.chunks = self.chunks, []
        return [(stream, bytes(data)) for stream, data in chunks]

    def feed(self, data):
        del data

    def close_stdin(self):
        pass

    def resize(self, width, height):
        del width, height

    def status(self):
        if self.failure:
            return {"metadata": {}, "status": "Failure", "message": self.failure, "reason": "InternalError",
                    "details": {"causes": [{"message": self.failure}]}, "code": 500}
        if not self.code:
            return {"metadata": {}, "status": "Success"}
        return {"metadata": {}, "status": "Failure",
                "message": "command terminated with non-zero exit code: error executing command %s, exit code %s"
                           % (self.describe(), self.code),
                "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(self.code)}]}}

    def describe(self):
        return ""


class ExecSession(_Session):
    """One `kubectl exec`: step() runs the command up to the current simulated time."""

    def __init__(self, runtime, run, argv, tty, stdin):
        super().__init__(runtime, run, tty)
        self.argv = argv
        self.wants_stdin = stdin
        self.stdin = bytearray()
        self.proc = ExecProcess(self, run, argv)
        self.gen = None
        self.wake = self.proc.vt
        self.waiting_input = False
        self.input = LineInput(tty, self.emit, self._wake_for_input)
        self.line_mode = False
        if not stdin:
            self.input.close()

    def describe(self):
        return "[%s]" % " ".join(self.argv)

    # -- input
    def feed(self, data):
        if self.line_mode or self.tty:
            self.input.feed(data)
        else:
            self.stdin.extend(data)

    def close_stdin(self):
        self.input.close()

    @property
    def stdin_open(self):
        return self.input.open

    def _wake_for_input(self):
        if self.waiting_input:
            self.waiting_input = False
            self.wake = self.runtime.clock.now()

    # -- running
    def _program(self):
        argv = self.argv
        proc = self.proc
        name = posixpath.basename(argv[0])
        profile = proc.profile
        stdin_text = to_text(bytes(self.stdin))
        io = IO(stdin_text, proc.stdout(), proc.stderr())
        if name in SHELL_NAMES and (profile.shell or not profile.known):
            flavor = SHELL_NAMES.get(name) or profile.shell or "dash"
            if self.wants_stdin and reads_script_from_stdin(argv):
                self.line_mode = True
                self.input.feed(bytes(self.stdin))
                return line_shell(proc, flavor, argv[0], self.input, prompt=self.tty)
            from .runtime import run_shell_argv  # pylint: disable=import-outside-toplevel
            return run_shell_argv(proc, argv, io)
        if is_builtin(name) and name not in ("cd", "exit", "export", "set", "eval", ".") or \
                proc.find_command(name) is not None or not profile.known:
            return self._command(io)
        self.failure = ('Internal error occurred: error executing command in container: failed to exec in container: '
                        'failed to start exec "%s": OCI runtime exec failed: exec failed: unable to start container '
                        'process: exec: "%s": executable file not found in $PATH: unknown'
                        % (hashlib.sha256(repr(argv).encode()).hexdigest(), argv[0]))
        return None

    def _command(self, io):
        shell = Shell(self.proc, self.proc.profile.shell or "dash", "sh", (), self.proc.env, self.proc.cwd, io)
        try:
            status = yield from shell.execute(self.argv, io)
        except ShellExit as done:
            status = done.code
        return status

    def step(self):
        """Run up to now; the exit code once the command has ended, else None."""
        if self.code is not None or self.failure:
            return self.code if self.code is not None else 1
        if self.gen is None:
            if self.wants_stdin and self.stdin_open and not self.tty and not \
                    reads_script_from_stdin(self.argv):
                return None                 # the command gets its whole input, as a pipe would give it
            self.gen = self._program()
            if self.gen is None:
                self.code = 1
                return self.code
        now = self.runtime.clock.now()
        steps = 0
        with self.runtime.lock:
            while self.code is None and not self.waiting_input and self.wake <= now:
                self.proc.vt = max(self.proc.vt, self.wake)
                try:
                    delay = next(self.gen)
                except StopIteration as stop:
                    self.code = int(stop.value or 0)
                    break
                except ShellExit as done:
                    self.code = int(done.code)
                    break
                except Exception as exc:  # pylint: disable=broad-except
                    # a bug in a simulated command: reported like a crashed program, never a dropped stream
                    meta = self.run.pod["metadata"]
                    self.runtime.log("exec in %s/%s: %r" % (meta["namespace"], meta["name"], exc))
                    self.emit("panic: %s\n" % exc, "stderr")
                    self.code = 2
                    break
                if delay == INPUT:
                    if self.input.lines or not self.input.open:
                        continue
                    self.waiting_input = True
                    break
                delay = float(delay or 0.0)
                steps = steps + 1 if delay <= 0 else 0
                if steps > _BUSY_STEPS:
                    delay = math.inf
                self.wake = self.proc.vt + delay
        return self.code

    def idle_seconds(self):
        """Real seconds until the command next has something to do (input wakes the connection anyway)."""
        if self.code is not None or self.failure:
            return 0.0
        if self.gen is None or self.waiting_input or self.wake == math.inf:
            return IDLE_SECONDS
        delay = self.runtime.clock.real_seconds(self.wake - self.runtime.clock.now())
        return min(max(delay, POLL_SECONDS), IDLE_SECONDS)

    def cancel(self):
        if self.gen is not None and self.code is None:
            self.gen.close()
            self.code = 137


class AttachSession(_Session):
    """`kubectl attach`: the main process's output from now on, until it exits; what is typed goes to its
    standard input when the container has `stdin: true` (closed after the first session with `stdinOnce`)."""

    def __init__(self, runtime, run, tty):
        super().__init__(runtime, run, tty)
        self.last = run.output[-1] if run.output else None

    def feed(self, data):
        stdin = getattr(self.run, "stdin", None)
        if stdin is not None and stdin.open:
            with self.runtime.lock:
                stdin.feed(data)

    def close_stdin(self):
        stdin = getattr(self.run, "stdin", None)
        if stdin is not None and self.run.container.get("stdinOnce"):
            with self.runtime.lock:
                stdin.close()

    def step(self):
        run = self.run
        was_finished = run.finished
        run.advance(self.runtime.clock.now())
        if run.finished and not was_finished:
            self.runtime.notify(run)           # the kubelet looks at the pod again (as after an HTTP /exit)
        with self.runtime.lock:
            chunks = list(run.output)
        start = 0
        if self.last is not None:
            for index in range(len(chunks) - 1, -1, -1):
                if chunks[index] is self.last:
                    start = index + 1
                    break
        for chunk in chunks[start:]:
            self.emit(chunk[2], chunk[1])
        if chunks:
            self.last = chunks[-1]
        current = self.runtime._get(PODS, run.pod["metadata"]["namespace"], run.pod["metadata"]["name"])  # pylint: disable=protected-access
        if run.finished or current is None:
            self.code = 0
        return self.code

    @staticmethod
    def idle_seconds():
        return 3 * POLL_SECONDS         # the container prints on its own schedule

    def cancel(self):
        self.code = 0 if self.code is None else self.code
