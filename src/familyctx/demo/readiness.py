"""Wait for a child to be ready: an HTTP URL answering 200, or a gRPC health check SERVING.

Each wait polls with a short back-off up to a bounded timeout and fails fast (with the tail of the
child's log) when the child exits first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from familyctx.demo.errors import ChildExitedError, NotReadyError
from familyctx.demo.supervisor import ChildProcess, describe_exit

__all__ = ["TlsClient", "grpc_health_serving", "http_ok", "wait_until_ready"]


@dataclass(frozen=True)
class TlsClient:
    """A mutual-TLS client identity for probes: PEM files and the server name to check."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    server_name: str


def _channel(grpc: Any, address: str, tls: TlsClient | None) -> Any:
    if tls is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(
        tls.ca_file.read_bytes(), tls.key_file.read_bytes(), tls.cert_file.read_bytes()
    )
    return grpc.secure_channel(
        address, credentials, options=[("grpc.ssl_target_name_override", tls.server_name)]
    )


def http_ok(url: str) -> Callable[[], bool]:
    """Probe: ``GET url`` answers 200 (e.g. ``/readyz``, the OIDC discovery document)."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def grpc_health_serving(
    address: str, service: str = "", *, tls: TlsClient | None = None
) -> Callable[[], bool]:
    """Probe: ``grpc.health.v1.Health/Check`` for ``service`` at ``address`` answers SERVING.

    ``tls``: (CA certificate, client certificate, client key, server name) files for a mutual-TLS port
    (an adapter's data port); None for a plaintext one."""

    def probe() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with _channel(grpc, address, tls) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2.0)
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return probe


def wait_until_ready(
    child: ChildProcess, probe: Callable[[], bool], *, what: str, timeout_seconds: float = 60.0
) -> None:
    """Poll ``probe`` until it is true. Raises :class:`ChildExitedError` if ``child`` exits first and
    :class:`NotReadyError` after ``timeout_seconds``; both name ``what`` and the child's log file."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.05
    while True:
        code = child.exited()
        if code is not None:
            raise ChildExitedError(
                f"the {what} {describe_exit(code)} before it was ready; its log is {child.log_path}:\n"
                f"{child.log_tail()}"
            )
        if probe():
            return
        if time.monotonic() >= deadline:
            raise NotReadyError(
                f"the {what} was not ready after {timeout_seconds:.0f} s; see its log {child.log_path}:\n"
                f"{child.log_tail()}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
