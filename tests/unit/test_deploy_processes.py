"""The compose "synth" job (deploy/compose/synth.sh), and adapter and gateway started from compose configs.

Runs the job script as the container would (sh, the familyctx command on PATH) with its folders moved
into a temporary directory, then serves one council's warehouse with the real adapter process on a free
loopback port and probes it with the image's health check script. The certificate and key paths of the
compose configs (the certs job's volume) are pointed at a test PKI by environment variables, as a
deployment would override them. Docker itself is not available here.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from familyctx.councils import DEMO_COUNCILS
from familyctx.trust.pki import DevPki

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "compose" / "synth.sh"
HEALTHCHECK = REPO / "deploy" / "docker" / "healthcheck.py"
BIN = Path(sys.executable).parent

# One synth run shared by the module; `make test` runs e2e-marked tests in a single process.
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def councils_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compose")
    councils, configs = root / "councils", root / "adapters"
    configs.mkdir()
    for council in DEMO_COUNCILS:
        (councils / council.slug).mkdir(parents=True)
        shutil.copy(
            REPO / "deploy" / "compose" / f"adapter-{council.slug}.yaml", configs / f"{council.slug}.yaml"
        )
    env = _env(councils, configs)
    result = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    return councils


def _env(councils: Path, configs: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAMILYCTX_COUNCILS_DIR": str(councils),
        "FAMILYCTX_ADAPTER_CONFIG_DIR": str(councils.parent / "adapters"),
        "FAMILYCTX_SYNTH_PEOPLE": "30",
        "FAMILYCTX_SYNTH_SEED": "7",
    }


def test_every_council_gets_its_own_indexed_warehouse(councils_dir: Path) -> None:
    for council in DEMO_COUNCILS:
        folder = councils_dir / council.slug
        assert sorted(p.name for p in folder.iterdir()) == [f"{council.slug}.sqlite"], "no partial files left"
        engine = sa.create_engine(f"sqlite:///{folder / council.slug}.sqlite")
        try:
            with engine.connect() as conn:
                people = conn.execute(sa.text("SELECT count(*) FROM ssd_person")).scalar_one()
                indexes = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_fcx_%'"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
        assert people > 0
        assert indexes > 0, "adapter prepare did not run"


def test_second_run_keeps_the_data(councils_dir: Path) -> None:
    before = {c.slug: (councils_dir / c.slug / f"{c.slug}.sqlite").stat().st_mtime_ns for c in DEMO_COUNCILS}
    env = _env(councils_dir, councils_dir.parent / "adapters")
    result = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    after = {c.slug: (councils_dir / c.slug / f"{c.slug}.sqlite").stat().st_mtime_ns for c in DEMO_COUNCILS}
    assert after == before


@contextlib.contextmanager
def _serving(argv: list[str], ready_marker: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a familyctx server process; yield the address it prints after ``ready_marker``."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()

    def read_output() -> None:
        for line in process.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=120)
            except queue.Empty:
                pytest.fail(f"{argv[1]} did not report ready; output: {seen}")
            seen.append(line)
            if ready_marker in line:
                yield line.rsplit(ready_marker, 1)[1].strip()
                break
    finally:
        process.terminate()
        process.wait(timeout=60)
        reader.join(timeout=60)
        if process.stdout is not None:
            process.stdout.close()


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the image's health check script as Docker would."""
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_adapter_from_the_compose_config_passes_the_image_health_check(
    councils_dir: Path, dev_pki: DevPki
) -> None:
    council = DEMO_COUNCILS[0]
    config = REPO / "deploy" / "compose" / f"adapter-{council.slug}.yaml"
    warehouse = councils_dir / council.slug / f"{council.slug}.sqlite"
    health_port = _free_port()
    env = {
        **os.environ,
        "FAMILYCTX_ADAPTER_TLS__CERT_FILE": str(dev_pki.adapter_cert(council.gss_code)),
        "FAMILYCTX_ADAPTER_TLS__KEY_FILE": str(dev_pki.adapter_key(council.gss_code)),
        "FAMILYCTX_ADAPTER_TLS__CLIENT_CA_FILE": str(dev_pki.ca_cert),
        "FAMILYCTX_ADAPTER_GATEWAY__JWKS_FILE": str(dev_pki.assertion_jwks),
        "FAMILYCTX_ADAPTER_POLICY_FILE": str(
            REPO / "services/adapter/config/policies" / f"{council.slug}.cedar"
        ),
        "FAMILYCTX_ADAPTER_HEALTH_LISTEN__PORT": str(health_port),
        # The disclosure log's volume and the certs job's tree-head key, moved here like the rest.
        "FAMILYCTX_ADAPTER_DISCLOSURE_LOG__DATABASE_URL": f"sqlite:///{councils_dir.parent}/disclosure.sqlite",
        "FAMILYCTX_ADAPTER_DISCLOSURE_LOG__SIGNING_KEY_FILE": str(
            dev_pki.adapter_audit_key(council.gss_code)
        ),
    }
    # The container's config file; only the listening addresses and the files' paths differ here.
    argv = [
        str(BIN / "familyctx"),
        "adapter",
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database-url",
        f"sqlite:///{warehouse}",
    ]
    with _serving(argv, "adapter ready on ", env) as address:
        probe = _probe("grpc", f"127.0.0.1:{health_port}")
        data_port = _probe("grpc", address)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "SERVING" in probe.stdout
    # The data port is mutual TLS only: a plaintext health check there gets nothing.
    assert data_port.returncode == 1, data_port.stdout


def test_gateway_from_the_compose_config_is_live_but_not_ready_without_its_identity_provider(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    # Liveness (/healthz, the image HEALTHCHECK and the Kubernetes livenessProbe) must not depend on
    # Keycloak, or an identity provider outage would restart every gateway; readiness (/readyz) does.
    env = {
        **os.environ,
        "FAMILYCTX_GATEWAY_AUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.sqlite'}",
        "FAMILYCTX_GATEWAY_AUDIT__SIGNING_KEY_FILE": str(dev_pki.gateway_audit_key),  # the certs job's
        "FAMILYCTX_GATEWAY_OIDC__HTTP_TIMEOUT_SECONDS": "1",
        "FAMILYCTX_GATEWAY_ASSERTION__SIGNING_KEY_FILE": str(dev_pki.assertion_key),
        "FAMILYCTX_GATEWAY_ADAPTER_TLS__CA_FILE": str(dev_pki.ca_cert),
        "FAMILYCTX_GATEWAY_ADAPTER_TLS__CERT_FILE": str(dev_pki.gateway_cert),
        "FAMILYCTX_GATEWAY_ADAPTER_TLS__KEY_FILE": str(dev_pki.gateway_key),
    }
    argv = [
        str(BIN / "familyctx"),
        "gateway",
        "serve",
        "--config",
        str(REPO / "deploy/compose/gateway.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    with _serving(argv, "gateway ready on ", env) as base_url:
        live, ready = _probe("http", f"{base_url}/healthz"), _probe("http", f"{base_url}/readyz")
        keys = _probe("http", f"{base_url}/.well-known/jwks.json")
    assert live.returncode == 0, live.stdout
    assert ready.returncode == 1 and "HTTP 503" in ready.stdout, ready.stdout
    assert keys.returncode == 0, keys.stdout  # adapters can fetch the assertion keys without a token
