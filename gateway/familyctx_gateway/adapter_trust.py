"""The gateway's trust material towards adapters, read once at startup from the files the settings name.

- :class:`ClientTls`: the gateway's mutual TLS identity (client certificate and key, PEM) and the CA
  it trusts for adapters' server certificates; :meth:`ClientTls.channel_credentials` and
  :func:`channel_options` build what ``grpc.aio.secure_channel`` takes (TLS 1.2+, as gRPC core does).
- :func:`load_signer`: the :class:`~familyctx.trust.assertion.AssertionSigner` for per-call assertions
  (RFC 7515 JWS, ES256), and :func:`published_jwks`: the public JWK Set (RFC 7517) the gateway
  publishes at ``/.well-known/jwks.json``: the signing key plus any keys named in
  ``assertion.additional_jwks_files`` (key rotation).

Every unusable file raises :class:`GatewayConfigError` naming the setting and the path, never the
file's content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from familyctx.config_types import relative_path_note
from familyctx.trust.assertion import AssertionKeyError, AssertionSigner
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.settings import AdapterTarget, AdapterTlsSettings, AssertionSettings, GatewaySettings

__all__ = ["ClientTls", "channel_options", "load_signer", "published_jwks"]

_SOURCE = "gateway settings"

#: JWK members that hold private key material (RFC 7518 sections 6.2.2, 6.3.2, 6.4): never published.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _problem(setting: str, path: Path, what: str) -> GatewayConfigError:
    return GatewayConfigError(_SOURCE, [f"{setting}: {path} {what}"])


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _problem(setting, path, f"cannot be read ({reason}){relative_path_note(path)}") from None


@dataclass(frozen=True, slots=True)
class ClientTls:
    """PEM bytes: ``root_certificates`` (CA(s) for adapters), ``certificate_chain`` and ``private_key``
    (the gateway's client identity)."""

    root_certificates: bytes
    certificate_chain: bytes
    private_key: bytes

    @classmethod
    def load(cls, section: AdapterTlsSettings) -> ClientTls:
        """Read and check the three files of ``adapter_tls``: the CA and client certificates parse as PEM
        X.509, the key as an unencrypted PEM private key matching the client certificate.

        Raises :class:`GatewayConfigError` naming the setting and path.
        """
        ca = _read("adapter_tls.ca_file", section.ca_file)
        cert = _read("adapter_tls.cert_file", section.cert_file)
        key = _read("adapter_tls.key_file", section.key_file)
        try:
            x509.load_pem_x509_certificates(ca)
        except ValueError:
            raise _problem("adapter_tls.ca_file", section.ca_file, "is not a PEM certificate") from None
        try:
            client = x509.load_pem_x509_certificate(cert)
        except ValueError:
            raise _problem("adapter_tls.cert_file", section.cert_file, "is not a PEM certificate") from None
        try:
            private = serialization.load_pem_private_key(key, password=None)
        except (ValueError, TypeError):
            raise _problem(
                "adapter_tls.key_file", section.key_file, "is not an unencrypted PEM private key"
            ) from None
        if private.public_key() != client.public_key():
            raise _problem("adapter_tls.key_file", section.key_file, f"is not the key of {section.cert_file}")
        return cls(ca, cert, key)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials: verify the adapter against the CA, present the client certificate."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def channel_options(target: AdapterTarget) -> list[tuple[str, Any]]:
    """gRPC channel options for ``target``: the TLS name to check when ``tls_server_name`` is set."""
    if target.tls_server_name:
        return [("grpc.ssl_target_name_override", target.tls_server_name)]
    return []


def load_signer(section: AssertionSettings) -> AssertionSigner:
    """The assertion signer of ``section`` (private EC P-256 JWK file). Raises GatewayConfigError."""
    path = section.signing_key_file
    _read("assertion.signing_key_file", path)  # a clear "cannot be read" before the key is parsed
    try:
        return AssertionSigner.from_file(path, issuer=section.issuer, ttl_seconds=section.ttl_seconds)
    except AssertionKeyError:
        raise _problem(
            "assertion.signing_key_file", path, "is not a private EC P-256 JWK (JSON with a kid)"
        ) from None


def _public_keys(setting: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(_read(setting, path))
    except ValueError:
        raise _problem(setting, path, "is not JSON") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) and k.get("kid") for k in keys):
        raise _problem(setting, path, "is not a JWK Set whose every key has a kid")
    return [{name: value for name, value in k.items() if name not in _PRIVATE_MEMBERS} for k in keys]


def published_jwks(settings: GatewaySettings, signer: AssertionSigner | None) -> dict[str, Any]:
    """The JWK Set served at ``/.well-known/jwks.json``: the signer's public key first, then the keys of
    ``assertion.additional_jwks_files`` (public members only, first occurrence of a ``kid`` wins).

    Raises :class:`GatewayConfigError` for an unreadable or malformed file.
    """
    keys: list[dict[str, Any]] = list(signer.public_jwks()["keys"]) if signer is not None else []
    if settings.assertion is not None:
        for i, path in enumerate(settings.assertion.additional_jwks_files):
            keys.extend(_public_keys(f"assertion.additional_jwks_files[{i}]", path))
    seen: set[str] = set()
    unique = []
    for key in keys:
        if key.get("kid") not in seen:
            seen.add(str(key.get("kid")))
            unique.append(key)
    return {"keys": unique}
