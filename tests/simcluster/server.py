"""The simulated cluster's HTTPS API server: routing, content negotiation, CRUD, list, watch, subresources.

Transport: a ThreadingHTTPServer speaking HTTP/1.1 with keep-alive; each connection is wrapped in TLS
in its own thread (so a slow handshake never blocks accept). Every response carries a Content-Length
or uses chunked transfer (watch, `logs -f`), which is what Go clients need for correct framing.

A request goes: authenticate (bearer token, else 401) -> route (non-resource URL or resource path)
-> authorise (RBAC, else 403) -> handle. Handlers work on the store's stored form and convert to the
requested version on the way out (`rtype.convert_out`) and from it on the way in (`convert_in`).
Writes pass, in order: custom-resource pruning/defaulting/validation, managed fields, mutating
webhooks, the type's strategy (defaults + validation, in the store), validating webhooks, storage.
"""
from __future__ import annotations

import json
import select
import socket
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import discovery, openapi, patch as patching, protobuf, subresources, tables
from .admission import Admission
from .aggregator import Aggregator
from .errors import ApiError
from .faults import Faults
from .scenario import load_all
from .rbac import Authenticator, Authorizer, review_attributes, review_user
from .selectors import parse_field_selector, parse_label_selector

JSON = "application/json"
NON_RESOURCE_PREFIXES = ("/version", "/healthz", "/livez", "/readyz", "/openapi", "/api", "/apis", "/metrics",
                         "/.well-known")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/apply-patch+yaml")
ALIAS_FIELDS = {"regarding.": "involvedObject.", "reportingController": "reportingComponent"}
SERIALIZE_CACHE_LIMIT = 250000
_QUIET_PATHS = ("/healthz", "/readyz", "/livez")
STREAMING_SUBRESOURCES = ("exec", "attach", "portforward")


