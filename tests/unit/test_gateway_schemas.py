"""Request validation rules of the gateway API, and settings loading from YAML and environment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from familyctx_gateway.api.schemas import FamilyContextRequest, FieldOutcome, MatchEvidence, SearchRequest
from familyctx_gateway.errors import GatewayConfigError, validation_messages
from familyctx_gateway.settings import load_settings
from pydantic import ValidationError

OK = {"purpose": "s17_assessment", "case_reference": "CASE-1"}


def test_search_request_normalises_identifiers() -> None:
    req = SearchRequest.model_validate(
        {
            **OK,
            "nhs_number": "999-000-0018",
            "postcode": "sk13xe",
            "given_name": " Zoë ",
            "date_of_birth": "2014-03-05",
        }
    )
    assert req.nhs_number == "9990000018"
    assert req.postcode == "SK1 3XE"
    assert req.given_name == "Zoë"
    assert req.date_of_birth == dt.date(2014, 3, 5)


@pytest.mark.parametrize(
    "identifiers",
    [
        {"nhs_number": "9990000018"},
        {"family_name": "Smith"},
        {"given_name": "Ann", "date_of_birth": "2000-01-01"},
        {"date_of_birth": "2000-01-01", "postcode": "SK1 3XE"},
    ],
)
def test_enough_identifiers(identifiers: dict[str, str]) -> None:
    SearchRequest.model_validate({**OK, **identifiers})


def test_tomorrow_is_in_the_future() -> None:
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
    with pytest.raises(ValidationError) as err:
        SearchRequest.model_validate({**OK, "given_name": "A", "date_of_birth": tomorrow})
    assert validation_messages(err.value.errors()) == [
        {"field": "date_of_birth", "message": "date_of_birth must not be in the future"}
    ]


def test_family_context_request_shape() -> None:
    req = FamilyContextRequest.model_validate(
        {**OK, "subject": {"gss_code": "E08000007", "local_person_id": "S-1"}}
    )
    assert req.subject.gss_code == "E08000007"


def test_settings_from_yaml_with_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "listen: {host: 127.0.0.1, port: 8000}\n"
        "audit_database_url: sqlite:///x.sqlite\n"
        'oidc: {issuer: "http://127.0.0.1:9000", audience: "familyctx-gateway", algorithms: [RS256, ES256]}\n'
        "adapters:\n"
        '  - {gss_code: E08000007, name: Stockport, address: "127.0.0.1:50061", deadline_ms: 2000}\n'
        "assertion: {issuer: https://gateway.test, signing_key_file: pki/assertion.jwk.json}\n"
        "adapter_tls: {ca_file: pki/ca.pem, cert_file: pki/gateway.pem, key_file: pki/gateway.key}\n"
    )
    monkeypatch.setenv("FAMILYCTX_GATEWAY_OIDC__AUDIENCE", "other-audience")
    monkeypatch.setenv("FAMILYCTX_GATEWAY_LISTEN__PORT", "8100")
    monkeypatch.setenv("FAMILYCTX_GATEWAY_ASSERTION__TTL_SECONDS", "30")
    settings = load_settings(config)
    assert settings.oidc[0].issuer == "http://127.0.0.1:9000"
    assert settings.oidc[0].audience == "other-audience"
    assert settings.listen.port == 8100
    assert settings.adapters[0].address == "127.0.0.1:50061"
    assert settings.assertion is not None and settings.assertion.ttl_seconds == 30
    assert settings.adapter_tls is not None and settings.adapter_tls.key_file == Path("pki/gateway.key")


def test_demo_config_loads() -> None:
    settings = load_settings(Path(__file__).parents[2] / "gateway" / "config" / "gateway.demo.yaml")
    assert [a.gss_code for a in settings.adapters] == ["E08000007", "E08000035", "E08000003"]
    # The files `make certs` writes (familyctx dev-pki --out var/dev-pki).
    assert settings.adapter_tls is not None and settings.assertion is not None
    assert settings.adapter_tls.ca_file == Path("var/dev-pki/ca.pem")
    assert settings.assertion.signing_key_file == Path("var/dev-pki/gateway-assertion.jwk.json")


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS512"], []])
def test_symmetric_or_no_algorithms_are_refused_in_config(tmp_path: Path, algorithms: list[str]) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"oidc: {{issuer: 'http://x', audience: a, algorithms: {algorithms}}}\n")
    with pytest.raises(GatewayConfigError) as err:
        load_settings(config)
    assert [p.split(":")[0] for p in err.value.problems] == ["oidc.algorithms"]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError) as err:
        load_settings(tmp_path / "nope.yaml")
    assert err.value.problems == ["(file): does not exist or is not a file"]


def test_match_evidence_is_additive_old_answers_still_read() -> None:
    ref = {"gss_code": "E08000007", "local_person_id": "S-1"}
    old = MatchEvidence.model_validate(
        {
            "left": ref,
            "right": ref,
            "match_grade": "probable",
            "fields": [{"field": "nhs_number", "outcome": "agree"}],
        }
    )
    assert (old.match_weight, old.match_probability, old.rules) == (None, None, [])
    assert (old.fields[0].level, old.fields[0].weight, old.fields[0].score) == (None, None, None)
    new = MatchEvidence.model_validate(
        {
            **old.model_dump(mode="json"),
            "match_weight": 8.1,
            "match_probability": 0.996,
            "rules": ["date of birth not exact"],
            "fields": [
                {"field": "postcode", "outcome": "partial", "level": "postcode district", "weight": 1.5}
            ],
        }
    )
    assert new.fields[0].outcome is FieldOutcome.partial and new.fields[0].level == "postcode district"
    assert new.rules == ["date of birth not exact"]
    dumped = new.model_dump(mode="json")
    assert set(dumped) == {
        "left",
        "right",
        "match_grade",
        "fields",
        "match_weight",
        "match_probability",
        "rules",
    }
    assert set(dumped["fields"][0]) == {"field", "outcome", "score", "level", "weight"}
