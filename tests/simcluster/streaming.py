"""Streaming subresources: pods/exec, pods/attach and pods/portforward over the protocols kubectl speaks.

kubectl 1.33 first asks for a WebSocket (RFC 6455) and falls back to SPDY/3.1 when the upgrade fails:

* exec and attach: WebSocket subprotocol `v5.channel.k8s.io` (also `v4.channel.k8s.io`): every binary message
  starts with a channel byte, 0 stdin, 1 stdout, 2 stderr, 3 error (a metav1.Status in JSON when the command
  ends), 4 resize (`{"Width": w, "Height": h}`); v5 adds 255, "close" (`[255, channel]`, the client closed
  its stdin). Over SPDY (`X-Stream-Protocol-Version: v5/v4.channel.k8s.io`) the same streams are SPDY
  streams named by their `streamType` header, and a half-close (FIN) ends stdin.
* portforward: WebSocket subprotocol `SPDY/3.1+portforward.k8s.io`, a SPDY/3.1 session tunnelled in binary
  messages, or plain SPDY (`X-Stream-Protocol-Version: portforward.k8s.io`). Each forwarded connection is a
  pair of streams (`streamType` error and data, with `port` and `requestID` headers); what arrives on the
  data stream is handed to the pod's simulated server on that port (`sim.runtime.http`), so a port-forward
  answers what the API server's proxy answers.

The framing (RFC 6455 frames; SPDY/3 control and data frames with zlib-compressed header blocks using the
protocol's dictionary) is implemented here. All socket I/O of one connection happens in its request thread:
a loop that reads what the client sent, lets the protocol handler act, and writes what it produced.
RBAC sees the `create` verb on the subresource, as kube-apiserver checks it, for the WebSocket GET too.
"""
from __future__ import annotations

import base64
import hashlib
import json
import select
import socket
import ssl
import struct
import time
import traceback
import zlib

from .errors import ApiError
from . import runtime_exec

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
TUNNEL_PREFIX = "SPDY/3.1+"
CHANNELS = {"stdin": 0, "stdout": 1, "stderr": 2, "error": 3, "resize": 4}
CLOSE_CHANNEL = 255
POLL_SECONDS = 0.03      # how often a running exec or an attach looks at its process
IDLE_SECONDS = 0.5       # how long a connection waiting only for its client sleeps (shutdown is noticed)

# the SPDY/3 header compression dictionary (SPDY protocol draft 3, section 2.6.10.1): length-prefixed
# names followed by a run of common values
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status").split() + ["200 OK"] + \
    "version HTTP/1.1 url public set-cookie keep-alive origin".split()
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + _DICT_TAIL.encode()

SPDY_SYN_STREAM, SPDY_SYN_REPLY, SPDY_RST_STREAM, SPDY_SETTINGS = 1, 2, 3, 4
SPDY_PING, SPDY_GOAWAY, SPDY_HEADERS, SPDY_WINDOW_UPDATE = 6, 7, 8, 9
SPDY_FLAG_FIN = 0x01


# ----------------------------------------------------------------------------------------- entry