def _json_or_yaml(text):
    """A YAML body that is written as JSON (what kubectl and helm send for server-side apply): read as JSON,
    which is the same document and many times faster to parse; as YAML when it is not valid JSON."""
    try:
        return json.loads(text)
    except ValueError:
        docs = load_all(text)
        return docs[0] if docs else None


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class Ctx(object):
    """What one resource request is about (the RBAC attributes plus request options)."""

    __slots__ = ("user", "verb", "rtype", "version", "namespace", "name", "subresource", "rest", "query", "headers",
                 "dry_run", "warnings", "field_manager", "field_validation", "media")

    def __init__(self, **kw):
        for slot in self.__slots__:
            setattr(self, slot, kw.get(slot))
        self.warnings = self.warnings or []

    def q(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def gr(self):
        return self.rtype.alias_of or self.rtype.gr

    @property
    def api_version(self):
        return self.rtype.api_version(self.version)


# ----------------------------------------------------------------------------------------- transport

class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, handler, api, ssl_context):
        self.api = api
        self.ssl_context = ssl_context
        self.connections = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = super().get_request()
        # headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add 40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.conn_lock:
            self.connections.add(tls)
        return tls, addr

    def shutdown_request(self, request):
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        self.api.sim.log("connection error from %s: %s" % (client_address, traceback.format_exc(limit=3)))

    def close_connections(self):
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simcluster"
    sys_version = ""
    timeout = 120          # idle keep-alive connections are closed after this many seconds

    def setup(self):
        super().setup()
        try:
            self.connection.do_handshake()
        except (OSError, ValueError):
            self.close_connection = True
            raise

    def _dispatch(self):
        self._body = None  # the handler lives as long as the (kept-alive) connection
        self.server.api.handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        api = self.server.api
        if api.sim.verbose and not self.path.startswith(_QUIET_PATHS):
            api.sim.log("%s %s" % (self.address_string(), format % args))

    # -- response helpers
    def send_body(self, code, body, content_type=JSON, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in headers or ():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def start_chunked(self, code, content_type, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in headers or ():
            self.send_header(key, value)
        self.end_headers()

    def write_chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")

    def read_body(self):
        if getattr(self, "_body", None) is not None:
            return self._body
        length = self.headers.get("Content-Length")
        if length:
            self._body = self.rfile.read(int(length))
        elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self._body = b"".join(chunks)
        else:
            self._body = b""
        return self._body

    def client_gone(self):
        """True when the client closed a streaming connection (it never sends on a watch)."""
        try:
            readable, _unused, _unused = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


# ----------------------------------------------------------------------------------------- the server

class ApiServer(object):
    """Serves one SimCluster over HTTPS."""

    def __init__(self, sim, host, port, ssl_context):
        self.sim = sim
        self.store = sim.store
        self.authn = Authenticator(sim)
        self.authz = Authorizer(sim.store)
        self.admission = Admission(sim)
        self.aggregator = Aggregator(sim)
        self.fields = patching.FieldManager(sim.clock)
        if getattr(sim, "faults", None) is None:   # fault injection (faults.py): off unless settings.faults
            sim.faults = Faults(sim, sim.settings.get("faults"))
        self.faults = sim.faults
        self.stopping = threading.Event()
        self._cache = {}
        # Requests served per authenticated user (benchmarks count what one client asked for).
        self.requests_by_user = {}
        self.request_log = {}      # user -> ["GET /api/v1/nodes?limit=1000", ...] for the users a benchmark names
        self._count_lock = threading.Lock()
        self.httpd = _TLSServer((host, port), _Handler, self, ssl_context)
        self.port = self.httpd.server_address[1]
        self.address = "%s:%d" % (host, self.port)
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="simcluster-http", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop accepting, wake and end every watch and log stream, close every connection."""
        self.stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------------------- entry
    def handle(self, req):
        """One HTTP request: every failure becomes a Status response, never a traceback or a hang."""
        try:
            self._handle(req)
        except ApiError as exc:
            self._send_error(req, exc)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            req.close_connection = True
        except Exception as exc:  # pylint: disable=broad-except
            self.sim.log("internal error on %s %s: %s" % (req.command, req.path, traceback.format_exc()))
            self._send_error(req, ApiError.internal(str(exc) or exc.__class__.__name__))

    def _send_error(self, req, exc):
        try:
            req.send_body(exc.code, dumps(exc.status()))
        except OSError:
            req.close_connection = True

    def _handle(self, req):
        if req.command in ("POST", "PUT", "PATCH", "DELETE"):
            req.read_body()  # always consumed, so an early error cannot leave bytes on a kept-alive connection
        split = urlsplit(req.path)
        path = unquote(split.path) or "/"
        if self.faults.before_request(req, path):
            return
        query = parse_qs(split.query, keep_blank_values=True)
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            req.send_body(200, b"ok", "text/plain; charset=utf-8")
            return
        user = self.authn.authenticate(req.headers.get("Authorization"))
        with self._count_lock:
            self.requests_by_user[user["username"]] = self.requests_by_user.get(user["username"], 0) + 1
            if user["username"] in self.request_log:
                self.request_log[user["username"]].append("%s %s" % (req.command, req.path))
        if path.startswith("/api/") or path.startswith("/apis/"):
            if self._route_resource(req, user, path, query, split.query):
                return
        verb = req.command.lower() if req.command != "HEAD" else "get"
        self.authz.check(user, {"verb": verb, "path": path})
        self._non_resource(req, path, query)

    # ------------------------------------------------------------------------------- non-resource URLs
    def _non_resource(self, req, path, query):
        if req.command not in ("GET", "HEAD"):
            raise ApiError.method_not_allowed()
        if path in ("/version", "/version/"):
            return req.send_body(200, dumps(self.sim.version))
        if path == "/":
            return req.send_body(200, dumps({"paths": sorted(self._paths())}))
        if path == "/api":
            return self._discovery(req, discovery.api_versions(self.address), core=True)
        if path == "/apis":
            return self._discovery(req, discovery.api_group_list(self.store, self._remote_groups()), core=False)
        if path.startswith("/openapi/"):
            return self._openapi(req, path, query)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _paths(self):
        out = {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version", "/openapi/v2", "/openapi/v3"}
        for group, versions in discovery.groups(self.store):
            if group:
                out.add("/apis/" + group)
                out.update("/apis/%s/%s" % (group, v) for v in versions)
        return out

    def _discovery(self, req, legacy_doc, core):
        accept = req.headers.get("Accept") or ""
        for media in accept.split(","):
            params = _media_params(media)
            if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" and \
                    params.get("v") in ("v2", "v2beta1"):
                doc = discovery.aggregated(self.store, core, self._remote_discovery())
                content_type = discovery.AGGREGATED_V2
                if params["v"] == "v2beta1":
                    doc["apiVersion"] = "apidiscovery.k8s.io/v2beta1"
                    content_type = discovery.AGGREGATED_V2BETA1
                return req.send_body(200, dumps(doc), content_type, [("Vary", "Accept")])
        return req.send_body(200, dumps(legacy_doc), JSON, [("Vary", "Accept")])

    def _openapi(self, req, path, query):
        doc = openapi.document(self.store, path, query, req.headers.get("Accept"))
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        body, content_type = doc if isinstance(doc, tuple) else (doc, JSON)
        return req.send_body(200, body, content_type, [("Vary", "Accept")])

    def _remote_groups(self):
        return self.aggregator.groups()

    def _remote_discovery(self):
        return self.aggregator.discovery()

    # ------------------------------------------------------------------------------- resource routing
    def _route_resource(self, req, user, path, query, raw_query):
        """Handle /api/... and /apis/... Returns False for discovery paths (non-resource URLs)."""
        parts = [p for p in path.split("/") if p]
        if parts[0] == "api":
            if len(parts) < 2:
                return False
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) < 3:
                if len(parts) == 2:
                    self.authz.check(user, {"verb": "get", "path": path})
                    doc = discovery.api_group(self.store, parts[1], self._remote_groups())
                    if doc is None:
                        raise ApiError(404, "NotFound", "the server could not find the requested resource")
                    req.send_body(200, dumps(doc))
                    return True
                return False
            group, version, rest = parts[1], parts[2], parts[3:]
        if self.aggregator.serves(group, version):
            self.authz.check(user, _proxy_attributes(req.command, group, rest, path))
            self.aggregator.proxy(req, user, group, version, path, raw_query)
            return True
        if not rest:
            self.authz.check(user, {"verb": "get", "path": path})
            doc = discovery.resource_list(self.store, group, version)
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            req.send_body(200, dumps(doc))
            return True
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        ctx = self._context(req, user, group, version, rest, query)
        if watch_path:
            ctx.verb = "watch"
        self._authorize(ctx)
        self._serve(req, ctx)
        return True

    def _context(self, req, user, group, version, rest, query):
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        elif len(rest) == 3 and rest[0] == "namespaces":
            pass
        resource, name = rest[0], rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        rtype = self.store.types.get((group, resource))
        if rtype is None or version not in rtype.versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not rtype.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource and subresource not in _subresources_of(rtype, version):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ctx = Ctx(user=user, rtype=rtype, version=version, namespace=namespace, name=name, subresource=subresource,
                  rest="/".join(rest[3:]), query=query, headers=req.headers)
        ctx.verb = _verb(req.command, name, subresource, ctx)
        dry_run = ctx.q("dryRun")
        if dry_run not in (None, "", "All"):
            raise ApiError.bad_request('Invalid dry run value: "%s"' % dry_run)
        ctx.dry_run = dry_run == "All"
        ctx.field_manager = ctx.q("fieldManager") or _manager_from_agent(req.headers.get("User-Agent"))
        ctx.field_validation = ctx.q("fieldValidation") or "Warn"
        if ctx.field_validation not in ("Ignore", "Warn", "Strict"):
            raise ApiError.bad_request('fieldValidation must be one of "Ignore", "Warn", or "Strict", got "%s"'
                                       % ctx.field_validation)
        ctx.media = _negotiate(req.headers.get("Accept"))
        return ctx

    def _authorize(self, ctx):
        self.authz.check(ctx.user, {"verb": ctx.verb, "group": ctx.rtype.group, "resource": ctx.rtype.resource,
                                    "subresource": ctx.subresource or "", "namespace": ctx.namespace or "",
                                    "name": ctx.name or ""})

    def _serve(self, req, ctx):
        method = req.command
        if ctx.subresource:
            return subresources.serve(self, req, ctx)
        if ctx.verb not in ctx.rtype.verbs:
            raise ApiError.method_not_allowed()
        if list(ctx.rtype.verbs) == ["create"]:
            return self._review(req, ctx)
        if method in ("GET", "HEAD"):
            if ctx.verb == "watch":
                return self._watch(req, ctx)
            if ctx.name:
                return self._get(req, ctx)
            return self._list(req, ctx)
        if method == "POST" and not ctx.name:
            return self._create(req, ctx)
        if method == "PUT" and ctx.name:
            return self._update(req, ctx)
        if method == "PATCH" and ctx.name:
            return self._patch(req, ctx)
        if method == "DELETE":
            return self._delete(req, ctx) if ctx.name else self._delete_collection(req, ctx)
        raise ApiError.method_not_allowed()

    # ------------------------------------------------------------------------------- serialisation
    def obj_bytes(self, rtype, version, obj):
        """JSON bytes of a stored object in `version`, cached per (type, version, uid, resourceVersion)."""
        meta = obj["metadata"]
        crd = getattr(rtype, "crd", None)
        key = (rtype.group, rtype.resource, version, meta.get("uid"), meta.get("resourceVersion"),
               crd["metadata"].get("resourceVersion") if crd else None)
        data = self._cache.get(key)
        if data is None:
            data = dumps(rtype.convert_out(obj, version))
            if len(self._cache) >= SERIALIZE_CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = data
        return data

    def out(self, ctx, obj):
        """A stored object converted to the request's version (a dict, for further editing)."""
        return ctx.rtype.convert_out(obj, ctx.version)

    def _send_object(self, req, ctx, obj, code=200):
        headers = _warning_headers(ctx.warnings)
        if ctx.media == "table":
            body = dumps(tables.table(ctx.rtype, ctx.version, [self.out(ctx, obj)], self.sim.clock,
                                      ctx.q("includeObject"), {"resourceVersion": obj["metadata"]["resourceVersion"]}))
            return req.send_body(code, body, JSON, headers)
        if ctx.media == "partial":
            return req.send_body(code, dumps(tables.partial(obj)), JSON, headers)
        if obj["metadata"].get("uid") and obj["metadata"].get("resourceVersion") and not ctx.dry_run:
            return req.send_body(code, self.obj_bytes(ctx.rtype, ctx.version, obj), JSON, headers)
        return req.send_body(code, dumps(self.out(ctx, obj)), JSON, headers)

    # ------------------------------------------------------------------------------- reads
    def _get(self, req, ctx):
        obj = self.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
        self._send_object(req, ctx, obj)

    def _selectors(self, ctx):
        label = ctx.q("labelSelector")
        field = ctx.q("fieldSelector")
        label_pred = parse_label_selector(label) if label else None
        field_pred = None
        if field:
            allowed = ctx.rtype.field_selectors if hasattr(ctx.rtype, "field_selectors") else None
            field_pred = parse_field_selector(field, allowed)
            if ctx.rtype.alias_of and field_pred is not None:
                field_pred = parse_field_selector(_alias_fields(field), None)
        return label_pred, field_pred

    def _list(self, req, ctx):
        label, field = self._selectors(ctx)
        limit = int(ctx.q("limit") or 0) or None
        continue_token = ctx.q("continue") or None
        items, list_rv, token, remaining = self.store.list(ctx.gr, ctx.namespace, label, field, limit, continue_token)
        meta = {"resourceVersion": str(list_rv)}
        if token:
            meta["continue"] = token
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        if ctx.media == "table":
            doc = tables.table(ctx.rtype, ctx.version, [self.out(ctx, o) for o in items], self.sim.clock,
                               ctx.q("includeObject"), meta)
            return req.send_body(200, dumps(doc))
        if ctx.media == "partial":
            doc = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                   "items": [tables.partial(o) for o in items]}
            return req.send_body(200, dumps(doc))
        head = dumps({"kind": ctx.rtype.list_kind, "apiVersion": ctx.api_version, "metadata": meta})
        item_bytes = b",".join(self.obj_bytes(ctx.rtype, ctx.version, o) for o in items)
        body = b"".join((head[:-1], b',"items":[', item_bytes, b"]}"))
        req.send_body(200, body)

    # ------------------------------------------------------------------------------- watch
    def _watch(self, req, ctx):
        settings = self.sim.settings["api"]
        timeout = float(ctx.q("timeoutSeconds") or settings["watchTimeoutSeconds"])
        timeout = min(timeout, float(settings["watchTimeoutSeconds"]))
        deadline = time.monotonic() + timeout
        cut_at = self.faults.watch_cut_at()
        if cut_at is not None:
            deadline = min(deadline, cut_at)
        label, field = self._selectors(ctx)
        if ctx.name:
            name_pred = parse_field_selector("metadata.name=" + ctx.name)
            field = name_pred if field is None else _and(field, name_pred)
        bookmarks = ctx.q("allowWatchBookmarks") in ("true", "1")
        rv_param = ctx.q("resourceVersion")
        initial = ctx.q("sendInitialEvents") == "true"
        req.start_chunked(200, JSON)
        try:
            if rv_param in (None, "", "0") or initial:
                items, cur, _unused, _unused = self.store.list(ctx.gr, ctx.namespace, label, field)
                for obj in items:
                    self._write_event(req, ctx, "ADDED", obj)
                if initial and bookmarks:
                    self._write_bookmark(req, ctx, cur, initial_end=True)
            else:
                cur = _parse_rv(rv_param)
            self._stream_events(req, ctx, cur, label, field, deadline, bookmarks)
            if cut_at is not None and time.monotonic() >= cut_at:   # a dropped watch: no final chunk
                req.close_connection = True
                req.connection.shutdown(socket.SHUT_RDWR)
                return
            req.end_chunked()
        except ApiError as exc:
            req.write_chunk(dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
            req.end_chunked()
        except (OSError, ValueError):
            req.close_connection = True

    def _stream_events(self, req, ctx, cur, label, field, deadline, bookmarks):
        interval = float(self.sim.settings["api"]["bookmarkIntervalSeconds"])
        last_sent = time.monotonic()
        gr = ctx.gr
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            events = self.store.events_since(cur)
            for ev in events:
                cur = ev.rv
                if ev.gr != gr:
                    continue
                etype = _filter_event(ev, ctx.namespace, label, field)
                if etype:
                    self._write_event(req, ctx, etype, ev.obj)
                    last_sent = time.monotonic()
            if events:
                continue
            if bookmarks and time.monotonic() - last_sent >= interval:
                self._write_bookmark(req, ctx, cur)
                last_sent = time.monotonic()
            if req.client_gone():
                req.close_connection = True
                raise ConnectionResetError("watch client went away")
            self.store.wait_for_change(cur, min(1.0, max(0.0, deadline - time.monotonic())))

    def _write_event(self, req, ctx, etype, obj):
        if ctx.media == "table":
            payload = dumps(tables.table(ctx.rtype, ctx.version, [self.out(ctx, obj)], self.sim.clock,
                                         ctx.q("includeObject"), {"resourceVersion": obj["metadata"]["resourceVersion"]}))
        elif ctx.media == "partial":
            payload = dumps(tables.partial(obj))
        else:
            payload = self.obj_bytes(ctx.rtype, ctx.version, obj)
        req.write_chunk(b'{"type":"' + etype.encode() + b'","object":' + payload + b"}\n")

    def _write_bookmark(self, req, ctx, rv, initial_end=False):
        meta = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": ctx.rtype.kind, "apiVersion": ctx.api_version, "metadata": meta}
        req.write_chunk(dumps({"type": "BOOKMARK", "object": obj}) + b"\n")

    # ------------------------------------------------------------------------------- writes
    def _decode(self, req, ctx, content_type=None):
        raw = req.read_body()
        content_type = (content_type or req.headers.get("Content-Type") or JSON).split(";")[0].strip()
        if content_type == protobuf.MEDIA_TYPE:
            return protobuf.decode(raw)
        try:
            if content_type in ("application/yaml", "application/apply-patch+yaml") and raw.lstrip()[:1] == b"{":
                body = _json_or_yaml(raw.decode())
            elif content_type in ("application/yaml", "application/apply-patch+yaml"):
                docs = load_all(raw.decode() or "null")
                body = docs[0] if docs else None
            else:
                body = json.loads(raw.decode() or "null")
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError.bad_request("the body of the request could not be decoded: %s" % exc)
        return body

    def _body_object(self, req, ctx):
        body = self._decode(req, ctx)
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request was not a %s object" % ctx.rtype.kind)
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != ctx.api_version:
            raise ApiError.bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                                       % (api_version, ctx.api_version))
        if kind and kind != ctx.rtype.kind:
            raise ApiError.bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                                       % (kind, ctx.rtype.kind))
        body["apiVersion"], body["kind"] = ctx.api_version, ctx.rtype.kind
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        self._check_namespace(ctx, meta)
        return body

    @staticmethod
    def _check_namespace(ctx, meta):
        if ctx.rtype.namespaced:
            if meta.get("namespace") and ctx.namespace and meta["namespace"] != ctx.namespace:
                raise ApiError.bad_request("the namespace of the provided object does not match the namespace sent "
                                           "on the request")
            if ctx.namespace:
                meta["namespace"] = ctx.namespace
        else:
            meta.pop("namespace", None)

    def _field_validation(self, ctx, obj):
        """Unknown fields of a custom object: 400 (Strict), a warning (Warn) or nothing (Ignore)."""
        unknown_fn = getattr(ctx.rtype, "unknown_fields", None)
        if unknown_fn is None or ctx.field_validation == "Ignore":
            return
        unknown = unknown_fn(obj)
        if not unknown:
            return
        if ctx.field_validation == "Strict":
            raise ApiError.bad_request("strict decoding error: " + ", ".join('unknown field "%s"' % u for u in unknown))
        ctx.warnings.extend('unknown field "%s"' % u for u in unknown)

    def admit_and_create(self, ctx, obj):
        """Create a request-version object: field checks, managed fields, admission, storage."""
        self._field_validation(ctx, obj)
        if ctx.field_manager is None:
            raise ApiError.bad_request("fieldManager: Required value")
        stored_form = ctx.rtype.convert_in(obj, ctx.version)
        stored_form = self.fields.on_create(stored_form, ctx)
        stored_form = self.admission.mutate(ctx, "CREATE", stored_form, None)
        if self.admission.has_validating(ctx, "CREATE", stored_form, None):
            prepared = self.store.create(ctx.gr, stored_form, dry_run=True)
            self.admission.validate(ctx, "CREATE", prepared, None)
        return self.store.create(ctx.gr, stored_form, dry_run=ctx.dry_run)

    def admit_and_update(self, ctx, new, old, force=False, applied=False):
        """Update to a request-version object `new` (old is the stored object). `applied`: the managed
        fields were already worked out by server-side apply."""
        self._field_validation(ctx, new)
        stored_form = ctx.rtype.convert_in(new, ctx.version)
        if not applied:
            stored_form = self.fields.on_update(stored_form, old, ctx)
        stored_form = self.admission.mutate(ctx, "UPDATE", stored_form, old)
        status = "status" if ctx.subresource == "status" else None
        if self.admission.has_validating(ctx, "UPDATE", stored_form, old):
            prepared = self.store.update(ctx.gr, stored_form, subresource=status, dry_run=True, force=force)
            self.admission.validate(ctx, "UPDATE", prepared, old)
        return self.store.update(ctx.gr, stored_form, subresource=status, dry_run=ctx.dry_run, force=force)

    def _create(self, req, ctx):
        obj = self._body_object(req, ctx)
        stored = self.admit_and_create(ctx, obj)
        self._send_object(req, ctx, stored, 201)

    def _update(self, req, ctx):
        obj = self._body_object(req, ctx)
        if obj["metadata"].get("name") and obj["metadata"]["name"] != ctx.name:
            raise ApiError.bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                       % (obj["metadata"]["name"], ctx.name))
        obj["metadata"]["name"] = ctx.name
        old = self.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
        stored = self.admit_and_update(ctx, obj, old)
        self._send_object(req, ctx, stored, 200)

    def _patch(self, req, ctx):
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            raise ApiError.unsupported_media_type(content_type)
        if content_type == "application/strategic-merge-patch+json" and getattr(ctx.rtype, "crd", None):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                           "media types include: application/json-patch+json, application/merge-patch+json, "
                           "application/apply-patch+yaml")
        body = self._decode(req, ctx, content_type)
        stored, created = self.patch_object(ctx, content_type, body)
        self._send_object(req, ctx, stored, 201 if created else 200)

    def patch_object(self, ctx, content_type, body):
        """Apply a patch of any kind to the named object, retrying on write races like the real server."""
        apply = content_type == "application/apply-patch+yaml"
        if apply:
            if not ctx.q("fieldManager"):
                raise ApiError.invalid("meta.k8s.io", "PatchOptions", "", [(
                    "fieldManager", "Required value: is required for apply patch", "FieldValueRequired")])
            if not isinstance(body, dict):
                raise ApiError.bad_request("the body of the request must be an object for an apply patch")
            if isinstance(body.get("metadata"), dict):
                self._check_namespace(ctx, body["metadata"])
        for _unused in range(5):
            current = self.store.try_get(ctx.gr, ctx.namespace, ctx.name)
            if current is None:
                if not apply:
                    raise ApiError.not_found(ctx.rtype.group, ctx.rtype.resource, ctx.name)
                return self._apply_create(ctx, body), True
            live = self.out(ctx, current)
            if apply:
                patched = self.fields.apply(live, body, ctx, force=ctx.q("force") == "true")
            else:
                patched = patching.apply_patch(content_type, live, body, patching.TypeInfo(ctx.rtype, ctx.version))
                if not isinstance(patched, dict):
                    raise ApiError.bad_request("the patch produced something that is not an object")
                patched.setdefault("metadata", {})
                patched["metadata"]["name"] = ctx.name
                self._check_namespace(ctx, patched["metadata"])
            try:
                return self.admit_and_update(ctx, patched, current, applied=apply), False
            except ApiError as exc:
                if exc.code == 409 and exc.reason == "Conflict" and \
                        patched["metadata"].get("resourceVersion") == current["metadata"]["resourceVersion"] and \
                        "modified" in exc.message:
                    continue
                raise
        raise ApiError.conflict(ctx.rtype.group, ctx.rtype.resource, ctx.name, "the object has been modified; "
                                "please apply your changes to the latest version and try again")

    def _apply_create(self, ctx, body):
        obj = dict(body)
        if obj.get("apiVersion") not in (None, ctx.api_version) or obj.get("kind") not in (None, ctx.rtype.kind):
            raise ApiError.bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                                       % (obj.get("apiVersion"), ctx.api_version))
        obj["apiVersion"], obj["kind"] = ctx.api_version, ctx.rtype.kind
        meta = obj.setdefault("metadata", {})
        meta["name"] = ctx.name
        self._check_namespace(ctx, meta)
        self._field_validation(ctx, obj)
        obj = self.fields.apply_new(obj, ctx)
        stored_form = ctx.rtype.convert_in(obj, ctx.version)
        stored_form = self.admission.mutate(ctx, "CREATE", stored_form, None)
        if self.admission.has_validating(ctx, "CREATE", stored_form, None):
            self.admission.validate(ctx, "CREATE", self.store.create(ctx.gr, stored_form, dry_run=True), None)
        return self.store.create(ctx.gr, stored_form, dry_run=ctx.dry_run)

    # ------------------------------------------------------------------------------- delete
    def _delete_options(self, req, ctx):
        """DeleteOptions from the body or the query: (gracePeriodSeconds, propagationPolicy, preconditions,
        the options as sent)."""
        options = {}
        if req.headers.get("Content-Length") not in (None, "0") or req.headers.get("Transfer-Encoding"):
            body = self._decode(req, ctx)
            if isinstance(body, dict):
                options = body
        grace = options.get("gracePeriodSeconds")
        if grace is None and ctx.q("gracePeriodSeconds") is not None:
            grace = int(ctx.q("gracePeriodSeconds"))
        propagation = options.get("propagationPolicy") or ctx.q("propagationPolicy")
        if options.get("orphanDependents") is None and ctx.q("orphanDependents") is not None:
            options = dict(options, orphanDependents=ctx.q("orphanDependents") == "true")
        if propagation is None and options.get("orphanDependents") is not None:
            propagation = "Orphan" if options["orphanDependents"] else "Background"
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError.invalid("meta.k8s.io", "DeleteOptions", "", [(
                "propagationPolicy", 'Unsupported value: "%s": supported values: "Foreground", "Background", "Orphan", '
                                     '"nil"' % propagation, "FieldValueNotSupported")])
        if "All" in (options.get("dryRun") or []):
            ctx.dry_run = True
        return grace, propagation, options.get("preconditions"), options

    def _delete(self, req, ctx):
        """The deleted object, or a Status when the object is gone and its registry does not return deleted
        objects (genericregistry.Store.finalizeDelete); an object kept for finalizers or a grace period is
        returned as it now is, with 202 when the client asked for orphanDependents=false (handlers/delete.go)."""
        grace, propagation, preconditions, options = self._delete_options(req, ctx)
        current = self.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
        self.admission.validate_delete(ctx, current)
        obj, removed = self.store.delete(ctx.gr, ctx.namespace, ctx.name, propagation=propagation, grace_period=grace,
                                         preconditions=preconditions, dry_run=ctx.dry_run)
        if removed and not ctx.rtype.returns_deleted_object:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": ctx.name, "kind": ctx.rtype.resource, "uid": obj["metadata"].get("uid")}}
            if ctx.rtype.group:
                status["details"]["group"] = ctx.rtype.group
            return req.send_body(200, dumps(status))
        code = 202 if not removed and options.get("orphanDependents") is False else 200
        return req.send_body(code, dumps(self.out(ctx, obj)))

    def _delete_collection(self, req, ctx):
        if "deletecollection" not in ctx.rtype.verbs:
            raise ApiError.method_not_allowed()
        grace, propagation, _unused, _options = self._delete_options(req, ctx)
        label, field = self._selectors(ctx)
        items = list(self.store.list(ctx.gr, ctx.namespace, label, field)[0])
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            try:
                self.admission.validate_delete(ctx, obj)
                out, _unused = self.store.delete(ctx.gr, meta.get("namespace"), meta["name"],
                                                 propagation=propagation, grace_period=grace, dry_run=ctx.dry_run)
            except ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(self.out(ctx, out))
        doc = {"kind": ctx.rtype.list_kind, "apiVersion": ctx.api_version,
               "metadata": {"resourceVersion": str(self.store.rv)}, "items": deleted}
        req.send_body(200, dumps(doc))

    # ------------------------------------------------------------------------------- reviews
    def _review(self, req, ctx):
        if req.command != "POST":
            raise ApiError.method_not_allowed()
        body = self._body_object(req, ctx)
        spec = body.get("spec") or {}
        resource = ctx.rtype.resource
        if resource == "selfsubjectaccessreviews":
            allowed, reason = self.authz.authorize(ctx.user, review_attributes(spec))
            body["status"] = _sar_status(allowed, reason)
        elif resource in ("subjectaccessreviews", "localsubjectaccessreviews"):
            allowed, reason = self.authz.authorize(review_user(spec), review_attributes(spec))
            body["status"] = _sar_status(allowed, reason)
        elif resource == "selfsubjectrulesreviews":
            body["status"] = self.authz.rules_review(ctx.user, spec.get("namespace") or "")
        elif resource == "selfsubjectreviews":
            body["status"] = {"userInfo": dict(ctx.user)}
        elif resource == "tokenreviews":
            info = self.authn.review(spec.get("token") or "")
            body["status"] = {"authenticated": info is not None, "user": info or {},
                              "audiences": spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]}
        body["metadata"].setdefault("creationTimestamp", None)
        req.send_body(201, dumps(body))


