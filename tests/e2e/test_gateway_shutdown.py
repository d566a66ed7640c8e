"""Graceful shutdown of a real ``familyctx gateway serve`` process (issue 6): SIGTERM mid-request.

The gateway reaches Stockport's real adapter through a loopback TCP proxy
(:class:`familyctx_gateway.testing.proxy.LoopbackProxy`) that can hold the adapter's
answers (every byte from the adapter is kept until the test releases it), so "a request is in progress
when SIGTERM arrives" is a fact the test waits for, not a timing guess. Within
``listen.shutdown_grace_seconds`` the request in progress gets its full 200 answer and its audit record
is committed, while a new connection is refused; past the grace period the request is cancelled and its
caller gets a whole 503 with ``Retry-After`` and no data (never a half answer, never a 500), and the
request is audited as an error (503), never as a success.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_support import (
    CASE_REFERENCE,
    PURPOSE,
    STOCKPORT,
    GatewayProcess,
    audit_rows,
    start_gateway_process,
)
from familyctx_gateway.testing.proxy import LoopbackProxy

from familyctx.demo import Federation

#: Safety nets only: every wait ends as soon as its condition holds.
WAIT_SECONDS = 60


@contextlib.contextmanager
def proxied_gateway(
    federation: Federation, tmp_path: Path, grace_seconds: int
) -> Iterator[tuple[GatewayProcess, LoopbackProxy, str]]:
    """A gateway process of the session's federation whose calls to Stockport go through a proxy;
    yields (process, proxy, audit database URL). Its own SQLite audit log, migrated at start-up."""
    host, port = federation.adapter_address(STOCKPORT).rsplit(":", 1)
    proxy = LoopbackProxy((host, int(port)))
    data: dict[str, Any] = yaml.safe_load(federation.layout.gateway_config.read_text(encoding="utf-8"))
    for adapter in data["adapters"]:
        if adapter["gss_code"] == STOCKPORT:  # the certificate's DNS name (tls_server_name) stays
            adapter["address"] = f"127.0.0.1:{proxy.port}"
            adapter["deadline_ms"] = 60_000
    audit_url = f"sqlite:///{tmp_path / 'shutdown-audit.sqlite'}"
    data["audit"]["database_url"] = audit_url
    data.pop("audit_database_url", None)
    data["listen"]["shutdown_grace_seconds"] = grace_seconds
    config = tmp_path / "gateway-shutdown.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    process = start_gateway_process(config)
    try:
        yield process, proxy, audit_url
    finally:
        proxy.close()
        process.stop()


def _search(url: str, token: str, body: dict[str, Any], request_id: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
    with httpx.Client(base_url=url, timeout=WAIT_SECONDS) as http:
        return http.post("/v1/searches", json=body, headers=headers)


def _sigterm_mid_request(
    process: GatewayProcess, proxy: LoopbackProxy, token: str, body: dict[str, Any], request_id: str
) -> tuple[ThreadPoolExecutor, Future[httpx.Response]]:
    """Send a search whose Stockport answer is held, wait until it is in progress, SIGTERM the gateway."""
    warm = _search(process.url, token, body, f"warm-{uuid.uuid4()}")  # opens the channel to Stockport
    assert warm.status_code == 200, warm.text
    proxy.hold()
    pool = ThreadPoolExecutor(max_workers=1)
    answer = pool.submit(_search, process.url, token, body, request_id)
    assert proxy.call_sent.wait(WAIT_SECONDS), "the gateway never called Stockport"
    process.popen.send_signal(signal.SIGTERM)
    return pool, answer


def _wait_until_refused(url: str) -> None:
    """Until a new TCP connection to the gateway is refused (it stopped listening)."""
    address = httpx.URL(url)
    give_up = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < give_up:
        try:
            socket.create_connection((address.host, address.port or 80), timeout=5).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    pytest.fail("the gateway still accepts connections after SIGTERM")


def _body(scenario: dict[str, Any]) -> dict[str, Any]:
    return {
        "purpose": PURPOSE,
        "case_reference": CASE_REFERENCE,
        "family_name": scenario["child"]["family_name"],
    }


def test_sigterm_lets_the_request_in_progress_finish_with_its_audit_record_and_refuses_new_ones(
    federation: Federation, scenario: dict[str, Any], token: str, tmp_path: Path
) -> None:
    with proxied_gateway(federation, tmp_path, grace_seconds=30) as (process, proxy, audit_url):
        request_id = f"shutdown-{uuid.uuid4()}"
        pool, answer = _sigterm_mid_request(process, proxy, token, _body(scenario), request_id)
        with pool:
            _wait_until_refused(process.url)
            with pytest.raises(httpx.ConnectError):
                _search(process.url, token, _body(scenario), f"late-{uuid.uuid4()}")
            assert not answer.done()  # still held at Stockport
            proxy.release()
            response = answer.result(timeout=WAIT_SECONDS)
        assert response.status_code == 200, response.text
        sources = {s["gss_code"]: s["state"] for s in response.json()["sources"]}
        assert sources[STOCKPORT] == "ok"
        assert process.popen.wait(timeout=WAIT_SECONDS) in (0, -signal.SIGTERM)
    [record] = audit_rows(audit_url, request_id)
    assert record["http_status"] == 200
    assert record["response_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert "Shutting down" in process.text and "Traceback" not in process.text
    assert "timeout graceful shutdown exceeded" not in process.text


def test_a_request_still_running_after_the_grace_period_gets_a_whole_503_without_data(
    federation: Federation, scenario: dict[str, Any], token: str, tmp_path: Path
) -> None:
    with proxied_gateway(federation, tmp_path, grace_seconds=1) as (process, proxy, audit_url):
        request_id = f"shutdown-late-{uuid.uuid4()}"
        pool, answer = _sigterm_mid_request(process, proxy, token, _body(scenario), request_id)
        with pool:
            # Stockport's answer is never released: the gateway gives up after its grace period.
            assert process.popen.wait(timeout=WAIT_SECONDS) in (0, -signal.SIGTERM)
            response = answer.result(timeout=WAIT_SECONDS)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "2"
        assert response.json() == {
            "detail": "The gateway is restarting and could not finish your request in time; no data was "
            "returned. Try again in 2 s",
            "errors": [],
            "request_id": request_id,
        }
    # Nothing was answered, but the councils were asked: the cut-off request is audited as an error.
    [record] = audit_rows(audit_url, request_id)
    assert (record["outcome"], record["http_status"], record["response_sha256"]) == ("error", 503, None)
    assert "Exception in ASGI application" not in process.text
    assert "timeout graceful shutdown exceeded" in process.text
    assert "Traceback" not in process.text
