"""``familyctx adapter prepare`` and ``serve`` as real processes: ready line, health, graceful SIGTERM.

The data port speaks mutual TLS only (dev PKI from the ``dev_pki`` fixture); the optional plaintext
``health_listen`` port serves grpc.health.v1 and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trust_support import Caller, adapter_trust_yaml, requester
from unit.test_adapter_fixture_warehouse import build_warehouse

from familyctx.trust.pki import DevPki

LEEDS = "E08000035"


def _config(tmp_path: Path, url: str, pki: DevPki, extra: str = "") -> Path:
    path = tmp_path / "leeds.yaml"
    path.write_text(
        "council: {gss_code: E08000035, name: Leeds, dfe_la_number: 383}\n"
        f"cms: mosaic\ndatabase_url: {url}\nlisten: {{host: 127.0.0.1, port: 50062}}\n"
        + adapter_trust_yaml(pki, LEEDS)
        + extra,
        encoding="utf-8",
    )
    return path


def _familyctx(*args: str) -> list[str]:
    return [sys.executable, "-c", "from familyctx.cli import app; app()", *args]


def test_prepare_then_serve_until_sigterm(tmp_path: Path, dev_pki: DevPki) -> None:
    url = f"sqlite:///{tmp_path}/leeds.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "mosaic")
    engine.dispose()
    config = _config(tmp_path, url, dev_pki, "health_listen: {host: 127.0.0.1, port: 0}\n")

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
            # The health-only port is logged (stderr) before the ready line (stdout).
            health_line = ""
            while "health only (plaintext) on" not in health_line:
                health_line = proc.stderr.readline()
                assert health_line, "the adapter exited before logging its health port"
            health_port = int(health_line.strip().rsplit(":", 1)[1])
            caller = Caller.gateway(dev_pki)
            with caller.sync_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                described = adapter_pb2_grpc.AdapterServiceStub(channel).Describe(
                    adapter_pb2.DescribeRequest(),
                    metadata=caller.metadata(LEEDS, requester(purpose="")),
                    timeout=10,
                )
                assert described.council.gss_code == LEEDS
            with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                with pytest.raises(grpc.RpcError) as info:  # health only: no data service on this port
                    adapter_pb2_grpc.AdapterServiceStub(channel).Describe(
                        adapter_pb2.DescribeRequest(), metadata=caller.metadata(LEEDS), timeout=10
                    )
                assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # the data port has no plaintext
                with pytest.raises(grpc.RpcError) as info:
                    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
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


def test_wrong_cms_is_refused_by_prepare_and_serve(tmp_path: Path, dev_pki: DevPki) -> None:
    """A System C warehouse under a mosaic config: both commands exit 1 naming the likely flavour."""
    url = f"sqlite:///{tmp_path}/stockport.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    config = _config(tmp_path, url, dev_pki)  # cms: mosaic
    for command in ("prepare", "serve"):
        extra = ("--port", "0") if command == "serve" else ()
        result = subprocess.run(
            _familyctx("adapter", command, "--config", str(config), *extra),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, (command, result.stderr)
        assert "does not look like a mosaic SSD warehouse" in result.stderr
        assert "looks like systemc or eclipse" in result.stderr
        assert "adapter ready" not in result.stdout


@pytest.mark.parametrize(
    ("setting", "file_name"),
    [
        ("tls.cert_file", "adapter-E08000035.pem"),
        ("tls.key_file", "adapter-E08000035.key"),
        ("tls.client_ca_file", "ca.pem"),
        ("gateway.jwks_file", "gateway-assertion-jwks.json"),
    ],
)
def test_missing_trust_file_stops_serve_with_the_setting_and_path(
    tmp_path: Path, dev_pki: DevPki, setting: str, file_name: str
) -> None:
    url = f"sqlite:///{tmp_path}/leeds.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "mosaic")
    engine.dispose()
    missing = tmp_path / "absent" / file_name
    text = _config(tmp_path, url, dev_pki).read_text(encoding="utf-8")
    config = tmp_path / "leeds.yaml"
    config.write_text(text.replace(str(dev_pki.directory / file_name), str(missing)), encoding="utf-8")
    result = subprocess.run(
        _familyctx("adapter", "serve", "--config", str(config), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"{setting}: {missing} does not exist" in result.stderr
    assert "Traceback" not in result.stderr and "adapter ready" not in result.stdout


def test_broken_policy_stops_serve(tmp_path: Path, dev_pki: DevPki) -> None:
    url = f"sqlite:///{tmp_path}/leeds.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "mosaic")
    engine.dispose()
    policy = tmp_path / "broken.cedar"
    policy.write_text('@id("x")\npermit(principal, action, resource) when { context.colour == "blue" ;\n')
    config = _config(tmp_path, url, dev_pki)
    lines = [
        ln for ln in config.read_text(encoding="utf-8").splitlines() if not ln.startswith("policy_file:")
    ]
    config.write_text("\n".join([*lines, f"policy_file: {policy}", ""]), encoding="utf-8")
    result = subprocess.run(
        _familyctx("adapter", "serve", "--config", str(config), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "broken.cedar" in result.stderr
    assert "Traceback" not in result.stderr and "adapter ready" not in result.stdout
