"""An HTTP chaos proxy for loopback tests (stdlib only: sockets and threads).

``ChaosProxy(upstream_url)`` listens on 127.0.0.1 on a free port and forwards HTTP/1.1 requests to one
upstream (a serving process). Point clients at ``proxy.url``, then switch its mode at any time, from any
thread:

- ``passthrough()``: forward every request (the initial mode);
- ``delay(seconds)``: wait ``seconds`` before forwarding each request;
- ``errors(status=500)``: answer every request with ``status`` without contacting the upstream;
- ``down()``: accept every connection and reset it at once; connections open at that moment (a request
  being delayed or waiting for the upstream) are cut too, as when the process dies;
- ``flap(up_seconds, down_seconds)``: passthrough for ``up_seconds``, down for ``down_seconds``, and so on,
  starting now with up.

The mode is read when a connection is accepted (down resets it there) and again once its request has been
read, which decides what happens to it. The proxy handles one request per connection: it sends
``Connection: close`` both ways and closes after the response. Request bodies must be framed by
``Content-Length`` (a chunked request is answered 501); a response is relayed up to its ``Content-Length``, or
until the upstream closes. When the upstream refuses the connection, the client's connection is reset, as the
upstream's own port would do.

``stats()`` counts requests by what was done to them: ``passthrough``, ``delay``, ``errors``, ``down``
(flapping counts under ``passthrough`` and ``down``), and ``upstream_errors`` for forwarded requests whose
upstream could not be reached. Bounded: sockets time out after ``idle_timeout`` seconds of silence, the proxy
stops accepting after ``lifetime`` seconds, and ``stop()`` (or leaving ``with ChaosProxy(url) as proxy:``)
cuts open connections and joins every thread.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024
CHUNK = 64 * 1024
HOP_BY_HOP = (b"connection", b"keep-alive", b"proxy-connection")
MODES = ("passthrough", "delay", "errors", "down")


class _Malformed(Exception):
    """The bytes are not an HTTP message this proxy handles; the message says why."""


@dataclass(frozen=True)
class _Mode:
    name: str  # passthrough, delay, errors, down or flap
    seconds: float = 0.0  # delay
    status: int = 500  # errors
    up_seconds: float = 0.0  # flap
    down_seconds: float = 0.0  # flap
    since: float = 0.0  # flap: when the first up phase began (monotonic)

    def action(self, now: float) -> str:
        """What to do with a request arriving at ``now``: one of ``MODES``."""
        if self.name != "flap":
            return self.name
        phase = (now - self.since) % (self.up_seconds + self.down_seconds)
        return "passthrough" if phase < self.up_seconds else "down"


class _Connection:
    """One client connection and, while a request is forwarded, its upstream one; ``cut`` ends both at once."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.upstream: socket.socket | None = None
        self.cut = threading.Event()

    def abort(self) -> None:
        """Reset the connection from any thread; a thread blocked on it wakes with an error."""
        self.cut.set()
        for sock in (self.sock, self.upstream):
            if sock is not None:
                _reset(sock, shutdown=True)


def _reset(sock: socket.socket, shutdown: bool = False) -> None:
    """Make the socket's close send a reset; with ``shutdown``, also wake threads blocked on it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if shutdown:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send ``data`` unless the peer is gone."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def _read_head(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """The bytes up to the first blank line (removed from ``buffer``); None if the peer closed before any."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if len(buffer) > HEAD_LIMIT:
            raise _Malformed("header block too long")
        data = sock.recv(CHUNK)
        if not data:
            if buffer:
                raise _Malformed("connection closed inside the header block")
            return None
        buffer += data
    head = bytes(buffer[: end + 4])
    del buffer[: end + 4]
    return head


def _read_exactly(sock: socket.socket, buffer: bytearray, length: int) -> bytes:
    while len(buffer) < length:
        data = sock.recv(CHUNK)
        if not data:
            raise _Malformed("connection closed inside the body")
        buffer += data
    body = bytes(buffer[:length])
    del buffer[:length]
    return body


