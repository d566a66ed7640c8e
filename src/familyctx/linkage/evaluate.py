"""Scoring the linker against the synthetic ground truth (issue 5, ``make linkage-eval``).

For each noise level a synthetic world is generated and read as the gateway reads it
(:mod:`familyctx.linkage.synthdata`). Candidate pairs are then built the way queries meet records
(:func:`candidate_pairs`, the *blocking*), graded and compared with the truth. A
:class:`familyctx.linkage.Linker` is scored on its vectorised arrays (``Linker.grade_arrays``): evidence
objects are built only for the pairs the report lists; any other :class:`PairGrader` through
``grade_pairs``.

Blocking: two records of different councils are a candidate pair when they share any of

* a valid NHS number (modulus 11, no placeholder);
* a date of birth (an unborn child's expected date counts), or one's date is the other's with day and
  month swapped, or the same year and month of birth;
* the first three letters of the folded family name and the birth year;
* for unborn children: the initial of the folded family name and expected dates in the same or
  adjacent calendar months (a search for the mother's family name with the expected date finds the
  other council's unborn record even across a month or year boundary, or with a typo in the name);
* the folded first given name and the folded family name;
* the postcode and the initial of the first given name.

Every one of these is a lookup an adapter search or a family-context query can make; a true pair sharing
none of them could never be brought together by a query, and is counted as MISSED (a false negative),
not dropped from the denominator.

Metrics (ground truth positive: two records of different councils with the same truth_person_id):

* per grade (certain, probable, possible): pairs given exactly that grade, how many are true, precision;
* cumulative (certain; certain + probable; all grades): true/false positives, false negatives,
  precision, recall and F1 (recall over every true pair, blocked or not);
* the merge view: certain links are merged transitively (union-find), so the pairs a merge implies
  are every cross-council pair inside a merged group; their precision and recall.

Targets at the default noise level (0.1): precision of certain pairs >= 0.999 and recall of certain +
probable pairs >= 0.97 (:data:`TARGETS`). They are judged only on a sample big enough to show a miss:
at least :data:`MIN_CERTAIN_LINKS` certain links for the precision target and :data:`MIN_TRUE_PAIRS`
true pairs for the recall target (:func:`target_checks`); a smaller world reports "too few pairs to judge
the targets" (:func:`sample_too_small`), never "targets met".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from familyctx.linkage.normalise import LinkFeatures, LinkInput, link_features
from familyctx.linkage.synthdata import World, generate_world, load_world

if TYPE_CHECKING:
    from familyctx.linkage import PairScore

__all__ = [
    "DEFAULT_NOISE",
    "DEFAULT_NOISE_LEVELS",
    "DEFAULT_PEOPLE",
    "GRADES",
    "LIST_CAP",
    "MIN_CERTAIN_LINKS",
    "MIN_TRUE_PAIRS",
    "TARGETS",
    "TargetCheck",
    "Cumulative",
    "Evaluation",
    "GradeStats",
    "MergeStats",
    "NoiseResult",
    "PairDetail",
    "PairGrader",
    "blocking_keys",
    "candidate_pairs",
    "check_targets",
    "cumulative_metrics",
    "evaluate",
    "evaluate_world",
    "grade_metrics",
    "merge_metrics",
    "sample_too_small",
    "target_checks",
    "true_pairs",
]

Pair = tuple[int, int]

#: Match grades, strongest first (FHIR $match: certain, probable, possible).
GRADES: tuple[str, ...] = ("certain", "probable", "possible")
#: The generator's default noise level, at which the targets apply.
DEFAULT_NOISE = 0.1
DEFAULT_NOISE_LEVELS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)
DEFAULT_PEOPLE = 20_000
#: Targets at :data:`DEFAULT_NOISE`: name -> lowest acceptable value.
TARGETS: Mapping[str, float] = {"precision of certain pairs": 0.999, "recall of certain + probable": 0.97}
#: Fewest certain links on which "precision of certain pairs >= 0.999" is judged: with n links one wrong
#: link shows as precision 1 - 1/n, so below 1,000 links a single wrong merge already misses the target
#: and zero wrong cannot tell 0.999 from 0.99 (2 true pairs, both right, would say 1.0000). This is the
#: resolution the target needs, not a confidence bound: with 0 wrong in n links the one-sided 95% lower
#: bound on precision is about 1 - 3/n (0.9989 at the default world's ~2,800 links).
MIN_CERTAIN_LINKS = 1_000
#: Fewest true pairs on which "recall of certain + probable >= 0.97" is judged (one missed pair shows as
#: 1 - 1/n; the same 1,000 keeps the two targets on one footing).
MIN_TRUE_PAIRS = 1_000
#: Most wrong (or missed) pairs listed in the report; the total is always given.
LIST_CAP = 50
#: Cumulative grade sets: label -> grades included.
CUMULATIVE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("certain", ("certain",)),
    ("certain + probable", ("certain", "probable")),
    ("all grades", GRADES),
)

ProgressFn = Callable[[float, str], None]


class PairGrader(Protocol):
    """What the evaluation needs of a linker (``familyctx.linkage.Linker`` is one)."""

    def grade_pairs(
        self, records: Sequence[LinkInput], pairs: Sequence[tuple[int, int]]
    ) -> list[tuple[Any, PairScore, tuple[str, ...]]]: ...

    def compare(self, a: LinkInput, b: LinkInput) -> tuple[Any, PairScore, tuple[str, ...]]: ...


# --- blocking --------------------------------------------------------------------------------------
def _swapped(d: dt.date) -> dt.date | None:
    if d.day > 12 or d.day == d.month:
        return None
    return dt.date(d.year, d.day, d.month)


def blocking_keys(f: LinkFeatures) -> list[tuple[Hashable, ...]]:
    """The blocking keys of one record's features (see the module docstring); records sharing a key
    (and coming from different councils) are a candidate pair. Keys are tuples tagged by kind."""
    keys: list[tuple[Hashable, ...]] = []
    if f.nhs_number:
        keys.append(("nhs", f.nhs_number))
    if f.dob is not None:
        keys.append(("dob", f.dob))
        swapped = _swapped(f.dob)
        if swapped is not None:
            keys.append(("dob", swapped))
        keys.append(("birth month", f.dob.year, f.dob.month))
        if f.family_key:
            keys.append(("family3 + birth year", f.family_key[:3], f.dob.year))
    if f.dob is not None and f.dob_expected and f.family_key:
        # an unborn child: the family name's initial and the expected month, this month and the next, so
        # two expected dates in the same or adjacent months meet (across a month or year boundary too)
        month = f.dob.year * 12 + f.dob.month - 1
        keys.append(("family initial + expected month", f.family_key[0], month))
        keys.append(("family initial + expected month", f.family_key[0], month + 1))
    if f.given_key and f.family_key:
        keys.append(("names", f.given_key, f.family_key))
    if f.postcode and f.given_key:
        keys.append(("postcode + initial", f.postcode, f.given_key[0]))
    return keys


def candidate_pairs(
    records: Sequence[LinkInput], features: Sequence[LinkFeatures] | None = None
) -> list[Pair]:
    """Every cross-council pair (i, j), i < j (indexes into ``records``), sharing a blocking key; sorted.

    ``features``: ``link_features`` of each record when already computed. Records of one council are
    never paired.
    """
    feats = features if features is not None else [link_features(r) for r in records]
    blocks: dict[tuple[Hashable, ...], list[int]] = defaultdict(list)
    for i, f in enumerate(feats):
        for key in dict.fromkeys(blocking_keys(f)):  # a record once per key (its dob may equal its swap)
            blocks[key].append(i)
    pairs: set[Pair] = set()
    for members in blocks.values():
        if len(members) < 2:
            continue
        for a, b in itertools.combinations(members, 2):
            if records[a].source != records[b].source:
                pairs.add((a, b) if a < b else (b, a))
    return sorted(pairs)


def true_pairs(records: Sequence[LinkInput], truth: Mapping[tuple[str, str], str]) -> set[Pair]:
    """Ground-truth positives: pairs (i, j), i < j, of records of different councils with the same
    truth_person_id. Records absent from ``truth`` are nobody's pair."""
    people: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        tid = truth.get((r.source, r.record_id))
        if tid is not None:
            people[tid].append(i)
    return {
        (a, b)
        for members in people.values()
        for a, b in itertools.combinations(sorted(members), 2)
        if records[a].source != records[b].source
    }


