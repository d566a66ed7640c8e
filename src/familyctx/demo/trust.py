"""The demo federation's trust material: a development PKI in the data directory, and the sharing
policies the adapters load.

:func:`ensure_demo_pki` writes (or reuses) ``<data-dir>/pki`` with
:func:`familyctx.trust.pki.generate_dev_pki`: the development CA, the gateway's client certificate and
assertion signing key, one server certificate per demo council. A set with any file missing, or a
certificate expiring within a day, is replaced as a whole (a half-reused set would mix two CAs).
:func:`sharing_policy_file` finds the council's Cedar policy shipped in the repository
(``services/adapter/config/policies/<slug>.cedar``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from familyctx.councils import DEMO_COUNCILS, DemoCouncil
from familyctx.demo.errors import DataBuildError
from familyctx.demo.layout import DataLayout
from familyctx.trust.pki import DevPki, PkiError, generate_dev_pki

__all__ = ["DEMO_ASSERTION_ISSUER", "ensure_demo_pki", "pki_files", "sharing_policy_file"]

#: ``iss`` of the demo gateway's assertions; every demo adapter's ``gateway.issuer``.
DEMO_ASSERTION_ISSUER = "https://gateway.familyctx.local"

#: A certificate closer than this to its end is replaced before the federation starts.
_RENEW_BEFORE = dt.timedelta(days=1)


def pki_files(pki: DevPki) -> list[Path]:
    """Every file of a complete demo PKI (certificates, keys, assertion key and JWK Set, each adapter's
    tree-head signing key and JWK Set, the gateway's audit tree-head key and JWK Set)."""
    files = [
        pki.ca_cert,
        pki.ca_key,
        pki.gateway_cert,
        pki.gateway_key,
        pki.assertion_key,
        pki.assertion_jwks,
    ]
    for code in pki.councils:
        files += [pki.adapter_cert(code), pki.adapter_key(code)]
        files += [pki.adapter_audit_key(code), pki.adapter_audit_jwks(code)]
    files += [pki.gateway_audit_key, pki.gateway_audit_jwks]
    return files


def _usable(pki: DevPki) -> bool:
    """True when every file exists and no certificate ends within :data:`_RENEW_BEFORE`."""
    if not all(path.is_file() for path in pki_files(pki)):
        return False
    soon = dt.datetime.now(dt.UTC) + _RENEW_BEFORE
    certificates = [pki.ca_cert, pki.gateway_cert, *(pki.adapter_cert(c) for c in pki.councils)]
    try:
        return all(
            x509.load_pem_x509_certificate(p.read_bytes()).not_valid_after_utc > soon for p in certificates
        )
    except (OSError, ValueError):
        return False


def ensure_demo_pki(layout: DataLayout) -> tuple[DevPki, bool]:
    """The demo PKI in ``layout.pki_dir``: reused when complete and not about to expire, else written
    afresh; owner-only like the rest of the data directory. Returns (pki, created). Raises
    :class:`DataBuildError` when it cannot be written (``DataDirError`` when the directory is unusable)."""
    councils = [c.gss_code for c in DEMO_COUNCILS]
    expected = DevPki(directory=layout.pki_dir, councils=tuple(councils))
    reuse = _usable(expected)
    try:
        pki = generate_dev_pki(layout.pki_dir, councils=councils, overwrite=not reuse)
    except PkiError as exc:
        raise DataBuildError(f"cannot write the demo's development PKI: {exc}") from exc
    layout.make_private()  # certificates too: everything in the data directory is owner-only
    return pki, not reuse


def sharing_policy_file(council: DemoCouncil) -> Path:
    """The council's Cedar sharing policy shipped with the adapter (``services/adapter/config/policies``).

    Raises :class:`DataBuildError` when this installation has no such file (the demo runs from a
    source checkout).
    """
    import familyctx_adapter

    path = (
        Path(familyctx_adapter.__file__).resolve().parent.parent
        / "config"
        / "policies"
        / f"{council.slug}.cedar"
    )
    if not path.is_file():
        raise DataBuildError(
            f"the {council.name} sharing policy {path} is missing; the demo runs from a source checkout "
            "(services/adapter/config/policies)"
        )
    return path
