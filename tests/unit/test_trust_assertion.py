"""familyctx.trust.assertion: signing, verification and every refusal reason (real ES256 signatures)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from familyctx.trust.assertion import (
    ASSERTION_TYPE,
    MAX_TTL_SECONDS,
    REFUSAL_REASONS,
    AssertionKeyError,
    AssertionRefused,
    AssertionSigner,
    AssertionVerifier,
    ReplayCache,
    Requester,
)

ISSUER = "https://gateway.familyctx.local"
STOCKPORT, LEEDS = "E08000007", "E08000035"
NOW = 1_800_000_000.0

REQUESTER = Requester(
    sub="worker-17",
    name="Demo Worker",
    organisation=STOCKPORT,
    role="social_worker",
    client="familyctx-web",
    purpose="s47_enquiry",
    case_reference="CASE-123",
    break_glass=True,
    break_glass_reason="Child at immediate risk, manager unavailable overnight",
    request_id="req-1",
)


def _key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, auto_kid=True)


@pytest.fixture(scope="module")
def key() -> ECKey:
    return _key()


def _signer(key: ECKey, *, at: float = NOW, ttl: int = 60, issuer: str = ISSUER) -> AssertionSigner:
    return AssertionSigner(key.as_dict(private=True), issuer=issuer, ttl_seconds=ttl, clock=lambda: at)


def _verifier(
    key: ECKey, *, at: float = NOW, audience: str = STOCKPORT, leeway: int = 5
) -> AssertionVerifier:
    return AssertionVerifier(
        KeySet([key]).as_dict(private=False),
        issuer=ISSUER,
        audience=audience,
        leeway_seconds=leeway,
        clock=lambda: at,
    )


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": STOCKPORT,
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 60,
        "jti": "j1",
        "sub": "worker-17",
        "name": "Demo Worker",
        "org": STOCKPORT,
        "role": "social_worker",
        "client": "familyctx-web",
        "purpose": "s17_assessment",
        "case_ref": "C1",
        "break_glass": False,
        "break_glass_reason": "",
        "rid": "r1",
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


def _raw(key: ECKey | OctKey | RSAKey, claims: dict[str, object], **header: object) -> str:
    """A token signed with ``key`` for hand-made claims and header (defaults: a correct header)."""
    protected = {"alg": "ES256", "typ": ASSERTION_TYPE, "kid": key.kid, **header}
    return jws.serialize_compact(protected, json.dumps(claims), key, algorithms=[str(protected["alg"])])


def _refused(verifier: AssertionVerifier, token: str | None) -> str:
    with pytest.raises(AssertionRefused) as caught:
        verifier.verify(token)
    assert str(caught.value) == caught.value.reason  # the message is the code: never a claim value
    return caught.value.reason


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip_keeps_every_requester_field(key: ECKey) -> None:
    signer = _signer(key)
    token = signer.sign(REQUESTER, audience=STOCKPORT)
    verified = _verifier(key).verify(token)
    assert verified.requester == REQUESTER
    assert verified.audience == STOCKPORT
    assert verified.expires_at.timestamp() - verified.issued_at.timestamp() == 60
    assert verified.issued_at.timestamp() == int(NOW)
    header = jws.extract_compact(token.encode()).protected
    assert header == {"alg": "ES256", "typ": ASSERTION_TYPE, "kid": key.kid}


def test_each_assertion_has_a_new_jti(key: ECKey) -> None:
    signer, verifier = _signer(key), _verifier(key)
    first = verifier.verify(signer.sign(REQUESTER, audience=STOCKPORT))
    second = verifier.verify(signer.sign(REQUESTER, audience=STOCKPORT))
    assert first.jti and second.jti and first.jti != second.jti


def test_claims_on_the_wire_use_the_agreed_names(key: ECKey) -> None:
    token = _signer(key).sign(REQUESTER, audience=STOCKPORT)
    claims = json.loads(jws.extract_compact(token.encode()).payload)
    assert set(claims) == {
        "iss",
        "aud",
        "iat",
        "nbf",
        "exp",
        "jti",
        "sub",
        "name",
        "org",
        "role",
        "client",
        "purpose",
        "case_ref",
        "break_glass",
        "break_glass_reason",
        "rid",
    }
    assert claims["aud"] == STOCKPORT and claims["org"] == STOCKPORT and claims["break_glass"] is True


def test_public_jwks_holds_no_private_part(key: ECKey) -> None:
    jwks = _signer(key).public_jwks()
    assert [k["kid"] for k in jwks["keys"]] == [key.kid]
    assert "d" not in jwks["keys"][0]


def test_signer_from_file(tmp_path: Path, key: ECKey) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key.as_dict(private=True)))
    signer = AssertionSigner.from_file(path, issuer=ISSUER, clock=lambda: NOW)
    assert _verifier(key).verify(signer.sign(REQUESTER, audience=STOCKPORT)).requester.sub == "worker-17"


def test_signer_refuses_bad_keys_and_settings(tmp_path: Path, key: ECKey) -> None:
    with pytest.raises(AssertionKeyError, match="public key only"):
        AssertionSigner(key.as_dict(private=False), issuer=ISSUER)
    with pytest.raises(AssertionKeyError, match=r"missing\.json"):
        AssertionSigner.from_file(tmp_path / "missing.json", issuer=ISSUER)
    with pytest.raises(AssertionKeyError, match="EC P-256"):
        AssertionSigner(RSAKey.generate_key(2048).as_dict(private=True), issuer=ISSUER)
    with pytest.raises(ValueError, match="ttl_seconds"):
        AssertionSigner(key.as_dict(private=True), issuer=ISSUER, ttl_seconds=MAX_TTL_SECONDS + 1)
    with pytest.raises(ValueError, match="issuer"):
        AssertionSigner(key.as_dict(private=True), issuer="")


def test_missing(key: ECKey) -> None:
    assert _refused(_verifier(key), None) == "missing"
    assert _refused(_verifier(key), "") == "missing"


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "a.b", "x" * 9000, "é.é.é", _b64({"alg": "ES256"}) + ".bm90IGpzb24." + "c2ln"],
)
def test_malformed(key: ECKey, token: str) -> None:
    assert _refused(_verifier(key), token) == "malformed"


def test_wrong_claim_type_is_malformed(key: ECKey) -> None:
    assert _refused(_verifier(key), _raw(key, _claims(break_glass="yes"))) == "malformed"
    assert _refused(_verifier(key), _raw(key, _claims(exp="soon"))) == "malformed"
    assert _refused(_verifier(key), _raw(key, [1, 2])) == "malformed"  # type: ignore[arg-type]


def test_bad_type(key: ECKey) -> None:
    assert _refused(_verifier(key), _raw(key, _claims(), typ="JWT")) == "bad_type"
    no_typ = jws.serialize_compact({"alg": "ES256", "kid": key.kid}, json.dumps(_claims()), key)
    assert _refused(_verifier(key), no_typ) == "bad_type"


def test_alg_none_is_refused(key: ECKey) -> None:
    token = f"{_b64({'alg': 'none', 'typ': ASSERTION_TYPE, 'kid': key.kid})}.{_b64(_claims())}."
    assert _refused(_verifier(key), token) == "bad_algorithm"


def test_hs256_signed_with_the_public_key_is_refused(key: ECKey) -> None:
    """Algorithm confusion: an HMAC keyed with the verifier's public key material."""
    public = json.dumps(key.as_dict(private=False)).encode()
    token = _raw(OctKey.import_key(public), _claims(), alg="HS256", kid=key.kid)
    assert _refused(_verifier(key), token) == "bad_algorithm"


