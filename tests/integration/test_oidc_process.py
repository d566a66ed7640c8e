"""The development OIDC provider as a real process, and ``familyctx token`` against it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from familyctx.demo.layout import pick_free_ports
from familyctx.demo.readiness import http_ok, wait_until_ready
from familyctx.demo.supervisor import Supervisor, familyctx_argv

Provider = tuple[Supervisor, str, Path, int]


def _start(supervisor: Supervisor, state_dir: Path, port: int, name: str = "oidc") -> str:
    issuer = f"http://127.0.0.1:{port}"
    child = supervisor.start(
        name,
        familyctx_argv("oidc", "serve", "--port", str(port), "--state-dir", str(state_dir)),
        log_path=state_dir.parent / f"{name}.log",
    )
    wait_until_ready(child, http_ok(f"{issuer}/.well-known/openid-configuration"), what="OIDC provider")
    return issuer


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    port = pick_free_ports().oidc
    with Supervisor(grace_seconds=5) as supervisor:
        issuer = _start(supervisor, tmp_path / "state", port)
        yield supervisor, issuer, tmp_path / "state", port


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(familyctx_argv(*args), capture_output=True, text=True, timeout=60, check=False)


def test_token_command_prints_only_a_verifiable_token(provider: Provider) -> None:
    _, issuer, _, _ = provider
    result = _cli("token", "--user", "tm.leeds", "--issuer", issuer)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    keys = KeySet.import_key_set(httpx.get(f"{issuer}/jwks.json").json())
    claims = jwt.decode(lines[0], keys, algorithms=["RS256"]).claims
    assert claims["sub"] == "tm.leeds"
    assert claims["organisation"] == "E08000035"
    assert claims["iss"] == issuer


def test_token_command_explains_refusal(provider: Provider) -> None:
    _, issuer, _, _ = provider
    result = _cli("token", "--user", "sw.stockport", "--issuer", issuer, "--password", "wrong")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "invalid_grant" in result.stderr


def test_token_command_explains_unreachable_provider() -> None:
    port = pick_free_ports().oidc  # nothing listens there
    result = _cli("token", "--user", "sw.stockport", "--issuer", f"http://127.0.0.1:{port}")
    assert result.returncode != 0
    assert "not reachable" in result.stderr


def test_restarted_provider_keeps_its_key_and_old_tokens_verify(provider: Provider) -> None:
    supervisor, issuer, state_dir, port = provider
    before = httpx.get(f"{issuer}/jwks.json").json()
    token = _cli("token", "--user", "sw.stockport", "--issuer", issuer).stdout.strip()
    supervisor.stop("oidc")
    _start(supervisor, state_dir, port, name="oidc")
    after = httpx.get(f"{issuer}/jwks.json").json()
    assert after == before
    assert jwt.decode(token, KeySet.import_key_set(after)).claims["sub"] == "sw.stockport"


def test_serve_refuses_non_loopback_address(tmp_path: Path) -> None:
    result = _cli("oidc", "serve", "--host", "0.0.0.0", "--port", "0", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert "loopback" in result.stderr
