#!/usr/bin/env python
"""Load test (issue 6, ``make load``): simulated workers against real gateway and adapter processes.

A small asyncio client (httpx): each simulated worker is a distinct user (its own ``sub``, token signed
by a test OIDC issuer the gateway trusts, :mod:`familyctx_gateway.testing.issuer`), with its own
connection, sending one request at a time without pause, alternating ``POST /v1/searches`` (name and
date of birth) and ``POST /v1/family-context`` for people sampled from Stockport's warehouse.

Scenarios, each ``--seconds`` long against a fresh gateway process with its own audit log:

1. ``healthy``: three real adapters (``familyctx adapter serve``) of about 100,000 people each
   (``familyctx synth --people 260000``, cached under ``var/load/``);
2. ``degraded``: the same, with Leeds's adapter killed (SIGKILL) and Manchester's reached through a
   loopback proxy adding ``--slow-ms`` to every answer (:mod:`familyctx_gateway.testing.proxy`);
3. ``fan-out 5/20/50``: searches only, against 5, 20 and 50 light adapters that answer after a fixed
   20 ms (:mod:`familyctx_gateway.testing.slow_council`, mutual TLS and assertions checked).

For each: requests, throughput (answers/s), p50/p95/p99 latency (ms), errors (anything but 200; a
partial answer naming a missing council is a 200, not an error), the audit records committed for
the successful answers (counted by request id in the gateway's audit store; must equal them) and the
CPU time per request (ms) of the gateway and of the adapters (or councils) together, from /proc. Prints
the machine, a table and one JSON line. Usage::

    .venv/bin/python scripts/load.py [--seconds 60] [--workers 50] [--fanout-workers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml
from bench_gateway import percentile, sample_subjects
from familyctx_gateway.audit_schema import audit_events
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer
from familyctx_gateway.testing.proxy import LoopbackProxy
from familyctx_gateway.testing.slow_council import fan_out_council_codes

from familyctx.councils import DEMO_COUNCILS
from familyctx.demo.federation import Federation, FederationOptions
from familyctx.demo.layout import pick_free_ports
from familyctx.demo.supervisor import familyctx_argv
from familyctx.demo.trust import DEMO_ASSERTION_ISSUER
from familyctx.trust.pki import DevPki, adapter_dns_name, generate_dev_pki

ROOT = Path(__file__).resolve().parent.parent
PURPOSE = "s47_enquiry"
STOCKPORT, LEEDS, MANCHESTER = (c.gss_code for c in DEMO_COUNCILS)
_READY = re.compile(r"gateway ready on (http://\S+)")


@dataclass
class Result:
    """What one scenario measured."""

    name: str
    seconds: float
    workers: int
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    source_states: Counter[str] = field(default_factory=Counter)
    ok_ids: list[str] = field(default_factory=list)
    audited: int = 0
    #: CPU seconds used in the measured window by the gateway, and by the adapters / councils together.
    gateway_cpu_s: float | None = None
    adapters_cpu_s: float | None = None

    def summary(self) -> dict[str, Any]:
        n = len(self.latencies_ms)
        errors = sum(v for k, v in self.statuses.items() if k != "200")
        return {
            "scenario": self.name, "workers": self.workers, "seconds": round(self.seconds, 1),
            "requests": n, "per_second": round(n / self.seconds, 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 1) if n else None,
            "p95_ms": round(percentile(self.latencies_ms, 95), 1) if n else None,
            "p99_ms": round(percentile(self.latencies_ms, 99), 1) if n else None,
            "errors": errors, "statuses": dict(self.statuses), "ok": len(self.ok_ids),
            "audited_ok": self.audited, "sources": dict(self.source_states),
            "gateway_cpu_ms_per_request": _per_request(self.gateway_cpu_s, n),
            "adapters_cpu_ms_per_request": _per_request(self.adapters_cpu_s, n),
        }


def _per_request(cpu_s: float | None, requests: int) -> float | None:
    return round(cpu_s * 1000 / requests, 2) if cpu_s is not None and requests else None


# -- processes -----------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds used so far by the processes ``pids`` (all their threads), from
    ``/proc/<pid>/stat`` (proc(5), fields 14 and 15, in clock ticks); None where there is no /proc."""
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


