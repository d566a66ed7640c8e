"""Issue 6: a gateway killed with SIGKILL under load loses no audit record of an answer it gave.

Two ``familyctx gateway serve`` processes share one audit store (a SQLite file, as on one host; or
PostgreSQL, as replicas in production), and client threads send searches and family-context requests
to each without pause. Once the victim has given enough answers it gets SIGKILL (no shutdown of any
kind) with requests in flight. The survivor keeps answering (nothing the victim held, a write lock or a
half-written batch, blocks it) and the victim, started again on the same store, answers and audits as
before. Then every 200 a client received has exactly one audit record, with the SHA-256 of the very body
the client got (the gateway commits the record before it answers); no batch was half written (log
entries and index rows match one to one); and the log verifies (``familyctx audit verify``).

Every wait is on a condition (answers counted, the process's exit), with a generous safety net; the
gateways' per-user in-flight limit is raised above the number of client threads, so a client that sends
its next request the moment it has its answer is never refused 429 by a slot not yet given back.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from e2e_support import (
    CASE_REFERENCE,
    PROCESS_WAIT_SECONDS,
    PURPOSE,
    GatewayProcess,
    audit_rows,
    start_gateway_process,
    write_gateway_config,
)
from familyctx_gateway.audit_schema import audit_log_tables
from familyctx_gateway.testing.audit import committed_records

from familyctx.auditlog import create_log_engine
from familyctx.demo import Federation
from familyctx.demo.supervisor import familyctx_argv

pytestmark = pytest.mark.e2e

#: Client threads per gateway process (all as one worker).
CLIENTS_PER_GATEWAY = 2
#: Answers the victim gives before the kill (the load is well under way).
VICTIM_ANSWERS_BEFORE_KILL = 16
#: Answers the survivor gives after the kill (it is not blocked by anything the victim held).
SURVIVOR_ANSWERS_AFTER_KILL = 8


class Tally:
    """Answers received per gateway URL, with a condition to wait on."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.answers: dict[str, int] = {}

    def add(self, url: str) -> None:
        with self.changed:
            self.answers[url] = self.answers.get(url, 0) + 1
            self.changed.notify_all()

    def count(self, url: str) -> int:
        with self.changed:
            return self.answers.get(url, 0)

    def wait_for(self, url: str, at_least: int, clients: list[Client]) -> None:
        """Until ``url`` has given ``at_least`` answers; fails when a client stopped or after the net."""

        def done() -> bool:
            return self.answers.get(url, 0) >= at_least or any(not c.is_alive() for c in clients)

        with self.changed:
            self.changed.wait_for(done, PROCESS_WAIT_SECONDS)
            assert all(c.is_alive() for c in clients), [c.failure for c in clients]
            assert self.answers.get(url, 0) >= at_least, f"{url} gave {self.answers.get(url, 0)} answers"


class Client(threading.Thread):
    """Sends requests to one gateway until told to stop or the gateway is gone; keeps (request id,
    status, body SHA-256) of every answer received."""

    def __init__(self, url: str, token: str, bodies: list[tuple[str, dict[str, Any]]], tally: Tally) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.bodies, self.tally = url, token, bodies, tally
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
                self.answers.append(
                    (request_id, response.status_code, hashlib.sha256(response.content).hexdigest())
                )
                self.tally.add(self.url)


