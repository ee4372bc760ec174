"""The transport for a runtime on this machine: responses read in large pieces.

httpcore reads a response 64 KB at a time, and every piece goes through h11 and httpx in
Python. Over a network that is noise; over loopback the socket is the cheap part: a 9 MB
dataset page is 150 pieces, and reading it took twice the CPU it takes in 1 MB pieces
(a 200,000-item read through the magic went from 0.38 s to 0.31 s on 2 cores). Reads over
TLS gain nothing (a TLS record is at most 16 KB), so only plain loopback uses this.

httpx has no setting for the read size, but httpcore takes a network backend; this one
asks the socket for more than httpcore does and passes everything else through.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

READ_BYTES = 1 << 20


class _LargeReadStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # h11 takes whatever arrives, however much: asking for more is safe.
        return self._inner.read(max(max_bytes, READ_BYTES), timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return self._inner.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class LargeReads(httpcore.NetworkBackend):
    """httpcore's own sync backend, with streams that read up to `READ_BYTES` at a time."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _LargeReadStream(self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _LargeReadStream(self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class LoopbackTransport(httpx.HTTPTransport):
    """httpx's transport for plain http on this machine, reading through `LargeReads`.

    No proxy: loopback traffic never goes through one, whatever HTTP_PROXY says.
    """

    def __init__(self) -> None:
        super().__init__(verify=False, trust_env=False)
        # httpx builds its pool with no way to pass a backend: build the same pool (with
        # httpx's default limits) with one.
        self._pool = httpcore.ConnectionPool(
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=LargeReads())
