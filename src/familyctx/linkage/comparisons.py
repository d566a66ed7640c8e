"""The Fellegi-Sunter comparisons of the linkage model: ONE definition of every field's ordered levels.

Each :class:`Level` carries four things that must never drift apart:

- ``label``: what a worker reads ("short form (Bob/Robert)", "day and month swapped", "postcode sector");
- ``outcome``: the API's per-field :class:`Outcome` (agree/similar/swapped/partial/disagree/missing);
- ``sql``: a DuckDB SQL condition over the ``<column>_l`` / ``<column>_r`` columns of :data:`FEATURE_COLUMNS`
  (lists as DuckDB lists). It is what Splink trains on (:mod:`familyctx.linkage.train`) and is saved in
  ``model.json``; :class:`familyctx.linkage.model.LinkModel` refuses a model whose levels differ;
- ``evaluate``: the same condition, vectorised in numpy over index-pair arrays (:class:`PairView`), used at
  query time (:mod:`familyctx.linkage.linker`). SQL NULL semantics are reproduced: a condition on a missing
  value is false.

As in Splink, a pair takes the FIRST level (in order) whose condition holds; the first level of every
comparison is its null level (weight 0: missing evidence is neither for nor against), the last is "else".
``tests/integration/test_linkage_splink_agreement.py`` proves that Splink's ``predict()`` and this module give
the same levels and weights on every blocked pair of a synthetic world.

Jaro-Winkler similarity: :class:`rapidfuzz.distance.JaroWinkler` (prefix weight 0.1, prefix up to 4), which
agrees with DuckDB's ``jaro_winkler_similarity`` (checked by the agreement test).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

if TYPE_CHECKING:
    from familyctx.linkage.normalise import LinkFeatures

__all__ = [
    "COMPARISONS",
    "FEATURE_COLUMNS",
    "Comparison",
    "FeatureTable",
    "Level",
    "Outcome",
    "PairView",
    "feature_rows",
]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Outcome(StrEnum):
    """How one field compared between two records (the evidence a worker sees)."""

    agree = "agree"
    similar = "similar"
    swapped = "swapped"
    partial = "partial"
    disagree = "disagree"
    missing = "missing"


@dataclass(frozen=True, slots=True)
class Level:
    """One comparison level.

    ``sql``: DuckDB condition (Splink ``sql_condition``), ``"ELSE"`` for the else level;
    ``evaluate``: numpy twin of ``sql`` (``None`` for the else level), returning a bool array over the pairs;
    ``tf_column``: feature column whose term frequencies adjust this level's weight (Splink
    ``tf_adjustment_column``, adjustment weight 1.0), or ``None``; ``similarity``: feature column whose
    Jaro-Winkler similarity is reported as evidence.
    """

    label: str
    outcome: Outcome
    sql: str
    evaluate: Callable[[PairView], BoolArray] | None
    is_null: bool = False
    tf_column: str | None = None

    @property
    def is_else(self) -> bool:
        """True for the catch-all last level."""
        return self.sql == "ELSE"


@dataclass(frozen=True, slots=True)
class Comparison:
    """A field's comparison: ``field`` is the API field name and Splink's ``output_column_name``;
    ``levels`` in evaluation order (null level first, else level last); ``similarity_column``: the
    feature column whose Jaro-Winkler similarity is reported in :class:`FieldScore` (names only)."""

    field: str
    description: str
    levels: tuple[Level, ...]
    similarity_column: str | None = None

    def level_index(self, pairs: PairView) -> IntArray:
        """Index into ``levels`` of the first level whose condition holds, per pair; shape (n_pairs,)."""
        conditions = [lvl.evaluate(pairs) for lvl in self.levels if lvl.evaluate is not None]
        choices = list(range(len(conditions)))
        return np.select(conditions, choices, default=len(self.levels) - 1).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Feature table: the LinkFeatures of a batch of records as numpy columns, coded once per batch.
# --------------------------------------------------------------------------------------------------

#: Columns registered in DuckDB for Splink, with their DuckDB types (name -> type).
FEATURE_COLUMNS: dict[str, str] = {
    "nhs_number": "VARCHAR",
    "given_key": "VARCHAR",
    "given_tokens": "VARCHAR[]",
    "given_canonical": "VARCHAR[]",
    "family_key": "VARCHAR",
    "family_parts": "VARCHAR[]",
    "dob": "DATE",
    "dob_estimated": "BOOLEAN",
    "dob_expected": "BOOLEAN",
    "sex": "VARCHAR",
    "postcode": "VARCHAR",
    "postcode_sector": "VARCHAR",
    "postcode_district": "VARCHAR",
}

_STRING_COLUMNS = ("nhs_number", "sex", "postcode", "postcode_sector", "postcode_district")
_NAME_COLUMNS = ("given_key", "family_key")  # share one vocabulary: names swapped compares across them
_LIST_COLUMNS = ("given_tokens", "given_canonical", "family_parts")


def feature_rows(features: Sequence[LinkFeatures]) -> dict[str, list[object]]:
    """The columns of :data:`FEATURE_COLUMNS` for ``features`` as Python lists (column -> values), as they
    are registered in DuckDB for Splink: empty names become NULL, tuples become lists."""
    out: dict[str, list[object]] = {name: [] for name in FEATURE_COLUMNS}
    for f in features:
        out["nhs_number"].append(f.nhs_number)
        out["given_key"].append(f.given_key or None)
        out["given_tokens"].append(list(f.given_tokens))
        out["given_canonical"].append(list(f.given_canonical))
        out["family_key"].append(f.family_key or None)
        out["family_parts"].append(list(f.family_parts))
        out["dob"].append(f.dob)
        out["dob_estimated"].append(bool(f.dob_estimated))
        out["dob_expected"].append(bool(f.dob_expected))
        out["sex"].append(f.sex)
        out["postcode"].append(f.postcode)
        out["postcode_sector"].append(f.postcode_sector)
        out["postcode_district"].append(f.postcode_district)
    return out


class _Vocabulary:
    """Strings -> dense integer codes; ``None``/'' -> -1."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []

    def code(self, value: str | None) -> int:
        """The integer code of ``value`` (new values get the next code); -1 for a missing value."""
        if not value:
            return -1
        found = self.codes.get(value)
        if found is None:
            found = self.codes[value] = len(self.values)
            self.values.append(value)
        return found