#: ``--pin``: the CPUs of the gateway, and those of everything else (load client, adapters, councils).
PIN: tuple[str, str] | None = None


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    """``argv`` run on ``cpus`` only (``taskset -c``, util-linux: every thread of the process), or as is."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


class GatewayProcess:
    """``familyctx gateway serve --config`` on a free port, its output in ``log``; ready on return."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            pinned(familyctx_argv("gateway", "serve", "--config", str(config), "--host", "127.0.0.1",
                                  "--port", "0"), PIN[0] if PIN else None),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        ready = threading.Event()
        self.url = ""

        def read() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                self.log.write(line)
                if not ready.is_set() and (found := _READY.search(line)):
                    self.url = found.group(1)
                    ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(120):
            self.stop()
            raise SystemExit(f"the gateway did not start; see {log}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.reader.join(timeout=30)
        self.log.close()


def gateway_config(
    path: Path, *, base: dict[str, Any], issuer: str, audit: Path, adapters: list[dict[str, Any]],
    pki: DevPki | None = None,
) -> Path:
    """The federation's gateway.yaml (``base``) with the test issuer, a fresh audit store, ``adapters``
    and, for the fan-out councils, another development ``pki``."""
    data = json.loads(json.dumps(base))
    data["oidc"] = {"issuer": issuer, "audience": "familyctx-gateway", "algorithms": ["RS256", "ES256"]}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{audit}{suffix}").unlink(missing_ok=True)
    data["audit"]["database_url"] = f"sqlite:///{audit}"
    data["adapters"] = adapters
    if pki is not None:
        data["audit"]["signing_key_file"] = str(pki.gateway_audit_key)
        data["assertion"]["signing_key_file"] = str(pki.assertion_key)
        data["adapter_tls"] = {"ca_file": str(pki.ca_cert), "cert_file": str(pki.gateway_cert),
                               "key_file": str(pki.gateway_key)}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def count_audited(audit: Path, request_ids: list[str]) -> int:
    """Audit records with one of ``request_ids`` and HTTP status 200, in the store at ``audit``."""
    engine = sa.create_engine(f"sqlite:///{audit}")
    found = 0
    try:
        with engine.connect() as conn:
            for start in range(0, len(request_ids), 500):
                chunk = request_ids[start:start + 500]
                found += conn.execute(
                    sa.select(sa.func.count()).select_from(audit_events).where(
                        audit_events.c.request_id.in_(chunk), audit_events.c.http_status == 200)
                ).scalar_one()
    finally:
        engine.dispose()
    return found


# -- the client ------------------------------------------------------------------------------------


async def run_workers(
    url: str, tokens: list[str], bodies: list[tuple[str, dict[str, Any]]], seconds: float, result: Result
) -> None:
    """``len(tokens)`` workers, one request at a time each, for ``seconds``; fills ``result``."""
    stop_at = time.monotonic() + seconds

    async def worker(index: int, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            turn = index * 7
            while time.monotonic() < stop_at:
                path, body = bodies[turn % len(bodies)]
                turn += 1
                request_id = f"load-{uuid.uuid4()}"
                started = time.perf_counter()
                try:
                    response = await http.post(path, json=body, headers={"X-Request-ID": request_id})
                except httpx.HTTPError as exc:
                    result.statuses[type(exc).__name__] += 1
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    result.ok_ids.append(request_id)
                    sources = response.json().get("sources", [])
                    for source in sources:  # per council for three; by state alone for a fan-out
                        key = source["state"]
                        if len(sources) <= 3:
                            key = f"{source['gss_code']}:{source['state']}"
                        result.source_states[key] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(i, t) for i, t in enumerate(tokens)))
    result.seconds = time.monotonic() - started


def worker_tokens(issuer: TestIssuer, count: int) -> list[str]:
    """Tokens of ``count`` distinct social workers at Stockport, valid for two hours."""
    expires = int(time.time()) + 7200
    return [issuer.token("sw.stockport", sub=f"load-worker-{i:03d}", name=f"Load Worker {i}", exp=expires)
            for i in range(count)]


