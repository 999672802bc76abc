"""Simulated programs of well-known images, and the generic app for every other image.

An app is `factory(proc)` returning a program generator (or None to decline): it prints what the real
program prints at start, listens on its ports (`proc.listen(port, handler)`) and yields the simulated
seconds it sleeps (`math.inf`: runs until stopped).

* pause: waits forever.
* agnhost (registry.k8s.io/e2e-test-images/agnhost): `netexec` (/, /hostname, /echo, /clientip,
  /shell, /healthz, /header, /exit), `serve-hostname`, `pause`, `porter`, `test-webserver`,
  `entrypoint-tester`, `logs-generator`.
* hashicorp/http-echo: `-text`, `-listen`, `-status-code`.
* nginx: the welcome page on port 80.
* curlimages/curl: its entrypoint (arguments starting with "-" go to curl).
* nvidia/cuda: the entrypoint wrapper runs its arguments.
* generic: runs forever, ready, prints a klog-style start line, answers /healthz, /readyz, /livez,
  /metrics and admission/conversion reviews on its declared container ports. As an init container, or
  in a pod whose restartPolicy is not Always (a job), it finishes successfully after a few seconds.
"""
from __future__ import annotations

import datetime
import json
import math
import re
import urllib.parse

from .runtime_shell import IO, Capture

GENERIC_INIT_SECONDS = 2.0
GENERIC_JOB_SECONDS = 5.0


def _go_log_time(proc):
    return datetime.datetime.fromtimestamp(proc.now(), tz=datetime.timezone.utc).strftime("%Y/%m/%d %H:%M:%S")


def _klog_prefix(proc, level="I"):
    when = datetime.datetime.fromtimestamp(proc.now(), tz=datetime.timezone.utc)
    return "%s%s       1 " % (level, when.strftime("%m%d %H:%M:%S.%f"))


def _flags(args):
    """--name=value / --name value / -name=value flags and positional args."""
    flags, positional = {}, []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.startswith("-") and len(arg) > 1:
            name, eq, value = arg.lstrip("-").partition("=")
            if not eq:
                if index < len(args) and not args[index].startswith("-"):
                    value = args[index]
                    index += 1
                else:
                    value = "true"
            flags[name] = value
        else:
            positional.append(arg)
    return flags, positional


def _text(status, body, content_type="text/plain; charset=utf-8"):
    return status, {"Content-Type": content_type}, body


# ===================================================================================== pause
def pause_app(proc):
    yield math.inf
    return 0


# ===================================================================================== agnhost
def agnhost_app(proc):
    args = proc.argv[1:] if proc.argv and proc.argv[0].endswith("agnhost") else proc.argv
    if not args:
        proc.write("Usage:\n  app [command]\n\nAvailable Commands:\n  netexec\n  pause\n  serve-hostname\n")
        return _finish(0)
    sub, rest = args[0], args[1:]
    handlers = {"netexec": _netexec, "serve-hostname": _serve_hostname, "pause": _agn_pause, "porter": _porter,
                "test-webserver": _test_webserver, "entrypoint-tester": _entrypoint_tester,
                "logs-generator": _logs_generator}
    handler = handlers.get(sub)
    if handler is None:
        proc.write('Error: unknown command "%s" for "app"\nRun \'app --help\' for usage.\n' % sub, "stderr")
        return _finish(1)
    return handler(proc, rest)


def _finish(code):
    return code
    yield  # pylint: disable=unreachable


def _netexec(proc, args):
    flags = _flags(args)[0]
    port = int(flags.get("http-port", 8080))
    udp = int(flags.get("udp-port", 8081))

    def handle(req):
        path = req.path
        query = urllib.parse.parse_qs(req.query)
        if path in ("/", ""):
            return _text(200, "NOW: %s" % datetime.datetime.fromtimestamp(
                proc.runtime.clock.now(), tz=datetime.timezone.utc).isoformat())
        if path == "/hostname":
            return _text(200, proc.hostname)
        if path == "/echo":
            return _text(200, (query.get("msg") or [""])[0])
        if path == "/clientip":
            return _text(200, "%s:%d" % (req.client_ip or "127.0.0.1", 40000 + len(req.client_ip) % 1000))
        if path == "/header":
            return _text(200, req.headers.get(((query.get("key") or [""])[0]).lower(), ""))
        if path == "/healthz":
            return _text(200, "")
        if path == "/shell":
            output = _run_shell_sync(proc, (query.get("shellCommand") or query.get("cmd") or [""])[0])
            return _text(200, json.dumps({"output": output}), "application/json")
        if path == "/exit":
            proc.exit(int((query.get("code") or ["0"])[0]))
            return _text(200, "")
        return _text(404, "404 page not found\n")

    proc.listen(port, handle)
    proc.write("%s Started HTTP server on port %d\n" % (_go_log_time(proc), port))
    proc.write("%s Started UDP server on port  %d\n" % (_go_log_time(proc), udp))
    return _forever()