def serve(server, req, ctx):
    """Handle pods/exec, pods/attach or pods/portforward (ctx.subresource): validate, upgrade, stream."""
    if ctx.rtype.gr != ("", "pods"):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if req.command not in ("GET", "POST"):
        raise ApiError.method_not_allowed()
    pod = server.store.get(ctx.gr, ctx.namespace, ctx.name, copy_=False)
    kind = ctx.subresource
    if kind == "portforward":
        handler = PortForward(server, pod)
        offered = [TUNNEL_PREFIX + PORTFORWARD_PROTOCOL, "v4.channel.k8s.io"]
        spdy_offered = [PORTFORWARD_PROTOCOL]
    else:
        handler = _exec_handler(server, pod, ctx, kind)
        offered = list(EXEC_PROTOCOLS)
        spdy_offered = list(EXEC_PROTOCOLS)
    upgrade = (req.headers.get("Upgrade") or "").strip().lower()
    if upgrade == "websocket":
        wanted = [p.strip() for p in (req.headers.get("Sec-WebSocket-Protocol") or "").split(",") if p.strip()]
        chosen = next((p for p in wanted if p in offered), None)
        key = req.headers.get("Sec-WebSocket-Key")
        if chosen is None or not key:
            raise ApiError.bad_request("unable to upgrade: no supported WebSocket subprotocol among %s (supported: %s)"
                                       % (", ".join(wanted) or "none", ", ".join(offered)))
        accept = base64.b64encode(hashlib.sha1((key.strip() + WS_GUID).encode()).digest()).decode()
        if kind == "portforward" and chosen == "v4.channel.k8s.io":
            ports = [p for value in ctx.query.get("ports") or () for p in value.split(",") if p]
            if not ports or not all(p.isdigit() and 0 < int(p) < 65536 for p in ports):
                raise ApiError.bad_request("query parameter \"ports\" is required: a list of ports between 1 and 65535")
        _switch(req, [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept),
                      ("Sec-WebSocket-Protocol", chosen)])
        link = WebSocketLink(req.connection)
        if kind == "portforward" and chosen == "v4.channel.k8s.io":
            link = PortChannelLink(link, handler, ports)
        elif kind == "portforward":
            link = SpdySession(link, handler)
        else:
            link = ChannelLink(link, handler)
    elif upgrade.startswith("spdy/3.1"):
        wanted = [p.strip() for p in req.headers.get_all("X-Stream-Protocol-Version") or () for p in p.split(",")]
        chosen = next((p for p in wanted if p in spdy_offered), None)
        if chosen is None:
            raise ApiError.bad_request("unable to upgrade: unable to negotiate protocol: client supports %s, server "
                                       "accepts %s" % (wanted, spdy_offered))
        _switch(req, [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", chosen)])
        link = SpdySession(RawLink(req.connection), handler)
    else:
        raise ApiError.bad_request("Upgrade request required")
    req.close_connection = True
    _pump(server, link, handler)


def _switch(req, headers):
    req.send_response(101, "Switching Protocols")
    for key, value in headers:
        req.send_header(key, value)
    req.end_headers()


def _exec_handler(server, pod, ctx, kind):
    from .subresources import _pick_container  # pylint: disable=import-outside-toplevel
    container = _pick_container(pod, ctx.q("container"))
    flags = {name: ctx.q(name) in ("true", "1") for name in ("stdin", "stdout", "stderr", "tty")}
    if kind == "exec":
        command = ctx.query.get("command") or []
        if not command:
            raise ApiError.bad_request("you must specify at least 1 command")
        if flags["tty"] and flags["stderr"]:
            raise ApiError.bad_request("tty and stderr cannot both be true")
        if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
            raise ApiError.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    else:
        command = None
    session = runtime_exec.open_session(server.sim.runtime, pod, container, command, tty=flags["tty"],
                                        stdin=flags["stdin"])
    return ExecHandler(session, flags)


def _pump(server, link, handler):
    """The connection's loop: read, handle, write, until the handler is done or either side goes."""
    sock = link.sock
    sock.settimeout(10)
    try:
        while not server.stopping.is_set():
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
            if pending or select.select([sock], [], [], handler.idle_seconds())[0]:
                try:
                    data = sock.recv(65536)
                except (ssl.SSLWantReadError, socket.timeout):
                    data = None
                if data == b"":
                    handler.client_gone()
                    break
                if data:
                    link.feed(data)
                    if link.closed:
                        handler.client_gone()
                        break
            handler.tick(link)
            if handler.done:
                link.finish()
                break
    except OSError:
        pass
    except Exception:  # pylint: disable=broad-except
        # after the upgrade there is no HTTP response left to send: log it, end the connection
        server.sim.log("streaming: %s" % traceback.format_exc())
    finally:
        handler.client_gone()


# ----------------------------------------------------------------------------------------- transports

class RawLink(object):
    """The upgraded connection as a byte stream (plain SPDY)."""

    def __init__(self, sock):
        self.sock = sock
        self.closed = False
        self.receiver = _ignore

    def feed(self, data):
        self.receiver(data)

    def send(self, data):
        self.sock.sendall(data)

    def finish(self):
        pass


class WebSocketLink(object):
    """RFC 6455 framing, server side: masked frames in, unmasked frames out; pings answered."""

    def __init__(self, sock):
        self.sock = sock
        self.closed = False
        self.receiver = _ignore   # receiver(payload bytes) for each complete data message
        self._buf = bytearray()
        self._parts = []

    def feed(self, data):
        self._buf.extend(data)
        while not self.closed:
            frame = self._next_frame()
            if frame is None:
                return
            fin, opcode, payload = frame
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                self._send_frame(0x8, payload[:2] or struct.pack(">H", 1000))
                self.closed = True
            elif opcode == 0xA:
                continue
            else:
                self._parts.append(payload)
                if fin:
                    message, self._parts = b"".join(self._parts), []
                    self.receiver(message)

    def _next_frame(self):
        buf = self._buf
        if len(buf) < 2:
            return None
        fin = bool(buf[0] & 0x80)
        opcode = buf[0] & 0x0F
        masked = bool(buf[1] & 0x80)
        length = buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length = struct.unpack(">H", bytes(buf[2:4]))[0]
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length = struct.unpack(">Q", bytes(buf[2:10]))[0]
            pos = 10
        mask = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            mask = bytes(buf[pos:pos + 4])
            pos += 4
        if len(buf) < pos + length:
            return None
        payload = bytes(buf[pos:pos + length])
        del buf[:pos + length]
        if masked:
            payload = _unmask(payload, mask)
        return fin, opcode, payload

    def _send_frame(self, opcode, payload):
        length = len(payload)
        if length < 126:
            head = struct.pack(">BB", 0x80 | opcode, length)
        elif length < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 126, length)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, length)
        self.sock.sendall(head + payload)

    def send(self, data):
        """One binary message."""
        self._send_frame(0x2, data)

    def finish(self):
        """A normal close (1000): the client reads EOF on every stream."""
        if not self.closed:
            try:
                self._send_frame(0x8, struct.pack(">H", 1000))
            except OSError:
                pass
            self.closed = True
            # give the client a moment to answer the close before the server drops the connection
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    if not select.select([self.sock], [], [], 0.05)[0]:
                        continue
                    if not self.sock.recv(65536):
                        break
                except (OSError, ValueError):
                    break