def measure(
    name: str, config: Path, data_dir: Path, issuer: TestIssuer, workers: int, seconds: float,
    bodies: list[tuple[str, dict[str, Any]]], adapter_pids: list[int] | None = None,
) -> Result:
    """Start a gateway with ``config``, warm it (one request per worker), run the load, count audit.
    ``adapter_pids``: the adapter (or council) processes whose CPU time is reported with the gateway's."""
    gateway = GatewayProcess(config, data_dir / "logs" / f"gateway-{name.replace(' ', '-')}.log")
    pids = adapter_pids or []
    try:
        tokens = worker_tokens(issuer, workers)
        warm = Result(f"{name} warm-up", 0, workers)
        asyncio.run(run_workers(gateway.url, tokens, bodies, 3, warm))
        result = Result(name, seconds, workers)
        gateway_before, adapters_before = cpu_seconds([gateway.popen.pid]), cpu_seconds(pids)
        asyncio.run(run_workers(gateway.url, tokens, bodies, seconds, result))
        gateway_after, adapters_after = cpu_seconds([gateway.popen.pid]), cpu_seconds(pids)
        if gateway_before is not None and gateway_after is not None:
            result.gateway_cpu_s = gateway_after - gateway_before
        if pids and adapters_before is not None and adapters_after is not None:
            result.adapters_cpu_s = adapters_after - adapters_before
    finally:
        gateway.stop()
    audit = Path(yaml.safe_load(config.read_text())["audit"]["database_url"].removeprefix("sqlite:///"))
    result.audited = count_audited(audit, result.ok_ids)
    print(json.dumps(result.summary()), flush=True)
    return result


