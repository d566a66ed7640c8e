"""A real adapter process called directly, not through the gateway: every unauthenticated caller is
refused, and the refusal is in the adapter's own log with its reason.

Transport refusals (no TLS, a client certificate the council's CA did not issue, none at all) happen in
the TLS handshake: the call fails UNAVAILABLE and gRPC's TLS layer logs ``Handshake failed`` with the
TLS reason. Assertion refusals reach the handler: UNAUTHENTICATED with one fixed message, and the
adapter logs ``refused method=... reason=<code> peer=... request_id=...``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc
from joserfc.jwk import ECKey
from trust_support import ISSUER, Caller, adapter_trust_yaml, requester
from unit.test_adapter_fixture_warehouse import CHILD, build_warehouse

from familyctx.trust.assertion import AssertionSigner
from familyctx.trust.pki import DevPki, generate_self_signed

STOCKPORT, LEEDS = "E08000007", "E08000035"
REQUEST = adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number="9434765919"))


@dataclass
class RunningAdapter:
    address: str
    log: Path

    def wait_for_log(self, *needles: str, timeout: float = 20.0) -> str:
        """The first log line holding every needle, waiting for the adapter to write it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
                if all(needle in line for needle in needles):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no adapter log line with {needles}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki) -> Iterator[RunningAdapter]:
    work = tmp_path_factory.mktemp("refusals")
    url = f"sqlite:///{work}/stockport.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    config = work / "stockport.yaml"
    config.write_text(
        "council: {gss_code: E08000007, name: Stockport, dfe_la_number: 356}\n"
        f"cms: systemc\ndatabase_url: {url}\nlisten: {{host: 127.0.0.1, port: 0}}\n"
        + adapter_trust_yaml(dev_pki, STOCKPORT),
        encoding="utf-8",
    )
    log = work / "adapter.log"
    # GRPC_VERBOSITY=ERROR would hide gRPC's handshake lines: `adapter serve` overrides it (and says so).
    env = os.environ | {"PYTHONUNBUFFERED": "1", "GRPC_VERBOSITY": "ERROR"}
    command = [
        sys.executable,
        "-c",
        "from familyctx.cli import app; app()",
        "adapter",
        "serve",
        "--config",
        str(config),
    ]
    with (
        log.open("w", encoding="utf-8") as log_file,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, text=True, env=env) as proc,
    ):
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("adapter ready on 127.0.0.1:"), line + log.read_text()
            yield RunningAdapter(line.strip().removeprefix("adapter ready on "), log)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _call(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError | None:
    try:
        adapter_pb2_grpc.AdapterServiceStub(channel).FindPeople(REQUEST, metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        return exc
    return None


def _gateway_channel(dev_pki: DevPki, adapter: RunningAdapter) -> tuple[Caller, grpc.Channel]:
    caller = Caller.gateway(dev_pki)
    return caller, caller.sync_channel(adapter.address)


def test_valid_certificate_and_assertion_get_an_answer(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    caller, channel = _gateway_channel(dev_pki, adapter)
    with channel:
        reply = adapter_pb2_grpc.AdapterServiceStub(channel).FindPeople(
            REQUEST, metadata=caller.metadata(STOCKPORT, request_id="rid-happy"), timeout=10
        )
    assert [c.local_person_id for c in reply.candidates] == [CHILD]
    line = adapter.wait_for_log("FindPeople", "request_id=rid-happy", "status=OK")
    assert "role=social_worker" in line and "org=E08000007" in line and "purpose=s47_enquiry" in line


def test_without_tls(adapter: RunningAdapter) -> None:
    with grpc.insecure_channel(adapter.address) as channel:
        error = _call(channel)
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    adapter.wait_for_log("Handshake failed", "WRONG_VERSION_NUMBER")
    adapter.wait_for_log("WARNING", "GRPC_VERBOSITY=ERROR ignored")


def test_self_signed_client_certificate(adapter: RunningAdapter, dev_pki: DevPki, tmp_path: Path) -> None:
    cert, key = generate_self_signed(tmp_path, "familyctx-gateway")  # the right name, the wrong issuer
    caller = replace(Caller.gateway(dev_pki), cert=cert, key=key)
    with caller.sync_channel(adapter.address) as channel:
        error = _call(channel, caller.metadata(STOCKPORT))
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    adapter.wait_for_log("Handshake failed", "CERTIFICATE_VERIFY_FAILED")


def test_tls_without_a_client_certificate(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=dev_pki.ca_cert.read_bytes())
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(adapter.address, credentials, options=options) as channel:
        error = _call(channel, Caller.gateway(dev_pki).metadata(STOCKPORT))
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    adapter.wait_for_log("Handshake failed", "PEER_DID_NOT_RETURN_A_CERTIFICATE")


def _refused(
    adapter: RunningAdapter,
    channel: grpc.Channel,
    metadata: tuple[tuple[str, str], ...],
    request_id: str,
    reason: str,
) -> None:
    error = _call(channel, metadata)
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == (
        "the caller could not be authenticated: mutual TLS and a valid gateway assertion are required"
    )
    line = adapter.wait_for_log("refused method=FindPeople", f"request_id={request_id}")
    assert f"reason={reason} " in line and "peer=127.0.0.1:" in line


def test_dev_ca_certificate_but_no_assertion(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    _, channel = _gateway_channel(dev_pki, adapter)
    with channel:
        _refused(adapter, channel, (("x-request-id", "rid-none"),), "rid-none", "missing")


def test_expired_assertion(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    gateway = Caller.gateway(dev_pki)
    past = AssertionSigner.from_file(dev_pki.assertion_key, issuer=ISSUER, clock=lambda: time.time() - 3600)
    caller = replace(gateway, signer=past)
    with caller.sync_channel(adapter.address) as channel:
        _refused(adapter, channel, caller.metadata(STOCKPORT, request_id="rid-exp"), "rid-exp", "expired")


def test_assertion_for_another_council(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    caller, channel = _gateway_channel(dev_pki, adapter)
    with channel:
        _refused(adapter, channel, caller.metadata(LEEDS, request_id="rid-aud"), "rid-aud", "wrong_audience")


def test_assertion_signed_by_another_key(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    gateway = Caller.gateway(dev_pki)
    other = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, auto_kid=True)
    with gateway.sync_channel(adapter.address) as channel:
        own_kid = replace(gateway, signer=AssertionSigner(other.as_dict(private=True), issuer=ISSUER))
        _refused(
            adapter, channel, own_kid.metadata(STOCKPORT, request_id="rid-key"), "rid-key", "unknown_key"
        )
        # Another key claiming the gateway's kid: the signature does not verify.
        forged = {**other.as_dict(private=True), "kid": gateway.signer.kid}
        same_kid = replace(gateway, signer=AssertionSigner(forged, issuer=ISSUER))
        _refused(
            adapter, channel, same_kid.metadata(STOCKPORT, request_id="rid-sig"), "rid-sig", "bad_signature"
        )


def test_assertion_with_the_wrong_issuer(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    gateway = Caller.gateway(dev_pki)
    elsewhere = AssertionSigner.from_file(dev_pki.assertion_key, issuer="https://elsewhere.example")
    caller = replace(gateway, signer=elsewhere)
    with caller.sync_channel(adapter.address) as channel:
        _refused(
            adapter, channel, caller.metadata(STOCKPORT, request_id="rid-iss"), "rid-iss", "wrong_issuer"
        )


def test_refusals_log_no_claim_values(adapter: RunningAdapter, dev_pki: DevPki) -> None:
    caller, channel = _gateway_channel(dev_pki, adapter)
    who = requester(sub="sub-must-not-log", name="Name Must Not Log", case_reference="CASE-MUST-NOT-LOG")
    with channel:
        _refused(
            adapter, channel, caller.metadata(LEEDS, who, request_id="rid-pii"), "rid-pii", "wrong_audience"
        )
    text = adapter.log.read_text(encoding="utf-8")
    for value in ("sub-must-not-log", "Name Must Not Log", "CASE-MUST-NOT-LOG", "9434765919"):
        assert value not in text
