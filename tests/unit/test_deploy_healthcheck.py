"""deploy/docker/healthcheck.py, the images' HEALTHCHECK, against real servers on free loopback ports."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "healthcheck.py"


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("familyctx_healthcheck", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        status = {"/healthz": 200, "/readyz": 503}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test output
        return


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_grpc_serving_is_healthy(probe: ModuleType, health_server: tuple[str, health.HealthServicer]) -> None:
    target, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe.main(["grpc", target]) == 0


def test_grpc_not_serving_is_unhealthy(
    probe: ModuleType, health_server: tuple[str, health.HealthServicer], capsys: pytest.CaptureFixture[str]
) -> None:
    target, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert probe.main(["grpc", target]) == 1
    assert "NOT_SERVING" in capsys.readouterr().out


def test_grpc_unknown_service_is_unhealthy(
    probe: ModuleType, health_server: tuple[str, health.HealthServicer]
) -> None:
    target, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe.main(["grpc", target, "familycontext.v1.NoSuchService"]) == 1


def test_grpc_nothing_listening_is_unhealthy(probe: ModuleType) -> None:
    assert probe.main(["--timeout", "2", "grpc", f"127.0.0.1:{_closed_port()}"]) == 1


def test_http_2xx_is_healthy_and_5xx_is_not(probe: ModuleType, http_base: str) -> None:
    assert probe.main(["http", f"{http_base}/healthz"]) == 0
    assert probe.main(["http", f"{http_base}/readyz"]) == 1


def test_http_nothing_listening_is_unhealthy(probe: ModuleType) -> None:
    assert probe.main(["--timeout", "2", "http", f"http://127.0.0.1:{_closed_port()}/healthz"]) == 1


def test_http_refuses_other_schemes(probe: ModuleType) -> None:
    with pytest.raises(ValueError, match="not an http"):
        probe.check_http("file:///etc/passwd")


def test_runs_as_a_script_with_docker_exit_codes(http_base: str) -> None:
    # As the HEALTHCHECK runs it: a separate interpreter, status 0 or 1.
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), "http", f"{http_base}/healthz"], timeout=60, check=False
    )
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "http", f"{http_base}/readyz"], timeout=60, check=False
    )
    assert (ok.returncode, bad.returncode) == (0, 1)