def _ignore(data):
    del data


def _unmask(payload, mask):
    if not payload:
        return payload
    key = (mask * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(len(payload), "big")


class ChannelLink(object):
    """The channel.k8s.io protocol over a WebSocketLink: the first byte of a message names the stream."""

    def __init__(self, ws, handler):
        self.ws = ws
        self.sock = ws.sock
        self.handler = handler
        ws.receiver = self._message
        self._sent_close = set()

    @property
    def closed(self):
        return self.ws.closed

    def feed(self, data):
        self.ws.feed(data)

    def _message(self, message):
        if not message:
            return
        channel, data = message[0], message[1:]
        if channel == CHANNELS["stdin"]:
            self.handler.stdin_data(data)
        elif channel == CHANNELS["resize"]:
            self.handler.resize(data)
        elif channel == CLOSE_CHANNEL and data[:1] == bytes([CHANNELS["stdin"]]):
            self.handler.stdin_closed()

    def write(self, stream, data):
        if data:
            self.ws.send(bytes([CHANNELS[stream]]) + data)

    def close_stream(self, stream):
        del stream       # the error message and the final close frame end every stream

    def ready(self):
        return True

    def finish(self):
        self.ws.finish()


class PortChannelLink(object):
    """The WebSocket port-forward protocol of the kubelet (what the Python client speaks): port i has data
    channel 2i and error channel 2i+1; each channel's first message carries the port (uint16, little
    endian). One connection per port; the session ends when every port's connection has ended."""

    def __init__(self, ws, handler, ports):
        self.ws = ws
        self.sock = ws.sock
        self.handler = handler
        self.streams = {}
        self.local_closed = set()
        ws.receiver = self._message
        handler.attach(self)
        for index, port in enumerate(ports):
            for channel in (2 * index, 2 * index + 1):
                ws.send(bytes([channel]) + struct.pack("<H", int(port)))
            # the same events a SPDY session gives: an error stream and a data stream per connection
            handler.stream_opened(2 * index + 1, {"streamtype": "error", "port": port, "requestid": str(index)})
            handler.stream_opened(2 * index, {"streamtype": "data", "port": port, "requestid": str(index)})
        self.open_data = {2 * index for index in range(len(ports))}

    @property
    def closed(self):
        return self.ws.closed

    def feed(self, data):
        self.ws.feed(data)

    def _message(self, message):
        if message and message[0] in self.open_data:
            self.handler.stream_data(message[0], message[1:])

    def send_data(self, sid, data, fin=False):
        if sid in self.local_closed:
            return
        if data:
            self.ws.send(bytes([sid]) + data)
        if fin:
            self.close(sid)

    def close(self, sid):
        self.local_closed.add(sid)
        self.open_data.discard(sid)
        if not self.open_data:
            self.handler.client_gone()        # every forwarded connection has ended: so does the session

    def finish(self):
        self.ws.finish()


class SpdySession(object):
    """SPDY/3.1 framing over a byte transport (a RawLink, or a WebSocketLink whose messages carry bytes)."""

    def __init__(self, transport, handler):
        self.transport = transport
        self.sock = transport.sock
        self.handler = handler
        transport.receiver = self._bytes
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         SPDY_DICTIONARY)
        self.streams = {}            # id -> headers (lower-case names -> value)
        self.by_type = {}            # streamType -> id (exec)
        self.local_closed = set()
        handler.attach(self)

    @property
    def closed(self):
        return self.transport.closed

    def feed(self, data):
        self.transport.feed(data)

    def _bytes(self, data):
        self._buf.extend(data)
        while True:
            if len(self._buf) < 8:
                return
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                return
            head, body = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = head[4]
            if head[0] & 0x80:
                self._control(struct.unpack(">H", head[2:4])[0], flags, body)
            else:
                sid = struct.unpack(">I", head[:4])[0] & 0x7FFFFFFF
                if body:
                    self.handler.stream_data(sid, body)
                if flags & SPDY_FLAG_FIN:
                    self.handler.stream_closed(sid)

    def _control(self, ftype, flags, body):
        if ftype == SPDY_SYN_STREAM:
            sid = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            headers = self._headers(body[10:])
            self.streams[sid] = headers
            self.by_type.setdefault(headers.get("streamtype", ""), sid)
            self._control_frame(SPDY_SYN_REPLY, 0, struct.pack(">I", sid) + self._header_block({}))
            self.handler.stream_opened(sid, headers)
            if flags & SPDY_FLAG_FIN:
                self.handler.stream_closed(sid)
        elif ftype == SPDY_HEADERS:
            self._headers(body[4:])
        elif ftype == SPDY_PING:
            self._control_frame(SPDY_PING, 0, body[:4])
        elif ftype == SPDY_RST_STREAM:
            sid = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            self.local_closed.add(sid)
            self.handler.stream_closed(sid)
        elif ftype == SPDY_GOAWAY:
            self.handler.client_gone()

    def _headers(self, block):
        raw = self._inflate.decompress(block)
        count = struct.unpack(">I", raw[:4])[0]
        pos, out = 4, {}
        for _unused in range(count):
            size = struct.unpack(">I", raw[pos:pos + 4])[0]
            name = raw[pos + 4:pos + 4 + size].decode("latin-1").lower()
            pos += 4 + size
            size = struct.unpack(">I", raw[pos:pos + 4])[0]
            out[name] = raw[pos + 4:pos + 4 + size].decode("latin-1").split("\0")[0]
            pos += 4 + size
        return out

    def _header_block(self, headers):
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw += struct.pack(">I", len(name)) + name.encode() + struct.pack(">I", len(value)) + value.encode()
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _control_frame(self, ftype, flags, body):
        self.transport.send(struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(body)) + body)

    # -- what handlers use
    def send_data(self, sid, data, fin=False):
        if sid in self.local_closed:
            return
        step = 16384
        chunks = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
        for index, chunk in enumerate(chunks):
            last = fin and index == len(chunks) - 1
            self.transport.send(struct.pack(">II", sid & 0x7FFFFFFF, ((SPDY_FLAG_FIN if last else 0) << 24) |
                                            len(chunk)) + chunk)
        if fin:
            self.local_closed.add(sid)

    def close(self, sid):
        if sid not in self.local_closed:
            self.send_data(sid, b"", fin=True)

    # exec over SPDY: streams by type
    def write(self, stream, data):
        sid = self.by_type.get(stream)
        if sid is not None and data:
            self.send_data(sid, data)

    def close_stream(self, stream):
        sid = self.by_type.get(stream)
        if sid is not None:
            self.close(sid)

    def finish(self):
        self.transport.finish()


