"""``familyctx gateway serve`` starts a real uvicorn process on a free port and says where."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from familyctx_gateway.testing.issuer import running_issuer
from familyctx_gateway.testing.pki import session_pki

from familyctx.trust.pki import DevPki


def _trust_yaml(pki: DevPki, *, key_file: Path | None = None) -> str:
    return (
        f"assertion: {{issuer: https://gateway.test, signing_key_file: '{pki.assertion_key}'}}\n"
        f"adapter_tls: {{ca_file: '{pki.ca_cert}', cert_file: '{pki.gateway_cert}', "
        f"key_file: '{key_file or pki.gateway_key}'}}\n"
    )


def test_gateway_serve_prints_ready_line_and_serves(tmp_path: Path) -> None:
    with running_issuer() as issuer:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            "listen: {host: 127.0.0.1, port: 8000}\n"
            f"audit_database_url: sqlite:///{tmp_path / 'audit.sqlite'}\n"
            f'oidc: {{issuer: "{issuer.issuer}", audience: "familyctx-gateway"}}\n'
            "adapters:\n"
            '  - {gss_code: E08000007, name: Stockport, address: "127.0.0.1:1", deadline_ms: 500}\n'
            + _trust_yaml(session_pki())
        )
        with subprocess.Popen(
            [
                sys.executable,
                "-m",
                "familyctx.cli",
                "gateway",
                "serve",
                "--config",
                str(config),
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as proc:
            try:
                assert proc.stdout is not None
                line = proc.stdout.readline()
                match = re.fullmatch(r"gateway ready on (http://127\.0\.0\.1:\d+)\n", line)
                assert match, line
                base = match.group(1)
                assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
                ready = httpx.get(f"{base}/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.headers["x-request-id"]
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    assert (tmp_path / "audit.sqlite").exists()


def test_gateway_serve_with_a_bad_config_lists_each_bad_field_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "listen: {host: 127.0.0.1, port: 8000}\n"
        "adapters:\n"
        '  - {gss_code: W06000015, name: Cardiff, address: "127.0.0.1:50061"}\n'
        '  - {gss_code: E08000007, name: Stockport, address: "127.0.0.1:99999"}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "familyctx.cli", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: gateway config {config}: adapters[0].gss_code: must be E followed by 8 digits "
        "(a council's ONS/GSS code), for example E08000007",
        f"error: gateway config {config}: adapters[1].address: must be host:port with a port from 1 to "
        "65535, for example 127.0.0.1:50061 or adapter-leeds:50051",
    ]


def _serve_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "familyctx.cli", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


ADAPTER = 'adapters:\n  - {gss_code: E08000007, name: Stockport, address: "127.0.0.1:50061"}\n'


def test_adapters_without_mutual_tls_and_assertion_settings_are_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(ADAPTER)
    done = _serve_config(config)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: gateway config {config}: (file): adapter_tls and assertion must be set when adapters are "
        "configured: the gateway calls adapters only over mutual TLS with a signed assertion "
        "(docs/deployment.md)"
    ]


@pytest.mark.parametrize("broken", ["missing", "not_a_key"])
def test_an_unusable_trust_file_is_named_with_its_setting_and_exits_2(tmp_path: Path, broken: str) -> None:
    pki = session_pki()
    key_file = tmp_path / "gateway.key"
    if broken == "not_a_key":
        key_file.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(ADAPTER + _trust_yaml(pki, key_file=key_file))
    done = _serve_config(config)
    assert done.returncode == 2, done.stderr
    reason = (
        "cannot be read (No such file or directory)"
        if broken == "missing"
        else "is not an unencrypted PEM private key"
    )
    assert done.stderr.splitlines() == [f"error: gateway settings: adapter_tls.key_file: {key_file} {reason}"]
    assert "Traceback" not in done.stderr