def test_other_asymmetric_algorithm_is_refused(key: ECKey) -> None:
    rsa = RSAKey.generate_key(2048, auto_kid=True)
    assert _refused(_verifier(key), _raw(rsa, _claims(), alg="RS256")) == "bad_algorithm"


def test_unknown_key(key: ECKey) -> None:
    other = _key()
    assert _refused(_verifier(key), _signer(other).sign(REQUESTER, audience=STOCKPORT)) == "unknown_key"
    no_kid = jws.serialize_compact({"alg": "ES256", "typ": ASSERTION_TYPE}, json.dumps(_claims()), key)
    assert _refused(_verifier(key), no_kid) == "unknown_key"
    list_kid = f"{_b64({'alg': 'ES256', 'typ': ASSERTION_TYPE, 'kid': [key.kid]})}.{_b64(_claims())}.c2ln"
    assert _refused(_verifier(key), list_kid) == "unknown_key"


def test_signed_by_another_key_under_our_kid(key: ECKey) -> None:
    other = _key()
    token = _raw(other, _claims(), kid=key.kid)
    assert _refused(_verifier(key), token) == "bad_signature"


def test_tampered_payload_is_a_bad_signature(key: ECKey) -> None:
    header, _, signature = _signer(key).sign(REQUESTER, audience=STOCKPORT).split(".")
    forged = _b64(_claims(role="team_manager"))
    assert _refused(_verifier(key), f"{header}.{forged}.{signature}") == "bad_signature"


