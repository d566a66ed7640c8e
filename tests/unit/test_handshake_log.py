"""familyctx.trust.handshake_log: GRPC_VERBOSITY never hides gRPC's log lines of refused TLS handshakes
(the end-to-end proof, with a real adapter process started with GRPC_VERBOSITY=ERROR, is in
tests/e2e/test_adapter_refusals.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from familyctx.trust.handshake_log import keep_handshake_log_lines


@pytest.mark.parametrize("value", ["ERROR", "error", "NONE", "WARNING", "nonsense"])
def test_a_verbosity_that_hides_info_lines_is_removed(value: str) -> None:
    env = {"GRPC_VERBOSITY": value, "OTHER": "kept"}
    note = keep_handshake_log_lines(env)
    assert env == {"OTHER": "kept"}
    assert note is not None and f"GRPC_VERBOSITY={value} ignored" in note


@pytest.mark.parametrize("env", [{}, {"GRPC_VERBOSITY": "INFO"}, {"GRPC_VERBOSITY": "debug"}])
def test_verbosities_that_show_the_lines_are_left_alone(env: dict[str, str]) -> None:
    before = dict(env)
    assert keep_handshake_log_lines(env) is None
    assert env == before


def test_the_helper_and_the_cli_do_not_load_grpc() -> None:
    """gRPC reads GRPC_VERBOSITY when first imported: the check must run before that."""
    code = (
        "import sys; import familyctx.trust.handshake_log; import familyctx.cli; print('grpc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
