"""Disaggregated (prefill/decode) serving as llm-d deploys it: vLLM prefill and decode servers with a KV
connector, the routing sidecar in front of each decode server, and the inference scheduler (EPP) that picks
a decode and a prefill endpoint for each request.

What the real components do that the disaggregated_inference check relies on, and how far these apps follow:

* vLLM (`vllm serve ... --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'`, images
  vllm/vllm-openai, llm-d/llm-d, llm-d/llm-d-cuda): the OpenAI server of apps/vllm.py, plus what vLLM does for
  P/D. The request id is `cmpl-<X-Request-Id header>` (vLLM's `_base_request_id` takes the header when present,
  else a random uuid) and, with `--enable-log-requests` (off by default since vLLM 0.10.2), the engine logs
  `Received request cmpl-<id>-0: prompt: ...` and `Added request cmpl-<id>-0.` for every request it handles.
  A request with `kv_transfer_params.do_remote_decode: true` (the prefill leg) answers with the
  kv_transfer_params the decode leg needs (`do_remote_prefill`, `remote_engine_id`, `remote_block_ids`,
  `remote_host`, `remote_port`); a request with `do_remote_prefill: true` (the decode leg) logs that it reads
  the KV blocks from that engine. Without a KV connector the server is the plain apps/vllm.py one.
* llm-d routing sidecar (llm-d/llm-d-routing-sidecar, flags `-port` (8000), `-vllm-port` (8001), `-connector`
  (nixlv2)): a request carrying `x-prefiller-host-port` (or the older `x-prefiller-url`) is sent first to that
  prefill server (stream off, max_tokens 1, do_remote_decode) and then to the local decode vLLM with the prefill
  answer's kv_transfer_params (nixlv2 protocol, internal/proxy/connector_nixlv2.go). The sidecar adds its own
  uuid as x-request-id with Header.Add, so a client's x-request-id stays the first value, the one vLLM reads.
  Without the header the request goes to the local decoder alone (aggregated serving).
* llm-d-inference-sim in a P/D pod (an `llm-d.ai/role` label or a KV connector): the same server, logging every
  request (wiring only: nothing is prefilled or transferred).
* llm-d inference scheduler (llm-d/llm-d-inference-scheduler, the Inference Extension's EPP with the
  pd-profile-handler): picks a decode pod and a prefill pod among the pool's pods (labels
  `llm-d.ai/inferenceServing=true` and `llm-d.ai/role` = decode / prefill) and sets `x-prefiller-host-port`.
  Simplification: the real EPP answers Envoy's ext_proc calls (gRPC, `--grpc-port` 9002) and Envoy forwards to
  the pool's target port (8000); here the Gateway's HTTPRoute targets the EPP's Service on that port and the
  simulated EPP forwards the HTTP request itself.
  Without a Ready prefill pod it routes to a decode pod without the header, as the real one does.
* Not modelled: real KV transfer (NIXL side channel), generation, streaming, the EPP's scorers.
"""
from __future__ import annotations

import json
import uuid

from . import vllm

VLLM_PATTERNS = ("*/vllm/vllm-openai", "*/llm-d/llm-d", "*/llm-d/llm-d-cuda", "*/llm-d/llm-d-inference-sim")
SIDECAR_PATTERN = "*/llm-d/llm-d-routing-sidecar"
EPP_PATTERN = "*/llm-d/llm-d-inference-scheduler"
PREFILL_HEADERS = ("x-prefiller-host-port", "x-prefiller-url")


def _timestamp(proc):
    return proc.runtime.clock.timestamp()


def _flags(argv):
    """vllm.py's flag reader, also for Go-style single-dash flags (-port=8000, -vllm-port 8001)."""
    argv = ["-" + a if a.startswith("-") and not a.startswith("--") else a for a in argv]
    return vllm._flags(argv)  # pylint: disable=protected-access


