"""A TCP forwarder a test owns: it can take a server away from its clients, then give it back.

tests/e2e/test_outage.py puts one between the served app and PostgreSQL, so that the
database becomes unreachable to the app without touching the shared cluster. ``stop`` closes
the listener (new connections are refused) and resets every open connection on both sides,
as a dead network or a crashed host does; ``start`` listens again on the same port.
"""

import contextlib
import socket
import struct
import threading

BUFFER_SIZE = 65536
ACCEPT_POLL = 0.05  # how often the accept loop looks whether it should stop
JOIN_TIMEOUT = 2
# SO_LINGER on, 0 s: close() sends a RST and drops unsent data instead of a FIN.
ABORT_ON_CLOSE = struct.pack("ii", 1, 0)


class TcpProxy:
    """Forward 127.0.0.1:port to target, one pair of threads per connection."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0  # chosen by the first start, kept by the next ones
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()

    def start(self) -> None:
        """Listen (again) on self.port, a free one the first time."""
        listener = socket.socket()
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            listener.settimeout(ACCEPT_POLL)
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), name="tcp-proxy-accept")
        self._acceptor.start()

    def stop(self) -> int:
        """Refuse new connections and reset the open ones; return how many were reset.

        Returns when every socket is closed.
        """
        if self._listener is None:
            return 0
        self._stopping.set()
        # On Linux this refuses new connections at once and wakes accept(); elsewhere the poll ends it.
        _quietly(self._listener.shutdown, socket.SHUT_RDWR)
        self._acceptor.join()
        self._listener.close()
        self._listener = None
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.cut()
        for connection in connections:
            connection.join()
        return len(connections)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # shut down by stop()
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=JOIN_TIMEOUT)
            except OSError:
                client.close()  # the target is down: the client sees its connection end
                continue
            upstream.settimeout(None)
            connection = _Connection(client, upstream, self._forget)
            with self._lock:
                self._connections.add(connection)
            connection.start()

    def _forget(self, connection: "_Connection") -> None:
        with self._lock:
            self._connections.discard(connection)


class _Connection:
    """One proxied connection: a pump thread each way; the last pump to end closes both sockets."""

    def __init__(self, client: socket.socket, upstream: socket.socket, on_closed):
        self._sockets = (client, upstream)
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self._running = 2
        self._cut = False
        self._threads = [
            threading.Thread(target=self._pump, args=(client, upstream), name="tcp-proxy-pump"),
            threading.Thread(target=self._pump, args=(upstream, client), name="tcp-proxy-pump"),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def cut(self) -> None:
        """Reset both sides: each peer gets a RST, mid-request or not, and no FIN first."""
        with self._lock:
            if self._running == 0:
                return
            self._cut = True
            for sock in self._sockets:
                _quietly(sock.setsockopt, socket.SOL_SOCKET, socket.SO_LINGER, ABORT_ON_CLOSE)
                # Wakes a pump blocked in recv() without sending anything.
                _quietly(sock.shutdown, socket.SHUT_RD)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
        if any(thread.is_alive() for thread in self._threads):
            # A pump stuck in sendall() to a peer that stopped reading: shut it down hard.
            with self._lock:
                for sock in self._sockets:
                    _quietly(sock.shutdown, socket.SHUT_RDWR)
            for thread in self._threads:
                thread.join()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER_SIZE):
                sink.sendall(data)
        except OSError:
            pass  # reset by a peer or by cut()
        with self._lock:
            if not self._cut:
                _quietly(sink.shutdown, socket.SHUT_WR)  # pass the end of the stream on
            self._running -= 1
            last = self._running == 0
        if last:
            for sock in self._sockets:
                sock.close()
            self._on_closed(self)


def _quietly(operation, *args) -> None:
    """Run a socket operation that fails harmlessly when the peer has already gone."""
    with contextlib.suppress(OSError):
        operation(*args)
