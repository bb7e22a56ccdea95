"""A fault-injecting TCP proxy for loopback tests (stdlib only: sockets and threads).

``FaultProxy`` listens on 127.0.0.1 on a free port and forwards every connection to an upstream
127.0.0.1 port (an emulator). Point a client at ``proxy.url`` instead of the emulator, then arm faults at
any time, from any thread:

- ``corrupt_requests(count, offset)``: flip one byte (XOR 0xFF) in the body of the next ``count`` upload
  requests, i.e. ``PUT`` or ``POST`` requests with ``Content-Length`` > 1 KiB. Small control requests
  (HEAD, commit lists, manifests of a few hundred bytes, ...) are never touched.
- ``corrupt_responses(count, offset)``: the same for the bodies of the next ``count`` responses to ``GET``
  requests with status 200 or 206 and ``Content-Length`` > 1 KiB.
- ``cut_after_bytes(nbytes, count, then_down)``: the next ``count`` connections that carry ``nbytes`` of
  client -> server traffic (headers included) are cut right there: exactly ``nbytes`` are forwarded, then
  both sides are reset. With ``then_down=True`` the proxy also goes down at that moment and resets its other
  open connections, as when the emulator process dies mid-upload.
- ``down = True``: every new connection is accepted and reset at once (nothing reaches the upstream);
  ``down = False`` brings the proxy back.
- ``heal()``: disarm everything and come back up.

Faults are counted per HTTP message, not per connection: each direction of a connection is parsed as a
sequence of HTTP/1.1 messages (request or status line, headers, a body framed by ``Content-Length`` or
chunked transfer encoding), so keep-alive connections carrying several requests are handled, and the
message that is corrupted is exactly the next qualifying one in the order they reach the proxy (with parallel
uploads that order is the clients'; a test that needs to know which bytes were hit sends one large body).
Each call sets its budget, replacing what was left of the previous one, and a budget is only spent when the
fault is really injected. The byte flipped is at ``offset`` in the body: ``None`` for the
middle, a negative number counts from the end (``-1`` is the last byte), and offsets past the end are
clamped to the last byte. A chunked body (length unknown up front) always has its byte 1024 flipped.
Anything the parser does not understand (a protocol upgrade, a response delimited by the end of the
connection, bad framing) makes it forward the rest of that connection untouched.

``stats()`` returns how many connections were served, refused, and how many faults were injected.
``start()``/``stop()`` (or ``with FaultProxy(port) as proxy:``) run and join every thread; sockets time out
after ``idle_timeout`` seconds of silence and the proxy stops accepting after ``lifetime`` seconds, so a
forgotten proxy never outlives its test by much.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

HEAD_LIMIT = 64 * 1024
CHUNK = 256 * 1024
UPLOAD_METHODS = (b"PUT", b"POST")
MIN_BODY = 1024  # only bodies strictly larger than this are corrupted
CHUNKED_OFFSET = 1024


@dataclass(frozen=True)
class FaultStats:
    connections: int = 0
    refused: int = 0
    corrupted_requests: int = 0
    corrupted_responses: int = 0
    cuts: int = 0


class _Cut(Exception):
    """The connection was cut on purpose."""


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


class _Connection:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket):
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.methods: deque[bytes] = deque()  # methods of requests sent, for pairing with responses
        self.sent_upstream = 0
        self.closed = threading.Event()
        self.threads = [
            threading.Thread(target=self._pump, args=(True,), name=f"{proxy.name}-up", daemon=True),
            threading.Thread(target=self._pump, args=(False,), name=f"{proxy.name}-down", daemon=True),
        ]
        self.finished = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def reset(self, abort: bool = True) -> None:
        """Close both sides: abruptly (RST) unless ``abort`` is False (both directions already ended)."""
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.upstream):
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

    # -- sending, with the cut fault on the client -> server side

    def _send(self, to_upstream: bool, data: bytes) -> None:
        if not data:
            return
        if to_upstream:
            cut_at = self.proxy._cut_point(self.sent_upstream, len(data))
            if cut_at is not None:
                self.upstream.sendall(data[:cut_at])
                self.sent_upstream += cut_at
                raise _Cut()
            self.sent_upstream += len(data)
            self.upstream.sendall(data)
        else:
            self.client.sendall(data)

    def _forward_body(self, to_upstream: bool, reader: _Reader, length: int, flip_at: int | None) -> None:
        done = 0
        while done < length:
            data = reader.some(min(CHUNK, length - done))
            if not data:
                raise _Unparseable("stream ended inside a body")
            if flip_at is not None and done <= flip_at < done + len(data):
                mutable = bytearray(data)
                mutable[flip_at - done] ^= 0xFF
                data = bytes(mutable)
            self._send(to_upstream, data)
            done += len(data)

    def _forward_chunked(self, to_upstream: bool, reader: _Reader, kind: str | None) -> None:
        """Forward a chunked body; when ``kind`` is given, flip body byte ``CHUNKED_OFFSET`` if the budget allows."""
        position = 0
        while True:
            size_line = reader.line()
            self._send(to_upstream, size_line)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _Unparseable("bad chunk size") from None
            if size == 0:
                while (trailer := reader.line()) != b"\r\n":
                    self._send(to_upstream, trailer)
                self._send(to_upstream, trailer)
                return
            flip_at = None
            if kind and position <= CHUNKED_OFFSET < position + size and self.proxy._take(kind):
                flip_at = CHUNKED_OFFSET - position
            self._forward_body(to_upstream, reader, size, flip_at)
            position += size
            if reader.line() != b"\r\n":
                raise _Unparseable("chunk not followed by CRLF")
            self._send(to_upstream, b"\r\n")

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
            self.methods.append(method)
            upload = method in UPLOAD_METHODS
            flip_at = None
            if upload and length is not None and length > MIN_BODY and self.proxy._take("requests"):
                flip_at = _flip_position(self.proxy._offsets["requests"], length)
            self._send(True, head)
            if chunked:
                self._forward_chunked(True, reader, "requests" if upload else None)
            elif length:
                self._forward_body(True, reader, length, flip_at)

    def _responses(self, reader: _Reader) -> None:
        while (head := reader.head()) is not None:
            first, headers = _parse_head(head)
            if len(first) < 2 or not first[0].startswith(b"HTTP/1."):
                raise _Unparseable(f"not a status line: {first!r}")
            status = int(first[1])
            if 100 <= status < 200:
                if status == 101:
                    raise _Unparseable("switching protocols")
                self._send(False, head)  # 100 Continue: the final response follows
                continue
            method = self.methods.popleft() if self.methods else b""
            length, chunked = _framing(headers)
            get = method == b"GET" and status in (200, 206)
            self._send(False, head)
            if method == b"HEAD" or status in (204, 304):
                continue
            if chunked:
                self._forward_chunked(False, reader, "responses" if get else None)
            elif length is not None:
                flip_at = None
                if get and length > MIN_BODY and self.proxy._take("responses"):
                    flip_at = _flip_position(self.proxy._offsets["responses"], length)
                self._forward_body(False, reader, length, flip_at)
            else:
                raise _Unparseable("response body delimited by the end of the connection")

    def _pump(self, to_upstream: bool) -> None:
        source = self.client if to_upstream else self.upstream
        target = self.upstream if to_upstream else self.client
        reader = _Reader(source)
        try:
            try:
                (self._requests if to_upstream else self._responses)(reader)
            except _Unparseable:
                self._send(to_upstream, reader.rest())
                while data := source.recv(CHUNK):
                    self._send(to_upstream, data)
            try:
                target.shutdown(socket.SHUT_WR)  # pass the half-close on
            except OSError:
                pass
        except _Cut:
            self.proxy._after_cut(self)
        except (OSError, ValueError):
            self.reset()
        with self.lock:
            self.finished += 1
            last = self.finished == 2
        if last:
            self.reset(abort=False)
            self.proxy._forget(self)


class FaultProxy:
    """A TCP proxy from 127.0.0.1:<free port> to 127.0.0.1:``upstream_port`` that injects faults on demand."""

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        *,
        name: str = "fault-proxy",
        idle_timeout: float = 60.0,
        lifetime: float = 900.0,
    ):
        self.upstream = (upstream_host, upstream_port)
        self.name = name
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._budget = {"requests": 0, "responses": 0}
        self._offsets: dict[str, int | None] = {"requests": None, "responses": None}
        self._cut_bytes: int | None = None
        self._cut_budget = 0
        self._cut_then_down = False
        self._down = False
        self._counts = {"connections": 0, "refused": 0, "requests": 0, "responses": 0, "cuts": 0}
        self._connections: set[_Connection] = set()
        self._all_threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.port = 0

    # -- lifecycle

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, reset every open connection and join all threads (at most ``timeout`` seconds)."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        with self._lock:
            connections = list(self._connections)
            threads = list(self._all_threads)
        for connection in connections:
            connection.reset()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            raise RuntimeError(f"{self.name}: threads still running after stop(): {alive}")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- controls (thread-safe, effective at once)

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

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        with self._lock:
            self._down = bool(value)

    def heal(self) -> None:
        """Disarm every fault and accept connections again."""
        with self._lock:
            self._budget = {"requests": 0, "responses": 0}
            self._cut_bytes, self._cut_budget, self._cut_then_down = None, 0, False
            self._down = False

    def stats(self) -> FaultStats:
        with self._lock:
            counts = dict(self._counts)
        return FaultStats(
            connections=counts["connections"],
            refused=counts["refused"],
            corrupted_requests=counts["requests"],
            corrupted_responses=counts["responses"],
            cuts=counts["cuts"],
        )

    # -- internals used by connections

    def _take(self, kind: str) -> bool:
        with self._lock:
            if self._budget[kind] <= 0:
                return False
            self._budget[kind] -= 1
            self._counts[kind] += 1
            return True

    def _cut_point(self, already_sent: int, count: int) -> int | None:
        """How many of ``count`` bytes to forward before cutting, or None to forward them all."""
        with self._lock:
            if self._cut_bytes is None or self._cut_budget <= 0 or already_sent + count < self._cut_bytes:
                return None
            self._cut_budget -= 1
            self._counts["cuts"] += 1
            if self._cut_then_down:
                self._down = True
            return max(self._cut_bytes - already_sent, 0)

    def _after_cut(self, connection: _Connection) -> None:
        connection.reset()
        if self._down:
            with self._lock:
                others = list(self._connections)
            for other in others:
                other.reset()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + self.lifetime
        assert self._listener is not None
        try:
            while not self._stopping.is_set() and time.monotonic() < deadline:
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                self._serve(client)
        finally:
            self._listener.close()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            refuse = self._down
            self._counts["refused" if refuse else "connections"] += 1
        if refuse:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=self.idle_timeout)
        except OSError:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        for sock in (client, upstream):
            sock.settimeout(self.idle_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self, client, upstream)
        with self._lock:
            self._connections.add(connection)
            self._all_threads.extend(connection.threads)
            self._all_threads[:] = [t for t in self._all_threads if t.is_alive() or not t.ident]
        connection.start()