def test_expired_past_leeway_but_accepted_within(key: ECKey) -> None:
    token = _signer(key, at=NOW - 100).sign(REQUESTER, audience=STOCKPORT)  # exp = NOW - 40
    assert _refused(_verifier(key), token) == "expired"
    assert _refused(_verifier(key, at=NOW - 35), token) == "expired"  # exactly exp + leeway
    assert _verifier(key, at=NOW - 37).verify(token).requester.sub == "worker-17"  # 3 s late, leeway 5


def test_not_yet_valid(key: ECKey) -> None:
    assert _refused(_verifier(key), _signer(key, at=NOW + 30).sign(REQUESTER, audience=STOCKPORT)) == (
        "not_yet_valid"
    )
    assert _verifier(key).verify(_signer(key, at=NOW + 3).sign(REQUESTER, audience=STOCKPORT))
    token = _raw(key, _claims(nbf=int(NOW) + 30, exp=int(NOW) + 90))
    assert _refused(_verifier(key), token) == "not_yet_valid"


def test_wrong_issuer(key: ECKey) -> None:
    token = _signer(key, issuer="https://elsewhere.example").sign(REQUESTER, audience=STOCKPORT)
    assert _refused(_verifier(key), token) == "wrong_issuer"


def test_audience_of_another_council(key: ECKey) -> None:
    token = _signer(key).sign(REQUESTER, audience=LEEDS)
    assert _refused(_verifier(key), token) == "wrong_audience"
    assert _verifier(key, audience=LEEDS).verify(token).audience == LEEDS
    assert _refused(_verifier(key), _raw(key, _claims(aud=[STOCKPORT, LEEDS]))) == "wrong_audience"


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "nbf", "jti", "sub", "role", "purpose", "rid"])
def test_missing_claim(key: ECKey, claim: str) -> None:
    assert _refused(_verifier(key), _raw(key, _claims(**{claim: None}))) == "missing_claim"


def test_empty_subject_is_a_missing_claim(key: ECKey) -> None:
    assert _refused(_verifier(key), _raw(key, _claims(sub=""))) == "missing_claim"


def test_ttl_too_long(key: ECKey) -> None:
    token = _raw(key, _claims(exp=int(NOW) + MAX_TTL_SECONDS + 1))
    assert _refused(_verifier(key), token) == "too_long_lived"
    assert _verifier(key).verify(_raw(key, _claims(exp=int(NOW) + MAX_TTL_SECONDS)))


def test_every_reason_code_is_exercised() -> None:
    """Guards the list above: a new reason code needs a test here."""
    tested = {
        "missing",
        "malformed",
        "bad_type",
        "bad_algorithm",
        "unknown_key",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "missing_claim",
        "too_long_lived",
        "replayed",
    }
    assert set(REFUSAL_REASONS) == tested


def test_replace_keys_after_rotation(key: ECKey) -> None:
    new = _key()
    verifier = _verifier(key)
    token = _signer(new).sign(REQUESTER, audience=STOCKPORT)
    assert verifier.kid_of(token) == new.kid and new.kid not in verifier.kids
    verifier.replace_keys(KeySet([key, new]).as_dict(private=False))
    assert verifier.verify(token).requester == REQUESTER


