"""How the adapter trusts the gateway, in process: real mTLS, real ES256 assertions, real HTTP for JWKS.

Covers what the end-to-end refusal tests (tests/e2e/test_adapter_refusals.py) do not: the client
certificate subject check, refreshing the gateway's keys from ``jwks_url`` (rate-limited, with an
injected clock so nothing depends on timing), and every unusable trust file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.server import AdapterServer, build_server
from familyctx_adapter.settings import AdapterSettings
from familyctx_adapter.sql_source import SqlWarehouseSource
from familyctx_adapter.trust import (
    REFUSED_MESSAGE,
    CallerCheck,
    RemoteJwks,
    load_caller_check,
    load_server_tls,
)
from joserfc.jwk import ECKey, KeySet
from trust_support import ISSUER, AuthedStub, Caller, issue_client_cert, requester
from unit.test_adapter_fixture_warehouse import CHILD, build_warehouse, settings_for

from familyctx.trust.assertion import ASSERTION_METADATA_KEY, AssertionSigner, AssertionVerifier
from familyctx.trust.pki import DevPki

STOCKPORT = "E08000007"
NHS = adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number="9434765919"))


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('trust')}/stockport.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    return url


@pytest_asyncio.fixture
async def started() -> AsyncIterator[list[AdapterServer]]:
    """Start servers built by a test (append to the list); all stopped at the end."""
    servers: list[AdapterServer] = []
    yield servers
    for server in servers:
        await server.stop(grace=None)


async def _start(servers: list[AdapterServer], settings: AdapterSettings, **parts: Any) -> AdapterServer:
    server = build_server(settings, SqlWarehouseSource.from_settings(settings), **parts)
    await server.start()
    servers.append(server)
    return server


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]


async def test_client_certificate_of_someone_else_is_refused(
    started: list[AdapterServer],
    warehouse_url: str,
    dev_pki: DevPki,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A certificate from the right CA but not the gateway's name (client_cert_subject) is refused."""
    caplog.set_level("INFO", logger="familyctx.adapter")
    server = await _start(started, settings_for("systemc", warehouse_url, pki=dev_pki))
    gateway = Caller.gateway(dev_pki)
    cert, key = issue_client_cert(dev_pki, tmp_path, "someone-else")
    other = Caller(pki=dev_pki, signer=gateway.signer, cert=cert, key=key)
    async with other.channel(server.address) as channel:
        stub = adapter_pb2_grpc.AdapterServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.FindPeople(NHS, metadata=other.metadata(STOCKPORT, request_id="rid-cn"), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == REFUSED_MESSAGE
    [line] = _refusals(caplog)
    assert "method=FindPeople reason=wrong_client_certificate" in line and "request_id=rid-cn" in line
    # Without client_cert_subject, any certificate of the CA with a valid assertion is accepted.
    open_settings = settings_for("systemc", warehouse_url, pki=dev_pki)
    open_settings.gateway.client_cert_subject = None
    relaxed = await _start(started, open_settings)
    async with other.channel(relaxed.address) as channel:
        reply = await AuthedStub(adapter_pb2_grpc.AdapterServiceStub(channel), other, STOCKPORT).FindPeople(
            NHS, timeout=10
        )
    assert [c.local_person_id for c in reply.candidates] == [CHILD]


async def test_refusal_logs_no_claim_values(
    started: list[AdapterServer], warehouse_url: str, dev_pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="familyctx.adapter")
    server = await _start(started, settings_for("systemc", warehouse_url, pki=dev_pki))
    caller = Caller.gateway(dev_pki)
    who = requester(sub="worker-secret-sub", name="Alice Example", case_reference="CASE-SECRET")
    async with caller.channel(server.address) as channel:
        stub = adapter_pb2_grpc.AdapterServiceStub(channel)
        for method, request in (
            ("Describe", adapter_pb2.DescribeRequest()),
            ("FindPeople", NHS),
            ("GetFamilyContext", adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD])),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                # An assertion for Leeds sent to Stockport.
                await getattr(stub, method)(request, metadata=caller.metadata("E08000035", who), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == REFUSED_MESSAGE
    lines = _refusals(caplog)
    assert [line.split()[1] for line in lines] == [
        "method=Describe",
        "method=FindPeople",
        "method=GetFamilyContext",
    ]
    assert all("reason=wrong_audience" in line and "peer=127.0.0.1:" in line for line in lines)
    text = "\n".join(r.getMessage() for r in caplog.records)
    for value in ("worker-secret-sub", "Alice Example", "CASE-SECRET", "social_worker"):
        assert value not in text


class _JwksHandler(BaseHTTPRequestHandler):
    server: _JwksHttp

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests += 1
        if self.server.down:
            self.send_response(503)
            self.end_headers()
            return
        body = json.dumps(self.server.jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass


class _JwksHttp(ThreadingHTTPServer):
    jwks: dict[str, Any]
    requests: int = 0
    down: bool = False


@pytest.fixture
def jwks_http() -> Iterator[_JwksHttp]:
    httpd = _JwksHttp(("127.0.0.1", 0), _JwksHandler)
    httpd.jwks = {"keys": []}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class _Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def _key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, auto_kid=True)


async def test_gateway_keys_from_url_refreshed_on_rotation_at_most_once_a_minute(
    started: list[AdapterServer],
    warehouse_url: str,
    dev_pki: DevPki,
    jwks_http: _JwksHttp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="familyctx.adapter")
    old, new, unknown = _key(), _key(), _key()
    jwks_http.jwks = KeySet([old]).as_dict(private=False)
    url = f"http://127.0.0.1:{jwks_http.server_address[1]}/.well-known/jwks.json"
    settings = settings_for("systemc", warehouse_url, pki=dev_pki)
    clock = _Clock()
    check = CallerCheck(
        AssertionVerifier({"keys": []}, issuer=ISSUER, audience=STOCKPORT),
        client_cert_subject="familyctx-gateway",
        remote=RemoteJwks(url, min_interval=60.0, clock=clock),
    )
    server = await _start(started, settings, caller_check=check)
    assert jwks_http.requests == 1  # fetched at start-up
    gateway = Caller.gateway(dev_pki)

    def signed_by(key: ECKey) -> Caller:
        return Caller(
            dev_pki, AssertionSigner(key.as_dict(private=True), issuer=ISSUER), gateway.cert, gateway.key
        )

    async def status(caller: Caller) -> grpc.StatusCode:
        async with caller.channel(server.address) as channel:
            try:
                await AuthedStub(adapter_pb2_grpc.AdapterServiceStub(channel), caller, STOCKPORT).FindPeople(
                    NHS, timeout=10
                )
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        return grpc.StatusCode.OK

    assert await status(signed_by(old)) == grpc.StatusCode.OK
    jwks_http.jwks = KeySet([old, new]).as_dict(private=False)  # the gateway rotates: new key published
    clock.now += 30  # within a minute of the last fetch: no refresh, so the new key is unknown yet
    assert await status(signed_by(new)) == grpc.StatusCode.UNAUTHENTICATED
    assert jwks_http.requests == 1
    clock.now += 31
    assert await status(signed_by(new)) == grpc.StatusCode.OK  # one refresh on the unknown kid
    assert jwks_http.requests == 2
    for _ in range(3):  # a stream of unknown kids cannot cause a fetch storm
        assert await status(signed_by(unknown)) == grpc.StatusCode.UNAUTHENTICATED
    assert jwks_http.requests == 2
    assert await status(signed_by(old)) == grpc.StatusCode.OK
    assert sum("reason=unknown_key" in line for line in _refusals(caplog)) == 4


async def test_gateway_keys_url_down_at_start_then_recovers(
    started: list[AdapterServer],
    warehouse_url: str,
    dev_pki: DevPki,
    jwks_http: _JwksHttp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="familyctx.adapter")
    jwks_http.down = True
    jwks_http.jwks = json.loads(dev_pki.assertion_jwks.read_text())
    url = f"http://127.0.0.1:{jwks_http.server_address[1]}/jwks.json"
    clock = _Clock()
    check = CallerCheck(
        AssertionVerifier({"keys": []}, issuer=ISSUER, audience=STOCKPORT),
        remote=RemoteJwks(url, min_interval=60.0, clock=clock),
    )
    server = await _start(started, settings_for("systemc", warehouse_url, pki=dev_pki), caller_check=check)
    assert any(
        "gateway keys not fetched" in r.getMessage() and "status 503" in r.getMessage()
        for r in caplog.records
    )
    caller = Caller.gateway(dev_pki)
    async with caller.channel(server.address) as channel:
        stub = AuthedStub(adapter_pb2_grpc.AdapterServiceStub(channel), caller, STOCKPORT)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.FindPeople(NHS, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        jwks_http.down = False
        clock.now += 60
        assert len((await stub.FindPeople(NHS, timeout=10)).candidates) == 1


def test_settings_with_jwks_url_build_a_remote_check(warehouse_url: str, dev_pki: DevPki) -> None:
    settings = settings_for("systemc", warehouse_url, pki=dev_pki)
    settings.gateway.jwks_file = None
    settings.gateway.jwks_url = "https://gateway.example/.well-known/jwks.json"
    check = load_caller_check(settings)
    assert check.remote is not None and check.remote.url == settings.gateway.jwks_url
    assert check.verifier.audience == STOCKPORT and not check.verifier.kids


@pytest.mark.parametrize(
    ("setting", "content", "message"),
    [
        ("cert_file", None, "tls.cert_file: {path} does not exist"),
        ("key_file", None, "tls.key_file: {path} does not exist"),
        ("client_ca_file", None, "tls.client_ca_file: {path} does not exist"),
        ("cert_file", b"", "tls.cert_file: {path} is empty"),
        ("cert_file", b"hello", "tls.cert_file: {path} is not PEM holding a certificate"),
        (
            "client_ca_file",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "tls.client_ca_file: {path} is not PEM holding a certificate",
        ),
        ("key_file", b"not a key", "tls.key_file: {path} is not an unencrypted PEM private key"),
        ("key_file", "other-key", "tls.key_file: {path} is not the private key of tls.cert_file"),
    ],
)
def test_unusable_tls_files(
    warehouse_url: str,
    dev_pki: DevPki,
    tmp_path: Path,
    setting: str,
    content: bytes | str | None,
    message: str,
) -> None:
    settings = settings_for("systemc", warehouse_url, pki=dev_pki)
    path = tmp_path / "file.pem"
    if content == "other-key":
        path = dev_pki.adapter_key("E08000035")
    elif content is not None:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    setattr(settings.tls, setting, path)
    with pytest.raises(AdapterConfigError) as info:
        load_server_tls(settings)
    assert message.format(path=path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "gateway.jwks_file: {path} does not exist"),
        (b"{not json", "gateway.jwks_file: {path} is not a JWK Set (not JSON)"),
        (b'{"kid": "x"}', "gateway.jwks_file: {path} is not a JWK Set (the JWK Set has no 'keys' list)"),
        (
            b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}',
            "gateway.jwks_file: {path} holds no EC P-256 (ES256) key with a kid",
        ),
    ],
)
def test_unusable_jwks_file(
    warehouse_url: str, dev_pki: DevPki, tmp_path: Path, content: bytes | None, message: str
) -> None:
    settings = settings_for("systemc", warehouse_url, pki=dev_pki)
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_bytes(content)
    settings.gateway.jwks_file = path
    with pytest.raises(AdapterConfigError) as info:
        load_caller_check(settings)
    assert message.format(path=path) in str(info.value)


