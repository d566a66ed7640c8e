"""The demo's trust material: a development PKI kept in the data directory, and configs that use it.

Real files from familyctx.trust.pki; the configs are loaded with the adapter's and the gateway's own
settings classes, and the gateway app is built from its config (which reads every trust file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from familyctx_adapter.settings import load_settings as load_adapter_settings
from familyctx_gateway.app import create_app
from familyctx_gateway.settings import load_settings as load_gateway_settings

from familyctx.councils import DEMO_COUNCILS
from familyctx.demo import DataLayout, FederationPorts
from familyctx.demo.configs import write_adapter_configs, write_gateway_config
from familyctx.demo.trust import DEMO_ASSERTION_ISSUER, ensure_demo_pki, pki_files
from familyctx.trust.pki import generate_dev_pki


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    layout = DataLayout(tmp_path / "demo")
    layout.make_private()
    return layout


def _contents(files: list[Path]) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in files}


def test_pki_is_written_once_then_reused(layout: DataLayout) -> None:
    pki, created = ensure_demo_pki(layout)
    assert created
    assert set(pki.councils) == {c.gss_code for c in DEMO_COUNCILS}
    first = _contents(pki_files(pki))
    again, created = ensure_demo_pki(layout)
    assert not created
    assert _contents(pki_files(again)) == first


def test_a_missing_file_replaces_the_whole_set(layout: DataLayout) -> None:
    pki, _ = ensure_demo_pki(layout)
    first = _contents(pki_files(pki))
    pki.ca_key.unlink()
    again, created = ensure_demo_pki(layout)
    assert created
    fresh = _contents(pki_files(again))
    # Every certificate changed, so no leaf is left issued by a CA whose key is gone.
    assert all(fresh[name] != first[name] for name in first if name.endswith(".pem"))


def test_a_certificate_about_to_expire_replaces_the_set(layout: DataLayout) -> None:
    generate_dev_pki(layout.pki_dir, councils=[c.gss_code for c in DEMO_COUNCILS], days=1)
    before = layout.pki_dir.joinpath("ca.pem").read_bytes()
    _, created = ensure_demo_pki(layout)
    assert created
    assert layout.pki_dir.joinpath("ca.pem").read_bytes() != before


def test_configs_point_both_sides_at_one_consistent_pki(layout: DataLayout) -> None:
    pki, _ = ensure_demo_pki(layout)
    ports = FederationPorts.from_base(20000)
    adapter_configs = write_adapter_configs(layout, ports, "127.0.0.1", pki)
    gateway = load_gateway_settings(write_gateway_config(layout, ports, "127.0.0.1", pki))
    assert gateway.assertion is not None and gateway.adapter_tls is not None
    assert gateway.assertion.issuer == DEMO_ASSERTION_ISSUER
    ca = x509.load_pem_x509_certificate(gateway.adapter_tls.ca_file.read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    public_jwks = json.loads(pki.assertion_jwks.read_text())
    for target in gateway.adapters:
        adapter = load_adapter_settings(adapter_configs[target.gss_code])
        assert adapter.council.gss_code == target.gss_code
        assert target.address == f"127.0.0.1:{adapter.listen.port}"
        # The adapter trusts the CA that issued the gateway's certificate, and the gateway's keys.
        assert adapter.tls.client_ca_file == gateway.adapter_tls.ca_file
        assert adapter.gateway.issuer == gateway.assertion.issuer
        assert adapter.gateway.jwks_file is not None
        assert json.loads(adapter.gateway.jwks_file.read_text()) == public_jwks
        assert adapter.policy_file.is_file() and adapter.policy_file.suffix == ".cedar"
        # The adapter's certificate carries the name the gateway checks, and is issued by that CA.
        cert = x509.load_pem_x509_certificate(adapter.tls.cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert target.tls_server_name in names.get_values_for_type(x509.DNSName)
        cert.verify_directly_issued_by(ca)
    # The gateway accepts its own trust files (create_app reads and checks each one).
    create_app(gateway)
