"""A development PKI for mutual TLS between the gateway and the council adapters (DEVELOPMENT ONLY).

:func:`generate_dev_pki` writes, in one directory (mode 0700; private keys 0600), PEM files:

- ``ca.pem`` / ``ca.key``: the development CA (CN "Family Context Federation development CA");
- ``gateway.pem`` / ``gateway.key``: the gateway's client certificate (CN ``familyctx-gateway``,
  extended key usage clientAuth);
- ``adapter-<GSS>.pem`` / ``adapter-<GSS>.key`` per council: the adapter's server certificate
  (CN ``adapter-<GSS>``; SAN DNS ``adapter-<gss lower>.familyctx.local``, DNS ``localhost``,
  IP 127.0.0.1; extended key usage serverAuth);
- ``gateway-assertion.jwk.json``: the gateway's private EC P-256 assertion signing key (RFC 7517 JWK
  with ``kid`` = RFC 7638 thumbprint, ``alg`` ES256) and ``gateway-assertion-jwks.json``: its public
  JWK Set;
- ``adapter-<GSS>-audit.jwk.json`` / ``adapter-<GSS>-audit-jwks.json`` per council: the private EC P-256
  key the council's adapter signs its disclosure log's tree heads with (log id ``adapter-<GSS>``), and
  its public JWK Set (what the council's IG team verifies kept tree heads with);
- ``audit-signing.jwk.json`` / ``audit-signing-jwks.json``: the private EC P-256 key the gateway signs
  its audit log's tree heads with (``audit.signing_key_file``, log id ``familyctx-gateway``), and its
  public JWK Set (for ``familyctx audit verify --jwks``).

Keys are ECDSA P-256; certificates are X.509 v3 (RFC 5280) signed with ECDSA-SHA256. Files that exist
are kept and reused (a new council's certificate is issued by the existing CA) unless ``overwrite=True``.
A council's real PKI replaces all of this: the adapter and gateway settings only name files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from joserfc.jwk import ECKey, KeySet

from familyctx.councils import check_gss_code

__all__ = [
    "CA_COMMON_NAME",
    "GATEWAY_COMMON_NAME",
    "DevPki",
    "PkiError",
    "adapter_dns_name",
    "generate_dev_pki",
    "generate_self_signed",
]

CA_COMMON_NAME = "Family Context Federation development CA"
GATEWAY_COMMON_NAME = "familyctx-gateway"
_ORGANISATION = "Family Context Federation (development)"
#: Backdating of notBefore so that a clock a little behind still accepts a fresh certificate.
_BACKDATE = dt.timedelta(minutes=5)


class PkiError(ValueError):
    """A development PKI file cannot be written, read or reused (message names the file)."""


def adapter_dns_name(gss_code: str) -> str:
    """The DNS name in an adapter's certificate: ``adapter-<gss lower>.familyctx.local``."""
    return f"adapter-{check_gss_code(gss_code).lower()}.familyctx.local"


@dataclass(frozen=True, slots=True)
class DevPki:
    """Where :func:`generate_dev_pki` put each file (``directory``) and for which councils (GSS codes)."""

    directory: Path
    councils: tuple[str, ...]

    @property
    def ca_cert(self) -> Path:
        """The development CA certificate (PEM); the trust anchor on both sides."""
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The development CA's private key (PEM PKCS#8, 0600)."""
        return self.directory / "ca.key"

    @property
    def gateway_cert(self) -> Path:
        """The gateway's client certificate (PEM, CN ``familyctx-gateway``)."""
        return self.directory / "gateway.pem"

    @property
    def gateway_key(self) -> Path:
        """The gateway's client private key (PEM PKCS#8, 0600)."""
        return self.directory / "gateway.key"

    def adapter_cert(self, gss_code: str) -> Path:
        """The server certificate of the adapter of council ``gss_code`` (PEM)."""
        return self.directory / f"adapter-{check_gss_code(gss_code)}.pem"

    def adapter_key(self, gss_code: str) -> Path:
        """The server private key of the adapter of council ``gss_code`` (PEM PKCS#8, 0600)."""
        return self.directory / f"adapter-{check_gss_code(gss_code)}.key"

    @property
    def assertion_key(self) -> Path:
        """The gateway's private assertion signing key (EC P-256 JWK JSON, 0600)."""
        return self.directory / "gateway-assertion.jwk.json"

    @property
    def assertion_jwks(self) -> Path:
        """The public JWK Set (RFC 7517 section 5) adapters verify assertions with."""
        return self.directory / "gateway-assertion-jwks.json"

    @property
    def gateway_audit_key(self) -> Path:
        """The private EC P-256 JWK (0600) the gateway signs its audit log's tree heads with."""
        return self.directory / "audit-signing.jwk.json"

    @property
    def gateway_audit_jwks(self) -> Path:
        """The public JWK Set of :attr:`gateway_audit_key`, for ``familyctx audit verify --jwks``."""
        return self.directory / "audit-signing-jwks.json"

    def adapter_audit_key(self, gss_code: str) -> Path:
        """The private EC P-256 JWK (0600) the adapter of ``gss_code`` signs its disclosure log's tree
        heads with (``disclosure_log.signing_key_file``)."""
        return self.directory / f"adapter-{check_gss_code(gss_code)}-audit.jwk.json"

    def adapter_audit_jwks(self, gss_code: str) -> Path:
        """The public JWK Set of :meth:`adapter_audit_key`, for ``familyctx audit verify --jwks``."""
        return self.directory / f"adapter-{check_gss_code(gss_code)}-audit-jwks.json"


