#!/usr/bin/env python
"""Benchmark: the gateway's own cost over the adapters it calls.

Starts a real federation on free loopback ports (OIDC provider, three adapters, gateway, each its own
process, as ``familyctx demo`` does), then, one query at a time and interleaved so that both see the
same machine state:

- ``search``: ``POST /v1/searches`` through the gateway, against the same ``FindPeople`` sent straight
  to all three adapters at once over gRPC (so the direct time is the slowest adapter's);
- ``family-context``: ``POST /v1/family-context`` through the gateway, against the same rounds of
  calls made straight to the adapters (``GetFamilyContext`` at home; ``FindPeople`` for each person in
  the other councils, in parallel; ``GetFamilyContext`` where the NHS number matched).

Prints p50/p95/p99 in milliseconds and the ratio gateway / direct (target: at most 1.2x).
Figures and the machine go into docs/benchmarks.md by hand. Usage::

    .venv/bin/python scripts/bench_gateway.py [--people 30000] [--queries 300] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import httpx
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc
from rich.console import Console
from rich.table import Table

from familyctx.councils import DEMO_COUNCILS
from familyctx.demo.federation import Federation, FederationOptions
from familyctx.demo.layout import DataLayout, pick_free_ports
from familyctx.demo.trust import DEMO_ASSERTION_ISSUER
from familyctx.gateway_client import fetch_token
from familyctx.identifiers import normalise_nhs_number, parse_date
from familyctx.trust.assertion import ASSERTION_METADATA_KEY, AssertionSigner, Requester
from familyctx.trust.pki import DevPki, adapter_dns_name

PURPOSE = "s47_enquiry"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def sample_subjects(layout: DataLayout, count: int, seed: int) -> list[dict[str, str]]:
    """People of the home council (Stockport) with a parseable date of birth, sampled with ``seed``."""
    home = DEMO_COUNCILS[0]
    with sqlite3.connect(layout.warehouse(home)) as db:
        rows = db.execute(
            "SELECT pers_person_id, pers_forename, pers_surname, pers_dob, pers_single_unique_id "
            "FROM ssd_person ORDER BY pers_person_id"
        ).fetchall()
    rng = random.Random(seed)
    rng.shuffle(rows)
    subjects = []
    for person_id, given, family, dob, nhs in rows:
        born = parse_date(dob)
        if not (given and family and born) or given == "NULL" or family == "NULL":
            continue
        subjects.append({"local_person_id": person_id, "given_name": given, "family_name": family,
                         "date_of_birth": born.isoformat(), "nhs_number": normalise_nhs_number(nhs) or ""})
        if len(subjects) == count:
            break
    return subjects


def person_query(person: dict[str, str] | adapter_pb2.Person) -> adapter_pb2.PersonQuery:
    """The query the gateway sends for a relative: NHS number when valid, else names and date of birth."""
    if isinstance(person, dict):
        query = adapter_pb2.PersonQuery(given_name=person["given_name"], family_name=person["family_name"])
        y, m, d = (int(p) for p in person["date_of_birth"].split("-"))
        query.date_of_birth.year, query.date_of_birth.month, query.date_of_birth.day = y, m, d
        return query
    if person.nhs_number:
        return adapter_pb2.PersonQuery(nhs_number=person.nhs_number)
    query = adapter_pb2.PersonQuery(given_name=person.given_name, family_name=person.family_name)
    query.date_of_birth.CopyFrom(person.date_of_birth)
    return query


class Direct:
    """The same calls the gateway makes, straight to the adapters over gRPC (no token check, audit or
    linkage), with what every adapter requires: mutual TLS with the gateway's certificate and an assertion
    signed per call, as the gateway does (so the comparison leaves those costs on both sides)."""

    def __init__(self, addresses: dict[str, str], deadline_s: float, pki: DevPki) -> None:
        credentials = grpc.ssl_channel_credentials(
            pki.ca_cert.read_bytes(), pki.gateway_key.read_bytes(), pki.gateway_cert.read_bytes())
        self.channels = {
            code: grpc.aio.secure_channel(addr, credentials,
                                          options=[("grpc.ssl_target_name_override", adapter_dns_name(code))])
            for code, addr in addresses.items()}
        self.stubs = {code: adapter_pb2_grpc.AdapterServiceStub(ch) for code, ch in self.channels.items()}
        self.deadline_s = deadline_s
        self.signer = AssertionSigner.from_file(pki.assertion_key, issuer=DEMO_ASSERTION_ISSUER)

    def _md(self, code: str) -> tuple[tuple[str, str], ...]:
        request_id = str(uuid.uuid4())
        requester = Requester(sub="bench", name="Benchmark", organisation=DEMO_COUNCILS[0].gss_code,
                              role="social_worker", client="bench", purpose=PURPOSE,
                              case_reference="BENCH-1", request_id=request_id)
        return (("x-request-id", request_id),
                (ASSERTION_METADATA_KEY, self.signer.sign(requester, audience=code)))

    async def search(self, query: adapter_pb2.PersonQuery) -> None:
        request = adapter_pb2.FindPeopleRequest(query=query, max_results=25)
        await asyncio.gather(*(s.FindPeople(request, timeout=self.deadline_s, metadata=self._md(code))
                               for code, s in self.stubs.items()))

    async def family_context(self, home: str, local_person_id: str) -> None:
        ctx = await self.stubs[home].GetFamilyContext(
            adapter_pb2.GetFamilyContextRequest(local_person_ids=[local_person_id], include_relatives=True),
            timeout=self.deadline_s, metadata=self._md(home))
        others = [code for code in self.stubs if code != home]
        pairs = [(p, code) for p in ctx.people for code in others]
        found = await asyncio.gather(*(
            self.stubs[code].FindPeople(adapter_pb2.FindPeopleRequest(query=person_query(p), max_results=25),
                                        timeout=self.deadline_s, metadata=self._md(code))
            for p, code in pairs))
        certain: dict[str, list[str]] = {}
        for (person, code), answer in zip(pairs, found, strict=True):
            for candidate in answer.candidates:
                if person.nhs_number and candidate.nhs_number == person.nhs_number:
                    certain.setdefault(code, []).append(candidate.local_person_id)
        await asyncio.gather(*(
            self.stubs[code].GetFamilyContext(
                adapter_pb2.GetFamilyContextRequest(local_person_ids=ids, include_relatives=False),
                timeout=self.deadline_s, metadata=self._md(code))
            for code, ids in certain.items()))

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()


async def measure(fed: Federation, subjects: list[dict[str, str]], token: str) -> dict[str, list[float]]:
    home = DEMO_COUNCILS[0].gss_code
    direct = Direct({c.gss_code: fed.adapter_address(c.gss_code) for c in DEMO_COUNCILS},
                    deadline_s=fed.options.deadline_ms / 1000, pki=fed.pki)
    timings: dict[str, list[float]] = {k: [] for k in
                                       ("search/gateway", "search/direct", "family/gateway", "family/direct")}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=fed.gateway_url, headers=headers, timeout=30) as http:
        async def timed(key: str, coro_factory) -> None:  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            await coro_factory()
            timings[key].append((time.perf_counter() - start) * 1000)

        async def gw(path: str, body: dict[str, object]) -> None:
            response = await http.post(path, json=body, headers={"X-Request-ID": str(uuid.uuid4())})
            response.raise_for_status()

        warmup = subjects[: min(20, len(subjects))]
        for i, subject in enumerate(warmup + subjects):
            record = i >= len(warmup)
            search_body = {"purpose": PURPOSE, "case_reference": "BENCH-1",
                           "given_name": subject["given_name"], "family_name": subject["family_name"],
                           "date_of_birth": subject["date_of_birth"]}
            family_body = {"purpose": PURPOSE, "case_reference": "BENCH-1",
                           "subject": {"gss_code": home, "local_person_id": subject["local_person_id"]}}
            steps = [
                ("search/gateway", lambda b=search_body: gw("/v1/searches", b)),
                ("search/direct", lambda s=subject: direct.search(person_query(s))),
                ("family/gateway", lambda b=family_body: gw("/v1/family-context", b)),
                ("family/direct", lambda s=subject: direct.family_context(home, s["local_person_id"])),
            ]
            if i % 2:  # alternate which side goes first
                steps = [steps[1], steps[0], steps[3], steps[2]]
            for key, factory in steps:
                if record:
                    await timed(key, factory)
                else:
                    await factory()
    await direct.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=30000, help="synthetic people across three councils")
    parser.add_argument("--queries", type=int, default=300, help="measured queries per operation")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="reuse/keep data here (default: a temporary dir)")
    args = parser.parse_args()

    tmp = None
    if args.data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fc-bench-gw-")
        args.data_dir = Path(tmp.name)
    options = FederationOptions(people=args.people, seed=args.seed, deadline_ms=5000,
                                ready_timeout_seconds=120, step_timeout_seconds=1800)
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''} "
          f"python {platform.python_version()}; people={args.people} queries={args.queries}")
    with Federation(args.data_dir, pick_free_ports(), options, report=print) as fed:
        fed.build()
        fed.start()
        token = fetch_token(fed.issuer, "sw.stockport", "demo")
        subjects = sample_subjects(fed.layout, args.queries, args.seed)
        timings = asyncio.run(measure(fed, subjects, token))
    rows = []
    for op in ("search", "family"):
        g, d = timings[f"{op}/gateway"], timings[f"{op}/direct"]
        rows.append({
            "operation": op, "n": len(g),
            "gateway_ms": {q: round(percentile(g, q), 2) for q in (50, 95, 99)},
            "direct_ms": {q: round(percentile(d, q), 2) for q in (50, 95, 99)},
            "ratio_p50": round(statistics.median(g) / statistics.median(d), 2),
            "ratio_p99": round(percentile(g, 99) / percentile(d, 99), 2),
        })
    table = Table(title="gateway vs. the same calls made straight to the adapters (ms)")
    for column in ("operation", "n", "gateway p50/p95/p99", "direct p50/p95/p99", "ratio p50", "ratio p99"):
        table.add_column(column, justify="right")
    for r in rows:
        gw = "/".join(f"{r['gateway_ms'][q]:.1f}" for q in (50, 95, 99))
        di = "/".join(f"{r['direct_ms'][q]:.1f}" for q in (50, 95, 99))
        ratios = f"{r['ratio_p50']:.2f}x", f"{r['ratio_p99']:.2f}x"
        table.add_row(str(r["operation"]), str(r["n"]), gw, di, *ratios)
    Console().print(table)
    print(json.dumps(rows))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