# ----------------------------------------------------------------------------------------- helpers

def _subresources_of(rtype, version):
    per_version = getattr(rtype, "version_subresources", None)
    if per_version is not None:
        return set(per_version(version).keys())
    return set(rtype.subresources)


def _verb(method, name, subresource, ctx):
    if subresource in STREAMING_SUBRESOURCES:
        return "create"     # also for the WebSocket GET: the authorizer checks create (kube-apiserver does)
    if method in ("GET", "HEAD"):
        if ctx.q("watch") in ("true", "1"):
            return "watch"
        return "get" if name else "list"
    if subresource == "proxy":
        return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())


def _manager_from_agent(agent):
    """The default field manager: the User-Agent up to its first "/" (as kube-apiserver derives it)."""
    prefix = (agent or "unknown").split("/")[0]
    return prefix[:128] or "unknown"


def _media_params(media):
    parts = [p.strip() for p in media.split(";")]
    params = {"type": parts[0]}
    for part in parts[1:]:
        key, _unused, value = part.partition("=")
        params[key.strip()] = value.strip()
    return params


def _negotiate(accept):
    """"table", "partial" or "json" for an Accept header (protobuf and unknown types fall back to JSON)."""
    for media in (accept or JSON).split(","):
        params = _media_params(media)
        if params["type"] not in ("application/json", "*/*", "application/*", "application/yaml"):
            continue
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return "table"
        if params.get("as") in ("PartialObjectMetadata", "PartialObjectMetadataList") and \
                params.get("g") == "meta.k8s.io":
            return "partial"
        if "as" not in params:
            return "json"
    return "json"