def _run_shell_sync(proc, command):
    """netexec /shell: run a command to completion right away (sleeps inside do not wait)."""
    from .runtime import run_shell_argv   # pylint: disable=import-outside-toplevel
    out = Capture()
    gen = run_shell_argv(proc, ["/bin/sh", "-c", command], IO("", out, out))
    try:
        for _step in range(100000):
            next(gen)
    except StopIteration:
        pass
    return out.text()


def _serve_hostname(proc, args):
    flags = _flags(args)[0]
    port = int(flags.get("port", 9376))
    proc.listen(port, lambda req: _text(200, proc.hostname))
    proc.write("Serving on port %d.\n" % port)
    yield math.inf
    return 0


def _agn_pause(proc, args):
    proc.write("Paused\n")
    yield math.inf
    return 0


def _porter(proc, args):
    """SERVE_PORT_<port>=<text> env vars: serve the text on the port."""
    for name, value in proc.env.items():
        match = re.match(r"^SERVE_(?:TLS_)?PORT_(\d+)$", name)
        if match:
            proc.listen(int(match.group(1)), lambda req, text=value: _text(200, text))
            proc.write("Listening on %s\n" % match.group(1))
    yield math.inf
    return 0


def _test_webserver(proc, args):
    flags = _flags(args)[0]
    port = int(flags.get("port", 80))
    proc.listen(port, lambda req: _text(200, "NOW: %s" % datetime.datetime.fromtimestamp(
        proc.runtime.clock.now(), tz=datetime.timezone.utc).isoformat()))
    proc.write("Serving on port %d.\n" % port)
    yield math.inf
    return 0


def _entrypoint_tester(proc, args):
    proc.write("%s\n" % " ".join(["/agnhost", "entrypoint-tester"] + list(args)))
    return _finish(0)


def _logs_generator(proc, args):
    flags, positional = _flags(args)
    total = int(flags.get("log-lines-total", positional[0] if positional else 10))
    duration = _duration(flags.get("run-duration", positional[1] if len(positional) > 1 else "10s"))
    step = duration / max(total, 1)
    for number in range(total):
        when = datetime.datetime.fromtimestamp(proc.now(), tz=datetime.timezone.utc)
        proc.write("%s %d %s /api/v1/namespaces/kube-system/pods/%d %d\n" % (
            when.strftime("%m%d %H:%M:%S.%f"), number, "GET", number, 200 + number % 3))
        yield step
    return 0


def _duration(text):
    match = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$", str(text))
    if not match:
        return 10.0
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


# ===================================================================================== http-echo
def http_echo_app(proc):
    args = proc.argv[1:] if proc.argv and proc.argv[0].endswith("http-echo") else proc.argv
    flags = _flags(args)[0]
    text = flags.get("text", proc.env.get("ECHO_TEXT"))
    if text is None:
        proc.write("[ERR] Missing -text option!\n", "stderr")
        return _finish(127)
    listen = flags.get("listen", ":" + proc.env.get("ECHO_PORT", "5678"))
    port = int(listen.rsplit(":", 1)[-1])
    status = int(flags.get("status-code", 200))

    def handle(req):
        if req.path == "/health":
            return _text(200, '{"status":"ok"}', "application/json")
        body = text + "\n"
        proc.write('%s %s %s:%d "%s %s HTTP/1.1" %d %d "%s" 27.958µs\n' % (
            _go_log_time(proc), req.host or "localhost:%d" % port, req.client_ip or "127.0.0.1", 53142,
            req.method, req.path, status, len(body), req.headers.get("user-agent", "")))
        return _text(status, body)

    proc.listen(port, handle)
    proc.write("%s [INFO] server is listening on %s\n" % (_go_log_time(proc), listen))
    return _forever()


def _forever():
    yield math.inf
    return 0


# ===================================================================================== nginx
_NGINX_PAGE = ("<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n"
               "<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed"
               " and\nworking. Further configuration is required.</p>\n</body>\n</html>\n")


def nginx_app(proc):
    argv = proc.argv
    if argv and argv[0].endswith("docker-entrypoint.sh"):
        argv = argv[1:]
    if not argv or argv[0] != "nginx":
        return None
    proc.write("/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform "
               "configuration\n/docker-entrypoint.sh: Configuration complete; ready for start up\n")
    proc.listen(80, lambda req: _text(200, _NGINX_PAGE, "text/html") if req.path in ("/", "/index.html")
                else _text(404, "<html>\n<head><title>404 Not Found</title></head>\n</html>\n", "text/html"))
    return _forever()