def _headers(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The first line and the header fields of a message head."""
    lines = head[:-4].split(b"\r\n")
    fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise _Malformed(f"bad header line {line[:80]!r}")
        fields.append((name.strip().lower(), value.strip()))
    return lines[0], fields


def _closing_head(first_line: bytes, fields: list[tuple[bytes, bytes]]) -> bytes:
    """The head again, its connection headers replaced by ``Connection: close``."""
    kept = [name + b": " + value for name, value in fields if name not in HOP_BY_HOP]
    return b"\r\n".join([first_line, *kept, b"Connection: close"]) + b"\r\n\r\n"


def _content_length(fields: list[tuple[bytes, bytes]]) -> int | None:
    values = {value for name, value in fields if name == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not next(iter(values)).isdigit():
        raise _Malformed(f"bad Content-Length {sorted(values)!r}")
    return int(next(iter(values)))


def _status_response(status: int, message: str) -> bytes:
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


class ChaosProxy:
    """An HTTP proxy from 127.0.0.1:<free port> to ``upstream_url`` whose behaviour can be switched at will."""

    def __init__(
        self,
        upstream_url: str,
        *,
        name: str = "chaos-proxy",
        idle_timeout: float = 10.0,
        lifetime: float = 900.0,
    ):
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, not {upstream_url!r}")
        self.upstream = (parts.hostname, parts.port)
        self.name = name
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime
        self.port = 0
        self._lock = threading.Lock()
        self._mode = _Mode("passthrough")
        self._counts = dict.fromkeys((*MODES, "upstream_errors"), 0)
        self._connections: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChaosProxy:
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
            self._acceptor.join(timeout)
        self._abort_open_connections()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            raise RuntimeError(f"{self.name}: threads still running after stop(): {alive}")

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- modes (thread-safe, effective for the next request)

    def passthrough(self) -> None:
        """Forward every request."""
        self._set(_Mode("passthrough"))

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
        self._abort_open_connections()

    def flap(self, up_seconds: float, down_seconds: float) -> None:
        """Alternate passthrough for ``up_seconds`` and down for ``down_seconds``, starting now with up."""
        if up_seconds <= 0 or down_seconds <= 0:
            raise ValueError("up_seconds and down_seconds must be positive")
        self._set(_Mode("flap", up_seconds=up_seconds, down_seconds=down_seconds, since=time.monotonic()))

    def stats(self) -> dict[str, int]:
        """Requests handled per mode applied (passthrough, delay, errors, down) and upstream errors."""
        with self._lock:
            return dict(self._counts)

    # -- internals

    def _set(self, mode: _Mode) -> None:
        with self._lock:
            self._mode = mode

    def _action(self) -> tuple[str, _Mode]:
        with self._lock:
            mode = self._mode
        return mode.action(time.monotonic()), mode

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _abort_open_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.abort()

    def _accept_loop(self, listener: socket.socket) -> None:
        deadline = time.monotonic() + self.lifetime
        with listener:
            while not self._stopping.is_set() and time.monotonic() < deadline:
                try:
                    sock, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                if self._action()[0] == "down":
                    self._count("down")
                    _reset(sock)
                    sock.close()
                    continue
                connection = _Connection(sock)
                thread = threading.Thread(target=self._serve, args=(connection,), name=f"{self.name}-conn", daemon=True)
                with self._lock:
                    self._connections.add(connection)
                    self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()

    def _serve(self, connection: _Connection) -> None:
        sock = connection.sock
        sock.settimeout(self.idle_timeout)
        try:
            request = self._read_request(sock)
            if request is None:
                return
            action, mode = self._action()
            self._count(action)
            if action == "down":
                _reset(sock)
                return
            if action == "errors":
                sock.sendall(_status_response(mode.status, f"error injected by {self.name}"))
                return
            if action == "delay" and connection.cut.wait(mode.seconds):
                return  # cut while waiting
            self._forward(connection, request)
        except _Malformed as exc:
            _send_quietly(sock, _status_response(400, str(exc)))
        except OSError:
            _reset(sock)  # the client, the upstream or a cut ended it: end the client's side abruptly too
        finally:
            with self._lock:
                self._connections.discard(connection)
            sock.close()

    def _read_request(self, sock: socket.socket) -> bytes | None:
        """The whole request, head rewritten to close the connection; None if the client sent nothing."""
        buffer = bytearray()
        head = _read_head(sock, buffer)
        if head is None:
            return None
        first_line, fields = _headers(head)
        if any(name == b"transfer-encoding" for name, _ in fields):
            _send_quietly(sock, _status_response(501, "chunked request bodies are not supported by the chaos proxy"))
            return None
        length = _content_length(fields) or 0
        return _closing_head(first_line, fields) + _read_exactly(sock, buffer, length)

    def _forward(self, connection: _Connection, request: bytes) -> None:
        """Send ``request`` upstream and relay the response to the client."""
        try:
            connection.upstream = socket.create_connection(self.upstream, timeout=self.idle_timeout)
        except OSError:
            self._count("upstream_errors")
            raise
        with connection.upstream as upstream:
            if connection.cut.is_set():
                return
            try:
                upstream.sendall(request)
                self._relay_response(upstream, connection.sock, request.split(b" ", 1)[0])
            except _Malformed as exc:
                self._count("upstream_errors")
                raise ConnectionResetError(f"bad answer from the upstream: {exc}") from None

    @staticmethod
    def _relay_response(upstream: socket.socket, client: socket.socket, method: bytes) -> None:
        buffer = bytearray()
        head = _read_head(upstream, buffer)
        if head is None:
            raise _Malformed("it closed without answering")
        first_line, fields = _headers(head)
        client.sendall(_closing_head(first_line, fields))
        parts = first_line.split(b" ", 2)
        if method == b"HEAD" or (len(parts) > 1 and parts[1] in (b"204", b"304")):
            return
        length = _content_length(fields)
        if length is not None:
            client.sendall(_read_exactly(upstream, buffer, length))
            return
        client.sendall(bytes(buffer))
        while data := upstream.recv(CHUNK):
            client.sendall(data)
