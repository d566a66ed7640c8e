"""The council registry file, changed while the gateway runs: a council added is asked by the next search,
one removed is not asked and its channel is closed, an invalid edit is refused whole (the registry in
use stays, the error is logged and shown in GET /v1/sources), an empty file or list included (it would
remove every council); the same problems stop the gateway at start-up.

The councils are real gRPC servers (fake councils over mutual TLS on 127.0.0.1 port 0); the gateway is
the real app with its lifespan (so the registry's own file watch runs, every 1 s here: the shortest
allowed). Waits are bounded polls of GET /v1/sources, never sleeps that assume speed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from familyctx_gateway.adapter_client import AdapterClient, GrpcTransport
from familyctx_gateway.app import create_app
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.registry import EMPTY_FILE_PROBLEM, read_registry
from familyctx_gateway.settings import GatewaySettings, OidcSettings, ResilienceSettings, load_settings
from familyctx_gateway.testing.audit import committed_records
from familyctx_gateway.testing.fake_council import CouncilTrust, FakeAdapterService, start_council
from familyctx_gateway.testing.gateway import RunningGateway, gateway_trust_settings
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer, running_issuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, session_pki
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT, councils

from familyctx.trust.assertion import Requester

PURPOSE = {"purpose": "s17_assessment", "case_reference": "CASE-REG"}
WAIT_SECONDS = 20.0


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


def entry(code: str, address: str, **extra: Any) -> dict[str, Any]:
    names = {STOCKPORT: "Stockport", LEEDS: "Leeds", MANCHESTER: "Manchester"}
    return {"gss_code": code, "name": names.get(code, code), "address": address, "deadline_ms": 3000, **extra}


def write_registry(path: Path, text_or_councils: str | list[dict[str, Any]]) -> None:
    """Replace the registry file at once (write beside it, then rename), as an operator's tool would."""
    text = (
        text_or_councils
        if isinstance(text_or_councils, str)
        else yaml.safe_dump({"councils": text_or_councils}, sort_keys=False)
    )
    scratch = path.with_suffix(".tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)


@asynccontextmanager
async def federation() -> AsyncIterator[dict[str, tuple[str, FakeAdapterService]]]:
    """The three scenario councils, serving; (address, servicer) by GSS code."""
    trust = CouncilTrust(session_pki(), ASSERTION_ISSUER)
    async with AsyncExitStack() as stack:
        running = {}
        for code, data in councils().items():
            running[code] = await stack.enter_async_context(start_council(data, trust))
        yield running


@asynccontextmanager
async def registry_gateway(
    issuer: TestIssuer, tmp_path: Path, registry: Path, **settings: Any
) -> AsyncIterator[RunningGateway]:
    gateway_settings = GatewaySettings(
        audit={"database_url": f"sqlite:///{tmp_path / 'audit.sqlite'}", "auto_migrate": True},
        oidc=[OidcSettings(issuer=issuer.issuer, audience=AUDIENCE)],
        registry_file=registry,
        registry_poll_seconds=1.0,
        **{**gateway_trust_settings(session_pki()), **settings},
    )
    app = create_app(gateway_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client,
    ):
        yield RunningGateway(app, client, gateway_settings, issuer, {}, session_pki())


async def sources(gw: RunningGateway) -> dict[str, Any]:
    resp = await gw.client.get("/v1/sources", headers=gw.auth())
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it is true; fail after WAIT_SECONDS."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + WAIT_SECONDS
    while not await check():
        if loop.time() > ends:
            raise AssertionError(f"not within {WAIT_SECONDS} s: {what}")
        await asyncio.sleep(0.05)


async def wait_for_registry(gw: RunningGateway, **expected: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        seen.update(await sources(gw))
        registry = seen["registry"]
        return all((registry[k] is not None) if v is ... else registry[k] == v for k, v in expected.items())

    await wait_for(f"registry {expected}", check)
    return seen


async def search(gw: RunningGateway) -> dict[str, Any]:
    resp = await gw.client.post(
        "/v1/searches", json={**PURPOSE, "nhs_number": NHS["claire"]}, headers=gw.auth()
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def finds(servicer: FakeAdapterService) -> int:
    return sum(1 for method, _ in servicer.calls if method == "FindPeople")


async def test_a_council_added_to_the_registry_is_asked_by_the_next_search(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    registry = tmp_path / "councils.yaml"
    async with federation() as running:
        (s_addr, _), (l_addr, _), (m_addr, manchester) = (running[c] for c in (STOCKPORT, LEEDS, MANCHESTER))
        write_registry(registry, [entry(STOCKPORT, s_addr), entry(LEEDS, l_addr)])
        async with registry_gateway(issuer, tmp_path, registry) as gw:
            before = await search(gw)
            assert [s["gss_code"] for s in before["sources"]] == [STOCKPORT, LEEDS]
            assert finds(manchester) == 0

            contact = {"name": "Information Governance", "email": "ig@manchester.gov.uk"}
            write_registry(
                registry,
                [
                    entry(STOCKPORT, s_addr),
                    entry(LEEDS, l_addr),
                    entry(MANCHESTER, m_addr, datasets=["csc", "asc"], ig_contact=contact),
                ],
            )
            listed = await wait_for_registry(gw, version=2)
            after = await search(gw)
            record = committed_records(gw.settings.audit.database_url, request_id=after["request_id"])
    assert listed["registry"]["source"] == "file" and listed["registry"]["councils"] == 3
    assert listed["registry"]["last_error"] is None
    manchester_listed = next(s for s in listed["sources"] if s["gss_code"] == MANCHESTER)
    assert manchester_listed["datasets_offered"] == ["csc", "asc"]
    assert manchester_listed["ig_contact"] == contact
    assert {s["gss_code"]: s["state"] for s in after["sources"]} == dict.fromkeys(
        (STOCKPORT, LEEDS, MANCHESTER), "ok"
    )
    assert finds(manchester) == 1  # asked by the search after the change (the listing only Describes)
    assert set(record[0]["councils"]) == {STOCKPORT, LEEDS, MANCHESTER}


async def test_a_council_removed_is_not_asked_and_its_channel_is_closed(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    registry = tmp_path / "councils.yaml"
    async with federation() as running:
        addresses = {code: address for code, (address, _) in running.items()}
        leeds_servicer = running[LEEDS][1]
        write_registry(registry, [entry(code, addresses[code]) for code in (STOCKPORT, LEEDS, MANCHESTER)])
        # A short request budget: a removed council's channel is closed that long after the change.
        resilience = ResilienceSettings(request_deadline_ms=1000)
        async with registry_gateway(issuer, tmp_path, registry, resilience=resilience) as gw:
            snapshot = gw.app.state.gateway.federation  # what a request that started now would hold
            leeds: AdapterClient = snapshot.clients[LEEDS]
            await search(gw)
            assert finds(leeds_servicer) == 1
            assert isinstance(leeds.transport, GrpcTransport) and not leeds.transport.closed

            write_registry(registry, [entry(code, addresses[code]) for code in (STOCKPORT, MANCHESTER)])
            await wait_for_registry(gw, version=2)
            body = await search(gw)
            await wait_for("Leeds's channel closed", lambda: _closed(leeds))
            listed = await wait_for_registry(gw, retiring=0)
            # The snapshot taken before the change still names Leeds; once closed, a call is not made.
            late = await snapshot.fan_out("find_people", {LEEDS: None}, requester=_requester())
    assert [s["gss_code"] for s in body["sources"]] == [STOCKPORT, MANCHESTER]
    assert finds(leeds_servicer) == 1  # not asked after its removal
    assert [s["gss_code"] for s in listed["sources"]] == [STOCKPORT, MANCHESTER]
    assert (late[LEEDS].state.value, late[LEEDS].detail) == (
        "unavailable",
        "not asked: the council was removed from the registry",
    )
    assert finds(leeds_servicer) == 1


async def _closed(client: AdapterClient) -> bool:
    transport = client.transport
    return client.closed and isinstance(transport, GrpcTransport) and transport.closed


def _requester() -> Requester:
    return Requester(
        sub="t",
        name="T",
        organisation=STOCKPORT,
        role="social_worker",
        client="c",
        purpose="s17_assessment",
        case_reference="CASE-REG",
        request_id="late-1",
    )


BAD_EDITS = {
    "bad_yaml": ("councils: [\n  - {gss_code: E08000007\n", "(file): is not valid YAML: while parsing"),
    # Truncated in place by an editor or `>`: refused, or every council would be dropped.
    "empty_file": ("", EMPTY_FILE_PROBLEM),
    "empty_list": ("councils: []\n", "councils: the registry lists no councils: an empty list is refused"),
    "control_characters": (None, "councils[1].name: must be plain text"),
    "duplicate_gss_code": (None, "councils[2].gss_code: each council (gss_code) may be listed once"),
    "bad_address": (None, "councils[1].address: must be host:port"),
    "unknown_key": (None, "councils[0]: has a key that is not a known setting"),
}


@pytest.mark.parametrize("edit", sorted(BAD_EDITS))
async def test_an_invalid_edit_is_refused_whole_and_the_registry_in_use_stays(
    issuer: TestIssuer, tmp_path: Path, edit: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="familyctx_gateway.registry")
    registry = tmp_path / "councils.yaml"
    async with federation() as running:
        addresses = {code: address for code, (address, _) in running.items()}
        write_registry(registry, [entry(STOCKPORT, addresses[STOCKPORT]), entry(LEEDS, addresses[LEEDS])])
        async with registry_gateway(issuer, tmp_path, registry) as gw:
            text, expected = BAD_EDITS[edit]
            bad_address = "adapter-manchester:not-a-port"
            if text is None:
                manchester = entry(MANCHESTER, addresses[MANCHESTER])
                councils_ = [
                    entry(STOCKPORT, addresses[STOCKPORT]),
                    manchester,
                    entry(LEEDS, addresses[LEEDS]),
                ]
                if edit == "duplicate_gss_code":
                    councils_[2] = entry(STOCKPORT, addresses[LEEDS])
                elif edit == "bad_address":
                    manchester["address"] = bad_address
                elif edit == "control_characters":  # a forged CLI line, coloured red
                    manchester["name"] = "Manchester\x1b[31m\nINCOMPLETE: not-a-port"
                else:
                    councils_[0]["adress"] = councils_[0].pop("address")
                write_registry(registry, councils_)
            else:
                write_registry(registry, text)
            refused = await wait_for_registry(gw, last_error=...)
            body = await search(gw)  # still the registry in use: Stockport and Leeds

            # A later good edit is applied and clears the error.
            write_registry(
                registry, [entry(code, addresses[code]) for code in (STOCKPORT, LEEDS, MANCHESTER)]
            )
            fixed = await wait_for_registry(gw, version=2)
    registry_block = refused["registry"]
    assert registry_block["version"] == 1 and registry_block["councils"] == 2
    assert expected in registry_block["last_error"]
    assert registry_block["last_error_at"] is not None
    assert [s["gss_code"] for s in refused["sources"]] == [STOCKPORT, LEEDS]
    assert {s["gss_code"]: s["state"] for s in body["sources"]} == {STOCKPORT: "ok", LEEDS: "ok"}
    assert fixed["registry"]["last_error"] is None and fixed["registry"]["councils"] == 3
    [refusal] = [r.getMessage() for r in caplog.records if "registry edit refused" in r.getMessage()]
    assert expected in refusal and "version_in_use=1" in refusal
    assert bad_address not in refusal and "not-a-port" not in registry_block["last_error"]


def test_a_registry_file_and_inline_adapters_together_are_refused(tmp_path: Path) -> None:
    registry = tmp_path / "councils.yaml"
    write_registry(registry, [entry(STOCKPORT, "127.0.0.1:50061")])
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "registry_file": str(registry),
                "adapters": [entry(LEEDS, "127.0.0.1:50062")],
                **{k: v.model_dump(mode="json") for k, v in gateway_trust_settings(session_pki()).items()},
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(config)
    assert "adapters and registry_file are both set" in str(raised.value)


def test_an_invalid_registry_file_stops_the_gateway_at_start(tmp_path: Path) -> None:
    registry = tmp_path / "councils.yaml"
    write_registry(registry, [entry(STOCKPORT, "127.0.0.1:50061"), entry(STOCKPORT, "127.0.0.1:50062")])
    settings = GatewaySettings(registry_file=registry, **gateway_trust_settings(session_pki()))
    with pytest.raises(GatewayConfigError) as raised:
        create_app(settings)
    assert raised.value.problems == ["councils[1].gss_code: each council (gss_code) may be listed once"]
    missing = GatewaySettings(registry_file=tmp_path / "absent.yaml", **gateway_trust_settings(session_pki()))
    with pytest.raises(GatewayConfigError) as raised:
        create_app(missing)
    assert raised.value.problems == ["(file): cannot be read (No such file or directory)"]
    registry.write_bytes(b"")
    with pytest.raises(GatewayConfigError) as raised:
        create_app(settings)
    assert raised.value.problems == [EMPTY_FILE_PROBLEM]


def test_the_example_registry_file_is_a_valid_registry() -> None:
    example = Path(__file__).parents[2] / "gateway" / "config" / "councils.example.yaml"
    targets, digest = read_registry(example, ResilienceSettings())
    assert [t.gss_code for t in targets] == [STOCKPORT, LEEDS]
    assert all(t.ig_contact is not None and t.datasets and t.tls_server_name for t in targets)
    assert len(digest) == 64