class FeatureTable:
    """The features of ``n`` records as numpy columns (built once per batch; pairs index into it).

    String columns become int64 codes (-1 = missing); given and family name keys share one vocabulary
    (:attr:`names`) so that "names swapped" compares across them; list columns become padded (n, k) code
    sets of token codes (:meth:`shares_token`); dates become proleptic ordinals plus year/month/day
    (0 = missing).
    """

    def __init__(self, features: Sequence[LinkFeatures]) -> None:
        self.n = len(features)
        vocab = _Vocabulary()
        self.codes: dict[str, IntArray] = {}
        for col in _STRING_COLUMNS:
            col_vocab = _Vocabulary()
            self.codes[col] = np.fromiter(
                (col_vocab.code(getattr(f, col)) for f in features), np.int64, self.n
            )
        for col in _NAME_COLUMNS:
            self.codes[col] = np.fromiter((vocab.code(getattr(f, col)) for f in features), np.int64, self.n)
        self.names: list[str] = vocab.values
        token_vocab = _Vocabulary()
        #: per list column: (n,) id of the record's token set; the sets as padded (sets, k) token codes
        self.set_ids: dict[str, IntArray] = {}
        self.sets: dict[str, IntArray] = {}
        for col in _LIST_COLUMNS:
            set_codes: dict[tuple[int, ...], int] = {}
            ids = np.empty(self.n, dtype=np.int64)
            for i, f in enumerate(features):
                key = tuple(sorted({token_vocab.code(t) for t in getattr(f, col) if t}))
                ids[i] = set_codes.setdefault(key, len(set_codes))
            width = max((len(k) for k in set_codes), default=0) or 1
            matrix = np.full((len(set_codes), width), -1, np.int64)
            for key, sid in set_codes.items():
                matrix[sid, : len(key)] = key
            self.set_ids[col] = ids
            self.sets[col] = matrix
        self._tokens = len(token_vocab.values)
        self._intersections: dict[str, npt.NDArray[np.bool_]] = {}
        dobs: list[dt.date | None] = [f.dob for f in features]
        self.dob = np.fromiter((d.toordinal() if d else 0 for d in dobs), np.int64, self.n)
        self.dob_year = np.fromiter((d.year if d else 0 for d in dobs), np.int64, self.n)
        self.dob_month = np.fromiter((d.month if d else 0 for d in dobs), np.int64, self.n)
        self.dob_day = np.fromiter((d.day if d else 0 for d in dobs), np.int64, self.n)
        self.dob_estimated = np.fromiter((bool(f.dob_estimated) for f in features), np.bool_, self.n)
        self.dob_expected = np.fromiter((bool(f.dob_expected) for f in features), np.bool_, self.n)
        self._jw_matrix: FloatArray | None = None

    def shares_token(self, col: str, a: IntArray, b: IntArray) -> BoolArray:
        """Whether the token sets of list column ``col`` of records ``a`` and ``b`` intersect, elementwise."""
        sa, sb = self.set_ids[col][a], self.set_ids[col][b]
        sets = self.sets[col]
        count = sets.shape[0]
        if count <= 4000:  # every pair of sets at once: a self-join of (set, token) on token
            found = self._intersections.get(col)
            if found is None:
                found = self._intersections[col] = _intersection_matrix(sets)
            return found[sa, sb]
        keys = sa * count + sb
        unique, inverse = np.unique(keys, return_inverse=True)
        left, right = sets[unique // count], sets[unique % count]
        out = np.zeros(unique.shape[0], dtype=np.bool_)
        for i in range(left.shape[1]):
            li = left[:, i]
            valid = li >= 0
            for j in range(right.shape[1]):
                out |= valid & (li == right[:, j])
        return out[inverse]

    def jaro_winkler(self, a: IntArray, b: IntArray) -> FloatArray:
        """Jaro-Winkler similarity of name codes ``a`` and ``b`` (same shape); NaN where either is missing."""
        out = np.full(a.shape, np.nan)
        valid = (a >= 0) & (b >= 0)
        if not valid.any():
            return out
        if len(self.names) <= 1500:
            if self._jw_matrix is None:
                self._jw_matrix = process.cdist(
                    self.names, self.names, scorer=JaroWinkler.normalized_similarity, dtype=np.float64
                )
            out[valid] = self._jw_matrix[a[valid], b[valid]]
            return out
        width = len(self.names)
        keys = a[valid] * width + b[valid]
        unique, inverse = np.unique(keys, return_inverse=True)
        left = [self.names[k] for k in (unique // width).tolist()]
        right = [self.names[k] for k in (unique % width).tolist()]
        sims = process.cpdist(left, right, scorer=JaroWinkler.normalized_similarity, dtype=np.float64)
        out[valid] = np.asarray(sims, dtype=np.float64)[inverse]
        return out


def _intersection_matrix(sets: IntArray) -> BoolArray:
    """(s, s) bool matrix: whether padded token-code rows i and j of ``sets`` share a code (-1 = padding).

    Vectorised self-join on the token: every pair of sets within one token's group is marked; cost is
    the sum over tokens of (sets holding it) squared. No BLAS (cheap on a busy 2-core machine).
    """
    count, width = sets.shape
    flat = sets.ravel()
    valid = flat >= 0
    sid = np.repeat(np.arange(count, dtype=np.int64), width)[valid]
    tok = flat[valid]
    order = np.argsort(tok, kind="stable")
    tok, sid = tok[order], sid[order]
    out = np.zeros((count, count), dtype=np.bool_)
    if tok.size == 0:
        return out
    _, start, sizes = np.unique(tok, return_index=True, return_counts=True)
    per_element = np.repeat(sizes, sizes)  # group size, for each element
    first = np.repeat(start, sizes)  # group start, for each element
    a = np.repeat(np.arange(tok.size, dtype=np.int64), per_element)
    offsets = np.arange(a.size, dtype=np.int64) - np.repeat(np.cumsum(per_element) - per_element, per_element)
    b = np.repeat(first, per_element) + offsets
    out[sid[a], sid[b]] = True
    return out


class PairView:
    """Pairs of records of one :class:`FeatureTable`: ``left``/``right`` int arrays of equal length.

    Helpers reproduce the SQL of each level (NULL compares false) and cache what several levels share.
    """

    def __init__(self, table: FeatureTable, left: IntArray, right: IntArray) -> None:
        self.table = table
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self._cache: dict[str, FloatArray | BoolArray] = {}

    def __len__(self) -> int:
        return int(self.left.shape[0])

    def l(self, col: str) -> IntArray:  # noqa: E743 - the SQL side names
        """Codes of ``col`` for the left records."""
        return self.table.codes[col][self.left]

    def r(self, col: str) -> IntArray:
        """Codes of ``col`` for the right records."""
        return self.table.codes[col][self.right]

    def null(self, col: str) -> BoolArray:
        """``col_l IS NULL OR col_r IS NULL``."""
        return (self.l(col) < 0) | (self.r(col) < 0)

    def eq(self, col_l: str, col_r: str | None = None) -> BoolArray:
        """``col_l_l = col_r_r`` (false when either is NULL)."""
        a = self.l(col_l)
        return (a >= 0) & (a == self.r(col_r or col_l))

    def jw(self, col: str) -> FloatArray:
        """``jaro_winkler_similarity(col_l, col_r)``; NaN where either is NULL."""
        key = "jw:" + col
        if key not in self._cache:
            self._cache[key] = self.table.jaro_winkler(self.l(col), self.r(col))
        return self._cache[key]  # type: ignore[return-value]

    def jw_at_least(self, col: str, threshold: float) -> BoolArray:
        """``jaro_winkler_similarity(col_l, col_r) >= threshold`` (false when either is NULL)."""
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(self.jw(col), nan=-1.0) >= threshold

    def has_any(self, col: str) -> BoolArray:
        """``list_has_any(col_l, col_r)``: the two lists share an element."""
        return self.table.shares_token(col, self.left, self.right)

    def dob_null(self) -> BoolArray:
        """``dob_l IS NULL OR dob_r IS NULL``."""
        return (self.table.dob[self.left] == 0) | (self.table.dob[self.right] == 0)

    def dob_part(self, part: str) -> tuple[IntArray, IntArray]:
        """(left, right) arrays of a date part: 'year' | 'month' | 'day' | 'ordinal'."""
        arr = {
            "year": self.table.dob_year,
            "month": self.table.dob_month,
            "day": self.table.dob_day,
            "ordinal": self.table.dob,
        }[part]
        return arr[self.left], arr[self.right]

    def flag_either(self, col: str) -> BoolArray:
        """``col_l OR col_r`` for a boolean column."""
        arr: BoolArray = getattr(self.table, col)
        return arr[self.left] | arr[self.right]


# --------------------------------------------------------------------------------------------------
# The comparisons. Do not change a level without retraining (make linkage-train): LinkModel.load checks.
# --------------------------------------------------------------------------------------------------


def _null(col: str) -> Level:
    return Level(
        "missing",
        Outcome.missing,
        f'"{col}_l" IS NULL OR "{col}_r" IS NULL',
        lambda p: p.null(col),
        is_null=True,
    )


def _exact(col: str, *, tf: bool = False, label: str = "exact") -> Level:
    return Level(
        label, Outcome.agree, f'"{col}_l" = "{col}_r"', lambda p: p.eq(col), tf_column=col if tf else None
    )


def _jw(col: str, threshold: float, outcome: Outcome = Outcome.similar) -> Level:
    return Level(
        f"Jaro-Winkler >= {threshold:.2f}",
        outcome,
        f'jaro_winkler_similarity("{col}_l", "{col}_r") >= {threshold}',
        lambda p: p.jw_at_least(col, threshold),
    )


def _has_any(col: str, label: str, outcome: Outcome) -> Level:
    return Level(label, outcome, f'list_has_any("{col}_l", "{col}_r")', lambda p: p.has_any(col))


_ELSE_NAME = Level("different", Outcome.disagree, "ELSE", None)

_SWAPPED_SQL = '"given_key_l" = "family_key_r" AND "family_key_l" = "given_key_r"'


def _swapped(p: PairView) -> BoolArray:
    return p.eq("given_key", "family_key") & p.eq("family_key", "given_key")


_SWAPPED = Level("names swapped", Outcome.swapped, _SWAPPED_SQL, _swapped)


def _dob_exact(p: PairView) -> BoolArray:
    a, b = p.dob_part("ordinal")
    return (a > 0) & (a == b)


def _dob_estimated(p: PairView) -> BoolArray:
    ya, yb = p.dob_part("year")
    ma, mb = p.dob_part("month")
    da, db = p.dob_part("day")
    estimated = p.flag_either("dob_estimated") | (da == ESTIMATED_DAY) | (db == ESTIMATED_DAY)
    return estimated & (ya > 0) & (ya == yb) & (ma == mb)


def _dob_within_window(p: PairView) -> BoolArray:
    a, b = p.dob_part("ordinal")
    return (a > 0) & (b > 0) & (np.abs(a - b) <= EXPECTED_DATE_WINDOW_DAYS)


def _dob_both_expected(p: PairView) -> BoolArray:
    ea, eb = p.table.dob_expected[p.left], p.table.dob_expected[p.right]
    return ea & eb & _dob_within_window(p)


def _dob_expected_and_birth(p: PairView) -> BoolArray:
    ea, eb = p.table.dob_expected[p.left], p.table.dob_expected[p.right]
    return (ea != eb) & _dob_within_window(p)


def _dob_swapped(p: PairView) -> BoolArray:
    ya, yb = p.dob_part("year")
    ma, mb = p.dob_part("month")
    da, db = p.dob_part("day")
    return (ya > 0) & (yb > 0) & (ya == yb) & (da == mb) & (ma == db)


def _dob_one_differs(p: PairView) -> BoolArray:
    ya, yb = p.dob_part("year")
    ma, mb = p.dob_part("month")
    da, db = p.dob_part("day")
    y, m, d = ya == yb, ma == mb, da == db
    return (ya > 0) & (yb > 0) & ((y & m) | (y & d) | (m & d))


#: An expected date of delivery and the actual date of birth (or another council's EDD): within 6 weeks.
EXPECTED_DATE_WINDOW_DAYS = 42
#: The SSD has no estimated-date flag: its guidance records a date of birth whose day is unknown as the
#: 15th of the month, so a date on the 15th may be an estimate (``dob_estimated`` is set only by sources
#: that do carry a flag).
ESTIMATED_DAY = 15

_WITHIN_WINDOW_SQL = f'abs(date_diff(\'day\', "dob_l", "dob_r")) <= {EXPECTED_DATE_WINDOW_DAYS}'

COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "nhs_number",
        "NHS number (valid, modulus 11 checked; placeholders and invalid numbers are missing)",
        (_null("nhs_number"), _exact("nhs_number"), Level("different", Outcome.disagree, "ELSE", None)),
    ),
    Comparison(
        "given_name",
        "First given name, with swaps, short forms, similarity and other given names",
        (
            _null("given_key"),
            _exact("given_key", tf=True),
            _SWAPPED,
            _has_any("given_canonical", "short form (Bob/Robert)", Outcome.similar),
            _jw("given_key", 0.92),
            _has_any("given_tokens", "another given name agrees", Outcome.partial),
            _jw("given_key", 0.80),
            _ELSE_NAME,
        ),
        similarity_column="given_key",
    ),
    Comparison(
        "family_name",
        "Family name, with swaps, double-barrelled parts and similarity",
        (
            _null("family_key"),
            _SWAPPED,
            _exact("family_key", tf=True),
            _has_any("family_parts", "part of a double-barrelled name", Outcome.partial),
            _jw("family_key", 0.92),
            _jw("family_key", 0.80),
            _ELSE_NAME,
        ),
        similarity_column="family_key",
    ),
    Comparison(
        "date_of_birth",
        "Date of birth (or expected date of delivery), with expected dates (unborn children), estimated "
        "dates (flagged, or the 15th: the SSD records an unknown day as the 15th and has no estimated "
        "flag) and day/month swaps",
        (
            Level(
                "missing",
                Outcome.missing,
                '"dob_l" IS NULL OR "dob_r" IS NULL',
                PairView.dob_null,
                is_null=True,
            ),
            Level("exact", Outcome.agree, '"dob_l" = "dob_r"', _dob_exact),
            Level(
                "both expected dates, within 6 weeks",
                Outcome.similar,
                f'"dob_expected_l" AND "dob_expected_r" AND {_WITHIN_WINDOW_SQL}',
                _dob_both_expected,
            ),
            Level(
                "expected date and a date of birth within 6 weeks",
                Outcome.similar,
                f'"dob_expected_l" <> "dob_expected_r" AND {_WITHIN_WINDOW_SQL}',
                _dob_expected_and_birth,
            ),
            Level(
                "estimated: same month (flagged, or on the 15th)",
                Outcome.similar,
                f'("dob_estimated_l" OR "dob_estimated_r" OR day("dob_l") = {ESTIMATED_DAY} '
                f'OR day("dob_r") = {ESTIMATED_DAY}) '
                'AND year("dob_l") = year("dob_r") AND month("dob_l") = month("dob_r")',
                _dob_estimated,
            ),
            Level(
                "day and month swapped",
                Outcome.swapped,
                'year("dob_l") = year("dob_r") AND day("dob_l") = month("dob_r") '
                'AND month("dob_l") = day("dob_r")',
                _dob_swapped,
            ),
            Level(
                "one of day, month, year differs",
                Outcome.partial,
                '(year("dob_l") = year("dob_r") AND month("dob_l") = month("dob_r")) '
                'OR (year("dob_l") = year("dob_r") AND day("dob_l") = day("dob_r")) '
                'OR (month("dob_l") = month("dob_r") AND day("dob_l") = day("dob_r"))',
                _dob_one_differs,
            ),
            Level("different", Outcome.disagree, "ELSE", None),
        ),
    ),
    Comparison(
        "sex",
        "Sex (F/M; unknown is missing)",
        (_null("sex"), _exact("sex"), Level("different", Outcome.disagree, "ELSE", None)),
    ),
    Comparison(
        "postcode",
        "UK postcode: full, sector, district",
        (
            _null("postcode"),
            _exact("postcode"),
            Level(
                "postcode sector",
                Outcome.similar,
                '"postcode_sector_l" = "postcode_sector_r"',
                lambda p: p.eq("postcode_sector"),
            ),
            Level(
                "postcode district",
                Outcome.partial,
                '"postcode_district_l" = "postcode_district_r"',
                lambda p: p.eq("postcode_district"),
            ),
            Level("different", Outcome.disagree, "ELSE", None),
        ),
    ),
)