# --- metrics ---------------------------------------------------------------------------------------
def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@dataclass(frozen=True, slots=True)
class GradeStats:
    """Pairs given exactly ``grade``: how many, how many true; precision (None when no pairs)."""

    grade: str
    pairs: int
    true: int

    @property
    def precision(self) -> float | None:
        """True share of the linked pairs, 0..1; None when nothing was linked."""
        return _ratio(self.true, self.pairs)


@dataclass(frozen=True, slots=True)
class Cumulative:
    """Pairs graded any of ``grades`` (``label`` e.g. 'certain + probable') against every true pair."""

    label: str
    grades: tuple[str, ...]
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float | None:
        """True share of the linked pairs, 0..1; None when nothing was linked."""
        return _ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float | None:
        """Share of every true pair that was linked, 0..1; None when there is no true pair."""
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall, 0..1; None when either is None."""
        return _f1(self.precision, self.recall)


@dataclass(frozen=True, slots=True)
class MergeStats:
    """The merge view: groups of records joined by certain links (union-find closure).

    ``groups``: groups of two or more records; ``largest``: records in the largest group;
    ``same_council_groups``: groups holding two records of one council (a council's own index says
    those are different people); ``implied_pairs``: cross-council pairs inside groups; ``true``: how
    many are true; ``true_total``: every true pair (recall's denominator).
    """

    groups: int
    largest: int
    same_council_groups: int
    implied_pairs: int
    true: int
    true_total: int

    @property
    def precision(self) -> float | None:
        """True share of the linked pairs, 0..1; None when nothing was linked."""
        return _ratio(self.true, self.implied_pairs)

    @property
    def recall(self) -> float | None:
        """Share of every true pair that was linked, 0..1; None when there is no true pair."""
        return _ratio(self.true, self.true_total)

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall, 0..1; None when either is None."""
        return _f1(self.precision, self.recall)


def grade_metrics(graded: Mapping[Pair, str | None], truth: set[Pair]) -> list[GradeStats]:
    """Per grade (certain, probable, possible, in that order): pairs with exactly that grade and how
    many are in ``truth``. ``graded`` maps a pair to its grade (None or absent = not linked)."""
    counts = {g: [0, 0] for g in GRADES}
    for pair, grade in graded.items():
        if grade is None:
            continue
        c = counts[str(grade)]
        c[0] += 1
        c[1] += pair in truth
    return [GradeStats(g, counts[g][0], counts[g][1]) for g in GRADES]


def cumulative_metrics(graded: Mapping[Pair, str | None], truth: set[Pair]) -> list[Cumulative]:
    """Cumulative precision/recall for certain; certain + probable; all grades. Every true pair not
    graded within the set (not blocked, not linked, or graded lower) is a false negative."""
    out = []
    for label, grades in CUMULATIVE:
        linked = {p for p, g in graded.items() if g is not None and str(g) in grades}
        tp = len(linked & truth)
        out.append(Cumulative(label, grades, tp, len(linked) - tp, len(truth) - tp))
    return out


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent.get(x, x)
        return root

    def union(self, a: int, b: int) -> None:
        self.parent.setdefault(a, a)
        self.parent.setdefault(b, b)
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def merge_metrics(certain: Iterable[Pair], sources: Sequence[str], truth: set[Pair]) -> MergeStats:
    """The merge view of certain links: groups by union-find; implied cross-council pairs and their
    precision/recall against ``truth``. ``sources``: each record's council (by index)."""
    uf = _UnionFind()
    for a, b in certain:
        uf.union(a, b)
    groups: dict[int, list[int]] = defaultdict(list)
    for x in list(uf.parent):
        groups[uf.find(x)].append(x)
    implied = true = same_council = largest = 0
    for members in groups.values():
        members.sort()
        largest = max(largest, len(members))
        if len({sources[m] for m in members}) < len(members):
            same_council += 1
        for a, b in itertools.combinations(members, 2):
            if sources[a] != sources[b]:
                implied += 1
                true += (a, b) in truth
    return MergeStats(len(groups), largest, same_council, implied, true, len(truth))


# --- one noise level -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PairDetail:
    """One listed pair: record refs ('E08000007/100001'), grade (None = not linked), match probability,
    per-field (field, level, outcome), guard rules applied, quirks planted in each record, and whether
    blocking brought the pair together at all."""

    left: str
    right: str
    grade: str | None
    match_probability: float
    match_weight: float
    fields: tuple[tuple[str, str, str], ...]
    rules: tuple[str, ...]
    left_quirks: tuple[str, ...]
    right_quirks: tuple[str, ...]
    blocked: bool


@dataclass
class NoiseResult:
    """Everything measured at one noise level. ``wrong``/``missed``: at most :data:`LIST_CAP` listed,
    ``wrong_total``/``missed_total``: how many in all (``*_by_grade``: per grade, 'not linked' included).

    wrong = graded pairs that are not true; missed = true pairs graded neither certain nor probable.
    """

    noise: float
    people: int
    seed: int
    records: int
    councils: int
    candidate_pairs: int
    true_pairs: int
    true_pairs_blocked: int
    grades: list[GradeStats]
    cumulative: list[Cumulative]
    merge: MergeStats
    wrong: list[PairDetail] = field(default_factory=list)
    wrong_total: int = 0
    wrong_by_grade: dict[str, int] = field(default_factory=dict)
    missed: list[PairDetail] = field(default_factory=list)
    missed_total: int = 0
    missed_by_grade: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def cumulative_for(self, label: str) -> Cumulative:
        """The cumulative row named ``label`` ('certain', 'certain + probable', 'all grades')."""
        return next(c for c in self.cumulative if c.label == label)

    def grade(self, name: str) -> GradeStats:
        """The per-grade row for ``name``."""
        return next(g for g in self.grades if g.grade == name)


def _ref(r: LinkInput) -> str:
    return f"{r.source}/{r.record_id}"


def _detail(
    world: World,
    a: LinkInput,
    b: LinkInput,
    outcome: tuple[Any, PairScore, tuple[str, ...]],
    blocked: bool,
) -> PairDetail:
    grade, score, rules = outcome
    return PairDetail(
        left=_ref(a),
        right=_ref(b),
        grade=None if grade is None else str(grade),
        match_probability=float(score.match_probability),
        match_weight=float(score.match_weight),
        fields=tuple((f.field, f.level, str(f.outcome)) for f in score.fields),
        rules=tuple(rules),
        left_quirks=tuple(world.quirks.get((a.source, a.record_id), ())),
        right_quirks=tuple(world.quirks.get((b.source, b.record_id), ())),
        blocked=blocked,
    )


_RANK = {g: i for i, g in enumerate(GRADES)}


def evaluate_world(
    world: World,
    linker: PairGrader,
    *,
    noise: float,
    people: int,
    seed: int,
    progress: ProgressFn | None = None,
) -> NoiseResult:
    """Block, grade and score one world (see the module docstring). ``people``/``seed``/``noise`` are
    recorded as given. Deterministic for a given world and linker."""
    timings: dict[str, float] = {}
    records = world.records
    started = time.perf_counter()
    if progress:
        progress(noise, "blocking")
    features = [link_features(r) for r in records]
    pairs = candidate_pairs(records, features)
    truth = true_pairs(records, world.truth)
    timings["blocking"] = time.perf_counter() - started
    if progress:
        progress(noise, "grading")
    started = time.perf_counter()
    grade_of, probability, outcome_of = _grade(linker, records, features, pairs)
    timings["grading"] = time.perf_counter() - started
    started = time.perf_counter()
    row_of = {p: i for i, p in enumerate(pairs)}
    graded: dict[Pair, str | None] = {p: g for p, g in zip(pairs, grade_of, strict=True) if g is not None}
    grades = grade_metrics(graded, truth)
    cumulative = cumulative_metrics(graded, truth)
    certain = (p for p, g in graded.items() if g == "certain")
    merge = merge_metrics(certain, [r.source for r in records], truth)

    wrong_pairs = [p for p in graded if p not in truth]
    wrong_pairs.sort(key=lambda p: (_RANK[graded[p] or ""], -probability[row_of[p]], p))
    missed_pairs = sorted(
        (p for p in truth if graded.get(p) not in ("certain", "probable")),
        key=lambda p: (graded.get(p) is None, p not in row_of, p),
    )

    def count(ps: list[Pair]) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in ps:
            g = graded.get(p) or "not linked"
            out[g] = out.get(g, 0) + 1
        return out

    def details(ps: list[Pair]) -> list[PairDetail]:
        rows = []
        for a, b in ps[:LIST_CAP]:
            row = row_of.get((a, b))
            outcome = outcome_of(row) if row is not None else linker.compare(records[a], records[b])
            rows.append(_detail(world, records[a], records[b], outcome, row is not None))
        return rows

    result = NoiseResult(
        noise=noise,
        people=people,
        seed=seed,
        records=len(records),
        councils=len({r.source for r in records}),
        candidate_pairs=len(pairs),
        true_pairs=len(truth),
        true_pairs_blocked=sum(1 for p in truth if p in row_of),
        grades=grades,
        cumulative=cumulative,
        merge=merge,
        wrong=details(wrong_pairs),
        wrong_total=len(wrong_pairs),
        wrong_by_grade=count(wrong_pairs),
        missed=details(missed_pairs),
        missed_total=len(missed_pairs),
        missed_by_grade=count(missed_pairs),
    )
    timings["metrics"] = time.perf_counter() - started
    result.seconds.update(timings)
    return result


_Outcome = tuple[Any, "PairScore", tuple[str, ...]]


def _grade(
    linker: PairGrader, records: Sequence[LinkInput], features: Sequence[LinkFeatures], pairs: list[Pair]
) -> tuple[list[str | None], list[float], Callable[[int], _Outcome]]:
    """Grade ``pairs``: (grade name or None per pair, match probability per pair, row -> the pair's full
    outcome (grade, evidence, guard rules), built on demand). A ``familyctx.linkage.Linker`` is used
    through its vectorised arrays (no evidence objects for the 250k+ pairs nobody reads); any other
    grader through ``grade_pairs``. Raises RuntimeError when ``grade_pairs`` returns a wrong count."""
    from familyctx.linkage.linker import Linker

    if isinstance(linker, Linker) and pairs:
        import numpy as np

        from familyctx.linkage.comparisons import FeatureTable

        codes: dict[str, int] = {}
        sources = np.fromiter(
            (codes.setdefault(r.source, len(codes)) for r in records), np.int64, len(records)
        )
        idx = np.asarray(pairs, dtype=np.int64)
        arrays = linker.grade_arrays(FeatureTable(features), sources, idx[:, 0], idx[:, 1])
        names = (None, *reversed(GRADES))  # grade codes 0 none, 1 possible, 2 probable, 3 certain
        grade_of = [names[g] for g in arrays.grade.tolist()]

        def outcome_of(row: int) -> _Outcome:
            score = linker.pair_scores(arrays.scores, [row])[0]
            return grade_of[row], score, linker.rule_names(int(arrays.rules[row]))

        return grade_of, arrays.scores.match_probability.tolist(), outcome_of
    outcomes = linker.grade_pairs(records, pairs) if pairs else []
    if len(outcomes) != len(pairs):
        raise RuntimeError(f"grade_pairs returned {len(outcomes)} results for {len(pairs)} pairs")
    return (
        [None if o[0] is None else str(o[0]) for o in outcomes],
        [float(o[1].match_probability) for o in outcomes],
        outcomes.__getitem__,
    )


# --- the whole evaluation ----------------------------------------------------------------------------
@dataclass
class Evaluation:
    """Results per noise level (in the order asked), with the run's parameters and wall time (s)."""

    people: int
    seed: int
    results: list[NoiseResult]
    started_at: dt.datetime
    seconds: float = 0.0

    def at(self, noise: float) -> NoiseResult | None:
        """The result at ``noise`` (None when that level was not evaluated)."""
        return next((r for r in self.results if abs(r.noise - noise) < 1e-9), None)


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """One target at one noise level: ``name`` (a :data:`TARGETS` key), ``target`` (lowest acceptable),
    ``value`` (measured; None when nothing to measure), ``sample`` (its denominator: certain links for
    precision, true pairs for recall, named by ``sample_label``) and ``needed`` (the fewest on which it is
    judged)."""

    name: str
    target: float
    value: float | None
    sample: int
    needed: int
    sample_label: str

    @property
    def judged(self) -> bool:
        """The sample is big enough to tell the target met from missed."""
        return self.sample >= self.needed

    @property
    def met(self) -> bool:
        """Judged, and the measured value reaches the target."""
        return self.judged and self.value is not None and self.value >= self.target


def target_checks(result: NoiseResult) -> list[TargetCheck]:
    """The :data:`TARGETS` measured on ``result`` (in TARGETS order), each with its sample size."""
    certain = result.cumulative_for("certain")
    links = certain.true_positives + certain.false_positives
    measured = {
        "precision of certain pairs": (certain.precision, links, MIN_CERTAIN_LINKS, "certain links"),
        "recall of certain + probable": (
            result.cumulative_for("certain + probable").recall,
            result.true_pairs,
            MIN_TRUE_PAIRS,
            "true pairs",
        ),
    }
    return [TargetCheck(name, target, *measured[name]) for name, target in TARGETS.items()]


def sample_too_small(result: NoiseResult) -> str | None:
    """'too few pairs to judge the targets at noise 0.1: ...' naming each target whose sample is below
    its minimum (:data:`MIN_CERTAIN_LINKS`, :data:`MIN_TRUE_PAIRS`); None when both can be judged."""
    short = [c for c in target_checks(result) if not c.judged]
    if not short:
        return None
    parts = "; ".join(
        f"{c.sample:,} {c.sample_label} (judging {c.name} >= {c.target} needs at least {c.needed:,})"
        for c in short
    )
    return (
        f"too few pairs to judge the targets at noise {result.noise:g}: {parts}; "
        f"evaluate a bigger world (the default, {DEFAULT_PEOPLE:,} people, is big enough)"
    )


def check_targets(evaluation: Evaluation) -> list[str]:
    """Messages for every target (:data:`TARGETS`) missed at the default noise level, then the
    :func:`sample_too_small` message when a target could not be judged; [] only when every target was
    judged and met, or when the default level was not evaluated (nothing to check)."""
    result = evaluation.at(DEFAULT_NOISE)
    if result is None:
        return []
    missed = []
    for check in target_checks(result):
        if check.judged and not check.met:
            shown = "n/a (no pairs)" if check.value is None else f"{check.value:.4f}"
            missed.append(
                f"{check.name} at noise {DEFAULT_NOISE} is {shown}; the target is at least {check.target}"
            )
    too_small = sample_too_small(result)
    return [*missed, too_small] if too_small else missed


def evaluate(
    noise_levels: Sequence[float] = DEFAULT_NOISE_LEVELS,
    *,
    people: int = DEFAULT_PEOPLE,
    seed: int = 42,
    linker: PairGrader | None = None,
    progress: ProgressFn | None = None,
) -> Evaluation:
    """Generate a world of ``people`` per noise level (seed ``seed``), read it as the gateway does and
    score ``linker`` (default ``familyctx.linkage.Linker()`` with the packaged model) on it.

    ``progress(noise, stage)`` is called at each stage ('generating', 'reading', 'blocking',
    'grading', 'done'). Raises ``familyctx.synth.SynthInputError`` (a ValueError) for a bad ``people``
    or noise level. Worlds are written to a temporary directory, removed afterwards.
    """
    if linker is None:
        from familyctx.linkage import Linker

        linker = Linker()
    started_at = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    results = []
    for noise in noise_levels:
        with tempfile.TemporaryDirectory(prefix="familyctx-linkage-eval-") as tmp:
            if progress:
                progress(noise, "generating")
            t = time.perf_counter()
            directory = generate_world(Path(tmp) / "world", people=people, noise=noise, seed=seed)
            generated = time.perf_counter() - t
            if progress:
                progress(noise, "reading")
            t = time.perf_counter()
            world = load_world(directory)
            read = time.perf_counter() - t
        result = evaluate_world(world, linker, noise=noise, people=people, seed=seed, progress=progress)
        result.seconds = {"generating": generated, "reading": read, **result.seconds}
        results.append(result)
        if progress:
            progress(noise, "done")
    return Evaluation(
        people=people,
        seed=seed,
        results=results,
        started_at=started_at,
        seconds=time.perf_counter() - t0,
    )


def as_dict(result: NoiseResult) -> dict[str, Any]:
    """A JSON-ready dict of one result (for scripts and tests)."""
    return dataclasses.asdict(result)
