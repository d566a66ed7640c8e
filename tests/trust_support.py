"""Shared test helpers for talking to a real adapter the way the gateway does: mutual TLS + assertion.

Use the session fixture ``dev_pki`` (tests/conftest.py) for the files, then:

- :func:`adapter_trust_settings` -> the ``tls``/``gateway``/``policy_file``/``disclosure_log`` settings
  of an adapter
  (a dict for ``AdapterSettings(**...)`` / ``load_settings(..., **...)``; :func:`adapter_trust_yaml`
  gives the same as YAML for a config file);
- :class:`Caller` -> a gateway-like caller: ``channel(address)`` (grpc.aio, mTLS with the gateway's
  client certificate) and ``metadata(audience, requester)`` (a freshly signed assertion + request id);
- :func:`requester` -> a :class:`Requester` with sensible defaults (a Stockport social worker, s47).

Everything is real: X.509 from :func:`familyctx.trust.pki.generate_dev_pki`, ES256 signatures.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from familyctx.councils import DEMO_COUNCILS
from familyctx.trust.assertion import ASSERTION_METADATA_KEY, AssertionSigner, Requester
from familyctx.trust.pki import DevPki, generate_dev_pki

#: ``gateway.issuer`` of test adapters and ``iss`` of the test caller's assertions.
ISSUER = "https://gateway.familyctx.local"
#: Discloses everything to everyone (tests of transport and trust, not of sharing policy).
PERMIT_ALL_POLICY = Path(__file__).resolve().parent / "fixtures" / "policies" / "permit_all.cedar"
#: Councils the session PKI issues adapter certificates for (the demo's three).
PKI_COUNCILS: tuple[str, ...] = tuple(c.gss_code for c in DEMO_COUNCILS)
#: The CN of the gateway's client certificate in the development PKI.
GATEWAY_SUBJECT = "familyctx-gateway"


def make_dev_pki(directory: Path, councils: Sequence[str] = PKI_COUNCILS) -> DevPki:
    """A development PKI (CA, gateway client cert, adapter server certs, assertion key) in ``directory``."""
    return generate_dev_pki(directory, councils=councils, days=2)


def adapter_trust_settings(
    pki: DevPki,
    gss_code: str,
    *,
    policy_file: Path = PERMIT_ALL_POLICY,
    client_cert_subject: str | None = GATEWAY_SUBJECT,
    jwks_url: str | None = None,
    disclosure_url: str | None = None,
) -> dict[str, Any]:
    """The adapter settings sections ``tls``, ``gateway``, ``policy_file`` and ``disclosure_log`` for
    council ``gss_code``. The disclosure log is ``disclosure_url``, or a fresh SQLite file per call
    (:func:`fresh_disclosure_url`), signed with the council's audit key from ``pki``."""
    gateway: dict[str, Any] = {"issuer": ISSUER}
    if jwks_url is None:
        gateway["jwks_file"] = str(pki.assertion_jwks)
    else:
        gateway["jwks_url"] = jwks_url
    if client_cert_subject is not None:
        gateway["client_cert_subject"] = client_cert_subject
    return {
        "tls": {
            "cert_file": str(pki.adapter_cert(gss_code)),
            "key_file": str(pki.adapter_key(gss_code)),
            "client_ca_file": str(pki.ca_cert),
        },
        "gateway": gateway,
        "policy_file": str(policy_file),
        "disclosure_log": {
            "database_url": disclosure_url or fresh_disclosure_url(pki, gss_code),
            "signing_key_file": str(pki.adapter_audit_key(gss_code)),
        },
    }


def fresh_disclosure_url(pki: DevPki, gss_code: str) -> str:
    """A SQLite URL for a new, empty disclosure log of ``gss_code`` beside the PKI directory."""
    directory = pki.directory.parent / "disclosure-logs"
    directory.mkdir(exist_ok=True)
    return f"sqlite:///{directory / f'{gss_code}-{uuid.uuid4().hex[:12]}.sqlite'}"