async def test_broken_policy_stops_the_build(warehouse_url: str, dev_pki: DevPki, tmp_path: Path) -> None:
    policy = tmp_path / "broken.cedar"
    policy.write_text('@id("housing")\npermit(principal, action, resource == Dataset::"housng");\n')
    settings = settings_for("systemc", warehouse_url, pki=dev_pki, policy_file=policy)
    with pytest.raises(AdapterConfigError, match="broken.cedar"):
        build_server(settings, SqlWarehouseSource.from_settings(settings))


async def test_a_replayed_assertion_is_refused(
    started: list[AdapterServer], warehouse_url: str, dev_pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    """An assertion captured off the wire cannot be used twice: the adapter remembers each accepted
    ``jti`` until the assertion expires (settings-built check, as ``familyctx adapter serve`` builds it)."""
    caplog.set_level("INFO", logger="familyctx.adapter")
    server = await _start(started, settings_for("systemc", warehouse_url, pki=dev_pki))
    caller = Caller.gateway(dev_pki)
    metadata = caller.metadata(STOCKPORT, request_id="rid-replay")
    async with caller.channel(server.address) as channel:
        stub = adapter_pb2_grpc.AdapterServiceStub(channel)
        first = await stub.FindPeople(NHS, metadata=metadata, timeout=10)
        assert [c.local_person_id for c in first.candidates] == [CHILD]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.FindPeople(NHS, metadata=metadata, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert info.value.details() == REFUSED_MESSAGE
        # A fresh assertion for the same worker and request is accepted.
        again = await stub.FindPeople(NHS, metadata=caller.metadata(STOCKPORT, request_id="rid-replay"))
        assert len(again.candidates) == 1
    [line] = _refusals(caplog)
    assert "method=FindPeople reason=replayed" in line and "request_id=rid-replay" in line


async def test_call_log_lines_carry_only_safe_characters_of_claim_values(
    started: list[AdapterServer], warehouse_url: str, dev_pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed claim values are still text from elsewhere: the per-call log line writes org, role,
    purpose and request id as the policy's decision log does (no spaces, ``=``, control or bidi
    characters), so a value cannot forge ``status=OK`` or a second line."""
    caplog.set_level("INFO", logger="familyctx.adapter")
    server = await _start(started, settings_for("systemc", warehouse_url, pki=dev_pki))
    caller = Caller.gateway(dev_pki)
    who = requester(
        organisation="E08000007 status=OK",
        purpose="s47_enquiry\u202e\u2028forged",
        role="social_worker=x",
        request_id="rid-odd\nINFO forged line",
    )
    # The signed request id may hold what gRPC metadata cannot: the assertion is built by hand.
    metadata = ((ASSERTION_METADATA_KEY, caller.signer.sign(who, audience=STOCKPORT)),)
    async with caller.channel(server.address) as channel:
        stub = adapter_pb2_grpc.AdapterServiceStub(channel)
        try:
            await stub.Describe(adapter_pb2.DescribeRequest(), metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError:
            pass  # the policy may refuse such a requester; the log line is what is checked
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Describe ")]
    assert lines, [r.getMessage() for r in caplog.records]
    line = lines[-1]
    assert "org=E08000007?status?OK " in line
    assert "role=social_worker?x " in line
    assert "purpose=s47_enquiry??forged " in line
    assert "request_id=rid-odd?INFO?forged?line " in line
    assert "\n" not in line and "\u202e" not in line and "\u2028" not in line