class DisaggServer(vllm.Server):
    """apps/vllm.py's server with vLLM's request log and the KV connector's side of P/D."""

    def __init__(self, proc):
        super(DisaggServer, self).__init__(proc)
        flags = _flags(proc.argv)
        self.proc = proc
        self.log_requests = "enable-log-requests" in flags
        self.connector = flags.get("kv-transfer-config") or ""
        self.engine_id = str(uuid.uuid5(uuid.NAMESPACE_URL, proc.pod["metadata"].get("uid") or proc.hostname))
        argv = list(proc.argv)
        after = argv[argv.index("serve") + 1:argv.index("serve") + 2] if "serve" in argv[:2] else []
        if after and not after[0].startswith("-") and not (flags.get("served-model-name") or flags.get("model")):
            self.model = after[0]                           # `vllm serve MODEL`
        if "/llm-d/llm-d-inference-sim" in (proc.container.get("image") or ""):
            self.log_requests = True                        # the simulator logs each request it handles

    def handle(self, req):
        if req.method != "POST" or req.path not in ("/v1/completions", "/v1/chat/completions"):
            return super(DisaggServer, self).handle(req)
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            body = None
        request_id = "cmpl-%s-0" % (req.headers.get("x-request-id") or uuid.uuid4().hex)
        kv_params = (body or {}).get("kv_transfer_params") if isinstance(body, dict) else None
        if self.log_requests and body is not None:
            self.proc.write("INFO %s [logger.py:43] Received request %s: prompt: %r, params: SamplingParams(n=1, "
                            "max_tokens=%s), prompt_token_ids: None, prompt_embeds shape: None, lora_request: None.\n"
                            % (_timestamp(self.proc), request_id, str(body.get("prompt") or "")[:80],
                               body.get("max_tokens")))
            self.proc.write("INFO %s [async_llm.py:270] Added request %s.\n" % (_timestamp(self.proc), request_id))
        if self.connector and isinstance(kv_params, dict) and kv_params.get("do_remote_prefill"):
            self.proc.write("DEBUG %s [nixl_connector.py:1021] Remote agent %s available, reading %d blocks for "
                            "request %s\n" % (_timestamp(self.proc), kv_params.get("remote_engine_id"),
                                              len(kv_params.get("remote_block_ids") or ()), request_id))
        status, headers, out = super(DisaggServer, self).handle(req)
        self.proc.write('INFO:     %s:0 - "POST %s HTTP/1.1" %d\n' % (req.client_ip or "-", req.path, status))
        if status == 200 and self.connector and isinstance(kv_params, dict) and kv_params.get("do_remote_decode"):
            doc = json.loads(out)
            doc["kv_transfer_params"] = {"do_remote_prefill": True, "do_remote_decode": False,
                                         "remote_engine_id": self.engine_id, "remote_block_ids": [1, 2, 3],
                                         "remote_host": self.proc.pod_ip, "remote_port": 5600, "tp_size": 1}
            out = json.dumps(doc)
        return status, headers, out


def vllm_app(proc):
    """P/D vLLM servers (a KV connector configured) and every llm-d vLLM image; others: apps/vllm.py."""
    if proc.init:
        return None
    flags = _flags(proc.argv)
    image = proc.container.get("image") or ""
    role = (proc.pod["metadata"].get("labels") or {}).get("llm-d.ai/role")
    if "kv-transfer-config" not in flags and not role and "/llm-d/llm-d-inference-sim" in image:
        return None
    if "kv-transfer-config" not in flags and "/vllm/vllm-openai" in image:
        return None
    return _serve_vllm(proc)


def _serve_vllm(proc):
    server = DisaggServer(proc)
    proc.listen(server.port, server.handle)
    proc.write("INFO:     Started server process [1]\nINFO:     Uvicorn running on http://0.0.0.0:%d\n" % server.port)
    yield float("inf")


# ------------------------------------------------------------------------------------------- sidecar
def sidecar_app(proc):
    if proc.init and not proc.container.get("restartPolicy") == "Always":
        return None
    return _sidecar(proc)


def _sidecar(proc):
    flags = _flags(proc.argv)
    port = int(flags.get("port") or 8000)
    decoder_port = int(flags.get("vllm-port") or 8001)
    connector = flags.get("connector") or "nixlv2"
    proc.write('I %s 1 main.go:63] "starting proxy server" logger="proxy server" port="%d" vllm-port="%d" '
               'connector="%s"\n' % (_timestamp(proc), port, decoder_port, connector))

    def handle(req):
        if req.path in ("/health", "/ready") and req.method == "GET":
            return 200, {"Content-Type": "text/plain"}, ""
        prefiller = next((req.headers[h] for h in PREFILL_HEADERS if req.headers.get(h)), None)
        if req.method != "POST" or not prefiller or req.path not in ("/v1/completions", "/v1/chat/completions"):
            return _pass(proc.runtime.request(proc, req.method, "localhost", decoder_port, req.path, req.query,
                                              req.headers, req.body))
        return _nixl_v2(proc, req, prefiller, decoder_port)

    proc.listen(port, handle)
    yield float("inf")


def _pass(result):
    if result[0] != "ok":
        return 502, {"Content-Type": "text/plain"}, "Bad Gateway"
    return result[1], result[2], result[3]


