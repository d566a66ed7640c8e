"""A loopback TCP proxy that misbehaves on demand, between the gateway and a real council adapter.

The proxy forwards ``127.0.0.1:<port>`` to ``target`` byte for byte (TLS passes through untouched, so
mutual TLS and the requester assertion are still checked end to end by the adapter). Its mode decides
what happens to the bytes, so that network failures are facts a test sets up and waits for, never
timing guesses:

- ``pass`` (default): forward both ways.
- :meth:`LoopbackProxy.hold`: keep every byte coming back from the target until :meth:`release`
  (``call_sent`` is set as soon as a byte goes towards the target while holding: a call is on its
  way). Should the target close the connection while its bytes are held (the adapter was killed), the
  held bytes are dropped and the connection towards the gateway is closed: the answer never arrived.
- :meth:`LoopbackProxy.blackhole`: accept connections and swallow every byte both ways, on open
  connections too, without ever closing them (no FIN, no RST): a network path that silently drops.
- :meth:`LoopbackProxy.reset_answers`: forward the first half of the next chunk of bytes coming back
  on each connection, then reset the connection towards the gateway (RST: ``SO_LINGER`` 0) and close
  the one towards the target: a connection cut mid-answer.
- :meth:`LoopbackProxy.delay`: add a fixed latency (ms) to every chunk coming back (each chunk leaves
  ``latency`` after it arrived; throughput is not limited): a slow council.

A target that refuses the connection makes the proxy close the accepted one at once (the gateway sees a
connection closed during setup, as with a dead adapter). Threads, one pair per connection; for tests and
``scripts/load.py`` only.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time

__all__ = ["LoopbackProxy"]

_CHUNK = 65536


def _close(sock: socket.socket, *, reset: bool = False) -> None:
    with contextlib.suppress(OSError):
        if reset:
            # RST instead of FIN (RFC 793 abort): linger 0, and only SHUT_RD, which sends nothing but
            # wakes the thread reading this socket, so that the last close is immediate.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        else:
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Connection:
    """One accepted connection (``client``, towards the gateway) and its ``upstream`` (the target)."""

    def __init__(self, proxy: LoopbackProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._outbound: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self._held: list[bytes] = []

    def start(self) -> None:
        threading.Thread(target=self._towards_target, daemon=True).start()
        threading.Thread(target=self._from_target, daemon=True).start()
        threading.Thread(target=self._deliver, daemon=True).start()

    def close(self, *, reset_client: bool = False) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        self._outbound.put(None)
        _close(self.client, reset=reset_client)
        _close(self.upstream)

    def flush(self) -> None:
        """Send on the bytes held so far (in order)."""
        with self._lock:
            held, self._held = self._held, []
            for chunk in held:
                self._outbound.put((time.monotonic(), chunk))

    def _towards_target(self) -> None:
        proxy = self.proxy
        try:
            while data := self.client.recv(_CHUNK):
                if proxy.mode == "blackhole":
                    continue
                if proxy.mode == "hold":
                    proxy.call_sent.set()
                self.upstream.sendall(data)
        except OSError:
            pass
        if proxy.mode != "blackhole":
            self.close()

    def _from_target(self) -> None:
        proxy = self.proxy
        try:
            while data := self.upstream.recv(_CHUNK):
                mode = proxy.mode
                if mode == "blackhole":
                    continue
                if mode == "hold":
                    with self._lock:
                        self._held.append(data)
                    proxy.answer_held.set()
                    if proxy.mode != "hold":  # released while this chunk was being kept
                        self.flush()
                    continue
                self.flush()
                if mode == "reset":
                    half = data[: max(1, len(data) // 2)]
                    with contextlib.suppress(OSError):
                        self.client.sendall(half)
                    proxy.resets += 1
                    self.close(reset_client=True)
                    return
                self._outbound.put((time.monotonic(), data))
        except OSError:
            pass
        # The target closed (or was killed): bytes still held never reach the gateway.
        if proxy.mode == "blackhole":
            return
        with self._lock:
            self._held.clear()
        self._outbound.put(None)

    def _deliver(self) -> None:
        while (item := self._outbound.get()) is not None:
            arrived, data = item
            wait = arrived + self.proxy.latency_ms / 1000 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                self.client.sendall(data)
            except OSError:
                break
        self.close()


class LoopbackProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` (host, port); see the module docstring for the modes.

    ``call_sent``: set when bytes go towards the target while holding; ``answer_held``: set when bytes
from the target are kept while holding; ``connections``: accepted so far;
    ``resets``: connections reset mid-answer. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, target: tuple[str, int], *, latency_ms: float = 0.0) -> None:
        self.target = target
        self.mode = "pass"
        self.latency_ms = latency_ms
        self.call_sent = threading.Event()
        self.answer_held = threading.Event()
        self.connections = 0
        self.resets = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: list[_Connection] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, for a gateway's adapter ``address``."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hold(self) -> None:
        """Keep the target's bytes from now on (see the module docstring); clears ``call_sent``."""
        self.call_sent.clear()
        self.answer_held.clear()
        self.mode = "hold"

    def release(self) -> None:
        """Forward again, held bytes first."""
        self.mode = "pass"
        for connection in list(self._open):
            connection.flush()

    def blackhole(self) -> None:
        """Swallow every byte both ways, on open and new connections, and never close them."""
        self.mode = "blackhole"

    def reset_answers(self) -> None:
        """Reset each connection towards the gateway halfway through the next bytes from the target."""
        self.mode = "reset"

    def delay(self, latency_ms: float) -> None:
        """Deliver every chunk from the target ``latency_ms`` after it arrived."""
        self.latency_ms = latency_ms

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed = True
        self.mode = "pass"
        _close(self._listener)
        for connection in list(self._open):
            connection.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)  # the target is down: as a refused connection, seen through the proxy
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(self, client, upstream)
            self.connections += 1
            self._open = [c for c in self._open if not c.closed.is_set()] + [connection]
            connection.start()
