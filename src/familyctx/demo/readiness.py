"""Wait for a child to be ready: an HTTP URL answering 200, or a gRPC health check SERVING.

Each wait polls with a short back-off up to a bounded timeout and fails fast (with the tail of the
child's log) when the child exits first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from familyctx.demo.errors import ChildExitedError, NotReadyError
from familyctx.demo.supervisor import ChildProcess

__all__ = ["grpc_health_serving", "http_ok", "wait_until_ready"]


def http_ok(url: str) -> Callable[[], bool]:
    """Probe: ``GET url`` answers 200 (e.g. ``/readyz``, the OIDC discovery document)."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def grpc_health_serving(address: str, service: str = "") -> Callable[[], bool]:
    """Probe: ``grpc.health.v1.Health/Check`` for ``service`` at ``address`` answers SERVING."""

    def probe() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(address) as channel:
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
                f"the {what} exited with code {code} before it was ready; its log is {child.log_path}:\n"
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
