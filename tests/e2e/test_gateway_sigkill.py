"""Issue 6: the gateway killed with SIGKILL under load loses no audit record of an answer it gave.

Client threads send searches and family-context requests to a real gateway process without pause;
once enough answers have come back, the gateway gets SIGKILL (no shutdown of any kind). It is started
again on the same audit store, and then every 200 a client received has its audit record, with the
SHA-256 of the very body the client got: the gateway commits the record before it answers. The log
still verifies (``familyctx audit verify``, tree heads signed) after the kill.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import (
    CASE_REFERENCE,
    PROCESS_WAIT_SECONDS,
    PURPOSE,
    GatewayProcess,
    audit_rows,
    start_gateway_process,
    write_gateway_config,
)
from familyctx_gateway.testing.audit import committed_records

from familyctx.demo import Federation
from familyctx.demo.supervisor import familyctx_argv

pytestmark = pytest.mark.e2e

#: Client threads (one user: the gateway's per-user limit is 4 in flight, so none gets 429).
CLIENTS = 4
#: Answers received before the kill (the load is well under way).
ANSWERS_BEFORE_KILL = 24


class Client(threading.Thread):
    """Sends requests until the gateway stops answering; keeps (request id, status, body SHA-256)."""

    def __init__(self, url: str, token: str, bodies: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.bodies = url, token, bodies
        self.answers: list[tuple[str, int, str]] = []
        self.failure: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=PROCESS_WAIT_SECONDS) as http:
            turn = 0
            while not self.stop.is_set():
                path, body = self.bodies[turn % len(self.bodies)]
                turn += 1
                request_id = f"sigkill-{uuid.uuid4()}"
                headers = {"Authorization": f"Bearer {self.token}", "X-Request-ID": request_id}
                try:
                    response = http.post(path, json=body, headers=headers)
                except httpx.TransportError:
                    return  # the gateway is gone (refused, reset or cut mid-answer): nothing received
                except BaseException as exc:  # noqa: BLE001 (reported by the test)
                    self.failure = exc
                    return
                self.answers.append((request_id, response.status_code,
                                     hashlib.sha256(response.content).hexdigest()))


def _bodies(scenario: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    common = {"purpose": PURPOSE, "case_reference": CASE_REFERENCE}
    people = [scenario["child"], scenario["mother"], *scenario["siblings"]]
    bodies: list[tuple[str, dict[str, Any]]] = []
    for person in people:
        bodies.append(("/v1/searches", {**common, "family_name": person["family_name"],
                                        "given_name": person["given_name"]}))
        if person["gss_code"] == scenario["child"]["gss_code"]:  # the worker's own council's records
            subject = {"gss_code": person["gss_code"], "local_person_id": person["local_person_id"]}
            bodies.append(("/v1/family-context", {**common, "subject": subject}))
    return bodies


def test_every_answer_given_before_a_sigkill_has_its_audit_record_after_restart(
    federation: Federation, scenario: dict[str, Any], token: str, tmp_path: Path
) -> None:
    audit_database = tmp_path / "sigkill-audit.sqlite"
    audit_url = f"sqlite:///{audit_database}"
    config = write_gateway_config(federation, tmp_path / "gateway.yaml", audit_url=audit_url)
    process: GatewayProcess = start_gateway_process(config)
    clients = [Client(process.url, token, _bodies(scenario)[i:] + _bodies(scenario)[:i])
               for i in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        give_up = time.monotonic() + PROCESS_WAIT_SECONDS
        while sum(len(c.answers) for c in clients) < ANSWERS_BEFORE_KILL:
            assert all(c.is_alive() for c in clients), "a client stopped before the kill"
            assert time.monotonic() < give_up, "the gateway answered too few requests"
            time.sleep(0.05)
        process.popen.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
        assert process.popen.wait(timeout=PROCESS_WAIT_SECONDS) == -signal.SIGKILL
        for client in clients:
            client.join(timeout=PROCESS_WAIT_SECONDS)
            assert not client.is_alive()
    finally:
        for client in clients:
            client.stop.set()
        process.stop()
    assert [c.failure for c in clients if c.failure is not None] == []
    answers = [a for c in clients for a in c.answers]
    assert all(status == 200 for _, status, _ in answers), sorted({s for _, s, _ in answers})
    assert len(answers) >= ANSWERS_BEFORE_KILL

    # Started again on the same audit store: it opens it and answers (and audits) as before.
    restarted = start_gateway_process(config)
    try:
        with httpx.Client(base_url=restarted.url, timeout=PROCESS_WAIT_SECONDS) as http:
            request_id = f"after-restart-{uuid.uuid4()}"
            path, body = _bodies(scenario)[0]
            response = http.post(path, json=body,
                                 headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id})
        assert response.status_code == 200, response.text
        [record] = audit_rows(audit_url, request_id)
        assert record["response_sha256"] == hashlib.sha256(response.content).hexdigest()
    finally:
        restarted.stop()
    assert "Traceback" not in process.text + restarted.text

    # Every answer a client received is in the log, with the hash of the body it received.
    records = {r["request_id"]: r for r in committed_records(audit_url)}
    missing = [rid for rid, _, _ in answers if rid not in records]
    assert missing == [], f"{len(missing)} of {len(answers)} answers have no audit record"
    for request_id, status, body_hash in answers:
        record = records[request_id]
        assert (record["http_status"], record["response_sha256"]) == (status, body_hash)

    verify = subprocess.run(
        familyctx_argv("audit", "verify", "-d", str(audit_database), "--jwks",
                       str(federation.pki.gateway_audit_jwks), "--json"),
        capture_output=True, text=True, timeout=PROCESS_WAIT_SECONDS, check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["entries"] >= len(answers) + 1
