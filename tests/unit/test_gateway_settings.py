"""Gateway configuration errors: one plain line per bad field (no pydantic dump), adapter addresses checked
as host:port, and the GSS code rule and wording shared with the adapter (familyctx.config_types)."""

from __future__ import annotations

from pathlib import Path

import pytest
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.settings import load_settings as load_adapter_settings
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.settings import AdapterTarget, load_settings

from familyctx.config_types import HOST_PORT_RULE
from familyctx.councils import GSS_CODE_RULE
from familyctx.linkage import Thresholds

BAD = """\
listen: {host: 127.0.0.1, port: 99999}
oidc: {issuer: "http://127.0.0.1:9000", audience: familyctx-gateway, algorithms: [HS256]}
adapters:
  - {gss_code: W06000015, name: Cardiff, address: "127.0.0.1:50061"}
  - {gss_code: E08000007, name: Stockport, address: "127.0.0.1"}
  - {gss_code: E08000035, name: Leeds, address: "adapter-leeds:50062", deadline: 500}
"""


def test_every_bad_field_is_one_plain_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(BAD)
    with pytest.raises(GatewayConfigError) as err:
        load_settings(config)
    assert err.value.source == f"gateway config {config}"
    assert err.value.problems == [
        "listen.port: Input should be less than or equal to 65535",
        "oidc.algorithms: only asymmetric algorithms are allowed, got ['HS256']",
        f"adapters[0].gss_code: {GSS_CODE_RULE}",
        f"adapters[1].address: {HOST_PORT_RULE}",
        "adapters[2]: has a key that is not a known setting: deadline; remove it or check its "
        "spelling (the fields are: gss_code, name, address, deadline_ms, tls_server_name, datasets, "
        "ig_contact)",
    ]
    text = str(err.value)
    for raw in ("_FromFile", "pydantic.dev", "validation error", "input_value"):
        assert raw not in text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            "listen: [1, 2\n",
            "(file): is not valid YAML: while parsing a flow sequence, expected ',' or ']', but got "
            "'<stream end>' (line 2, column 1)",
        ),
        ("- just\n- a list\n", "(file): must be a YAML mapping (listen, oidc, adapters, ...)"),
        ("adapters:\n  - {name: Stockport, address: 'a:1'}\n", "adapters[0].gss_code: is required"),
    ],
)
def test_unusable_files_say_why(tmp_path: Path, content: str, problem: str) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(content)
    with pytest.raises(GatewayConfigError) as err:
        load_settings(config)
    assert err.value.problems == [problem]


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:50061", "adapter-leeds:50051", "familyctx-adapter.ns.svc.cluster.local:50051", "[::1]:1"],
)
def test_good_adapter_addresses(address: str) -> None:
    assert AdapterTarget(gss_code="E08000007", name="Stockport", address=address).address == address


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "adapter:port",
        ":50061",
        "::1:50061",
        "a b:1",
        "host:-1",
        "http://127.0.0.1:50061",
        "",
    ],
)
def test_bad_adapter_addresses(address: str) -> None:
    with pytest.raises(GatewayConfigError) as err:
        load_settings(adapters=[{"gss_code": "E08000007", "name": "Stockport", "address": address}])
    assert err.value.problems == [f"adapters[0].address: {HOST_PORT_RULE}"]


@pytest.mark.parametrize("code", ["W06000015", "E0800000", "E080000071", "e08000007", "Stockport"])
def test_gss_code_rule_and_wording_match_the_adapter(tmp_path: Path, code: str) -> None:
    adapter_config = tmp_path / "adapter.yaml"
    adapter_config.write_text(
        f"council: {{gss_code: {code}, name: Stockport, dfe_la_number: 356}}\n"
        "cms: systemc\ndatabase_url: sqlite:///x.sqlite\n"
    )
    with pytest.raises(AdapterConfigError) as adapter_err:
        load_adapter_settings(adapter_config)
    with pytest.raises(GatewayConfigError) as gateway_err:
        load_settings(adapters=[{"gss_code": code, "name": "Stockport", "address": "127.0.0.1:50061"}])
    assert "E followed by 8 digits" in GSS_CODE_RULE
    assert f"council.gss_code: {GSS_CODE_RULE}" in str(adapter_err.value)
    assert gateway_err.value.problems == [f"adapters[0].gss_code: {GSS_CODE_RULE}"]


# --- trust towards adapters: mutual TLS and the assertion signing key ---------------------------

STOCKPORT_ADAPTER = {"gss_code": "E08000007", "name": "Stockport", "address": "127.0.0.1:50061"}
TRUST = {
    "assertion": {"issuer": "https://gateway.test", "signing_key_file": "pki/assertion.jwk.json"},
    "adapter_tls": {"ca_file": "pki/ca.pem", "cert_file": "pki/gateway.pem", "key_file": "pki/gateway.key"},
}


