"""Helpers shared by the end-to-end tests (imported as a plain module: tests/e2e is on sys.path)."""

from __future__ import annotations

import re
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from familyctx_gateway.testing.audit import flat_records

from familyctx.demo import Federation
from familyctx.demo.supervisor import familyctx_argv

#: The gateway's per-adapter deadline in this session (ms): generous, so that a loaded 2-core machine
#: never turns a slow-but-healthy council into "timed_out"; the hang test waits it out once.
DEADLINE_MS = 5000
PURPOSE = "s47_enquiry"
CASE_REFERENCE = "E2E-CASE-0001"
STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"


@dataclass
class Gateway:
    """Calls the live gateway; every 200 answer is checked to have exactly one committed audit record."""

    http: httpx.Client
    audit_engine: sa.Engine
    token: str

    def post(self, path: str, body: Any, *, token: str | None = "default", **kwargs: Any) -> httpx.Response:
        request_id = f"e2e-{uuid.uuid4()}"
        headers = {"X-Request-ID": request_id, **kwargs.pop("headers", {})}
        bearer = self.token if token == "default" else token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if isinstance(body, (bytes, str)):
            headers["Content-Type"] = "application/json"
            response = self.http.post(path, content=body, headers=headers)
        else:
            response = self.http.post(path, json=body, headers=headers)
        if response.status_code == 200:
            assert response.headers["x-request-id"] == request_id
            rows = audit_rows(self.audit_engine, request_id)
            assert len(rows) == 1, f"expected one audit record for {request_id}, found {len(rows)}"
        return response

    def family_context(self, subject: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = {
            "purpose": PURPOSE,
            "case_reference": CASE_REFERENCE,
            "subject": {"gss_code": subject["gss_code"], "local_person_id": subject["local_person_id"]},
        }
        return self.post("/v1/family-context", body, **kwargs)


def audit_rows(engine: sa.Engine, request_id: str) -> list[dict[str, Any]]:
    """Committed audit records with this request id (index row, the record, and its query terms,
    roles and subjects returned; :func:`familyctx_gateway.testing.audit.flat_records`)."""
    return flat_records(engine, request_id=request_id)


def personal_data(scenario: dict[str, Any]) -> list[str]:
    """Strings that must never appear in an error body: names, dates of birth, NHS numbers, local ids."""
    people = [scenario["child"], scenario["mother"], *scenario["siblings"]]
    values = []
    for person in people:
        values += [person["given_name"], person["family_name"], person["date_of_birth"]]
        values += [v for v in (person.get("nhs_number"), person["local_person_id"]) if v]
    return values


def person_holding(answer: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The merged person of ``answer`` that includes the council record ``record`` (gss + local id)."""
    key = (record["gss_code"], record["local_person_id"])
    matches = [
        p for p in answer["people"] if key in {(r["gss_code"], r["local_person_id"]) for r in p["records"]}
    ]
    assert len(matches) == 1, f"record {key} should be in exactly one person, found {len(matches)}"
    return matches[0]


# -- a gateway process of its own (issue 6: process-level failures) ---------------------------------

_READY = re.compile(r"gateway ready on (http://\S+)")
#: Safety net of every wait on a process (s); each wait ends as soon as its condition holds.
PROCESS_WAIT_SECONDS = 90


@dataclass
class GatewayProcess:
    """A ``familyctx gateway serve`` child: ``url`` once ready, its output (stdout and stderr) so far."""

    popen: subprocess.Popen[str]
    url: str = ""
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    #: Notified on every line read and at the end of the output.
    changed: threading.Condition = field(default_factory=threading.Condition)
    ended: bool = False

    @property
    def text(self) -> str:
        return "".join(self.output)

    def wait_for_output(self, text: str, timeout: float = PROCESS_WAIT_SECONDS) -> bool:
        """Wait until ``text`` appears in the output (True), the output ends or ``timeout`` s pass."""
        with self.changed:
            self.changed.wait_for(lambda: text in self.text or self.ended, timeout)
            return text in self.text

    def stop(self) -> None:
        """SIGKILL if still running, wait for it and its output reader."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=PROCESS_WAIT_SECONDS)
        if self.reader is not None:
            self.reader.join(timeout=PROCESS_WAIT_SECONDS)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def start_gateway_process(config: Path, *, port: int = 0) -> GatewayProcess:
    """Start ``familyctx gateway serve --config config`` on 127.0.0.1:``port`` (0: any free port) and
    return once it prints "gateway ready" (fails the test after :data:`PROCESS_WAIT_SECONDS`)."""
    popen = subprocess.Popen(
        familyctx_argv(
            "gateway", "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    process = GatewayProcess(popen)
    ready = threading.Event()

    def read() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            with process.changed:
                process.output.append(line)
                process.changed.notify_all()
            found = _READY.search(line)
            if found and not ready.is_set():
                process.url = found.group(1)
                ready.set()
        with process.changed:
            process.ended = True
            process.changed.notify_all()

    process.reader = threading.Thread(target=read, daemon=True)
    process.reader.start()
    if not ready.wait(PROCESS_WAIT_SECONDS):
        process.stop()
        pytest.fail("gateway did not start:\n" + process.text[-3000:])
    return process


def write_gateway_config(
    federation: Federation,
    path: Path,
    *,
    audit_url: str,
    addresses: dict[str, str] | None = None,
    deadline_ms: int | None = None,
    resilience: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """The session federation's gateway configuration with its own audit database ``audit_url``, some
    councils reached at other ``addresses`` (GSS code -> host:port, e.g. a proxy; the certificate's DNS
    name stays), every adapter's ``deadline_ms``, a ``resilience`` section and ``extra`` top-level
    settings when given."""
    data: dict[str, Any] = yaml.safe_load(federation.layout.gateway_config.read_text(encoding="utf-8"))
    for adapter in data["adapters"]:
        adapter["address"] = (addresses or {}).get(adapter["gss_code"], adapter["address"])
        if deadline_ms is not None:
            adapter["deadline_ms"] = deadline_ms
    data["audit"]["database_url"] = audit_url
    if resilience is not None:
        data["resilience"] = resilience
    data.update(extra or {})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def source_states(answer: dict[str, Any]) -> dict[str, str]:
    """``{gss_code: state}`` of an answer's ``sources``."""
    return {s["gss_code"]: s["state"] for s in answer["sources"]}
