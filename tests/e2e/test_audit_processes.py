"""Several gateway processes (``familyctx gateway serve``) share one PostgreSQL audit database under
concurrent requests, against the session's real federation (adapters over mutual TLS, the OIDC
provider): one log, no gaps or forks, exactly one record per 200 with the hash of the bytes received.

Fail closed under failure: the audit database becomes unreachable mid-run (a loopback TCP proxy to
PostgreSQL killed and restarted; or its backends terminated while connections are refused), and a
gateway is SIGKILLed under load. Every 200 a client received has its committed record (matched by
request id and response hash); every failure is a 503 with no data, never a 500; the log verifies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from e2e_support import GatewayProcess, personal_data, start_gateway_process
from familyctx_gateway.audit_schema import audit_log_tables
from familyctx_gateway.testing.audit import committed_records

from familyctx.auditlog import create_log_engine, load_public_jwks, verify_log
from familyctx.demo import Federation
from familyctx.demo.supervisor import familyctx_argv

NO_DATA = {"detail": "Audit store unavailable; no data returned", "errors": []}
PURPOSE = {"purpose": "s47_enquiry", "case_reference": "E2E-AUDIT-PROC-1"}


# -- a loopback TCP proxy to PostgreSQL that can be killed and restarted ---------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`kill` closes the listener and every connection at
    once (what a crashed database host looks like to the gateways); :meth:`start` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._sockets -= {a, b}

    def kill(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


# -- gateway processes ------------------------------------------------------------------------------


def _gateway_config(federation: Federation, tmp_path: Path, audit_url: str) -> Path:
    data = yaml.safe_load(federation.layout.gateway_config.read_text(encoding="utf-8"))
    data["audit"] = {
        "database_url": audit_url,
        "signing_key_file": str(federation.pki.gateway_audit_key.resolve()),
        "tree_head_interval_seconds": 1,
        "auto_migrate": False,  # PostgreSQL: `familyctx gateway migrate` is a deployment step
    }
    data.pop("audit_database_url", None)
    config = tmp_path / "gateway-pg.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config


def _stop(process: GatewayProcess) -> None:
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGTERM)
        try:
            process.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait(timeout=30)
    if process.reader is not None:
        process.reader.join(timeout=30)  # the pipe reaches end of file once the process is gone
    if process.popen.stdout is not None:
        process.popen.stdout.close()


@contextlib.contextmanager
def gateways(
    federation: Federation, tmp_path: Path, audit_url: str, count: int
) -> Iterator[list[GatewayProcess]]:
    config = _gateway_config(federation, tmp_path, audit_url)
    migrated = subprocess.run(
        familyctx_argv("gateway", "migrate", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    started: list[GatewayProcess] = []
    try:
        for _ in range(count):
            started.append(start_gateway_process(config))
        yield started
    finally:
        for process in started:
            _stop(process)


# -- load -------------------------------------------------------------------------------------------


@dataclass
class Answer:
    request_id: str
    status: int | None  # None: no response at all (connection refused or reset)
    body: bytes = b""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def _request(http: httpx.Client, url: str, token: str, body: dict[str, Any], path: str) -> Answer:
    request_id = f"proc-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
    try:
        response = http.post(f"{url}{path}", json=body, headers=headers)
    except httpx.TransportError:
        return Answer(request_id, None)
    return Answer(request_id, response.status_code, response.content)


def _bodies(scenario: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    child, mother = scenario["child"], scenario["mother"]
    subject = {"gss_code": child["gss_code"], "local_person_id": child["local_person_id"]}
    return [
        ("/v1/searches", {**PURPOSE, "family_name": child["family_name"]}),
        ("/v1/family-context", {**PURPOSE, "subject": subject}),
        (
            "/v1/searches",
            {**PURPOSE, "given_name": mother["given_name"], "family_name": mother["family_name"]},
        ),
    ]


def run_load(
    urls: Callable[[], list[str]],
    token: str,
    scenario: dict[str, Any],
    total: int,
    *,
    workers: int = 6,
    during: Callable[[int], None] | None = None,
) -> list[Answer]:
    """``total`` requests spread over the gateways ``urls()`` from ``workers`` threads; ``during(n)`` is
    called (from the requesting threads, once per completed request, in order) to inject failures."""
    bodies = _bodies(scenario)
    answers: list[Answer] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        choices = urls()
        path, body = bodies[i % len(bodies)]
        with httpx.Client(timeout=60) as http:
            answer = _request(http, choices[i % len(choices)], token, body, path)
        with lock:
            answers.append(answer)
            done = len(answers)
        if during is not None:
            during(done)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(total)))
    return answers


def _verify(audit_url: str, federation: Federation) -> Any:
    engine = create_log_engine(audit_url)
    try:
        return verify_log(
            engine,
            audit_log_tables,
            public_jwks=load_public_jwks(federation.pki.gateway_audit_jwks),
            log_id="familyctx-gateway",
        )
    finally:
        engine.dispose()


def _check_every_answer_has_its_record(
    answers: list[Answer], audit_url: str, scenario: dict[str, Any]
) -> None:
    records: dict[str, list[dict[str, Any]]] = {}
    for row in committed_records(audit_url):
        records.setdefault(row["request_id"], []).append(row)
    secrets = personal_data(scenario)
    for answer in answers:
        assert answer.status in (200, 503, None), (answer.status, answer.body[:300])
        if answer.status == 200:
            (record,) = records.get(answer.request_id, [])  # exactly one record per 200
            assert record["response_sha256"] == answer.sha256  # for the very bytes received
            assert record["record"]["what"]["response"]["sha256"] == answer.sha256
        elif answer.status == 503:
            assert {k: json.loads(answer.body).get(k) for k in NO_DATA} == NO_DATA
            assert not any(value in answer.body.decode() for value in secrets)
        # A request with no response (or a 503) may or may not have a record: never the reverse.


# -- tests ------------------------------------------------------------------------------------------


def test_three_gateway_processes_keep_one_log(
    federation: Federation, token: str, scenario: dict[str, Any], postgres_url: str, tmp_path: Path
) -> None:
    with gateways(federation, tmp_path, postgres_url, 3) as running:
        answers = run_load(lambda: [g.url for g in running], token, scenario, 60)
    assert [a.status for a in answers] == [200] * 60
    _check_every_answer_has_its_record(answers, postgres_url, scenario)
    rows = committed_records(postgres_url)
    assert [r["seq"] for r in rows] == list(range(60))  # one record per request, no gaps
    report = _verify(postgres_url, federation)
    # Shutdown signed the final size: the signed heads cover the whole log, one tree (no fork).
    assert report.ok and report.entries == 60 and report.tree_size == 60, report.to_dict()
    assert report.checked_heads >= 1 and report.signatures_checked


@pytest.mark.parametrize("failure", ["proxy_killed", "backends_terminated"])
def test_audit_store_killed_under_load(
    federation: Federation,
    token: str,
    scenario: dict[str, Any],
    postgres_url: str,
    tmp_path: Path,
    failure: str,
) -> None:
    url = sa.make_url(postgres_url)
    database = url.database
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    audit_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    total, down_at, up_at = 90, 20, 50
    state = {"down": False, "up": False}
    state_lock = threading.Lock()

    def take_down() -> None:
        if failure == "proxy_killed":
            proxy.kill()
            return
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                {"db": database},
            )

    def bring_up() -> None:
        if failure == "proxy_killed":
            proxy.start()
            return
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))

    def during(done: int) -> None:
        with state_lock:
            if done >= down_at and not state["down"]:
                state["down"] = True
                take_down()
            elif done >= up_at and not state["up"]:
                state["up"] = True
                bring_up()

    try:
        with gateways(federation, tmp_path, audit_url, 2) as running:
            answers = run_load(lambda: [g.url for g in running], token, scenario, total, during=during)
            # After the database is back, every gateway serves again (no restart needed).
            after = run_load(lambda: [g.url for g in running], token, scenario, 6, workers=2)
    finally:
        if failure == "backends_terminated":  # the database must accept connections again (teardown)
            with admin.connect() as conn:
                conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        proxy.kill()
        admin.dispose()

    statuses = [a.status for a in answers]
    assert set(statuses) <= {200, 503}, statuses  # never a 500, never a dropped connection
    assert statuses.count(503) >= 1 and statuses.count(200) >= down_at - 6, statuses
    assert [a.status for a in after] == [200] * 6
    _check_every_answer_has_its_record(answers + after, postgres_url, scenario)
    report = _verify(postgres_url, federation)
    assert report.ok, report.to_dict()


def test_gateway_sigkill_under_load(
    federation: Federation, token: str, scenario: dict[str, Any], postgres_url: str, tmp_path: Path
) -> None:
    with gateways(federation, tmp_path, postgres_url, 3) as running:
        victim = running[0]
        killed = threading.Event()

        def during(done: int) -> None:
            if done == 15 and not killed.is_set():
                killed.set()
                os.kill(victim.popen.pid, signal.SIGKILL)

        def urls() -> list[str]:
            return [g.url for g in running] if not killed.is_set() else [g.url for g in running[1:]]

        answers = run_load(urls, token, scenario, 60, during=during)
        victim.popen.wait(timeout=30)
        after = run_load(lambda: [g.url for g in running[1:]], token, scenario, 6, workers=2)
    assert killed.is_set() and victim.popen.returncode == -signal.SIGKILL
    statuses = [a.status for a in answers]
    assert set(statuses) <= {200, None}, statuses  # the killed process answered nothing more
    assert [a.status for a in after] == [200] * 6
    _check_every_answer_has_its_record(answers + after, postgres_url, scenario)
    report = _verify(postgres_url, federation)
    assert report.ok and report.entries >= statuses.count(200) + 6, report.to_dict()
    # No half-written batch from the killed process: entries and index rows match one to one.
    engine = create_log_engine(postgres_url)
    with engine.connect() as conn:
        entries = conn.execute(sa.select(sa.func.count()).select_from(audit_log_tables.entries)).scalar_one()
    engine.dispose()
    assert entries == len(committed_records(postgres_url)) == report.entries