def _bodies(scenario: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    common = {"purpose": PURPOSE, "case_reference": CASE_REFERENCE}
    people = [scenario["child"], scenario["mother"], *scenario["siblings"]]
    bodies: list[tuple[str, dict[str, Any]]] = []
    for person in people:
        terms = {"family_name": person["family_name"], "given_name": person["given_name"]}
        bodies.append(("/v1/searches", {**common, **terms}))
        if person["gss_code"] == scenario["child"]["gss_code"]:  # the worker's own council's records
            subject = {"gss_code": person["gss_code"], "local_person_id": person["local_person_id"]}
            bodies.append(("/v1/family-context", {**common, "subject": subject}))
    return bodies


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The shared audit store: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sigkill-audit.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _config(federation: Federation, tmp_path: Path, audit_url: str) -> Path:
    config = write_gateway_config(
        federation,
        tmp_path / "gateway.yaml",
        audit_url=audit_url,
        # Above the client threads per process: no 429 however quickly a client sends again.
        extra={"limits": {"max_in_flight_per_user": 16, "max_in_flight_total": 64}},
    )
    migrated = subprocess.run(
        familyctx_argv("gateway", "migrate", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=PROCESS_WAIT_SECONDS,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return config


def _stop(process: GatewayProcess) -> None:
    """SIGTERM (the last tree head is signed), then the output reader is joined."""
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGTERM)
        process.popen.wait(timeout=PROCESS_WAIT_SECONDS)
    process.stop()


def _entries_and_index_rows(audit_url: str) -> tuple[int, int]:
    engine = create_log_engine(audit_url)
    try:
        with engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(audit_log_tables.entries)
            entries = conn.execute(count).scalar_one()
    finally:
        engine.dispose()
    return entries, len(committed_records(audit_url))


def test_every_answer_given_before_a_sigkill_has_its_audit_record_after_restart(
    federation: Federation, scenario: dict[str, Any], token: str, tmp_path: Path, audit_url: str
) -> None:
    config = _config(federation, tmp_path, audit_url)
    bodies = _bodies(scenario)
    tally = Tally()
    victim = start_gateway_process(config)
    survivor = start_gateway_process(config)
    restarted: GatewayProcess | None = None
    clients = [
        Client(gateway.url, token, bodies[i:] + bodies[:i], tally)
        for gateway in (victim, survivor)
        for i in range(CLIENTS_PER_GATEWAY)
    ]
    victims, survivors = clients[:CLIENTS_PER_GATEWAY], clients[CLIENTS_PER_GATEWAY:]
    try:
        for client in clients:
            client.start()
        tally.wait_for(victim.url, VICTIM_ANSWERS_BEFORE_KILL, clients)
        victim.popen.send_signal(signal.SIGKILL)  # mid-stream: its clients have requests in flight
        assert victim.popen.wait(timeout=PROCESS_WAIT_SECONDS) == -signal.SIGKILL
        for client in victims:  # each ends at its first request without an answer
            client.join(timeout=PROCESS_WAIT_SECONDS)
            assert not client.is_alive()
        tally.wait_for(survivor.url, tally.count(survivor.url) + SURVIVOR_ANSWERS_AFTER_KILL, survivors)
        for client in survivors:
            client.stop.set()
            client.join(timeout=PROCESS_WAIT_SECONDS)
            assert not client.is_alive()

        # Started again on the same audit store: it opens it and answers (and audits) as before.
        restarted = start_gateway_process(config)
        with httpx.Client(base_url=restarted.url, timeout=PROCESS_WAIT_SECONDS) as http:
            request_id = f"after-restart-{uuid.uuid4()}"
            path, body = bodies[0]
            response = http.post(
                path, json=body, headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
            )
        assert response.status_code == 200, response.text
        [record] = audit_rows(audit_url, request_id)
        assert record["response_sha256"] == hashlib.sha256(response.content).hexdigest()
    finally:
        for client in clients:
            client.stop.set()
        for process in (victim, survivor, restarted):
            if process is not None:
                _stop(process)
    assert [c.failure for c in clients if c.failure is not None] == []
    answers = [a for c in clients for a in c.answers]
    assert {status for _, status, _ in answers} == {200}  # never a 429, 500 or 503
    assert restarted is not None
    assert "Traceback" not in victim.text + survivor.text + restarted.text

    # Every answer a client received is in the log once, with the hash of the body it received.
    records: dict[str, list[dict[str, Any]]] = {}
    for row in committed_records(audit_url):
        records.setdefault(row["request_id"], []).append(row)
    missing = [rid for rid, _, _ in answers if rid not in records]
    assert missing == [], f"{len(missing)} of {len(answers)} answers have no audit record"
    for request_id, status, body_hash in answers:
        [record] = records[request_id]
        assert (record["http_status"], record["response_sha256"]) == (status, body_hash)
    # No half-written batch from the killed process: log entries and index rows match one to one.
    entries, index_rows = _entries_and_index_rows(audit_url)
    assert entries == index_rows

    verify = subprocess.run(
        familyctx_argv(
            "audit", "verify", "-d", audit_url, "--jwks", str(federation.pki.gateway_audit_jwks), "--json"
        ),
        capture_output=True,
        text=True,
        timeout=PROCESS_WAIT_SECONDS,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] and report["entries"] == entries >= len(answers) + 1, report