def adapter_trust_yaml(
    pki: DevPki,
    gss_code: str,
    *,
    policy_file: Path = PERMIT_ALL_POLICY,
    disclosure_url: str | None = None,
) -> str:
    """:func:`adapter_trust_settings` as YAML lines to append to an adapter config file."""
    s = adapter_trust_settings(pki, gss_code, policy_file=policy_file, disclosure_url=disclosure_url)
    return (
        "tls:\n"
        f"  cert_file: {s['tls']['cert_file']}\n"
        f"  key_file: {s['tls']['key_file']}\n"
        f"  client_ca_file: {s['tls']['client_ca_file']}\n"
        "gateway:\n"
        f"  issuer: {ISSUER}\n"
        f"  jwks_file: {s['gateway']['jwks_file']}\n"
        f"  client_cert_subject: {GATEWAY_SUBJECT}\n"
        f"policy_file: {s['policy_file']}\n"
        "disclosure_log:\n"
        f"  database_url: {s['disclosure_log']['database_url']}\n"
        f"  signing_key_file: {s['disclosure_log']['signing_key_file']}\n"
    )


def requester(**changes: Any) -> Requester:
    """A Stockport social worker asking for an s47 enquiry; override any field by keyword."""
    base = Requester(
        sub="worker-0001",
        name="Test Worker",
        organisation="E08000007",
        role="social_worker",
        client="familyctx-web",
        purpose="s47_enquiry",
        case_reference="TEST-CASE-1",
        request_id="req-test",
    )
    return replace(base, **changes)


def _pem(path: Path) -> bytes:
    return path.read_bytes()


@dataclass
class Caller:
    """Calls adapters as the gateway does: TLS client certificate ``cert``/``key`` (default: the
    gateway's), trusting ``pki``'s CA, with assertions signed by ``signer`` (default: the gateway's key)."""

    pki: DevPki
    signer: AssertionSigner
    cert: Path
    key: Path

    @classmethod
    def gateway(cls, pki: DevPki, *, ttl_seconds: int = 60) -> Caller:
        """The legitimate gateway of ``pki``."""
        signer = AssertionSigner.from_file(pki.assertion_key, issuer=ISSUER, ttl_seconds=ttl_seconds)
        return cls(pki=pki, signer=signer, cert=pki.gateway_cert, key=pki.gateway_key)

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials: trust the PKI's CA; present ``cert``/``key``."""
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.pki.ca_cert),
            private_key=_pem(self.key),
            certificate_chain=_pem(self.cert),
        )

    def channel(self, address: str, *, server_name: str = "localhost") -> grpc.aio.Channel:
        """A grpc.aio mTLS channel to ``address`` checking the server certificate for ``server_name``."""
        options = [("grpc.ssl_target_name_override", server_name)]
        return grpc.aio.secure_channel(address, self.credentials(), options=options)

    def sync_channel(self, address: str, *, server_name: str = "localhost") -> grpc.Channel:
        """As :meth:`channel`, blocking API."""
        options = [("grpc.ssl_target_name_override", server_name)]
        return grpc.secure_channel(address, self.credentials(), options=options)

    def metadata(
        self, audience: str, who: Requester | None = None, *, request_id: str | None = None
    ) -> tuple[tuple[str, str], ...]:
        """gRPC metadata with a fresh assertion for ``audience`` (GSS code) and an ``x-request-id``."""
        who = who or requester()
        rid = request_id or who.request_id or f"req-{uuid.uuid4().hex[:12]}"
        token = self.signer.sign(replace(who, request_id=rid), audience=audience)
        return ((ASSERTION_METADATA_KEY, token), ("x-request-id", rid))


class AuthedStub:
    """An AdapterService stub whose calls carry a fresh assertion for ``audience`` (and ``who``) unless
    ``metadata=`` is given: ``AuthedStub(stub, caller, "E08000007").FindPeople(request, timeout=10)``."""

    def __init__(self, stub: Any, caller: Caller, audience: str, who: Requester | None = None) -> None:
        self._stub, self._caller, self._audience, self._who = stub, caller, audience, who

    def __getattr__(self, method: str) -> Any:
        call = getattr(self._stub, method)

        def with_assertion(request: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("metadata", self._caller.metadata(self._audience, self._who))
            return call(request, **kwargs)

        return with_assertion


def issue_client_cert(pki: DevPki, out_dir: Path, common_name: str) -> tuple[Path, Path]:
    """A client certificate issued by ``pki``'s CA for ``common_name`` (e.g. someone other than the
    gateway): ``(cert, key)`` PEM files in ``out_dir``. For the ``client_cert_subject`` check."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / f"{common_name}.pem", out_dir / f"{common_name}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