# ===================================================================================== wrappers
def curl_entrypoint_app(proc):
    """curlimages/curl's entrypoint.sh: `-...` arguments are curl's; anything else is exec'd."""
    from .runtime import run_shell_argv   # pylint: disable=import-outside-toplevel
    argv = proc.argv[1:] if proc.argv and proc.argv[0].endswith("entrypoint.sh") else proc.argv
    if not argv or argv[0].startswith("-"):
        argv = ["curl"] + list(argv)
    return run_shell_argv(proc, ["/bin/sh", "-c", " ".join(_quote(a) for a in argv)],
                          IO("", proc.stdout(), proc.stderr()))


def exec_wrapper_app(proc):
    """Entrypoints that only `exec "$@"` (nvidia/cuda's nvidia_entrypoint.sh)."""
    from .runtime import run_shell_argv   # pylint: disable=import-outside-toplevel
    argv = proc.argv[1:] if proc.argv and proc.argv[0] == proc.profile.entrypoint[0] else proc.argv
    if not argv:
        return _finish(0)
    return run_shell_argv(proc, ["/bin/sh", "-c", " ".join(_quote(a) for a in argv)],
                          IO("", proc.stdout(), proc.stderr()))


def _quote(arg):
    if arg and re.match(r"^[A-Za-z0-9_./=:,+-]+$", arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


# ===================================================================================== generic
def generic_app(proc):
    """A long-running process of an image we do not model (an operator, a controller, a server)."""
    spec = proc.pod.get("spec") or {}
    name = proc.container.get("name")
    proc.write('%s main.go:42] "Starting" component="%s" image="%s"\n' % (
        _klog_prefix(proc), name, proc.run.image))
    if proc.init:
        yield GENERIC_INIT_SECONDS
        proc.write('%s main.go:58] "Completed" component="%s"\n' % (_klog_prefix(proc), name))
        return 0
    if (spec.get("restartPolicy") or "Always") != "Always":
        yield GENERIC_JOB_SECONDS
        proc.write('%s main.go:58] "Completed" component="%s"\n' % (_klog_prefix(proc), name))
        return 0
    ports = [int(p["containerPort"]) for p in proc.container.get("ports") or () if p.get("containerPort")]
    for port in ports:
        proc.listen(port, lambda req: generic_http(proc, req))
    if ports:
        proc.write('%s server.go:77] "Serving" addresses=[%s]\n' % (
            _klog_prefix(proc), ",".join('":%d"' % p for p in ports)))
    yield math.inf
    return 0


def generic_http(proc, req):
    """Health endpoints, a small metrics page, and allow-everything admission/conversion reviews."""
    if req.method == "POST" and req.body:
        try:
            review = json.loads(req.body)
        except ValueError:
            review = None
        if isinstance(review, dict) and review.get("kind") == "AdmissionReview":
            request = review.get("request") or {}
            return _text(200, json.dumps({"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                                          "kind": "AdmissionReview",
                                          "response": {"uid": request.get("uid"), "allowed": True}}),
                         "application/json")
        if isinstance(review, dict) and review.get("kind") == "ConversionReview":
            request = review.get("request") or {}
            converted = []
            for obj in request.get("objects") or ():
                obj = dict(obj)
                obj["apiVersion"] = request.get("desiredAPIVersion", obj.get("apiVersion"))
                converted.append(obj)
            return _text(200, json.dumps({"apiVersion": review.get("apiVersion"), "kind": "ConversionReview",
                                          "response": {"uid": request.get("uid"), "convertedObjects": converted,
                                                       "result": {"status": "Success"}}}), "application/json")
    if req.path in ("/healthz", "/readyz", "/livez", "/health", "/ready", "/"):
        return _text(200, "ok")
    if req.path == "/metrics":
        started = proc.run.started_at
        return _text(200, "# HELP process_start_time_seconds Start time of the process since unix epoch in "
                          "seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n"
                          % started, "text/plain; version=0.0.4; charset=utf-8")
    return _text(404, "404 page not found\n")


def register_all(runtime):
    runtime.register_app("*/pause", pause_app)
    runtime.register_app("*/e2e-test-images/agnhost", agnhost_app)
    runtime.register_app("*/hashicorp/http-echo", http_echo_app)
    runtime.register_app("*/library/nginx", nginx_app)
    runtime.register_app("*/curlimages/curl", curl_entrypoint_app)
    runtime.register_app("*/nvidia/cuda", exec_wrapper_app)
