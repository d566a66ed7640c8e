"""Query-time record linkage: score candidate pairs with the trained model, grade them, merge certain links.

:class:`Linker` normalises each record once (:func:`familyctx.linkage.normalise.link_features`), scores
every cross-council pair with :class:`familyctx.linkage.model.LinkModel` (vectorised numpy: the same levels
and weights Splink's ``predict()`` gives), grades the pairs certain / probable / possible (the FHIR
``$match`` grades) on match probability (:class:`Thresholds`), then applies guard rules a worker can read in
:attr:`GradedPair.rules`:

- ``'different NHS numbers'``: two different valid NHS numbers are never linked;
- ``'given names disagree'``: twins and siblings (same family name, date of birth and address, different
  given names) are not one person: given names 'different' and NHS numbers not equal -> not linked; with
  equal NHS numbers -> at most probable (a worker decides);
- ``'date of birth not exact'`` / ``'sex disagrees'``: without the same NHS number, a certain link (an
  automatic merge) needs the dates of birth to agree exactly: a day/month swap, an estimated or expected
  date, a one-part difference or a missing date gives at most probable; so does a sex disagreement;
- records of the same council are never compared (the council's person index already says they differ).

Only certain links merge records (union-find); probable and possible links are evidence for a worker.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from familyctx.linkage.comparisons import COMPARISONS, FeatureTable, Outcome, PairView
from familyctx.linkage.model import LinkModel, ScoredPairs
from familyctx.linkage.normalise import LinkInput, link_features

__all__ = [
    "FieldScore",
    "Grade",
    "GradedPair",
    "LinkResult",
    "Linker",
    "PairScore",
    "Thresholds",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Grade(StrEnum):
    """Match grade of a pair (HL7 FHIR ``$match`` match-grade: certain / probable / possible)."""

    certain = "certain"
    probable = "probable"
    possible = "possible"


@dataclass(frozen=True, slots=True)
class FieldScore:
    """Evidence of one field: ``level`` is the comparison level's label ('exact', 'short form (Bob/Robert)',
    'postcode sector', ...); ``weight`` its log2 Bayes factor incl. term-frequency adjustment;
    ``similarity`` the 0..1 Jaro-Winkler of the names where one was computed."""

    field: str
    level: str
    outcome: Outcome
    weight: float
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class PairScore:
    """``match_weight``: log2 posterior odds (Splink's match_weight); ``match_probability`` in 0..1;
    ``fields``: one :class:`FieldScore` per comparison (nhs_number, given_name, family_name,
    date_of_birth, sex, postcode)."""

    match_weight: float
    match_probability: float
    fields: tuple[FieldScore, ...]


@dataclass(frozen=True, slots=True)
class GradedPair:
    """A graded pair: ``left``/``right`` index the records given to :meth:`Linker.link` (left < right)."""

    left: int
    right: int
    grade: Grade
    score: PairScore
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LinkResult:
    """``groups``: record indexes merged by certain links (union-find), every record in exactly one group,
    groups in order of first appearance; ``pairs``: every cross-council pair that got a grade."""

    groups: list[list[int]]
    pairs: list[GradedPair]


@dataclass(frozen=True)
class Thresholds:
    """Match-probability thresholds of the grades, each in (0, 1), certain > probable > possible.

    Raises ValueError on construction otherwise.
    """

    certain: float
    probable: float
    possible: float

    def __post_init__(self) -> None:
        if not 0 < self.possible < self.probable < self.certain < 1:
            raise ValueError("thresholds must satisfy 0 < possible < probable < certain < 1")

    @classmethod
    def default(cls) -> Thresholds:
        """Thresholds chosen on the synthetic evaluation (docs/linkage.md): certain 0.9999 (match weight
        13.3): no false certain pair at any noise level 0-0.3 on 20,000-person worlds (the strongest wrong
        pair at noise 0.1 scores about 0.9, possible), and names + date of birth alone, without an NHS
        number or the same address, stay probable (a worker confirms); probable 0.95; possible 0.5 (even
        odds). Certain + probable recall 0.980 at noise 0.1; the misses are mostly unborn children known
        only by family name and an expected date of delivery, which the trained model puts at 0.25-0.45
        (docs/linkage.md, "Unborn children")."""
        return cls(certain=DEFAULT_CERTAIN, probable=DEFAULT_PROBABLE, possible=DEFAULT_POSSIBLE)


DEFAULT_CERTAIN = 0.9999
DEFAULT_PROBABLE = 0.95
DEFAULT_POSSIBLE = 0.5

RULE_DIFFERENT_NHS = "different NHS numbers"
RULE_SAME_SOURCE = "same council"
RULE_GIVEN_NAMES = "given names disagree"
RULE_DOB = "date of birth not exact"
RULE_SEX = "sex disagrees"

_INDEX = {c.field: k for k, c in enumerate(COMPARISONS)}
_NHS, _GIVEN, _DOB, _SEX = _INDEX["nhs_number"], _INDEX["given_name"], _INDEX["date_of_birth"], _INDEX["sex"]
_OUTCOMES = [np.asarray([lvl.outcome.value for lvl in c.levels], dtype=object) for c in COMPARISONS]
_NHS_EXACT = next(i for i, lvl in enumerate(COMPARISONS[_NHS].levels) if lvl.outcome is Outcome.agree)
_NHS_ELSE = len(COMPARISONS[_NHS].levels) - 1
_GIVEN_ELSE = len(COMPARISONS[_GIVEN].levels) - 1
_DOB_EXACT = next(i for i, lvl in enumerate(COMPARISONS[_DOB].levels) if lvl.outcome is Outcome.agree)
_SEX_ELSE = len(COMPARISONS[_SEX].levels) - 1

# grade codes: 0 none, 1 possible, 2 probable, 3 certain
_GRADES: tuple[Grade | None, ...] = (None, Grade.possible, Grade.probable, Grade.certain)


@dataclass(frozen=True, slots=True)
class GradedArrays:
    """Vectorised result of :meth:`Linker.grade_arrays`: ``grade`` (n,) codes 0 none / 1 possible /
    2 probable / 3 certain; ``rules`` (n,) bitmask of guard rules that capped a grade (see :data:`RULES`);
    ``scores``: the model's :class:`ScoredPairs`."""

    grade: IntArray
    rules: IntArray
    scores: ScoredPairs


#: Guard rules in bit order of :attr:`GradedArrays.rules`.
RULES: tuple[str, ...] = (RULE_DIFFERENT_NHS, RULE_SAME_SOURCE, RULE_GIVEN_NAMES, RULE_DOB, RULE_SEX)


@functools.cache
def _rule_names(mask: int) -> tuple[str, ...]:
    return tuple(name for b, name in enumerate(RULES) if mask & (1 << b))


_LEVELS = [c.levels for c in COMPARISONS]
_FIELDS = [c.field for c in COMPARISONS]


class Linker:
    """Grades pairs of council records and merges certain links. Thread-safe (no mutable state).

    ``model``: defaults to the packaged :meth:`LinkModel.default`; ``thresholds``: defaults to
    :meth:`Thresholds.default`.
    """

    def __init__(self, model: LinkModel | None = None, thresholds: Thresholds | None = None) -> None:
        self.model = model if model is not None else LinkModel.default()
        self.thresholds = thresholds if thresholds is not None else Thresholds.default()

    # -- vectorised core ---------------------------------------------------------------------------

    def grade_arrays(
        self, table: FeatureTable, sources: IntArray, left: IntArray, right: IntArray
    ) -> GradedArrays:
        """Score and grade the pairs (``left[i]``, ``right[i]``) of ``table``; ``sources``: (n_records,)
        council codes (pairs of one council get no grade). Shapes: see :class:`GradedArrays`."""
        pairs = PairView(table, left, right)
        scores = self.model.score(pairs)
        p = scores.match_probability
        t = self.thresholds
        grade = np.select([p >= t.certain, p >= t.probable, p >= t.possible], [3, 2, 1], default=0).astype(
            np.int64
        )
        lv = scores.levels
        nhs_exact = lv[:, _NHS] == _NHS_EXACT
        cap = np.full(len(pairs), 3, dtype=np.int64)
        rules = np.zeros(len(pairs), dtype=np.int64)

        def apply(rule: str, condition: BoolArray, limit: int) -> None:
            capped = condition & (grade > limit) & (cap > limit)
            rules[capped] |= 1 << RULES.index(rule)
            np.minimum(cap, np.where(condition, limit, 3), out=cap)

        apply(RULE_DIFFERENT_NHS, lv[:, _NHS] == _NHS_ELSE, 0)
        apply(RULE_SAME_SOURCE, sources[pairs.left] == sources[pairs.right], 0)
        given_else = lv[:, _GIVEN] == _GIVEN_ELSE
        apply(RULE_GIVEN_NAMES, given_else & ~nhs_exact, 0)
        apply(RULE_GIVEN_NAMES, given_else & nhs_exact, 2)
        apply(RULE_DOB, (lv[:, _DOB] != _DOB_EXACT) & ~nhs_exact, 2)
        apply(RULE_SEX, (lv[:, _SEX] == _SEX_ELSE) & ~nhs_exact, 2)
        return GradedArrays(np.minimum(grade, cap), rules, scores)

    @staticmethod
    def pair_scores(scores: ScoredPairs, rows: Sequence[int] | None = None) -> list[PairScore]:
        """The :class:`PairScore` of each row of ``scores`` (all rows when ``rows`` is None), in order.
        Identical field evidence is shared between pairs (the objects are immutable)."""
        take = slice(None) if rows is None else np.asarray(rows, dtype=np.int64)
        levels = scores.levels[take].tolist()
        weights = scores.weights[take].tolist()
        sims = np.round(scores.similarity[take], 4).tolist()
        mw = scores.match_weight[take].tolist()
        mp = scores.match_probability[take].tolist()
        cache: dict[tuple[int, int, float, float], FieldScore] = {}
        out: list[PairScore] = []
        for i in range(len(mw)):
            fields = []
            for c, (level, weight, sim) in enumerate(zip(levels[i], weights[i], sims[i], strict=True)):
                key = (c, level, weight, sim)
                found = cache.get(key)
                if found is None:
                    lvl = _LEVELS[c][level]
                    found = cache[key] = FieldScore(
                        _FIELDS[c], lvl.label, lvl.outcome, weight, None if sim != sim else sim
                    )
                fields.append(found)
            out.append(PairScore(mw[i], mp[i], tuple(fields)))
        return out

    @staticmethod
    def rule_names(mask: int) -> tuple[str, ...]:
        """Guard rule names of a bitmask of :attr:`GradedArrays.rules`."""
        return _rule_names(mask)

    # -- public API --------------------------------------------------------------------------------

    def link(self, records: Sequence[LinkInput]) -> LinkResult:
        """Grade every cross-council pair of ``records`` and merge certain links (union-find).

        Returns :class:`LinkResult`; pair indexes refer to positions in ``records``. Never raises on
        dirty values (normalisation is total). Cost: O(n^2) pairs, vectorised.
        """
        n = len(records)
        table = FeatureTable([link_features(r) for r in records])
        sources = _source_codes(records)
        left, right = np.triu_indices(n, 1)
        keep = sources[left] != sources[right]
        left, right = left[keep].astype(np.int64), right[keep].astype(np.int64)
        graded = self.grade_arrays(table, sources, left, right)
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        pairs: list[GradedPair] = []
        rows = np.flatnonzero(graded.grade > 0).tolist()
        for row, score in zip(rows, self.pair_scores(graded.scores, rows), strict=True):
            g = _GRADES[int(graded.grade[row])]
            assert g is not None
            i, j = int(left[row]), int(right[row])
            pairs.append(GradedPair(i, j, g, score, _rule_names(int(graded.rules[row]))))
            if g is Grade.certain:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
        groups: dict[int, list[int]] = {}
        for i in range(n):
            groups.setdefault(find(i), []).append(i)
        return LinkResult(list(groups.values()), pairs)

    def compare(self, a: LinkInput, b: LinkInput) -> tuple[Grade | None, PairScore, tuple[str, ...]]:
        """Grade one pair: (grade or None when not linked, the evidence, guard rules that capped the grade).
        Records of the same council get None with rule 'same council' (their evidence is still given)."""
        return self.grade_pairs([a, b], [(0, 1)])[0]

    def grade_pairs(
        self, records: Sequence[LinkInput], pairs: Sequence[tuple[int, int]]
    ) -> list[tuple[Grade | None, PairScore, tuple[str, ...]]]:
        """Grade the given index pairs of ``records`` (vectorised; for evaluation over 100k+ pairs).

        Returns one (grade or None, evidence, guard rules) per pair, in order. Raises IndexError for an
        index outside ``records``.
        """
        table = FeatureTable([link_features(r) for r in records])
        sources = _source_codes(records)
        idx = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if idx.size and (idx.min() < 0 or idx.max() >= len(records)):
            raise IndexError("pair index outside the records given")
        graded = self.grade_arrays(table, sources, idx[:, 0], idx[:, 1])
        grades = graded.grade.tolist()
        rules = graded.rules.tolist()
        return [
            (_GRADES[g], score, _rule_names(r))
            for g, score, r in zip(grades, self.pair_scores(graded.scores), rules, strict=True)
        ]


def _source_codes(records: Sequence[LinkInput]) -> IntArray:
    codes: dict[str, int] = {}
    return np.fromiter((codes.setdefault(r.source, len(codes)) for r in records), np.int64, len(records))