def _warning_headers(warnings):
    return [("Warning", '299 - "%s"' % w.replace('"', '\\"')) for w in warnings or ()]


def _parse_rv(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError.bad_request('resourceVersion: Invalid value: "%s": must be a valid resource version' % value)


def _alias_fields(expr):
    for new, old in ALIAS_FIELDS.items():
        expr = expr.replace(new, old)
    return expr


def _and(first, second):
    def match(obj):
        return first(obj) and second(obj)
    match.terms = list(getattr(first, "terms", [])) + list(getattr(second, "terms", []))
    return match


def _matches(obj, namespace, label, field):
    if obj is None:
        return False
    if namespace is not None and obj["metadata"].get("namespace") != namespace:
        return False
    if label is not None and not label(obj["metadata"].get("labels")):
        return False
    return field is None or field(obj)


def _filter_event(ev, namespace, label, field):
    """The event type a watcher with these filters sees (objects entering/leaving the filter become
    ADDED/DELETED, as the real watch cache reports them), or None."""
    now = _matches(ev.obj, namespace, label, field)
    if ev.type == "MODIFIED":
        before = _matches(ev.old, namespace, label, field)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None
    return ev.type if now else None


def _proxy_attributes(method, group, rest, path):
    """RBAC attributes of a request to an aggregated API (resource requests where the path says so)."""
    if not rest:
        return {"verb": "get", "path": path}
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    return {"verb": _verb_simple(method, len(rest) > 1), "group": group, "resource": rest[0],
            "subresource": rest[2] if len(rest) > 2 else "", "namespace": namespace,
            "name": rest[1] if len(rest) > 1 else ""}


def _verb_simple(method, named):
    if method in ("GET", "HEAD"):
        return "get" if named else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "delete" if named else "deletecollection")


def _sar_status(allowed, reason):
    status = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status
