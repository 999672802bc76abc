"""Fault injection: the broken API servers and nodes a conformance tool meets on real clusters.

Faults are configured by a scenario's `settings.faults` and can be changed while the cluster runs
(`sim.faults.set(errorRate=0.3)`, `sim.faults.clear()`); the API server, the admission webhook caller and
the kubelet ask this object before they act. Nothing here touches a client: clients see real HTTP
answers, dropped connections and real pod states.

    settings:
      faults:
        seed: 7                      # the random choices below are reproducible for one request order
        latencyMs: 0                 # added before every API request is served (plus up to latencyJitterMs)
        latencyJitterMs: 0
        errorRate: 0.0               # fraction of API requests answered with one of errorCodes instead
        errorCodes: [429, 503]       # 429 TooManyRequests and 503 carry Retry-After, as kube-apiserver's do
        retryAfterSeconds: 1
        outage: null                 # {after: {method: POST, pathContains: /pods}, delaySeconds: 1, seconds: 4}:
                                     #   connections are dropped without an answer during the window; without
                                     #   `after` the window starts `delaySeconds` after the fault was set
        dropWatches: null            # {afterSeconds: 1}: every watch stream is cut (no final chunk) after that long
        podsNeverStart: null         # {namespacePrefix: aic-, reason: ImagePullBackOff}: the kubelet never starts
                                     #   containers of matching pods (they stay Pending, waiting with `reason`)
        webhookTimeout: false        # every admission webhook call hangs until its timeoutSeconds (simulated
                                     #   time) and fails with "context deadline exceeded"
        httpAnswers: []              # [{podPrefix: nvidia-dcgm-exporter, path: /metrics, status: 200, body: ...}]:
                                     #   what matching pods answer over pods/proxy, services/proxy and webhooks
                                     #   instead of their app (body: str or bytes, e.g. non-UTF-8 or huge)

Only resource and discovery requests are faulted, never /healthz, /livez or /readyz (what load balancers
probe). `stats` counts what was injected, so a test can show a fault really happened.
"""
from __future__ import annotations

import copy
import random
import socket
import threading
import time

from .errors import ApiError

DEFAULTS = {
    "seed": 0,
    "latencyMs": 0,
    "latencyJitterMs": 0,
    "errorRate": 0.0,
    "errorCodes": [429, 503],
    "retryAfterSeconds": 1,
    "outage": None,
    "dropWatches": None,
    "podsNeverStart": None,
    "webhookTimeout": False,
    "httpAnswers": [],
}
EXEMPT_PATHS = ("/healthz", "/livez", "/readyz")
MESSAGES = {
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", "Internal error occurred: the server is currently unable to handle the request"),
    502: ("", "the server could not reach its backend (bad gateway)"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "Timeout: request did not complete within the allotted timeout"),
}