def test_jwks_without_keys_is_refused() -> None:
    with pytest.raises(AssertionKeyError, match="keys"):
        AssertionVerifier({}, issuer=ISSUER, audience=STOCKPORT)


def test_real_clock_round_trip(key: ECKey) -> None:
    signer = AssertionSigner(key.as_dict(private=True), issuer=ISSUER)
    verifier = AssertionVerifier(KeySet([key]).as_dict(private=False), issuer=ISSUER, audience=STOCKPORT)
    verified = verifier.verify(signer.sign(REQUESTER, audience=STOCKPORT))
    assert abs(verified.issued_at.timestamp() - time.time()) < 3600


# --- times must be finite numbers (NaN / Infinity parse as JSON floats in Python) -------------------


@pytest.mark.parametrize("claim", ["iat", "nbf", "exp"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "10" * 200])
def test_non_finite_or_huge_times_are_malformed(key: ECKey, claim: str, value: str) -> None:
    # Written into the JSON text by hand: json.dumps would refuse, a forger need not.
    marker = 7_777_777_777
    payload = json.dumps(_claims(**{claim: marker})).replace(str(marker), value)
    token = jws.serialize_compact(
        {"alg": "ES256", "typ": ASSERTION_TYPE, "kid": key.kid}, payload, key, algorithms=["ES256"]
    )
    assert _refused(_verifier(key), token) == "malformed"


# --- replay: each assertion is accepted once ------------------------------------------------------------


def _replay_verifier(key: ECKey, cache: ReplayCache, *, at: float = NOW) -> AssertionVerifier:
    return AssertionVerifier(
        KeySet([key]).as_dict(private=False),
        issuer=ISSUER,
        audience=STOCKPORT,
        clock=lambda: at,
        replay_cache=cache,
    )


def test_a_replayed_assertion_is_refused(key: ECKey) -> None:
    cache = ReplayCache(clock=lambda: NOW)
    verifier = _replay_verifier(key, cache)
    token = _signer(key).sign(REQUESTER, audience=STOCKPORT)
    assert verifier.verify(token).requester == REQUESTER
    assert _refused(verifier, token) == "replayed"
    # A fresh assertion (new jti) for the same requester is fine: the gateway signs one per call.
    assert verifier.verify(_signer(key).sign(REQUESTER, audience=STOCKPORT))
    # The same jti in another, validly signed token is the same assertion again.
    first = _raw(key, _claims(jti="jti-x"))
    verifier.verify(first)
    assert _refused(verifier, _raw(key, _claims(jti="jti-x", rid="another"))) == "replayed"


def test_a_refused_assertion_is_not_remembered(key: ECKey) -> None:
    cache = ReplayCache(clock=lambda: NOW)
    verifier = _replay_verifier(key, cache)
    assert _refused(verifier, _raw(key, _claims(aud=LEEDS, jti="j-aud"))) == "wrong_audience"
    assert len(cache) == 0
    assert verifier.verify(_raw(key, _claims(jti="j-aud")))


def test_replay_cache_keeps_ids_until_expiry_plus_leeway() -> None:
    now = [NOW]
    cache = ReplayCache(clock=lambda: now[0])
    cache.accept("a", until=NOW + 65)
    now[0] = NOW + 64
    with pytest.raises(AssertionRefused, match="replayed"):
        cache.accept("a", until=NOW + 65)
    now[0] = NOW + 65  # the verifier refuses the token itself as expired from here on
    cache.accept("b", until=NOW + 200)
    assert len(cache) == 1  # "a" dropped


def test_replay_cache_is_bounded() -> None:
    cache = ReplayCache(max_entries=3, clock=lambda: NOW)
    for n, jti in enumerate("abcd"):
        cache.accept(jti, until=NOW + 100 + n)
    assert len(cache) == 3 and cache.evicted == 1
    cache.accept("a", until=NOW + 200)  # the one closest to expiry made room
    with pytest.raises(AssertionRefused):
        cache.accept("d", until=NOW + 300)
    with pytest.raises(ValueError, match="max_entries"):
        ReplayCache(max_entries=0)
