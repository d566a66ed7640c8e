"""familyctx.trust.pki: the development CA and certificates, checked with real X.509 and TLS handshakes."""

from __future__ import annotations

import json
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from familyctx.cli import app
from familyctx.trust.assertion import AssertionSigner, AssertionVerifier, Requester
from familyctx.trust.pki import DevPki, PkiError, adapter_dns_name, generate_dev_pki, generate_self_signed

STOCKPORT, LEEDS = "E08000007", "E08000035"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return generate_dev_pki(tmp_path_factory.mktemp("pki") / "dev-pki", councils=[STOCKPORT, LEEDS])


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_files_and_permissions(pki: DevPki) -> None:
    assert stat.S_IMODE(pki.directory.stat().st_mode) == 0o700
    for private in (pki.ca_key, pki.gateway_key, pki.adapter_key(STOCKPORT), pki.assertion_key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    for public in (pki.ca_cert, pki.gateway_cert, pki.adapter_cert(LEEDS), pki.assertion_jwks):
        assert public.is_file()
    assert pki.adapter_cert(STOCKPORT).name == "adapter-E08000007.pem"
    assert pki.councils == (STOCKPORT, LEEDS)


def test_names_and_usages(pki: DevPki) -> None:
    ca, gateway, adapter = _cert(pki.ca_cert), _cert(pki.gateway_cert), _cert(pki.adapter_cert(STOCKPORT))
    assert _cn(ca) == "Family Context Federation development CA"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert _cn(gateway) == "familyctx-gateway"
    assert list(gateway.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert _cn(adapter) == "adapter-E08000007"
    assert list(adapter.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    san = adapter.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["adapter-e08000007.familyctx.local", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert adapter_dns_name(STOCKPORT) == "adapter-e08000007.familyctx.local"


def test_adapter_certificate_verifies_as_a_server_for_its_name(pki: DevPki) -> None:
    store = Store([_cert(pki.ca_cert)])
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(adapter_dns_name(STOCKPORT)))
    chain = verifier.verify(_cert(pki.adapter_cert(STOCKPORT)), [])
    assert chain[-1] == _cert(pki.ca_cert)
    other = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(adapter_dns_name(LEEDS)))
    with pytest.raises(VerificationError):
        other.verify(_cert(pki.adapter_cert(STOCKPORT)), [])


def test_self_signed_certificate_is_not_trusted(pki: DevPki, tmp_path: Path) -> None:
    cert_path, key_path = generate_self_signed(tmp_path, "familyctx-gateway")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = _cert(cert_path)
    assert _cn(cert) == "familyctx-gateway" and cert.issuer == cert.subject
    verifier = PolicyBuilder().store(Store([_cert(pki.ca_cert)])).build_client_verifier()
    with pytest.raises(VerificationError):
        verifier.verify(cert, [])
    assert verifier.verify(_cert(pki.gateway_cert), []).subjects is not None


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_name: str) -> ssl.SSLObject:
    """A real TLS handshake in memory; returns the server side (raises ssl.SSLError on failure)."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(c_in, c_out, server_hostname=server_name)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side, out_bio, peer_in in (
            ("client", client_side, c_out, s_in),
            ("server", server_side, s_out, c_in),
        ):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out_bio.read())
        if all(done.values()):
            # TLS 1.3: the server checks the client's certificate after sending its Finished message.
            client_side.write(b"ping")
            s_in.write(c_out.read())
            assert server_side.read(4) == b"ping"
            return server_side
    raise AssertionError("handshake did not finish")


def _server(pki: DevPki, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(pki.ca_cert)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client(pki: DevPki, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca_cert)
    context.load_cert_chain(cert, key)
    return context


def test_mutual_tls_handshake_between_gateway_and_adapter(pki: DevPki) -> None:
    server = _server(pki, pki.adapter_cert(STOCKPORT), pki.adapter_key(STOCKPORT))
    side = _handshake(server, _client(pki, pki.gateway_cert, pki.gateway_key), adapter_dns_name(STOCKPORT))
    peer = side.getpeercert()
    assert peer is not None and dict(x[0] for x in peer["subject"])["commonName"] == "familyctx-gateway"


def test_handshake_refuses_a_self_signed_client(pki: DevPki, tmp_path: Path) -> None:
    cert, key = generate_self_signed(tmp_path, "intruder")
    server = _server(pki, pki.adapter_cert(STOCKPORT), pki.adapter_key(STOCKPORT))
    with pytest.raises(ssl.SSLError):
        _handshake(server, _client(pki, cert, key), "localhost")


def test_existing_files_are_reused_and_new_councils_issued_by_the_same_ca(pki: DevPki) -> None:
    before = {p: p.read_bytes() for p in (pki.ca_cert, pki.gateway_cert, pki.assertion_key)}
    again = generate_dev_pki(pki.directory, councils=[STOCKPORT, "E08000003"])
    assert {p: p.read_bytes() for p in before} == before
    verifier = (
        PolicyBuilder().store(Store([_cert(pki.ca_cert)])).build_server_verifier(x509.DNSName("localhost"))
    )
    assert verifier.verify(_cert(again.adapter_cert("E08000003")), [])


def test_overwrite_replaces_everything(tmp_path: Path) -> None:
    first = generate_dev_pki(tmp_path / "p", councils=[STOCKPORT])
    old_ca, old_jwk = first.ca_cert.read_bytes(), first.assertion_key.read_bytes()
    second = generate_dev_pki(tmp_path / "p", councils=[STOCKPORT], overwrite=True)
    assert second.ca_cert.read_bytes() != old_ca and second.assertion_key.read_bytes() != old_jwk
    assert stat.S_IMODE(second.ca_key.stat().st_mode) == 0o600
    assert not list((tmp_path / "p").glob(".*.tmp"))


def test_certificate_without_its_key_is_an_error(tmp_path: Path) -> None:
    pki = generate_dev_pki(tmp_path / "p", councils=[STOCKPORT])
    pki.gateway_key.unlink()
    with pytest.raises(PkiError, match=r"gateway\.pem exists but .*gateway\.key does not"):
        generate_dev_pki(tmp_path / "p", councils=[STOCKPORT])


def test_bad_gss_code_and_days(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="E followed by 8 digits"):
        generate_dev_pki(tmp_path, councils=["Stockport"])
    with pytest.raises(ValueError, match="days"):
        generate_dev_pki(tmp_path, councils=[STOCKPORT], days=0)


def test_assertion_key_signs_what_the_jwks_verifies(pki: DevPki) -> None:
    signer = AssertionSigner.from_file(pki.assertion_key, issuer="https://gw")
    jwks = json.loads(pki.assertion_jwks.read_text())
    assert all("d" not in key for key in jwks["keys"])
    assert ECKey.import_key(jwks["keys"][0]).kid == signer.kid
    requester = Requester("u", "n", STOCKPORT, "social_worker", "c", "s17_assessment", "C1")
    token = signer.sign(requester, audience=STOCKPORT)
    assert (
        AssertionVerifier(jwks, issuer="https://gw", audience=STOCKPORT).verify(token).requester == requester
    )


def test_cli_writes_the_pki(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dev-pki", "--out", str(tmp_path / "cli"), "--council", STOCKPORT])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "adapter-E08000007.pem").is_file()
    assert not (tmp_path / "cli" / "adapter-E08000035.pem").exists()
    bad = CliRunner().invoke(app, ["dev-pki", "--out", str(tmp_path / "cli"), "--council", "nope"])
    assert bad.exit_code == 2 and "E followed by 8 digits" in bad.output
