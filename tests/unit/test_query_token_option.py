"""``familyctx query ...`` and ``familyctx break-glass ...`` with ``--token`` (or ``FAMILYCTX_TOKEN``) need
no ``--user``, as docs/demo.md says; with neither, a usage error (exit 2) names both options. The
gateway is a stand-in (httpx.MockTransport: the real one runs in tests/e2e/test_query_command.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import familyctx.gateway_client as gateway_client
from familyctx.cli import app

TOKEN = "an-existing-token"  # noqa: S105 - a stand-in, checked by the stand-in gateway
SEARCH = ["query", "search", "--family-name", "Smith", "--purpose", "s47_enquiry", "--case-ref", "C-1"]
FAMILY = [
    "query",
    "family-context",
    "--council",
    "E08000007",
    "--person-id",
    "100001",
    "--purpose",
    "s47_enquiry",
    "--case-ref",
    "C-1",
]
ANSWERS: dict[str, dict[str, Any]] = {
    "/v1/searches": {
        "request_id": "r-1",
        "purpose": "s47_enquiry",
        "case_reference": "C-1",
        "candidates": [],
        "sources": [],
    },
    "/v1/family-context": {
        "request_id": "r-2",
        "purpose": "s47_enquiry",
        "case_reference": "C-1",
        "people": [],
        "relationships": [],
        "involvements": [],
        "sources": [],
    },
    "/v1/break-glass/notifications": {"notifications": [], "next_after": None},
}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Every call goes to a stand-in gateway that answers only ``TOKEN``; asking the provider for a
    token fails the test."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"detail": "Invalid token", "errors": [], "request_id": "x"})
        return httpx.Response(200, json=ANSWERS[request.url.path])

    real = gateway_client.GatewayClient

    def stand_in(base_url: str, token: str | None, **kw: Any) -> gateway_client.GatewayClient:
        return real(base_url, token, transport=httpx.MockTransport(handler), **kw)

    def no_provider(*args: Any, **kw: Any) -> str:
        raise AssertionError("no token may be fetched when one is given")

    monkeypatch.setattr(gateway_client, "GatewayClient", stand_in)
    monkeypatch.setattr(gateway_client, "fetch_token", no_provider)
    return seen


def _run(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"FAMILYCTX_TOKEN": None, "COLUMNS": "200", **(env or {})})


@pytest.mark.parametrize("command", [SEARCH, FAMILY, ["break-glass", "notifications"]])
def test_a_token_is_enough_without_user(gateway: list[httpx.Request], command: list[str]) -> None:
    result = _run(*command, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert "Missing option" not in result.output
    assert len(gateway) == 1 and gateway[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_the_token_may_come_from_the_environment(gateway: list[httpx.Request]) -> None:
    result = _run(*SEARCH, "--json", env={"FAMILYCTX_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert '"request_id": "r-1"' in result.output and len(gateway) == 1


@pytest.mark.parametrize(
    "command", [SEARCH, FAMILY, ["break-glass", "show", "some-grant-id"], ["break-glass", "notifications"]]
)
def test_neither_user_nor_token_is_a_usage_error_naming_both(
    gateway: list[httpx.Request], command: list[str]
) -> None:
    result = _run(*command)
    assert result.exit_code == 2, result.output
    assert "--user" in result.output and "--token" in result.output and "FAMILYCTX_TOKEN" in result.output
    assert gateway == []  # nothing was sent


def test_token_still_needs_user() -> None:
    result = _run("token")
    assert result.exit_code == 2 and "--user" in result.output


@pytest.mark.parametrize("command", [SEARCH, FAMILY, ["break-glass", "notifications"]])
def test_user_and_token_together_are_a_usage_error_naming_both(
    gateway: list[httpx.Request], command: list[str]
) -> None:
    # Before: accepted silently, and the request ran as the token's worker, not --user's.
    result = _run(*command, "--user", "sw.stockport", "--token", TOKEN)
    assert result.exit_code == 2, result.output
    assert "--user and --token were both given" in result.output
    assert gateway == []  # nothing was sent


def test_user_with_a_token_in_the_environment_is_a_usage_error_saying_so(
    gateway: list[httpx.Request],
) -> None:
    result = _run(*SEARCH, "--user", "sw.stockport", env={"FAMILYCTX_TOKEN": TOKEN})
    assert result.exit_code == 2, result.output
    assert "--user and --token" in result.output and "unset FAMILYCTX_TOKEN" in result.output
    assert gateway == []


def _answering_503(monkeypatch: pytest.MonkeyPatch, detail: str, headers: dict[str, str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, json={"detail": detail, "errors": [], "request_id": "r-503"}, headers=headers
        )

    real = gateway_client.GatewayClient
    monkeypatch.setattr(
        gateway_client,
        "GatewayClient",
        lambda base_url, token, **kw: real(base_url, token, transport=httpx.MockTransport(handler), **kw),
    )


@pytest.mark.parametrize(
    ("detail", "said"),
    [
        pytest.param(
            "The gateway was stopping and could not finish your request in time; no data was returned. "
            "Try again in 7 s",
            "The gateway was stopping and could not finish your request; nothing was returned; "
            "try again in 7 s",
            id="cut off by the grace period",
        ),
        pytest.param(
            "The gateway is shutting down and takes no new requests; no data was returned. Try again in 7 s",
            "The gateway is stopping and takes no new requests; nothing was returned; try again in 7 s",
            id="refused while draining",
        ),
    ],
)
def test_a_503_from_a_stopping_gateway_says_so_not_audit(
    monkeypatch: pytest.MonkeyPatch, detail: str, said: str
) -> None:
    _answering_503(monkeypatch, detail, {"Retry-After": "7", "Connection": "close"})
    result = _run(*SEARCH, "--token", TOKEN)
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert said in text, text
    assert "audit" not in text and "restarting" not in text
    assert "r-503" in text


def test_a_503_from_the_audit_store_says_the_audit_entry_could_not_be_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _answering_503(monkeypatch, "Audit store unavailable; no data returned", {})
    result = _run(*SEARCH, "--token", TOKEN)
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "could not record the audit entry, so it returned no data" in text, text
    assert "stopping" not in text


def test_a_stopping_503_without_retry_after_still_says_when_to_try_again() -> None:
    error = gateway_client.GatewayHttpError(
        503, "The gateway was stopping and could not finish your request in time; no data was returned."
    )
    assert "could not finish your request; nothing was returned; try again in a few seconds" in str(error)
    assert "audit" not in str(error)