# ----------------------------------------------------------------------------------------- exec, attach

class ExecHandler(object):
    """Connects a runtime_exec session to the streams of either transport."""

    def __init__(self, session, flags):
        self.session = session
        self.flags = flags
        self.done = False
        self.link = None
        self._stdin_sids = set()

    # SPDY stream events (the channel protocol calls stdin_data/stdin_closed/resize directly)
    def attach(self, spdy):
        self.link = spdy

    def stream_opened(self, sid, headers):
        if headers.get("streamtype") == "stdin":
            self._stdin_sids.add(sid)

    def stream_data(self, sid, data):
        stype = self.link.streams.get(sid, {}).get("streamtype")
        if stype == "stdin":
            self.stdin_data(data)
        elif stype == "resize":
            for line in data.splitlines():
                self.resize(line)

    def stream_closed(self, sid):
        if sid in self._stdin_sids:
            self.stdin_closed()

    def stdin_data(self, data):
        self.session.feed(data)

    def stdin_closed(self):
        self.session.close_stdin()

    def resize(self, data):
        try:
            size = json.loads(data.decode() or "{}")
        except ValueError:
            return
        self.session.resize(size.get("Width"), size.get("Height"))

    def _ready(self, link):
        """Over SPDY the client opens its streams before anything runs; wait for all of them."""
        if not isinstance(link, SpdySession):
            return True
        wanted = {"error"} | {n for n in ("stdin", "stdout", "stderr") if self.flags[n]}
        if self.flags["tty"]:
            wanted.add("resize")
        return wanted <= set(link.by_type)

    def tick(self, link):
        if self.done or not self._ready(link):
            return
        code = self.session.step()
        for stream, data in self.session.take_output():
            if stream == "stderr" and not self.flags["stderr"]:
                stream = "stdout"
            if self.flags[stream]:
                link.write(stream, data)
        if code is None:
            return
        for stream in ("stdout", "stderr"):
            link.close_stream(stream)
        link.write("error", json.dumps(self.session.status(), separators=(",", ":")).encode())
        link.close_stream("error")
        self.done = True

    def client_gone(self):
        self.session.cancel()

    def idle_seconds(self):
        """How long the loop may wait for the client before the session needs a look (what the client
        sends wakes it at once)."""
        return self.session.idle_seconds() if self.link is None or self._ready(self.link) else POLL_SECONDS