def _nixl_v2(proc, req, prefiller, decoder_port):
    try:
        original = json.loads(req.body or b"{}")
    except ValueError:
        return 400, {"Content-Type": "application/json"}, json.dumps({"error": "invalid JSON"})
    own_id = str(uuid.uuid1())
    headers = dict(req.headers)
    headers.setdefault("x-request-id", own_id)          # Header.Add: a client's id stays the first value
    for name in PREFILL_HEADERS:
        headers.pop(name, None)
    prefill = dict(original, stream=False, max_tokens=1, max_completion_tokens=1,
                   kv_transfer_params={"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
                                       "remote_block_ids": None, "remote_host": None, "remote_port": None})
    prefill.pop("stream_options", None)
    host, _sep, port = prefiller.replace("http://", "").rpartition(":")
    result = proc.runtime.request(proc, "POST", host, int(port or 8000), req.path, req.query, headers,
                                  json.dumps(prefill).encode())
    if result[0] != "ok":
        return 502, {"Content-Type": "text/plain"}, "Bad Gateway"
    if not 200 <= result[1] < 300:
        proc.write('E %s 1 connector_nixlv2.go:108] "request failed" code=%d\n' % (_timestamp(proc), result[1]))
        return result[1], {}, ""
    try:
        kv_params = json.loads(result[3]).get("kv_transfer_params")
    except ValueError:
        return 502, {"Content-Type": "text/plain"}, "Bad Gateway"
    if kv_params is None:
        proc.write('I %s 1 connector_nixlv2.go:126] "warning: missing \'kv_transfer_params\' field in prefiller '
                   'response"\n' % _timestamp(proc))
    decode = dict(original, kv_transfer_params=kv_params)
    return _pass(proc.runtime.request(proc, "POST", "localhost", decoder_port, req.path, req.query, headers,
                                      json.dumps(decode).encode()))


# ------------------------------------------------------------------------------------------- scheduler
def epp_app(proc):
    if proc.init:
        return None
    return _epp(proc)


def _ready_pool_pods(proc, role):
    store = proc.runtime.sim.store
    namespace = proc.pod["metadata"]["namespace"]
    out = []
    for pod in store.list(("", "pods"), namespace=namespace)[0]:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("llm-d.ai/inferenceServing") != "true" or labels.get("llm-d.ai/role") != role:
            continue
        if pod["metadata"].get("deletionTimestamp") or not (pod.get("status") or {}).get("podIP"):
            continue
        conditions = (pod.get("status") or {}).get("conditions") or ()
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            out.append(pod)
    return sorted(out, key=lambda p: p["metadata"]["name"])


def _epp(proc):
    flags = _flags(proc.argv)
    port = int(flags.get("grpc-port") or 9002)
    target_port = 8000
    counter = [0]
    proc.write('{"level":"info","ts":"%s","logger":"setup","msg":"EPP started","pool":"%s"}\n'
               % (_timestamp(proc), flags.get("pool-name") or ""))

    def handle(req):
        if req.method == "GET" and req.path in ("/health", "/ready"):
            return 200, {"Content-Type": "text/plain"}, ""
        decoders = _ready_pool_pods(proc, "decode")
        if not decoders:
            return 503, {"Content-Type": "text/plain"}, "no healthy upstream"
        counter[0] += 1
        decoder = decoders[counter[0] % len(decoders)]
        headers = dict(req.headers)
        prefillers = _ready_pool_pods(proc, "prefill")
        chosen = ""
        if prefillers:
            prefiller = prefillers[counter[0] % len(prefillers)]
            chosen = "%s:%d" % (prefiller["status"]["podIP"], target_port)
            headers["x-prefiller-host-port"] = chosen
        proc.write('{"level":"info","ts":"%s","logger":"scheduling","msg":"request scheduled","decode":"%s",'
                   '"prefill":"%s","x-request-id":"%s"}\n' % (_timestamp(proc), decoder["metadata"]["name"],
                                                              chosen, req.headers.get("x-request-id", "")))
        return _pass(proc.runtime.request(proc, req.method, decoder["status"]["podIP"], target_port, req.path,
                                          req.query, headers, req.body))

    proc.listen(port, handle)
    yield float("inf")


def register(sim):
    for pattern in VLLM_PATTERNS:
        sim.runtime.register_app(pattern, vllm_app)
    sim.runtime.register_app(SIDECAR_PATTERN, sidecar_app)
    sim.runtime.register_app(EPP_PATTERN, epp_app)
