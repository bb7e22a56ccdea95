"""A fault-injecting HTTP/1.1 proxy for loopback tests (stdlib only: sockets and threads).

``FaultProxy(upstream_url)`` listens on 127.0.0.1 on a free port and forwards every connection to one upstream
(an emulator, a serving process). Point a client at ``proxy.url`` instead of the upstream, then change what the
proxy does at any time, from any thread.

Its mode, applied to each request as it arrives (each call replaces the mode before):

- ``heal()``: forward every request untouched (the initial mode), and disarm the faults below;
- ``delay(seconds)``: wait ``seconds`` before forwarding each request;
- ``errors(status=500)``: answer each request with ``status`` without the upstream, then close the connection;
- ``down()``: reset every new connection at once, and cut the open ones (a request being delayed or waiting for
  the upstream too), as when the process dies;
- ``flap(up_seconds, down_seconds)``: forward for ``up_seconds``, be down for ``down_seconds``, and so on,
  starting now with up. A request arriving while down has its connection reset.

Faults armed on top of the mode:

- ``corrupt_requests(count, offset)``: flip one byte (XOR 0xFF) in the body of the next ``count`` upload
  requests, i.e. ``PUT`` or ``POST`` requests with ``Content-Length`` > 1 KiB. Small control requests
  (HEAD, commit lists, manifests of a few hundred bytes, ...) are never touched.
- ``corrupt_responses(count, offset)``: the same for the bodies of the next ``count`` responses to ``GET``
  requests with status 200 or 206 and ``Content-Length`` > 1 KiB.
- ``cut_after_bytes(nbytes, count, then_down)``: the next ``count`` connections that carry ``nbytes`` of
  client -> server traffic (headers included) are cut right there: exactly ``nbytes`` are forwarded, then
  both sides are reset. With ``then_down=True`` the proxy also goes down at that moment, as when the
  emulator process dies mid-upload.

Each direction of a connection is parsed as a sequence of HTTP/1.1 messages (request or status line, headers,
a body framed by ``Content-Length`` or chunked transfer encoding), so keep-alive connections carrying several
requests are handled, and the message that is corrupted is exactly the next qualifying one in the order they
reach the proxy (with parallel uploads that order is the clients'; a test that needs to know which bytes were
hit sends one large body). Each corruption or cut call sets its budget, replacing what was left of the previous
one, and a budget is only spent when the fault is really injected. The byte flipped is at ``offset`` in the
body: ``None`` for the middle, a negative number counts from the end (``-1`` is the last byte), and offsets
past the end are clamped to the last byte. A chunked body (length unknown up front) always has its byte 1024
flipped. Anything the parser does not understand (a protocol upgrade, a response delimited by the end of the
connection, bad framing) makes it forward the rest of that connection untouched, whatever the mode.

The upstream connection is opened when the first request is forwarded; when the upstream refuses it, the
client's connection is reset, as the upstream's own port would do. ``stats()`` counts connections and what
was done to each request (``FaultStats``). ``start()``/``stop()`` (or ``with FaultProxy(url) as proxy:``) run
and join every thread; sockets time out after ``idle_timeout`` seconds of silence, and after ``lifetime``
seconds the proxy stops accepting and cuts its open connections, so a forgotten proxy never outlives its test
by much.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from http import HTTPStatus
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024
CHUNK = 256 * 1024
UPLOAD_METHODS = (b"PUT", b"POST")
MIN_BODY = 1024  # only bodies strictly larger than this are corrupted
CHUNKED_OFFSET = 1024
COUNTED_AS = {"forward": "forwarded", "delay": "delayed", "errors": "errors", "down": "refused"}


@dataclass(frozen=True)
class FaultStats:
    connections: int = 0  # client connections accepted and served
    refused: int = 0  # connections reset on arrival, and requests reset, because the proxy was down
    forwarded: int = 0  # requests forwarded at once
    delayed: int = 0  # requests forwarded after a delay
    errors: int = 0  # requests answered with an error status
    upstream_errors: int = 0  # connections whose upstream could not be reached
    corrupted_requests: int = 0
    corrupted_responses: int = 0
    cuts: int = 0


@dataclass(frozen=True)
class _Mode:
    name: str  # forward, delay, errors, down or flap
    seconds: float = 0.0  # delay
    status: int = 500  # errors
    up_seconds: float = 0.0  # flap
    down_seconds: float = 0.0  # flap
    since: float = 0.0  # flap: when the first up phase began (monotonic)

    def action(self, now: float) -> str:
        """What to do with a request (or a new connection) arriving at ``now``: a key of ``COUNTED_AS``."""
        if self.name != "flap":
            return self.name
        phase = (now - self.since) % (self.up_seconds + self.down_seconds)
        return "forward" if phase < self.up_seconds else "down"


class _Cut(Exception):
    """The connection was cut on purpose."""


class _Refused(Exception):
    """A request arrived while the proxy was down."""


class _Answered(Exception):
    """The proxy answered the request itself; the connection ends."""


class _Unparseable(Exception):
    """The stream is not HTTP/1.1 as this proxy understands it: forward the rest untouched."""


class _Reader:
    """Buffered reads from one socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(CHUNK)
        if not data:
            return False
        self.buffer += data
        return True

    def head(self) -> bytes | None:
        """The bytes up to and including the first blank line; None at a clean end of stream."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[: end + 4])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > HEAD_LIMIT:
                raise _Unparseable("header block too long")
            if not self._fill():
                if self.buffer:
                    raise _Unparseable("stream ended inside a header block")
                return None

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > HEAD_LIMIT or not self._fill():
                raise _Unparseable("bad chunk framing")
        line = bytes(self.buffer[: end + 2])
        del self.buffer[: end + 2]
        return line

    def some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes (at least one); b"" at end of stream."""
        if not self.buffer and not self._fill():
            return b""
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return data

    def rest(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _parse_head(head: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    first = lines[0].split(b" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(b":")
            if not sep:
                raise _Unparseable(f"bad header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
    return first, headers


def _framing(headers: dict[bytes, bytes]) -> tuple[int | None, bool]:
    """(Content-Length or None, chunked?)"""
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return None, True
    if b"content-length" in headers:
        try:
            return int(headers[b"content-length"]), False
        except ValueError:
            raise _Unparseable("bad Content-Length") from None
    return None, False


def _flip_position(offset: int | None, length: int) -> int:
    if offset is None:
        return length // 2
    position = length + offset if offset < 0 else offset
    return min(max(position, 0), length - 1)


def _error_response(status: int, message: str) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    body = json.dumps({"detail": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _discard(data: bytes) -> None:
    pass


class _Connection:
    """One client connection and, once a request is forwarded, its upstream one; a thread pumps each way."""

    def __init__(self, proxy: FaultProxy, client: socket.socket):
        self.proxy, self.client = proxy, client
        self.upstream: socket.socket | None = None
        self.methods: deque[bytes] = deque()  # methods of requests sent, for pairing with responses
        self.sent_upstream = 0
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.pumps = 1
        self.finished = 0

    def start(self) -> None:
        self.proxy._start_thread(self._pump, True, f"{self.proxy.name}-up")

    def reset(self, abort: bool = True) -> None:
        """Close both sides from any thread: abruptly (RST) unless ``abort`` is False; blocked threads wake."""
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
            socks = [sock for sock in (self.client, self.upstream) if sock is not None]
        for sock in socks:
            if abort:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _open_upstream(self) -> None:
        """Connect to the upstream and start relaying its responses, unless already done."""
        if self.upstream is not None:
            return
        try:
            upstream = socket.create_connection(self.proxy.upstream, timeout=self.proxy.idle_timeout)
        except OSError:
            self.proxy._count("upstream_errors")
            raise
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            if self.closed.is_set():
                upstream.close()
                raise ConnectionAbortedError("the connection was cut while its upstream was opened")
            self.upstream = upstream
            self.pumps += 1
        self.proxy._start_thread(self._pump, False, f"{self.proxy.name}-down")

    # -- sending, with the cut fault on the client -> server side

    def _to_upstream(self, data: bytes) -> None:
        if not data:
            return
        cut_at = self.proxy._cut_point(self.sent_upstream, len(data))
        if cut_at is not None:
            self.upstream.sendall(data[:cut_at])
            self.sent_upstream += cut_at
            raise _Cut()
        self.sent_upstream += len(data)
        self.upstream.sendall(data)

    def _to_client(self, data: bytes) -> None:
        self.client.sendall(data)

    def _forward_body(self, send: Callable[[bytes], None], reader: _Reader, length: int, flip_at: int | None) -> None:
        done = 0
        while done < length:
            data = reader.some(min(CHUNK, length - done))
            if not data:
                raise _Unparseable("stream ended inside a body")
            if flip_at is not None and done <= flip_at < done + len(data):
                mutable = bytearray(data)
                mutable[flip_at - done] ^= 0xFF
                data = bytes(mutable)
            send(data)
            done += len(data)

    def _forward_chunked(self, send: Callable[[bytes], None], reader: _Reader, kind: str | None) -> None:
        """Forward a chunked body; when ``kind`` is given, flip body byte ``CHUNKED_OFFSET`` if the budget allows."""
        position = 0
        while True:
            size_line = reader.line()
            send(size_line)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _Unparseable("bad chunk size") from None
            if size == 0:
                while (trailer := reader.line()) != b"\r\n":
                    send(trailer)
                send(trailer)
                return
            flip_at = None
            if kind and position <= CHUNKED_OFFSET < position + size and self.proxy._take(kind):
                flip_at = CHUNKED_OFFSET - position
            self._forward_body(send, reader, size, flip_at)
            position += size
            if reader.line() != b"\r\n":
                raise _Unparseable("chunk not followed by CRLF")
            send(b"\r\n")

    # -- one direction

    def _requests(self, reader: _Reader) -> None:
        while (head := reader.head()) is not None:
            first, headers = _parse_head(head)
            if len(first) != 3 or not first[2].startswith(b"HTTP/1."):
                raise _Unparseable(f"not a request line: {first!r}")
            method = first[0].upper()
            length, chunked = _framing(headers)
            if b"upgrade" in headers:
                raise _Unparseable("protocol upgrade")
            action, mode = self.proxy._request_action()
            if action == "down":
                raise _Refused()
            if action == "errors":
                if chunked:
                    self._forward_chunked(_discard, reader, None)
                elif length:
                    self._forward_body(_discard, reader, length, None)
                self.client.sendall(_error_response(mode.status, f"error injected by {self.proxy.name}"))
                raise _Answered()
            if action == "delay" and self.closed.wait(mode.seconds):
                return  # cut while waiting
            self._open_upstream()
            self.methods.append(method)
            upload = method in UPLOAD_METHODS
            flip_at = None
            if upload and length is not None and length > MIN_BODY and self.proxy._take("requests"):
                flip_at = _flip_position(self.proxy._offsets["requests"], length)
            self._to_upstream(head)
            if chunked:
                self._forward_chunked(self._to_upstream, reader, "requests" if upload else None)
            elif length:
                self._forward_body(self._to_upstream, reader, length, flip_at)

    def _responses(self, reader: _Reader) -> None:
        while (head := reader.head()) is not None:
            first, headers = _parse_head(head)
            if len(first) < 2 or not first[0].startswith(b"HTTP/1."):
                raise _Unparseable(f"not a status line: {first!r}")
            status = int(first[1])
            if 100 <= status < 200:
                if status == 101:
                    raise _Unparseable("switching protocols")
                self._to_client(head)  # 100 Continue: the final response follows
                continue
            method = self.methods.popleft() if self.methods else b""
            length, chunked = _framing(headers)
            get = method == b"GET" and status in (200, 206)
            self._to_client(head)
            if method == b"HEAD" or status in (204, 304):
                continue
            if chunked:
                self._forward_chunked(self._to_client, reader, "responses" if get else None)
            elif length is not None:
                flip_at = None
                if get and length > MIN_BODY and self.proxy._take("responses"):
                    flip_at = _flip_position(self.proxy._offsets["responses"], length)
                self._forward_body(self._to_client, reader, length, flip_at)
            else:
                raise _Unparseable("response body delimited by the end of the connection")

    def _pump(self, to_upstream: bool) -> None:
        source = self.client if to_upstream else self.upstream
        reader = _Reader(source)
        try:
            try:
                (self._requests if to_upstream else self._responses)(reader)
            except _Unparseable:
                if to_upstream:
                    self._open_upstream()
                send = self._to_upstream if to_upstream else self._to_client
                send(reader.rest())
                while data := source.recv(CHUNK):
                    send(data)
            target = self.upstream if to_upstream else self.client
            if target is not None:
                try:
                    target.shutdown(socket.SHUT_WR)  # pass the half-close on
                except OSError:
                    pass
        except _Cut:
            self.proxy._after_cut(self)
        except _Answered:
            self.reset(abort=False)
        except (_Refused, OSError, ValueError):
            self.reset()
        with self.lock:
            self.finished += 1
            last = self.finished == self.pumps
        if last:
            self.reset(abort=False)
            self.proxy._forget(self)


class FaultProxy:
    """An HTTP/1.1 proxy from 127.0.0.1:<free port> to ``upstream_url`` that injects faults on demand."""

    def __init__(
        self,
        upstream_url: str,
        *,
        name: str = "fault-proxy",
        idle_timeout: float = 30.0,
        lifetime: float = 900.0,
    ):
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, not {upstream_url!r}")
        self.upstream = (parts.hostname, parts.port)
        self.name = name
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._mode = _Mode("forward")
        self._budget = {"requests": 0, "responses": 0}
        self._offsets: dict[str, int | None] = {"requests": None, "responses": None}
        self._cut_bytes: int | None = None
        self._cut_budget = 0
        self._cut_then_down = False
        self._counts = dict.fromkeys((f.name for f in fields(FaultStats)), 0)
        self._connections: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.port = 0

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Listen on a free loopback port and start accepting."""
        listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"{self.name}-accept", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, cut every open connection and join all threads (at most ``timeout`` seconds)."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)  # it cuts the open connections as it ends
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            raise RuntimeError(f"{self.name}: threads still running after stop(): {alive}")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the mode (thread-safe, effective for the next request)

    def heal(self) -> None:
        """Forward every request untouched, with every fault disarmed."""
        with self._lock:
            self._mode = _Mode("forward")
            self._budget = {"requests": 0, "responses": 0}
            self._cut_bytes, self._cut_budget, self._cut_then_down = None, 0, False

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before forwarding each request."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._set(_Mode("delay", seconds=seconds))

    def errors(self, status: int = 500) -> None:
        """Answer every request with ``status`` without contacting the upstream."""
        if not 200 <= status <= 599:
            raise ValueError(f"status must be a final HTTP status (200-599), not {status}")
        self._set(_Mode("errors", status=status))

    def down(self) -> None:
        """Reset every new connection at once, and cut the open ones."""
        self._set(_Mode("down"))
        self._cut_open_connections()

    def flap(self, up_seconds: float, down_seconds: float) -> None:
        """Alternate forwarding for ``up_seconds`` and down for ``down_seconds``, starting now with up."""
        if up_seconds <= 0 or down_seconds <= 0:
            raise ValueError("up_seconds and down_seconds must be positive")
        self._set(_Mode("flap", up_seconds=up_seconds, down_seconds=down_seconds, since=time.monotonic()))

    # -- faults armed on top of the mode (thread-safe, effective at once)

    def corrupt_requests(self, count: int = 1, offset: int | None = None) -> None:
        """Flip one byte in the body of each of the next ``count`` uploads (PUT/POST, body > 1 KiB)."""
        with self._lock:
            self._budget["requests"] = count
            self._offsets["requests"] = offset

    def corrupt_responses(self, count: int = 1, offset: int | None = None) -> None:
        """Flip one byte in the body of each of the next ``count`` GET responses (200/206, body > 1 KiB)."""
        with self._lock:
            self._budget["responses"] = count
            self._offsets["responses"] = offset

    def cut_after_bytes(self, nbytes: int, count: int = 1, then_down: bool = False) -> None:
        """Reset the next ``count`` connections that reach ``nbytes`` client -> server bytes, at that byte."""
        if nbytes < 1:
            raise ValueError("nbytes must be at least 1")
        with self._lock:
            self._cut_bytes, self._cut_budget, self._cut_then_down = nbytes, count, then_down

    def stats(self) -> FaultStats:
        """Connections served and refused, requests by what was done to them, and the faults injected."""
        with self._lock:
            return FaultStats(**self._counts)

    # -- internals

    def _set(self, mode: _Mode) -> None:
        with self._lock:
            self._mode = mode

    def _action_now(self) -> tuple[str, _Mode]:
        with self._lock:
            mode = self._mode
        return mode.action(time.monotonic()), mode

    def _request_action(self) -> tuple[str, _Mode]:
        """What to do with a request that just arrived, counted."""
        action, mode = self._action_now()
        self._count(COUNTED_AS[action])
        return action, mode

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _take(self, kind: str) -> bool:
        with self._lock:
            if self._budget[kind] <= 0:
                return False
            self._budget[kind] -= 1
            self._counts[f"corrupted_{kind}"] += 1
            return True

    def _cut_point(self, already_sent: int, count: int) -> int | None:
        """How many of ``count`` bytes to forward before cutting, or None to forward them all."""
        with self._lock:
            if self._cut_bytes is None or self._cut_budget <= 0 or already_sent + count < self._cut_bytes:
                return None
            self._cut_budget -= 1
            self._counts["cuts"] += 1
            if self._cut_then_down:
                self._mode = _Mode("down")  # before the reset, so the client's reconnection is refused
            return max(self._cut_bytes - already_sent, 0)

    def _after_cut(self, connection: _Connection) -> None:
        connection.reset()
        if self._action_now()[0] == "down":
            self._cut_open_connections()

    def _cut_open_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.reset()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _start_thread(self, target: Callable[[bool], None], argument: bool, name: str) -> None:
        thread = threading.Thread(target=target, args=(argument,), name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive() or not t.ident] + [thread]
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        deadline = time.monotonic() + self.lifetime
        with listener:
            while not self._stopping.is_set() and time.monotonic() < deadline:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                self._serve(client)
        self._cut_open_connections()

    def _serve(self, client: socket.socket) -> None:
        if self._action_now()[0] == "down":
            self._count("refused")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        self._count("connections")
        client.settimeout(self.idle_timeout)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self, client)
        with self._lock:
            self._connections.add(connection)
        connection.start()