# ----------------------------------------------------------------------------------------- portforward

class PortForward(object):
    """Forwarded connections: each data stream carries HTTP requests to the pod's simulated server."""

    def __init__(self, server, pod):
        self.server = server
        self.pod = pod
        self.done = False
        self.spdy = None
        self._pending = {}        # data stream id -> [port, error stream id, buffer]
        self._errors = {}         # requestID -> error stream id

    def attach(self, spdy):
        self.spdy = spdy

    def stream_opened(self, sid, headers):
        stype = headers.get("streamtype")
        request_id = headers.get("requestid", "")
        port = headers.get("port", "")
        if stype == "error":
            self._errors[request_id] = sid
        elif stype == "data":
            self._pending[sid] = [port, self._errors.get(request_id), bytearray()]
            if not port.isdigit() or not 0 < int(port) < 65536:
                self._fail(sid, 'invalid port %s: must be an integer between 1 and 65535' % port)
        else:
            self.spdy.close(sid)

    def stream_data(self, sid, data):
        entry = self._pending.get(sid)
        if entry is None:
            return
        entry[2].extend(data)
        self._try_request(sid)

    def stream_closed(self, sid):
        entry = self._pending.get(sid)
        if entry is not None and sid not in self.spdy.local_closed:
            if not self._try_request(sid, final=True):
                self._finish(sid)

    def _try_request(self, sid, final=False):
        """Serve the HTTP request in the buffer once it is complete; True when it was served."""
        port, _error_sid, buf = self._pending[sid]
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            if final and buf:
                self._finish(sid)
                return True
            return False
        head = bytes(buf[:head_end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            key, _unused, value = line.partition(":")
            headers[key.strip()] = value.strip()
        length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0") or 0)
        if len(buf) < head_end + 4 + length:
            return False
        body = bytes(buf[head_end + 4:head_end + 4 + length])
        if len(parts) < 3 or not parts[2].startswith("HTTP/"):
            self._fail(sid, "the forwarded connection to port %s did not carry HTTP, the only protocol the "
                            "simulated pods speak" % port)
            return True
        runtime = self.server.sim.runtime
        pod = self.server.store.try_get(("", "pods"), self.pod["metadata"]["namespace"], self.pod["metadata"]["name"])
        if pod is None or not runtime_exec.listening(runtime, pod, int(port)):
            self._fail(sid, runtime_exec.refused_message(pod or self.pod, port))
            return True
        path, _unused, query = parts[1].partition("?")
        status, resp_headers, resp_body = runtime.http(pod, int(port), parts[0], path, query, headers, body,
                                                       client_ip="127.0.0.1")
        self.spdy.send_data(sid, _http_response(status, resp_headers, resp_body))
        self._finish(sid)
        return True

    def _fail(self, sid, message):
        error_sid = self._pending[sid][1]
        if error_sid is not None:
            self.spdy.send_data(error_sid, message.encode())
        self._finish(sid)

    def _finish(self, sid):
        entry = self._pending.pop(sid, None)
        self.spdy.close(sid)
        if entry is not None and entry[1] is not None:
            self.spdy.close(entry[1])

    def tick(self, link):
        del link

    def client_gone(self):
        self.done = True

    @staticmethod
    def idle_seconds():
        return IDLE_SECONDS          # everything here happens when the client sends something


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}


def _http_response(status, headers, body):
    body = body or b""
    lines = ["HTTP/1.1 %d %s" % (status, _REASONS.get(status, "Status"))]
    skip = ("content-length", "connection", "transfer-encoding")
    headers = dict(headers or {})
    headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    for key, value in headers.items():
        if key.lower() not in skip:
            lines.append("%s: %s" % (key, value))
    lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
