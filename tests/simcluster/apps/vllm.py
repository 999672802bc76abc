"""An OpenAI-compatible LLM server with vLLM's Prometheus metrics: vLLM (vllm/vllm-openai) and the CPU-only
vLLM simulator llm-d-inference-sim (ghcr.io/llm-d/llm-d-inference-sim).

What the real servers do that the checks rely on, and how far this app follows it:

* `--port` (default 8000) serves `GET /health`, `GET /v1/models`, `POST /v1/completions` and
  `POST /v1/chat/completions` (a short canned answer, `usage` filled in) and `GET /metrics` in the Prometheus
  text format with vLLM's metric names: `vllm:request_success_total{finished_reason,model_name}` (counter),
  `vllm:num_requests_running` / `vllm:num_requests_waiting` (gauges), `vllm:prompt_tokens_total` /
  `vllm:generation_tokens_total` (counters) and `vllm:e2e_request_latency_seconds` (histogram).
* `--model` (or `--served-model-name`) names the model; requests for another model answer 404 as vLLM does.
* llm-d-inference-sim only: with the environment variables POD_NAME / POD_NAMESPACE set, every answer carries the
  headers `x-inference-pod` / `x-inference-namespace` (its README, "Environment variables"); vLLM has no such headers.
* Not modelled: real generation, batching, KV cache, GPU memory.
"""
from __future__ import annotations

import json

IMAGE_PATTERNS = ("*/llm-d/llm-d-inference-sim", "*/vllm/vllm-openai")
BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, float("inf"))
LATENCY = 0.42          # seconds each canned request "takes"


def _flags(argv):
    out, key = {}, None
    for arg in argv[1:] if argv and not argv[0].startswith("-") else argv:
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg[2:].split("=", 1)
                out[name] = value
                key = None
            else:
                key = arg[2:]
                out[key] = ""
        elif key is not None:
            out[key] = arg
            key = None
    return out


class Server(object):
    def __init__(self, proc):
        flags = _flags(proc.argv)
        self.model = flags.get("served-model-name") or flags.get("model") or "facebook/opt-125m"
        self.port = int(flags.get("port") or 8000)
        self.success = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0

    def metrics(self):
        label = 'model_name="%s"' % self.model
        lines = [
            "# HELP vllm:num_requests_running Number of requests currently running on GPU.",
            "# TYPE vllm:num_requests_running gauge", "vllm:num_requests_running{%s} 0" % label,
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge", "vllm:num_requests_waiting{%s} 0" % label,
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
            'vllm:request_success_total{finished_reason="stop",%s} %d' % (label, self.success),
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter", "vllm:prompt_tokens_total{%s} %d" % (label, self.prompt_tokens),
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            "vllm:generation_tokens_total{%s} %d" % (label, self.generation_tokens),
            "# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.",
            "# TYPE vllm:e2e_request_latency_seconds histogram",
        ]
        for bound in BUCKETS:
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append('vllm:e2e_request_latency_seconds_bucket{%s,le="%s"} %d'
                         % (label, le, self.success if LATENCY <= bound else 0))
        lines.append("vllm:e2e_request_latency_seconds_sum{%s} %.2f" % (label, LATENCY * self.success))
        lines.append("vllm:e2e_request_latency_seconds_count{%s} %d" % (label, self.success))
        return "\n".join(lines) + "\n"

    def handle(self, req):
        if req.path == "/metrics" and req.method == "GET":
            return 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, self.metrics()
        if req.path in ("/health", "/ping") and req.method == "GET":
            return 200, {"Content-Type": "application/json"}, ""
        if req.path == "/v1/models" and req.method == "GET":
            return _json(200, {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "vllm"}]})
        if req.path in ("/v1/completions", "/v1/chat/completions") and req.method == "POST":
            try:
                body = json.loads(req.body or b"{}")
            except ValueError:
                return _json(400, {"object": "error", "type": "BadRequestError", "message": "invalid JSON body", "code": 400})
            if body.get("model") not in (None, self.model):
                return _json(404, {"object": "error", "type": "NotFoundError", "code": 404,
                                   "message": "The model `%s` does not exist." % body.get("model")})
            prompt = body.get("prompt") or " ".join(str(m.get("content", "")) for m in body.get("messages") or ())
            prompt_tokens = max(1, len(str(prompt).split()))
            self.success += 1
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += 5
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 5, "total_tokens": prompt_tokens + 5}
            if req.path == "/v1/completions":
                choice = {"index": 0, "text": " Kubernetes runs it.", "finish_reason": "stop"}
                return _json(200, {"id": "cmpl-%d" % self.success, "object": "text_completion", "model": self.model,
                                   "choices": [choice], "usage": usage})
            choice = {"index": 0, "message": {"role": "assistant", "content": "Kubernetes runs it."}, "finish_reason": "stop"}
            return _json(200, {"id": "chatcmpl-%d" % self.success, "object": "chat.completion", "model": self.model,
                               "choices": [choice], "usage": usage})
        return _json(404, {"detail": "Not Found"})


def _json(status, doc):
    return status, {"Content-Type": "application/json"}, json.dumps(doc)


def server_app(proc):
    if proc.init:
        return None
    return _serve(proc)


def _serve(proc):
    server = Server(proc)
    handler = server.handle
    if "llm-d-inference-sim" in (proc.container.get("image") or ""):
        handler = _with_pod_headers(server.handle, proc.env.get("POD_NAME"), proc.env.get("POD_NAMESPACE"))
    proc.listen(server.port, handler)
    proc.write("INFO:     Started server process [1]\nINFO:     Uvicorn running on http://0.0.0.0:%d\n" % server.port)
    yield float("inf")


def _with_pod_headers(handle, pod_name, pod_namespace):
    """llm-d-inference-sim's x-inference-pod / x-inference-namespace response headers (when the env is set)."""
    extra = {}
    if pod_name:
        extra["x-inference-pod"] = pod_name
    if pod_namespace:
        extra["x-inference-namespace"] = pod_namespace

    def wrapped(req):
        status, headers, body = handle(req)
        return status, dict(headers or {}, **extra), body
    return wrapped


def register(sim):
    for pattern in IMAGE_PATTERNS:
        sim.runtime.register_app(pattern, server_app)
