"""``familyctx adapter prepare`` and ``serve`` as real processes: ready line, health, graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from unit.test_adapter_fixture_warehouse import build_warehouse


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "leeds.yaml"
    path.write_text(
        "council: {gss_code: E08000035, name: Leeds, dfe_la_number: 383}\n"
        f"cms: mosaic\ndatabase_url: {url}\nlisten: {{host: 127.0.0.1, port: 50062}}\n",
        encoding="utf-8",
    )
    return path


def _familyctx(*args: str) -> list[str]:
    return [sys.executable, "-c", "from familyctx.cli import app; app()", *args]


def test_prepare_then_serve_until_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/leeds.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "mosaic")
    engine.dispose()
    config = _config(tmp_path, url)

    first = subprocess.run(
        _familyctx("adapter", "prepare", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "ix_fcx_person_nhs_key" in first.stdout
    again = subprocess.run(
        _familyctx("adapter", "prepare", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "already exist" in again.stdout

    with subprocess.Popen(
        _familyctx("adapter", "serve", "--config", str(config), "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()
            assert line.startswith("adapter ready on 127.0.0.1:"), line + (
                proc.stderr.read() if proc.poll() is not None else ""
            )
            port = int(line.strip().rsplit(":", 1)[1])
            assert port != 0
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert "adapter stopping" in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_bad_config_exits_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "council: {gss_code: 123, name: X, dfe_la_number: 383}\ncms: mosaic\ndatabase_url: sqlite://\n"
    )
    result = subprocess.run(
        _familyctx("adapter", "serve", "--config", str(config)), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "council.gss_code" in result.stderr


def test_wrong_cms_is_refused_by_prepare_and_serve(tmp_path: Path) -> None:
    """A System C warehouse under a mosaic config: both commands exit 1 naming the likely flavour."""
    url = f"sqlite:///{tmp_path}/stockport.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    config = _config(tmp_path, url)  # cms: mosaic
    for command in ("prepare", "serve"):
        extra = ("--port", "0") if command == "serve" else ()
        result = subprocess.run(
            _familyctx("adapter", command, "--config", str(config), *extra),
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 1, (command, result.stderr)
        assert "does not look like a mosaic SSD warehouse" in result.stderr
        assert "looks like systemc or eclipse" in result.stderr
        assert "adapter ready" not in result.stdout
