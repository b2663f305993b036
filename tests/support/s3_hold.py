"""A loopback TCP proxy in front of the test S3 endpoint that holds one chosen request until the test releases it.

It reproduces a race at a chosen instant with real clients and a real server: a client pointed at the proxy
(``AWS_ENDPOINT_URL`` = :attr:`HoldingProxy.url`) talks to the S3 endpoint as usual, except that the first
request whose bytes match ``pattern`` (e.g. the PUT of a ``_delta_log/<n>.json`` commit) is not forwarded until
:meth:`HoldingProxy.release`; everything else passes through untouched, in order::

    with HoldingProxy(s3_endpoint.url, rb"PUT [^ ]*/_delta_log/\\d{20}\\.json ") as proxy:
        ...                                   # start a client on proxy.url
        assert proxy.held.wait(600)           # its commit PUT is on the wire, not yet at S3
        ...                                   # let another writer act in between
        proxy.release()

HTTP/1.1 requests on one connection are sequential (a request is sent after the previous response), so a
request starts a read from the client socket and the pattern is matched there.
"""

from __future__ import annotations

import re
import socket
import threading
from typing import List, Optional
from urllib.parse import urlparse

__all__ = ["HoldingProxy"]


class HoldingProxy:
    """Forward loopback TCP to ``upstream`` (an ``http://host:port`` URL); hold the first request matching
    ``pattern`` (a bytes regex) until :meth:`release`. :attr:`held` is set once that request arrived."""

    def __init__(self, upstream: str, pattern: bytes) -> None:
        parsed = urlparse(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._pattern = re.compile(pattern)
        self.held = threading.Event()
        self.matched: Optional[bytes] = None  # the first line of the held request
        self._released = threading.Event()
        self._armed = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._sockets: List[socket.socket] = []
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def release(self) -> None:
        """Forward the held request (and everything after it)."""
        self._released.set()

    def __enter__(self) -> "HoldingProxy":
        threading.Thread(target=self._accept, name="s3-hold-accept", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._released.set()
        for sock in [self._listener, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and not self.held.is_set() and self._pattern.search(data):
                    with self._armed:
                        first = not self.held.is_set()
                        if first:
                            self.matched = data.split(b"\r\n", 1)[0]
                            self.held.set()
                    if first:
                        self._released.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
