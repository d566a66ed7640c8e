"""Light council adapters with a fixed latency, for the fan-out load test (``make load``, issue 6).

Each is a real ``grpc.aio`` AdapterService on its own loopback port that, like the real adapter and
the fake councils (:mod:`.fake_council`), serves only mutual TLS (its server certificate from a
development PKI, client certificates required and checked against that PKI's CA) and verifies every
call's requester assertion (audience = its own GSS code; a refused one gets ``UNAUTHENTICATED``). It
then waits ``latency_ms`` and answers from an empty warehouse: ``Describe`` names the council and its
datasets, ``FindPeople`` finds nobody, ``GetFamilyContext`` answers ``NOT_FOUND``. The wait stands for a
council's warehouse; nothing else is slow.

Run as a process (many councils share one event loop)::

    python -m familyctx_gateway.testing.slow_council --pki DIR --issuer ISS --latency-ms 20 E09000001 ...

It prints one JSON line, ``{"E09000001": "127.0.0.1:PORT", ...}``, once every server listens, and
serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
from familycontext.v1 import adapter_pb2_grpc

from familyctx.trust.pki import DevPki
from familyctx_gateway.testing.fake_council import CouncilData, CouncilTrust, FakeAdapterService

__all__ = ["SlowAdapterService", "fan_out_council_codes", "serve_slow_councils"]


def fan_out_council_codes(count: int) -> list[str]:
    """``count`` made-up GSS codes (``E09900001``...; the E09 prefix is London boroughs', the 9900
    range is not a real one), for councils that exist only in a load test. ``count``: 1..9999."""
    if not 1 <= count <= 9999:
        raise ValueError("count must be from 1 to 9999")
    return [f"E0990{n:04d}" for n in range(1, count + 1)]


class SlowAdapterService(FakeAdapterService):
    """:class:`~.fake_council.FakeAdapterService` (assertion verified first) that answers every call
    ``latency_ms`` milliseconds after it arrived (an ``asyncio.sleep``: no CPU is used)."""

    def __init__(self, data: CouncilData, trust: CouncilTrust, latency_ms: float) -> None:
        super().__init__(data, trust.verifier(data.gss_code))
        self.latency_s = latency_ms / 1000

    async def _note(self, method: str, context: Any) -> None:
        await super()._note(method, context)
        self.calls.clear()  # a load test makes millions: keep no history
        self.metadata.clear()
        await asyncio.sleep(self.latency_s)


async def serve_slow_councils(
    codes: list[str], pki: DevPki, issuer: str, latency_ms: float
) -> tuple[list[grpc.aio.Server], dict[str, str]]:
    """Start one server per GSS code in ``codes`` (certificates from ``pki``, assertions from ``issuer``)
    on free loopback ports; returns the started servers and ``{gss_code: "127.0.0.1:port"}``."""
    trust = CouncilTrust(pki=pki, issuer=issuer)
    servers, addresses = [], {}
    for code in codes:
        server = grpc.aio.server()
        service = SlowAdapterService(CouncilData(code, f"Load council {code}"), trust, latency_ms)
        adapter_pb2_grpc.add_AdapterServiceServicer_to_server(service, server)
        port = server.add_secure_port("127.0.0.1:0", trust.server_credentials(code))
        await server.start()
        servers.append(server)
        addresses[code] = f"127.0.0.1:{port}"
    return servers, addresses


async def _main(args: argparse.Namespace) -> None:
    pki = DevPki(directory=args.pki, councils=tuple(args.codes))
    servers, addresses = await serve_slow_councils(args.codes, pki, args.issuer, args.latency_ms)
    print(json.dumps(addresses), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await asyncio.gather(*(s.stop(grace=None) for s in servers))


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description="Council adapters with a fixed latency (load tests).")
    parser.add_argument("--pki", type=Path, required=True, help="development PKI directory")
    parser.add_argument("--issuer", required=True, help="the gateway's assertion issuer (iss)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("codes", nargs="+", help="GSS codes, each with a certificate in the PKI")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