def generate_dev_pki(
    out_dir: Path, *, councils: Sequence[str], days: int = 825, overwrite: bool = False
) -> DevPki:
    """Write the development CA, gateway and adapter certificates and the assertion key to ``out_dir``.

    ``councils``: GSS codes (``E`` + 8 digits) to issue adapter certificates for; ``days``: validity of
    new certificates (1..3650). Existing files are reused, not replaced, unless ``overwrite`` is True.
    Returns the :class:`DevPki` naming the files. Raises :class:`PkiError` when a file cannot be
    written or an existing one cannot be reused (e.g. a certificate without its key), ``ValueError``
    for a bad GSS code or ``days``.
    """
    codes = tuple(dict.fromkeys(check_gss_code(code) for code in councils))
    if not 1 <= days <= 3650:
        raise ValueError("days must be between 1 and 3650")
    out_dir = Path(out_dir)
    _make_private_dir(out_dir)
    pki = DevPki(directory=out_dir, councils=codes)
    validity = dt.timedelta(days=days)

    ca_key, ca_cert = _ca(pki, validity, overwrite)
    _leaf(
        pki.gateway_cert,
        pki.gateway_key,
        ca_key,
        ca_cert,
        common_name=GATEWAY_COMMON_NAME,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        names=[x509.DNSName(GATEWAY_COMMON_NAME)],
        validity=validity,
        overwrite=overwrite,
    )
    for code in codes:
        _leaf(
            pki.adapter_cert(code),
            pki.adapter_key(code),
            ca_key,
            ca_cert,
            common_name=f"adapter-{code}",
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            names=[
                x509.DNSName(adapter_dns_name(code)),
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            ],
            validity=validity,
            overwrite=overwrite,
        )
        _signing_key(pki.adapter_audit_key(code), pki.adapter_audit_jwks(code), overwrite)
    _signing_key(pki.assertion_key, pki.assertion_jwks, overwrite)
    _signing_key(pki.gateway_audit_key, pki.gateway_audit_jwks, overwrite)
    return pki


def generate_self_signed(out_dir: Path, name: str, *, days: int = 30) -> tuple[Path, Path]:
    """Write ``<name>.pem`` / ``<name>.key``: a client certificate NOT issued by the development CA.

    For refusal tests (an adapter must refuse it). CN ``name``, extended key usage clientAuth,
    self-signed. Always replaces existing files of that name. Returns ``(cert_path, key_path)``.
    """
    out_dir = Path(out_dir)
    _make_private_dir(out_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = out_dir / f"{name}.pem", out_dir / f"{name}.key"
    _write(key_path, _key_pem(key), private=True, overwrite=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False, overwrite=True)
    return cert_path, key_path


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        raise PkiError(f"cannot use {path} as the PKI directory: {problem}") from exc


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, *, private: bool, overwrite: bool) -> None:
    """Create ``path`` with ``data`` (mode 0600 when ``private``, else 0644); atomic replace on overwrite."""
    mode = 0o600 if private else 0o644
    target = path.with_name(f".{path.name}.tmp") if overwrite else path
    try:
        if overwrite:
            target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if overwrite:
            os.replace(target, path)
    except OSError as exc:
        raise PkiError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from exc


def _reuse(cert_path: Path, key_path: Path, overwrite: bool) -> bool:
    """True when both files exist and are to be kept; PkiError when only one of them exists."""
    if overwrite:
        return False
    cert_exists, key_exists = cert_path.exists(), key_path.exists()
    if cert_exists != key_exists:
        present, missing = (cert_path, key_path) if cert_exists else (key_path, cert_path)
        raise PkiError(f"{present} exists but {missing} does not; remove it or pass --force to regenerate")
    return cert_exists


def _load_pair(cert_path: Path, key_path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError(f"cannot reuse {cert_path} and {key_path}: {type(exc).__name__}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PkiError(f"{key_path} is not the key of {cert_path}; pass --force to regenerate")
    return key, cert


def _ca(
    pki: DevPki, validity: dt.timedelta, overwrite: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    if _reuse(pki.ca_cert, pki.ca_key, overwrite):
        return _load_pair(pki.ca_cert, pki.ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(CA_COMMON_NAME)
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(pki.ca_key, _key_pem(key), private=True, overwrite=overwrite)
    _write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), private=False, overwrite=overwrite)
    return key, cert


def _leaf(
    cert_path: Path,
    key_path: Path,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    common_name: str,
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName],
    validity: dt.timedelta,
    overwrite: bool,
) -> None:
    if _reuse(cert_path, key_path, overwrite):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True, overwrite=overwrite)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False, overwrite=overwrite)


def _signing_key(private_path: Path, jwks_path: Path, overwrite: bool) -> None:
    """An ES256 signing key (private JWK, 0600) reused or generated, and its public JWK Set beside it."""
    if not overwrite and private_path.exists():
        try:
            key = ECKey.import_key(json.loads(private_path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot reuse {private_path}: {type(exc).__name__}") from exc
        if not key.is_private:
            raise PkiError(f"{private_path} holds a public key only; pass --force to regenerate")
    else:
        key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, auto_kid=True)
        _write(
            private_path,
            json.dumps(key.as_dict(private=True), indent=2).encode(),
            private=True,
            overwrite=overwrite,
        )
    jwks = json.dumps(KeySet([key]).as_dict(private=False), indent=2).encode()
    _write(jwks_path, jwks, private=False, overwrite=True)