class Faults(object):
    """The fault switches of one simulated cluster (thread-safe; read by server, admission, kubelet)."""

    def __init__(self, sim, settings=None):
        self.sim = sim
        self.lock = threading.Lock()
        self.config = copy.deepcopy(DEFAULTS)
        self.stats = {}
        self._rng = random.Random(0)
        self._outage_start = None
        self._outage_end = None
        self._set_at = time.monotonic()
        self.set(**(settings or {}))

    # ------------------------------------------------------------------------------- configuration
    def set(self, **changes):
        """Change switches (unknown names are an error, so a typo never silently injects nothing)."""
        unknown = sorted(set(changes) - set(DEFAULTS))
        if unknown:
            raise ValueError("unknown fault setting(s) %s; known: %s" % (", ".join(unknown), ", ".join(sorted(DEFAULTS))))
        with self.lock:
            self.config.update(copy.deepcopy(changes))
            if "seed" in changes:
                self._rng = random.Random(self.config["seed"])
            if "outage" in changes:
                self._outage_start = self._outage_end = None
                self._set_at = time.monotonic()
                outage = self.config["outage"]
                if outage and not outage.get("after"):
                    self._arm_outage(outage)
        return self

    def clear(self):
        """Back to a healthy cluster (statistics are kept)."""
        return self.set(**copy.deepcopy(DEFAULTS))

    def active(self):
        config = self.config
        return bool(config["latencyMs"] or config["latencyJitterMs"] or config["errorRate"] or config["outage"]
                    or config["dropWatches"] or config["podsNeverStart"] or config["webhookTimeout"])

    def _count(self, what):
        self.stats[what] = self.stats.get(what, 0) + 1

    def _arm_outage(self, outage):
        self._outage_start = time.monotonic() + float(outage.get("delaySeconds") or 0)
        self._outage_end = self._outage_start + float(outage.get("seconds") or 0)

    # ------------------------------------------------------------------------------- API requests
    def before_request(self, req, path):
        """Called by the API server before it serves a request. Returns True when the fault answered (or
        dropped) the request, so the server must not serve it."""
        if path.startswith(EXEMPT_PATHS) or not self.active():
            return False
        with self.lock:
            config = self.config
            delay = (float(config["latencyMs"]) + self._rng.random() * float(config["latencyJitterMs"])) / 1000.0
            outage = config["outage"]
            if outage and self._outage_start is None and _matches(outage.get("after"), req.command, path):
                self._arm_outage(outage)
            now = time.monotonic()
            in_outage = self._outage_start is not None and self._outage_start <= now < self._outage_end
            code = None
            if not in_outage and config["errorRate"] and self._rng.random() < float(config["errorRate"]):
                code = self._rng.choice(list(config["errorCodes"]))
            self._count("outage" if in_outage else "error-%d" % code if code else "latency" if delay else "passed")
        if delay:
            time.sleep(delay)
        if in_outage:
            _drop(req)
            return True
        if code:
            reason, message = MESSAGES.get(code, ("", "injected error %d" % code))
            headers = []
            if code in (429, 503):
                headers.append(("Retry-After", str(int(self.config["retryAfterSeconds"]))))
            error = ApiError(code, reason, message, {"retryAfterSeconds": int(self.config["retryAfterSeconds"])}
                             if headers else None)
            req.send_body(code, _dumps(error.status()), headers=headers)
            return True
        return False

    def watch_cut_at(self):
        """Monotonic time at which a watch starting now is cut, or None."""
        drop = self.config["dropWatches"]
        if not drop:
            return None
        with self.lock:
            self._count("watch-cut")
        return time.monotonic() + float(drop.get("afterSeconds") or 0)

    # ------------------------------------------------------------------------------- webhooks
    def webhook_timeout(self, hook):
        """When webhook calls time out: wait the hook's timeout (in simulated time) and return the error
        text kube-apiserver reports; None when the call should go ahead."""
        if not self.config["webhookTimeout"]:
            return None
        timeout = int(hook.get("timeoutSeconds", 10))
        with self.lock:
            self._count("webhook-timeout")
        time.sleep(self.sim.clock.real_seconds(timeout))
        return "context deadline exceeded"

    # ------------------------------------------------------------------------------- apps
    def http_answer(self, pod, path):
        """(status, headers, body) a matching httpAnswers entry makes the pod's app answer, else None."""
        for answer in self.config["httpAnswers"] or ():
            if not pod["metadata"]["name"].startswith(answer.get("podPrefix") or ""):
                continue
            if answer.get("path") and answer["path"] != "/" + path.lstrip("/"):
                continue
            body = answer.get("body") or b""
            with self.lock:
                self._count("http-answer")
            return (int(answer.get("status", 200)),
                    {"Content-Type": answer.get("contentType") or "text/plain; version=0.0.4; charset=utf-8"},
                    body.encode() if isinstance(body, str) else bytes(body))
        return None

    # ------------------------------------------------------------------------------- kubelet
    def blocks_start(self, pod):
        """(reason, message) when the kubelet must not start this pod's containers, else None."""
        never = self.config["podsNeverStart"]
        if not never:
            return None
        namespace = pod["metadata"].get("namespace") or ""
        if not namespace.startswith(never.get("namespacePrefix") or ""):
            return None
        reason = never.get("reason") or "ImagePullBackOff"
        images = ", ".join(sorted({c.get("image") or "" for c in pod["spec"].get("containers") or []}))
        with self.lock:
            self._count("pod-blocked")
        return reason, 'Back-off pulling image "%s": ErrImagePull: failed to pull and unpack image: not found' % images


def _matches(trigger, method, path):
    if not trigger:
        return False
    if trigger.get("method") and trigger["method"].upper() != method:
        return False
    return not trigger.get("pathContains") or trigger["pathContains"] in path


def _drop(req):
    """An outage as a client sees it: the connection closes without an answer."""
    req.close_connection = True
    try:
        req.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _dumps(obj):
    import json
    return json.dumps(obj, separators=(",", ":")).encode()
