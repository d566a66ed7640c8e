"""The gateway's bridge to familyctx.linkage: council records in, grades and API evidence out (levels,
outcomes, weights), the linker loaded from settings, and a broken model file refused at start-up.

The linker's own hard cases (normalisation, twins, swaps, placeholders...) are pinned in
tests/unit/test_linkage_hard_cases.py; here the packaged model is used through the gateway's code.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from familyctx_gateway.api import schemas as s
from familyctx_gateway.app import create_app
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.linkage import compare, field_evidence, link_records, load_linker
from familyctx_gateway.settings import LinkageSettings, load_settings

from familyctx.linkage import FieldScore, Linker, LinkModel, Outcome, Thresholds
from familyctx.linkage import model as model_module
from familyctx.linkage.model import DATA_DIR, MODEL_FILE, TF_FILE

STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"
ZOE_NHS, MUM_NHS, OTHER_NHS = "9990000018", "9990000034", "9990000042"
FIELDS = ["nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode"]


def rec(
    gss: str,
    local_id: str,
    given: str,
    family: str,
    dob: dt.date | None,
    *,
    nhs: str | None = None,
    postcode: str | None = None,
    sex: str = "unspecified",
) -> s.PersonRecord:
    return s.PersonRecord(
        gss_code=gss,
        council_name=gss,
        local_person_id=local_id,
        nhs_number=nhs,
        given_name=given,
        family_name=family,
        date_of_birth=dob,
        sex=sex,
        address=s.Address(postcode=postcode) if postcode else None,
    )


@pytest.fixture(scope="module")
def linker() -> Linker:
    return Linker()


def levels(evidence: s.MatchEvidence) -> dict[str, tuple[str, str | None]]:
    return {f.field: (f.outcome.value, f.level) for f in evidence.fields}


def test_same_nhs_number_is_certain_with_every_fields_level_and_weight(linker: Linker) -> None:
    a = rec(
        STOCKPORT,
        "S-1003",
        "Claire",
        "O'Neill",
        dt.date(1988, 11, 2),
        nhs=MUM_NHS,
        postcode="SK1 3XE",
        sex="female",
    )
    b = rec(
        LEEDS, "L-77", "Clare", "O'Neill", dt.date(1988, 11, 2), nhs=MUM_NHS, postcode="LS7 2AB", sex="female"
    )
    grade, evidence = compare(linker, a, b)
    assert grade is s.MatchGrade.certain and evidence is not None
    assert (evidence.left.local_person_id, evidence.right.local_person_id) == ("S-1003", "L-77")
    assert [f.field for f in evidence.fields] == FIELDS
    found = levels(evidence)
    assert found["nhs_number"] == ("agree", "exact")
    assert found["family_name"] == ("agree", "exact")
    assert found["date_of_birth"] == ("agree", "exact")
    assert found["sex"] == ("agree", "exact")
    assert found["postcode"] == ("disagree", "different")
    assert found["given_name"][0] == "similar"  # Clare for Claire: a short form or a close spelling
    weights = {f.field: f.weight for f in evidence.fields}
    assert weights["nhs_number"] is not None and weights["nhs_number"] > 5
    assert weights["postcode"] is not None and weights["postcode"] < 0
    given = next(f for f in evidence.fields if f.field == "given_name")
    assert given.score is not None and 80 < given.score < 100  # Jaro-Winkler x 100
    assert evidence.match_probability is not None and evidence.match_probability >= linker.thresholds.certain
    assert evidence.match_weight is not None
    assert evidence.match_weight == pytest.approx(
        sum(f.weight or 0 for f in evidence.fields) + linker.model.prior_weight, abs=0.01
    )
    assert evidence.rules == []


def test_different_valid_nhs_numbers_never_link_even_with_identical_demographics(linker: Linker) -> None:
    a = rec(STOCKPORT, "S-1001", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=ZOE_NHS, postcode="SK1 3XE")
    b = rec(MANCHESTER, "M-5", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=OTHER_NHS, postcode="SK1 3XE")
    assert compare(linker, a, b) == (None, None)


def test_twins_in_two_councils_are_not_linked(linker: Linker) -> None:
    a = rec(STOCKPORT, "S-2001", "Ella", "Brown", dt.date(2015, 1, 1), postcode="M11 1AA", sex="female")
    b = rec(MANCHESTER, "M-6", "Ava", "Brown", dt.date(2015, 1, 1), postcode="M11 1AA", sex="female")
    assert compare(linker, a, b) == (None, None)
    result = link_records(linker, [a, b])
    assert result.groups == [[0], [1]] and result.pairs == []


def test_typo_in_a_childs_given_name_without_nhs_number_is_probable_not_merged(linker: Linker) -> None:
    a = rec(STOCKPORT, "S-1", "Amelia", "Kowalski", dt.date(2017, 4, 12), postcode="SK1 3XE", sex="female")
    b = rec(LEEDS, "L-1", "Amelai", "Kowalski", dt.date(2017, 4, 12), postcode="LS7 2AB", sex="female")
    grade, evidence = compare(linker, a, b)
    assert grade is s.MatchGrade.probable and evidence is not None
    found = levels(evidence)
    assert found["given_name"] == ("similar", "Jaro-Winkler >= 0.92")
    assert found["nhs_number"] == ("missing", "missing")
    result = link_records(linker, [a, b])
    assert result.groups == [[0], [1]]
    assert [(p.left, p.right, p.grade.value) for p in result.pairs] == [(0, 1, "probable")]


def test_records_of_one_council_are_never_linked_and_certain_links_group(linker: Linker) -> None:
    records = [
        rec(STOCKPORT, "S-1", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=ZOE_NHS),
        rec(LEEDS, "L-7", "Zoe", "O'Neil", dt.date(2014, 3, 5), nhs=ZOE_NHS),
        rec(MANCHESTER, "M-3", "Zoe", "ONeill", dt.date(2014, 3, 5), nhs=ZOE_NHS),
        rec(MANCHESTER, "M-4", "Zoe", "O'Neill", dt.date(2014, 3, 5), nhs=ZOE_NHS),  # a duplicate there
    ]
    result = link_records(linker, records)
    assert result.groups == [[0, 1, 2, 3]]  # merged through S-1 and L-7, never with each other directly
    assert (2, 3) not in {(p.left, p.right) for p in result.pairs}


def test_field_evidence_rounds_and_scales() -> None:
    score = FieldScore("given_name", "Jaro-Winkler >= 0.92", Outcome.similar, 2.34567, similarity=0.96667)
    assert field_evidence(score) == s.FieldEvidence(
        field="given_name",
        outcome=s.FieldOutcome.similar,
        level="Jaro-Winkler >= 0.92",
        weight=2.346,
        score=96.7,
    )
    missing = field_evidence(FieldScore("sex", "missing", Outcome.missing, 0.0))
    assert (missing.outcome, missing.score, missing.weight) == (s.FieldOutcome.missing, None, 0.0)


def test_every_linker_outcome_is_an_api_outcome() -> None:
    assert {o.value for o in Outcome} == {o.value for o in s.FieldOutcome}


def test_load_linker_uses_the_configured_thresholds_and_model(tmp_path: Path) -> None:
    shutil.copy(DATA_DIR / MODEL_FILE, tmp_path / MODEL_FILE)
    shutil.copy(DATA_DIR / TF_FILE, tmp_path / TF_FILE)
    settings = LinkageSettings.model_validate(
        {"model_path": tmp_path, "thresholds": {"certain": 0.9999, "probable": 0.99, "possible": 0.6}}
    )
    linker = load_linker(settings)
    assert linker.thresholds == Thresholds(certain=0.9999, probable=0.99, possible=0.6)
    assert linker.model.source == str(tmp_path / MODEL_FILE)
    assert load_linker(LinkageSettings()).model is LinkModel.default()


def _model_dir(tmp_path: Path, model_text: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / MODEL_FILE).write_text(model_text, errors="surrogateescape")  # "\udcff": the byte 0xff
    shutil.copy(DATA_DIR / TF_FILE, tmp_path / TF_FILE)
    return tmp_path


def _retrained_with_other_levels() -> str:
    model = json.loads((DATA_DIR / MODEL_FILE).read_text())
    model["comparisons"][0]["comparison_levels"].pop()  # nhs_number: one level fewer than the code has
    return json.dumps(model)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found: retrain with make linkage-train"),
        ("{not json", "is not valid JSON (line 1): retrain with make linkage-train"),
        ("[1, 2]", "does not hold a JSON object"),
        ("\udcff", "is not UTF-8 text: retrain with make linkage-train"),
        (
            _retrained_with_other_levels(),
            "was trained with different comparisons: retrain with make linkage-train",
        ),
    ],
)
def test_a_broken_model_file_stops_the_gateway_naming_the_setting(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = (
        tmp_path / "missing" / MODEL_FILE if content is None else _model_dir(tmp_path, content) / MODEL_FILE
    )
    settings = load_settings(linkage={"model_path": path})
    with pytest.raises(GatewayConfigError) as err:
        create_app(settings)
    [problem] = err.value.problems
    assert problem.startswith("linkage.model_path: ") and message in problem, problem
    assert str(path) in problem


def test_a_missing_packaged_model_is_named_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_module, "DATA_DIR", tmp_path)
    cached = LinkModel.default.__func__  # type: ignore[attr-defined]
    cached.cache_clear()
    try:
        with pytest.raises(GatewayConfigError) as err:
            load_linker(LinkageSettings())
    finally:
        cached.cache_clear()  # the next caller loads the real packaged model again
    assert err.value.problems == [
        f"linkage.model_path (not set: the packaged model): model file {tmp_path / MODEL_FILE} not found: "
        "retrain with make linkage-train"
    ]
