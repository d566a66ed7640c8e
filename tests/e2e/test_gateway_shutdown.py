"""Graceful shutdown of a real ``familyctx gateway serve`` process (issue 6): SIGTERM mid-request.

The gateway reaches Stockport's real adapter through a loopback TCP proxy
(:class:`familyctx_gateway.testing.proxy.LoopbackProxy`) that can hold the adapter's answers (every
byte from the adapter is kept until the test releases it), and runs one data request per worker at a
time, so "a request is in progress when SIGTERM arrives" is a fact the test waits for (of two searches
sent together, one is refused 429 and the other is held), not a timing guess; so is "the gateway has
taken the signal" (its log line ``draining requests_in_progress=1``). While the request in progress
drains, the gateway still listens: ``/readyz`` answers 503 "draining" (a load balancer stops routing to
it), ``/healthz`` stays 200, and a new request gets a whole 503 with ``Retry-After`` at once, unaudited.
Within ``listen.shutdown_grace_seconds`` the request in progress gets its full 200 answer and its audit
record is committed, then the process exits; past the grace period the request is cancelled and its
caller gets a whole 503 with ``Retry-After`` and no data (never a half answer, never a 500), and the
request is audited as an error (503), never as a success.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx
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
    # One data request per worker at a time: of two searches sent together one is refused (429) at once
    # and the other is, for a fact, in progress (see _sigterm_mid_request).
    data["limits"] = {"max_in_flight_per_user": 1, "max_in_flight_total": 64}
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
    process: GatewayProcess, proxy: LoopbackProxy, token: str, body: dict[str, Any]
) -> tuple[ThreadPoolExecutor, Future[httpx.Response], str]:
    """Get a search in progress, its Stockport answer held, then SIGTERM the gateway; returns the pool,
    the search's future answer and its request id.

    "In progress" is a fact, not a guess: with Stockport's answers held, two identical searches are
    sent together; the gateway runs one data request per worker at a time, so one of them is refused
    at once (429, refused inside the gateway with no slot taken) and the other holds the slot, which it
    takes inside the gateway, past the point where requests are counted for the drain. (The proxy's
    ``call_sent`` alone would not do: HTTP/2 control frames of earlier calls go over the same
    connection.)"""
    warm = _search(process.url, token, body, f"warm-{uuid.uuid4()}")  # opens the channel to Stockport
    assert warm.status_code == 200, warm.text
    proxy.hold()
    pool = ThreadPoolExecutor(max_workers=2)
    searches = {
        pool.submit(_search, process.url, token, body, request_id): request_id
        for request_id in (f"shutdown-{uuid.uuid4()}", f"shutdown-{uuid.uuid4()}")
    }
    done, running = wait(searches, timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
    assert len(done) == 1 and len(running) == 1, "expected one search refused and one in progress"
    [refused], [in_progress] = done, running
    assert refused.result().status_code == 429, refused.result().text
    process.popen.send_signal(signal.SIGTERM)
    return pool, in_progress, searches[in_progress]


def _body(scenario: dict[str, Any]) -> dict[str, Any]:
    return {
        "purpose": PURPOSE,
        "case_reference": CASE_REFERENCE,
        "family_name": scenario["child"]["family_name"],
    }


def test_sigterm_drains_the_request_in_progress_to_its_audit_record_while_readyz_says_draining(
    federation: Federation, scenario: dict[str, Any], token: str, tmp_path: Path
) -> None:
    with proxied_gateway(federation, tmp_path, grace_seconds=30) as (process, proxy, audit_url):
        late_id = f"late-{uuid.uuid4()}"
        pool, answer, request_id = _sigterm_mid_request(process, proxy, token, _body(scenario))
        with pool, httpx.Client(base_url=process.url, timeout=WAIT_SECONDS) as http:
            assert process.wait_for_output("draining requests_in_progress=1", WAIT_SECONDS), process.text
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"status": "draining", "detail": "draining: the gateway is shutting down"}
            assert http.get("/healthz").json() == {"status": "ok"}  # alive: not to be restarted
            assert http.get("/.well-known/jwks.json").status_code == 200
            late = _search(process.url, token, _body(scenario), late_id)
            assert late.status_code == 503, late.text
            assert late.headers["retry-after"] == "2" and late.headers["connection"] == "close"
            assert late.json() == {
                "detail": "The gateway is shutting down and takes no new requests; no data was returned. "
                "Try again in 2 s",
                "errors": [],
                "request_id": late_id,
            }
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
    assert audit_rows(audit_url, late_id) == []  # refused before anything was asked or disclosed
    assert "drained requests_still_in_progress=0" in process.text
    assert "Shutting down" in process.text and "Traceback" not in process.text
    assert "timeout graceful shutdown exceeded" not in process.text


def test_a_request_still_running_after_the_grace_period_gets_a_whole_503_without_data(
    federation: Federation, scenario: dict[str, Any], token: str, tmp_path: Path
) -> None:
    with proxied_gateway(federation, tmp_path, grace_seconds=1) as (process, proxy, audit_url):
        pool, answer, request_id = _sigterm_mid_request(process, proxy, token, _body(scenario))
        with pool:
            assert process.wait_for_output("draining requests_in_progress=1", WAIT_SECONDS), process.text
            # Stockport's answer is never released: the gateway gives up after its grace period.
            assert process.popen.wait(timeout=WAIT_SECONDS) in (0, -signal.SIGTERM)
            response = answer.result(timeout=WAIT_SECONDS)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "2"
        assert response.json() == {
            "detail": "The gateway was stopping and could not finish your request in time; no data was "
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