def federation_bodies(fed: Federation, count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Alternating searches (name and date of birth) and family-context requests for sampled people."""
    bodies: list[tuple[str, dict[str, Any]]] = []
    for subject in sample_subjects(fed.layout, count, seed):
        common = {"purpose": PURPOSE, "case_reference": "LOAD-1"}
        bodies.append(("/v1/searches", {**common, "given_name": subject["given_name"],
                                        "family_name": subject["family_name"],
                                        "date_of_birth": subject["date_of_birth"]}))
        bodies.append(("/v1/family-context", {**common, "subject": {
            "gss_code": STOCKPORT, "local_person_id": subject["local_person_id"]}}))
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each scenario")
    parser.add_argument("--workers", type=int, default=50, help="simulated workers (distinct users)")
    parser.add_argument("--fanout-workers", type=int, default=50)
    parser.add_argument("--fanout", default="5,20,50", help="adapter counts for the fan-out scenarios")
    parser.add_argument("--people", type=int, default=260_000,
                        help="synthetic people across the three councils (260,000: about 100,000 each)")
    parser.add_argument("--slow-ms", type=float, default=300.0, help="latency added to the slow adapter")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "load")
    parser.add_argument("--only", choices=["federation", "fanout"], help="run one part only")
    parser.add_argument("--pin", action="store_true",
                        help="run the gateway on CPU 0 alone and everything else (this client, the adapters, "
                             "the fan-out councils) on the other CPUs, as if the councils ran elsewhere")
    args = parser.parse_args()
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least two CPUs")
        global PIN
        PIN = (str(cpus[0]), ",".join(str(c) for c in cpus[1:]))
        os.sched_setaffinity(0, set(cpus[1:]))  # this client and the children it starts from now on
    data_dir: Path = args.data_dir.resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"{platform.platform()}, python {platform.python_version()}; load average before "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + (f"; gateway on CPU {PIN[0]}, the rest on CPU {PIN[1]}" if PIN else ""), flush=True)
    results: list[Result] = []
    options = FederationOptions(people=args.people, seed=11, deadline_ms=2000, ready_timeout_seconds=180,
                                step_timeout_seconds=1800)
    with running_issuer() as issuer:
        if args.only != "fanout":
            results += federation(data_dir, issuer, options, args)
        if args.only != "federation":
            # The fan-out councils need no warehouse: the demo gateway configuration is the base.
            base = yaml.safe_load((ROOT / "gateway" / "config" / "gateway.demo.yaml").read_text("utf-8"))
            counts = [int(n) for n in args.fanout.split(",")]
            results += fan_out(data_dir, base, issuer, counts, args.fanout_workers, args.seconds)
    print_table(results)
    fan = {r.name: r.summary()["p99_ms"] for r in results if r.name.startswith("fan-out")}
    if "fan-out 5" in fan and "fan-out 50" in fan:
        ratio = fan["fan-out 50"] / fan["fan-out 5"]
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"fan-out: p99(50) / p99(5) = {ratio:.2f} (target <= 1.5): {verdict}")
    print(json.dumps([r.summary() for r in results]))


def federation(
    data_dir: Path, issuer: TestIssuer, options: FederationOptions, args: argparse.Namespace
) -> list[Result]:
    """The three-council scenarios: healthy, then Leeds dead and Manchester slow."""
    results: list[Result] = []
    with Federation(data_dir / "federation", pick_free_ports(), options, report=print) as fed:
        fed.build()
        fed.start()
        base = yaml.safe_load(fed.layout.gateway_config.read_text(encoding="utf-8"))
        adapters = base["adapters"]
        bodies = federation_bodies(fed, 2000, seed=3)
        config = gateway_config(data_dir / "gateway-healthy.yaml", base=base, issuer=issuer.issuer,
                                audit=data_dir / "audit-healthy.sqlite", adapters=adapters)
        pids = {c.gss_code: fed.child(f"adapter-{c.name.lower()}").pid for c in DEMO_COUNCILS}
        results.append(measure("healthy", config, data_dir, issuer, args.workers, args.seconds, bodies,
                               list(pids.values())))

        leeds = fed.child("adapter-leeds")
        os.kill(leeds.pid, signal.SIGKILL)  # dead: connections refused from now on
        leeds.popen.wait(timeout=30)
        host, port = fed.adapter_address(MANCHESTER).rsplit(":", 1)
        with LoopbackProxy((host, int(port)), latency_ms=args.slow_ms) as slow:
            degraded = [dict(a, address=slow.address) if a["gss_code"] == MANCHESTER else a
                        for a in adapters]
            config = gateway_config(data_dir / "gateway-degraded.yaml", base=base, issuer=issuer.issuer,
                                    audit=data_dir / "audit-degraded.sqlite", adapters=degraded)
            name = f"Leeds dead, Manchester +{args.slow_ms:.0f} ms"
            live = [pid for code, pid in pids.items() if code != LEEDS]
            results.append(measure(name, config, data_dir, issuer, args.workers, args.seconds, bodies, live))
    return results


def fan_out(
    data_dir: Path, base: dict[str, Any], issuer: TestIssuer, counts: list[int], workers: int, seconds: float
) -> list[Result]:
    """The fan-out scenarios: ``max(counts)`` slow councils (two processes), searched by name."""
    codes = fan_out_council_codes(max(counts))
    pki = generate_dev_pki(data_dir / "fanout-pki", councils=codes, days=30)
    servers = []
    addresses: dict[str, str] = {}
    for part in (codes[: len(codes) // 2 or 1], codes[len(codes) // 2 or 1:]):
        if not part:
            continue
        popen = subprocess.Popen(
            pinned([sys.executable, "-m", "familyctx_gateway.testing.slow_council", "--pki",
                    str(pki.directory), "--issuer", DEMO_ASSERTION_ISSUER, "--latency-ms", "20", *part],
                   PIN[1] if PIN else None),
            stdout=subprocess.PIPE, text=True,
        )
        servers.append(popen)
        assert popen.stdout is not None
        addresses.update(json.loads(popen.stdout.readline()))
    body = {"purpose": PURPOSE, "case_reference": "LOAD-1", "given_name": "Alex", "family_name": "Smith",
            "date_of_birth": "2015-03-01"}
    results = []
    try:
        for count in counts:
            adapters = [{"gss_code": code, "name": f"Load council {code}", "address": addresses[code],
                         "deadline_ms": 2000, "tls_server_name": adapter_dns_name(code)}
                        for code in codes[:count]]
            config = gateway_config(data_dir / f"gateway-fanout-{count}.yaml", base=base,
                                    issuer=issuer.issuer, audit=data_dir / f"audit-fanout-{count}.sqlite",
                                    adapters=adapters, pki=pki)
            results.append(measure(f"fan-out {count}", config, data_dir, issuer, workers, seconds,
                                   [("/v1/searches", body)], [p.pid for p in servers]))
    finally:
        for popen in servers:
            popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=30)
            if popen.poll() is None:
                popen.kill()
    return results


def print_table(results: list[Result]) -> None:
    """One line per scenario."""
    print(f"{'scenario':<34} {'workers':>7} {'requests':>8} {'per s':>7} {'p50':>7} {'p95':>7} {'p99':>7} "
          f"{'errors':>6} {'ok':>6} {'audited':>7} {'gw cpu':>7} {'ad cpu':>7}")
    for r in results:
        s = r.summary()
        print(f"{s['scenario']:<34} {s['workers']:>7} {s['requests']:>8} {s['per_second']:>7} "
              f"{s['p50_ms']:>7} {s['p95_ms']:>7} {s['p99_ms']:>7} {s['errors']:>6} {s['ok']:>6} "
              f"{s['audited_ok']:>7} {s['gateway_cpu_ms_per_request'] or '-':>7} "
              f"{s['adapters_cpu_ms_per_request'] or '-':>7}")
        print(f"    statuses {s['statuses']}; sources {s['sources']}")


if __name__ == "__main__":
    main()
