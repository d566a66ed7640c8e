"""``familyctx gateway serve`` starts a real uvicorn process on a free port and says where."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from familyctx_gateway.testing.issuer import running_issuer


def test_gateway_serve_prints_ready_line_and_serves(tmp_path: Path) -> None:
    with running_issuer() as issuer:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            "listen: {host: 127.0.0.1, port: 8000}\n"
            f"audit_database_url: sqlite:///{tmp_path / 'audit.sqlite'}\n"
            f'oidc: {{issuer: "{issuer.issuer}", audience: "familyctx-gateway"}}\n'
            "adapters:\n"
            '  - {gss_code: E08000007, name: Stockport, address: "127.0.0.1:1", deadline_ms: 500}\n'
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
