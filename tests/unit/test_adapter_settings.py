"""Adapter configuration: YAML file, environment overrides, validation with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
GOOD = """
council: {gss_code: E08000007, name: Stockport, dfe_la_number: 356}
cms: systemc
database_url: sqlite:///var/demo/stockport.sqlite
listen: {host: 127.0.0.1, port: 50061}
tls:
  cert_file: var/dev-pki/adapter-E08000007.pem
  key_file: var/dev-pki/adapter-E08000007.key
  client_ca_file: var/dev-pki/ca.pem
gateway:
  issuer: https://gateway.familyctx.local
  jwks_file: var/dev-pki/gateway-assertion-jwks.json
policy_file: services/adapter/config/policies/stockport.cedar
disclosure_log:
  database_url: sqlite:///var/disclosure-stockport.sqlite
  signing_key_file: var/dev-pki/adapter-E08000007-audit.jwk.json
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "adapter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_the_yaml_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD))
    assert (s.council.gss_code, s.council.name, s.council.dfe_la_number) == ("E08000007", "Stockport", 356)
    assert (s.cms, s.listen.host, s.listen.port) == ("systemc", "127.0.0.1", 50061)
    assert (s.default_max_results, s.max_results_cap) == (25, 100)


def test_environment_overrides_the_file_and_flags_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAMILYCTX_ADAPTER_LISTEN__PORT", "50099")
    monkeypatch.setenv("FAMILYCTX_ADAPTER_DATABASE_URL", "postgresql+psycopg://u@db/stockport")
    s = load_settings(write(tmp_path, GOOD))
    assert s.listen.port == 50099
    assert s.listen.host == "127.0.0.1"  # the rest of the nested section still comes from the file
    assert s.database_url == "postgresql+psycopg://u@db/stockport"
    s = load_settings(write(tmp_path, GOOD), listen={"port": 0, "host": None}, database_url=None)
    assert (s.listen.port, s.listen.host) == (0, "127.0.0.1")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("E08000007", "X123", "council.gss_code"),
        ("cms: systemc", "cms: azeus", "cms: Value error, must be one of systemc, mosaic, eclipse"),
        ("sqlite:///var/demo/stockport.sqlite", "not a url", "database_url"),
        ("port: 50061", "port: 70000", "listen.port"),
        ("dfe_la_number: 356", "dfe_la_number: 3560", "council.dfe_la_number"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        load_settings(write(tmp_path, GOOD.replace(old, new)))


def test_unknown_keys_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(AdapterConfigError, match="colour"):
        load_settings(write(tmp_path, GOOD + "colour: blue\n"))
    with pytest.raises(AdapterConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(AdapterConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "council: [unclosed"))
    with pytest.raises(AdapterConfigError, match="must hold a mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(AdapterConfigError, match="database_url"):
        load_settings(
            write(tmp_path, "council: {gss_code: E08000007, name: S, dfe_la_number: 356}\ncms: mosaic\n")
        )


def test_trust_sections_are_read(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD + "health_listen: {host: 0.0.0.0, port: 8081}\n"))
    assert s.tls.cert_file == Path("var/dev-pki/adapter-E08000007.pem")
    assert s.tls.client_ca_file == Path("var/dev-pki/ca.pem")
    assert (s.gateway.issuer, s.gateway.jwks_url, s.gateway.client_cert_subject) == (
        "https://gateway.familyctx.local",
        None,
        None,
    )
    assert (s.gateway.leeway_seconds, s.gateway.jwks_refresh_seconds) == (5, 60.0)
    assert s.policy_file == Path("services/adapter/config/policies/stockport.cedar")
    assert s.health_listen is not None and (s.health_listen.host, s.health_listen.port) == ("0.0.0.0", 8081)
    assert load_settings(write(tmp_path, GOOD)).health_listen is None


@pytest.mark.parametrize("section", ["tls", "gateway", "policy_file"])
def test_trust_sections_are_required(tmp_path: Path, section: str) -> None:
    """The adapter never listens without mutual TLS, the gateway's keys and a sharing policy."""
    text = GOOD
    start = text.index(f"{section}:")
    end = text.find("\n", start)
    while section != "policy_file" and text.startswith("  ", end + 1):
        end = text.find("\n", end + 1)
    with pytest.raises(AdapterConfigError, match=rf"{section}: Field required"):
        load_settings(write(tmp_path, text[:start] + text[end + 1 :]))


def test_exactly_one_source_of_gateway_keys(tmp_path: Path) -> None:
    both = GOOD.replace(
        "  jwks_file: var/dev-pki/gateway-assertion-jwks.json\n",
        "  jwks_file: var/dev-pki/gateway-assertion-jwks.json\n  jwks_url: https://gw.example/.well-known/jwks.json\n",
    )
    with pytest.raises(
        AdapterConfigError, match="gateway: Value error, give exactly one of jwks_file or jwks_url"
    ):
        load_settings(write(tmp_path, both))
    neither = GOOD.replace("  jwks_file: var/dev-pki/gateway-assertion-jwks.json\n", "")
    with pytest.raises(AdapterConfigError, match="give exactly one of jwks_file or jwks_url"):
        load_settings(write(tmp_path, neither))
    url = GOOD.replace(
        "  jwks_file: var/dev-pki/gateway-assertion-jwks.json\n",
        "  jwks_url: https://gw.example/.well-known/jwks.json\n",
    )
    assert load_settings(write(tmp_path, url)).gateway.jwks_url == "https://gw.example/.well-known/jwks.json"
    with pytest.raises(AdapterConfigError, match="gateway.jwks_url"):
        load_settings(write(tmp_path, url.replace("https://gw.example", "ftp://gw.example")))
    with pytest.raises(AdapterConfigError, match="gateway.leeway_seconds"):
        load_settings(write(tmp_path, GOOD.replace("  issuer:", "  leeway_seconds: 600\n  issuer:")))
    with pytest.raises(AdapterConfigError, match="tls.verify"):
        load_settings(write(tmp_path, GOOD.replace("tls:\n", "tls:\n  verify: false\n")))


@pytest.mark.parametrize("slug", ["stockport", "leeds", "manchester"])
def test_example_configs_match_the_demo_councils(slug: str) -> None:
    from familyctx.councils import DEMO_COUNCILS

    council = next(c for c in DEMO_COUNCILS if c.slug == slug)
    s = load_settings(REPO / "services" / "adapter" / "config" / f"{slug}.yaml")
    assert (s.council.gss_code, s.cms, s.listen.port) == (council.gss_code, council.cms, council.port)
    assert s.council.dfe_la_number == council.dfe_la_number
    assert s.tls.cert_file == Path(f"var/dev-pki/adapter-{council.gss_code}.pem")
    assert s.tls.client_ca_file == Path("var/dev-pki/ca.pem")
    assert s.gateway.jwks_file == Path("var/dev-pki/gateway-assertion-jwks.json")
    assert s.gateway.client_cert_subject == "familyctx-gateway"
    assert s.policy_file == Path(f"services/adapter/config/policies/{slug}.cedar")


def test_the_disclosure_commit_timeout_is_a_setting_that_reaches_the_writer(tmp_path: Path) -> None:
    from familyctx_adapter.disclosure import load_disclosure_log

    from familyctx.auditlog.heads import TreeHeadSigner

    key = tmp_path / "audit.jwk.json"
    TreeHeadSigner.generate_key(key)
    text = GOOD.replace("var/dev-pki/adapter-E08000007-audit.jwk.json", str(key))
    settings = load_settings(write(tmp_path, text))
    assert settings.disclosure_log.commit_timeout_seconds == 1.5  # under the gateway's 2 s default deadline
    text += "  commit_timeout_seconds: 0.75\n"
    log = load_disclosure_log(load_settings(write(tmp_path, text)))
    try:
        assert log.writer._timeout == 0.75
    finally:
        log.engine.dispose()
    with pytest.raises(AdapterConfigError, match="disclosure_log.commit_timeout_seconds"):
        load_settings(write(tmp_path, GOOD + "  commit_timeout_seconds: 0\n"))