def test_adapters_need_mutual_tls_and_an_assertion_key() -> None:
    with pytest.raises(GatewayConfigError) as err:
        load_settings(adapters=[STOCKPORT_ADAPTER], assertion=TRUST["assertion"])
    assert err.value.problems == [
        "(file): adapter_tls must be set when adapters are configured: the gateway calls adapters only "
        "over mutual TLS with a signed assertion (docs/deployment.md)"
    ]
    # Without adapters there is nobody to call: the sections may be left out.
    assert load_settings().adapter_tls is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"assertion": {**TRUST["assertion"], "ttl_seconds": 301}}, "assertion.ttl_seconds"),
        ({"assertion": {**TRUST["assertion"], "ttl_seconds": 0}}, "assertion.ttl_seconds"),
        ({"assertion": {"signing_key_file": "k.json"}}, "assertion.issuer: is required"),
        ({"adapter_tls": {"ca_file": "ca.pem", "cert_file": "g.pem"}}, "adapter_tls.key_file: is required"),
        (
            {"adapter_tls": {**TRUST["adapter_tls"], "verify": False}},
            "adapter_tls: has a key that is not a known",
        ),
    ],
)
def test_bad_trust_settings_are_named(change: dict[str, object], problem: str) -> None:
    with pytest.raises(GatewayConfigError) as err:
        load_settings(adapters=[STOCKPORT_ADAPTER], **{**TRUST, **change})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(problem), err.value.problems


def test_ttl_of_five_minutes_is_the_longest_allowed() -> None:
    settings = load_settings(
        adapters=[STOCKPORT_ADAPTER], **{**TRUST, "assertion": {**TRUST["assertion"], "ttl_seconds": 300}}
    )
    assert settings.assertion is not None and settings.assertion.ttl_seconds == 300


@pytest.mark.parametrize("name", ["adapter-e08000007.familyctx.local", "localhost", "a1.b-2.c"])
def test_good_tls_server_names(name: str) -> None:
    assert AdapterTarget(**STOCKPORT_ADAPTER, tls_server_name=name).tls_server_name == name


@pytest.mark.parametrize("name", ["", "-bad.example", "a..b", "https://adapter", "adapter:50051", "a b"])
def test_bad_tls_server_names(name: str) -> None:
    with pytest.raises(GatewayConfigError) as err:
        load_settings(adapters=[{**STOCKPORT_ADAPTER, "tls_server_name": name}], **TRUST)
    assert err.value.problems == [
        "adapters[0].tls_server_name: must be a DNS name, for example adapter-e08000007.familyctx.local"
    ]


def test_linkage_defaults_are_the_packaged_model_and_its_thresholds() -> None:
    linkage = load_settings().linkage
    assert linkage.model_path is None
    default = Thresholds.default()
    assert linkage.thresholds.to_thresholds() == default
    assert 0 < default.possible < default.probable < default.certain < 1


def test_linkage_thresholds_from_yaml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "linkage:\n  model_path: models/v2\n  thresholds: {certain: 0.999, probable: 0.9, possible: 0.4}\n"
    )
    linkage = load_settings(config).linkage
    assert linkage.model_path == Path("models/v2")
    assert linkage.thresholds.to_thresholds() == Thresholds(certain=0.999, probable=0.9, possible=0.4)
    monkeypatch.setenv("FAMILYCTX_GATEWAY_LINKAGE__THRESHOLDS__POSSIBLE", "0.5")
    assert load_settings(config).linkage.thresholds.possible == 0.5


PROBABILITY = "must be a match probability strictly between 0 and 1, for example 0.95"


@pytest.mark.parametrize(
    ("thresholds", "problems"),
    [
        ({"certain": 1.0}, [f"linkage.thresholds.certain: {PROBABILITY}"]),
        ({"possible": 0}, [f"linkage.thresholds.possible: {PROBABILITY}"]),
        (
            {"probable": -0.2, "possible": 1.5},
            [
                f"linkage.thresholds.probable: {PROBABILITY}",
                f"linkage.thresholds.possible: {PROBABILITY}",
            ],
        ),
        ({"probable": "nan"}, ["linkage.thresholds.probable: must be a finite number (not nan or infinity)"]),
        (
            {"certain": 0.9, "probable": 0.95, "possible": 0.5},
            [
                "linkage.thresholds: must be ordered certain > probable > possible, got certain 0.9, "
                "probable 0.95, possible 0.5"
            ],
        ),
        (
            {"certain": 0.9, "probable": 0.9, "possible": 0.5},
            [
                "linkage.thresholds: must be ordered certain > probable > possible, got certain 0.9, "
                "probable 0.9, possible 0.5"
            ],
        ),
        (
            {"likely": 0.7},
            [
                "linkage.thresholds: has a key that is not a known setting: likely; remove "
                "it or check its spelling (the fields are: certain, probable, possible)"
            ],
        ),
    ],
)
def test_bad_linkage_thresholds_name_the_setting(thresholds: dict[str, object], problems: list[str]) -> None:
    with pytest.raises(GatewayConfigError) as err:
        load_settings(linkage={"thresholds": thresholds})
    assert err.value.problems == problems
