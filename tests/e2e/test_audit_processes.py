"""Several gateway processes (``familyctx gateway serve``) share one PostgreSQL audit database under
concurrent requests, against the session's real federation (adapters over mutual TLS, the OIDC
provider): one log, no gaps or forks, exactly one record per 200 with the hash of the bytes received.

Fail closed under failure: the audit database becomes unreachable mid-run (a loopback TCP proxy to
PostgreSQL drops every connection and resets new ones, then forwards again; or the database's backends
are terminated while it refuses connections). Every 200 a client received has its committed record
(matched by request id and response hash); every failure is a 503 with no data, never a 500; the log
verifies. (A gateway SIGKILLed under load, with a survivor on the same store and a restart:
tests/e2e/test_gateway_sigkill.py.)

The gateways' per-user in-flight limit is raised above the number of client threads: requests are
spread over the gateways by number, so with the default (4) one gateway could be sent 5 or 6 of one
worker's requests at once and answer 429, which these tests are not about.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import select
import signal
import socket
import struct
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
    """Forwards 127.0.0.1:<port> to ``target``. :meth:`kill` closes every connection at once and, until
    :meth:`start` is called again, resets each new one as soon as it is accepted: what a crashed database
    server looks like to the gateways. The port stays bound from the first :meth:`start` to
    :meth:`close`, so nothing else can take it while the database is "down" (listening again on a port
    closed a moment before can fail when another socket was given it meanwhile)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self._up = False
        self._accepting: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._up = True
        if self._accepting is None:
            self._accepting = threading.Thread(target=self._accept, daemon=True)
            self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                up = self._up
            if not up:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if not self._up:  # killed meanwhile
                    _reset(client)
                    _reset(upstream)
                    continue
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
        with self._lock:
            self._up = False
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self.kill()
        self._listener.close()


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (SO_LINGER 0), as a server that is not there would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
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
    data["limits"] = {"max_in_flight_per_user": 16, "max_in_flight_total": 64}  # never 429 here
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
        proxy.close()
        admin.dispose()

    statuses = [a.status for a in answers]
    assert set(statuses) <= {200, 503}, statuses  # never a 500, never a dropped connection
    assert statuses.count(503) >= 1 and statuses.count(200) >= down_at - 6, statuses
    assert [a.status for a in after] == [200] * 6
    _check_every_answer_has_its_record(answers + after, postgres_url, scenario)
    report = _verify(postgres_url, federation)
    assert report.ok, report.to_dict()
