"""Record linkage across councils, as the gateway uses it: the bridge from :mod:`familyctx.linkage`
(a Fellegi-Sunter model trained with Splink, graded certain / probable / possible, the FHIR ``$match``
grades) to the API's match evidence.

Councils share no person id (domain.md). The linker scores each cross-council pair of records on NHS
number, given and family names, date of birth, sex and postcode; it grades a pair from its match
probability against the configured thresholds (``linkage.thresholds``) and guard rules (two different
valid NHS numbers never link; given names that disagree cap or forbid a link: twins and siblings).
Only certain links merge records (union-find); probable and possible ones are evidence for a worker to
confirm. Records of the same council are never linked to each other: the council's own person index
already says they are different people. docs/gateway-api.md, "Match evidence".
"""

from __future__ import annotations

from collections.abc import Sequence

from familyctx.linkage import FieldScore, Grade, Linker, LinkModel, LinkModelError, LinkResult, PairScore
from familyctx_gateway.api import schemas as s
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.linkage_input import link_input
from familyctx_gateway.settings import LinkageSettings

__all__ = ["compare", "field_evidence", "link_records", "load_linker", "match_evidence", "match_grade"]


def load_linker(settings: LinkageSettings) -> Linker:
    """The linker for ``settings``: its model (``model_path``, or the packaged one) and thresholds.

    Read once per process, when the app is created. Raises :class:`GatewayConfigError` naming
    ``linkage.model_path`` with the model's own message when the file cannot be read or does not fit
    this version's comparisons, is not UTF-8 or holds values of the wrong type or out of range
    (:class:`familyctx.linkage.LinkModelError` in every case).
    """
    path = settings.model_path
    setting = "linkage.model_path" if path is not None else "linkage.model_path (not set: the packaged model)"
    try:
        model = LinkModel.default() if path is None else LinkModel.load(path)
    except LinkModelError as exc:
        raise GatewayConfigError("gateway settings", [f"{setting}: {exc}"]) from None
    return Linker(model, settings.thresholds.to_thresholds())


def match_grade(grade: Grade) -> s.MatchGrade:
    """The API's grade for a linker grade (same three values: certain, probable, possible)."""
    return s.MatchGrade(grade.value)


def field_evidence(score: FieldScore) -> s.FieldEvidence:
    """One field's comparison as API evidence: outcome, the model's level label, its weight (log2
    Bayes factor, 3 decimals) and, where a string similarity was computed, ``score`` 0-100
    (Jaro-Winkler x 100, 1 decimal)."""
    return s.FieldEvidence(
        field=score.field,
        outcome=s.FieldOutcome(score.outcome.value),
        level=score.level,
        weight=round(score.weight, 3),
        score=None if score.similarity is None else round(score.similarity * 100, 1),
    )


def _ref(record: s.PersonRecord) -> s.RecordRef:
    return s.RecordRef(gss_code=record.gss_code, local_person_id=record.local_person_id)


def match_evidence(
    left: s.PersonRecord, right: s.PersonRecord, grade: Grade, score: PairScore, rules: Sequence[str]
) -> s.MatchEvidence:
    """Why ``left`` and ``right`` are (or might be) one person: the grade, every field's evidence,
    the match weight (log2 posterior odds, 3 decimals), the match probability (0-1, not rounded: a
    certain link is 0.9999999, not 1) and the guard rules that capped the grade. Values of the fields
    are not repeated."""
    return s.MatchEvidence(
        left=_ref(left),
        right=_ref(right),
        match_grade=match_grade(grade),
        fields=[field_evidence(f) for f in score.fields],
        match_weight=round(score.match_weight, 3),
        match_probability=score.match_probability,
        rules=list(rules),
    )


def link_records(linker: Linker, records: Sequence[s.PersonRecord]) -> LinkResult:
    """Link the candidates of one query: every cross-council pair scored and graded, records merged
    into groups by certain links only (indexes into ``records``; :class:`familyctx.linkage.LinkResult`)."""
    return linker.link([link_input(r) for r in records])


def compare(
    linker: Linker, left: s.PersonRecord, right: s.PersonRecord
) -> tuple[s.MatchGrade | None, s.MatchEvidence | None]:
    """Grade one pair of council records: ``(grade, evidence)``, or ``(None, None)`` when they must
    not be linked (below ``possible``, a guard rule, or the same council)."""
    grade, score, rules = linker.compare(link_input(left), link_input(right))
    if grade is None:
        return None, None
    return match_grade(grade), match_evidence(left, right, grade, score, rules)
