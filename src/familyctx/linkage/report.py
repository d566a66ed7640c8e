"""docs/linkage.md: the linkage evaluation written as Markdown (``make linkage-eval``).

The report is deterministic for a given evaluation and model apart from the run line (date, machine and
wall time): regenerate it, and a diff shows only what changed in the linker or the data.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from familyctx.linkage.evaluate import (
    DEFAULT_NOISE,
    LIST_CAP,
    TARGETS,
    Evaluation,
    NoiseResult,
    PairDetail,
    check_targets,
    sample_too_small,
    target_checks,
)

__all__ = ["guard_rules", "machine_description", "render_report", "write_report"]


def machine_description() -> str:
    """'Intel(R) Xeon(R) ... , 2 cores, Linux 6.1, Python 3.11.9' (no host name, no user)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count() or '?'} cores, {platform.system()} {platform.release()}, "
        f"Python {sys.version.split()[0]}"
    )


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _n(value: int) -> str:
    return f"{value:,}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "--:", "c": ":-:"}
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


NORMALISATION = """\
Every record is normalised once (`familyctx.linkage.normalise.link_features`) before it is compared;
the original values are kept for display.

- **Names**: Unicode NFKC, case folding, diacritics folded (Zoë → zoe); apostrophes (straight and curly),
  hyphens and spaces dropped for the whole-name key (O'Neill, ONeill, O Neill → oneill); titles (Mr, Mrs,
  Dr, ...) removed wherever they lead a field, and trailing "(Mrs)"; placeholder given names for babies
  and unborn children (Unborn, Baby, Infant, Not Known, ...) count as missing. The first given name is
  the given-name key; every given-name token is kept (a middle name used as the first); known short forms
  (Bob → Robert) come from the `nicknames` package's name-variant list. Double-barrelled family names are
  also split into their parts (Smith-Jones → jones, smith). Given and family names swapped are not
  normalised away: the comparisons detect them as a level of their own.
- **Dates**: ISO dates and datetimes, dd/mm/yyyy, d/m/yy, yyyymmdd, dd-mm-yyyy, dd.mm.yyyy, "05 Mar
  2014"; the SSD's 1900-01-01 sentinel, impossible dates (31/02) and dates of birth in the future are
  missing, never an error. An unborn child's expected date of delivery (SSD PERS009A) stands in for the
  date of birth and is flagged as expected. Estimated dates: the SSD has no estimated-date flag (its
  guidance records an unknown day as the 15th), so the date-of-birth comparison's 'estimated' level fires
  when either date is flagged estimated (a source that has the flag) OR either date is the 15th, and the
  two share year and month.
- **Sex**: F/M from letters or words; unknown, unspecified and indeterminate are missing.
- **Postcodes**: spacing and case normalised (sk13xe → SK1 3XE); sector (SK1 3) and district (SK1).
- **NHS numbers**: spaces and dashes accepted; the modulus-11 check digit must hold; placeholders (one
  digit repeated, e.g. 9999999999) and invalid numbers are treated as absent and never linked on.
"""

BLOCKING = """\
A query never compares every record with every other: it meets the records an adapter search returns.
The evaluation builds candidate pairs the same way. Two records of different councils are a candidate
pair when they share any of:

- a valid NHS number;
- a date of birth (an unborn child's expected date counts), or one date is the other with day and month
  swapped, or the same year and month of birth;
- the first three letters of the folded family name and the birth year;
- for unborn children: the initial of the folded family name and expected dates of delivery in the same
  or adjacent calendar months (what a search for the mother's family name around the expected date
  returns: it brings two councils' unborn records together across a month or year boundary and despite
  a typo in the family name, which the keys above miss);
- the folded first given name and the folded family name;
- the postcode and the initial of the first given name.

A true pair sharing none of these could never be brought together by a query: it is counted as
**missed** (a false negative), not dropped. Records of one council are never paired.
"""

UNBORN = """\
An unborn child (SSD PERS009A) is known only by a family name and an expected date of delivery: no NHS
number yet, no given name ('Unborn', 'Baby' count as missing), no sex, and the old council's address has
usually ended. When a family moves council during the pregnancy both councils hold the child, with
expected dates one to four weeks apart (the date is revised at the dating scan). Two weak fields: the
trained model adds the family name (about +7.5 bits, less for a common name) and 'both expected dates,
within 6 weeks' (about +7.2, trained by EM, not set by hand) to the prior (about −15.9), a match
probability of about 0.25–0.45, below 'possible' (0.5, even odds): such a pair is **not linked**. This is
the honest Fellegi-Sunter answer and the ground truth agrees it is a coin toss: in the 20,000-person
world at noise 0.1 (seed 42), 98 pairs of unborn records in different councils share a family name with
expected dates within 6 weeks, and 52 of them are the same child; the other 46 are different families of
the same name due at the same time. (EM puts m of the level at about 0.009, half the 0.019 measured on the
truth, because these pairs carry no other evidence; with the measured m the probability would be about
0.5, a possible at best.) Any further agreement decides it: the same postcode (both councils holding the
same address) makes the pair probable (shown to the worker with the evidence, never merged without
a certain link). Thresholds are global, never set per case. An unborn child in one council and the born
child in another ('expected date and a date of birth within 6 weeks') has no true pair in the synthetic
data (a child born after a move is known only to the new council): EM's m for it comes from wrong pairs
alone, and a hand floor in `familyctx.linkage.train` (5e-4, about the same) keeps it from falling to
nothing in a world where EM sees none; either way the level weighs about what two expected dates weigh.
"""

METRICS = """\
A true pair is two records of different councils with the same `truth_person_id` in the ground truth.
*Per grade*: pairs given exactly that grade, and the share of them that are true (precision).
*Cumulative*: pairs graded certain; certain or probable; any grade — precision, recall (over every
true pair, blocked or not) and F1. *Merge view*: only certain links merge, and merging is transitive
(union-find), so a chain of certain links can join records no single link joined; the merge view
scores every cross-council pair inside a merged group.
"""


def _model_section(model: Any, thresholds: Any, rules: Sequence[str]) -> list[str]:
    from familyctx.linkage.comparisons import COMPARISONS

    out = [
        "### Comparisons and levels",
        "",
        "A Fellegi-Sunter model: each field's comparison takes the first level (in this order) whose",
        "condition holds; its match weight is log2(m/u), m = P(level | same person),",
        "u = P(level | different people). The null level (a value missing) weighs 0. Figures are read",
        f"from the model file evaluated (`{_model_source(model)}`), trained by `make linkage-train`",
        "(Splink, unsupervised: u by random sampling, m by expectation maximisation). Levels too rare",
        "in the synthetic data to train have m (or u) set by hand in `familyctx.linkage.train`; the",
        "last column says which.",
        "",
        f"Prior: probability that two random records of different councils match = {model.prior:.6g} "
        f"(match weight {model.prior_weight:.2f}).",
        "",
    ]
    comparisons = model.settings.get("comparisons", [])
    for k, comp in enumerate(COMPARISONS):
        spec_k = comparisons[k] if k < len(comparisons) else {}
        levels_spec = spec_k.get("comparison_levels", [])
        # train.py names the m/u values it set by hand in the comparison's description
        by_hand = str(spec_k.get("comparison_description", ""))
        out += [f"**{comp.field}** — {comp.description}", ""]
        rows = []
        for i, level in enumerate(comp.levels):
            spec = levels_spec[i] if i < len(levels_spec) else {}
            if level.is_null:
                m = u = w = "—"
                how = ""
            else:
                m = _prob(spec.get("m_probability"))
                u = _prob(spec.get("u_probability"))
                w = f"{float(model.level_weights[k][i]):+.2f}"
                fixed = [p for p in ("m", "u") if f"{p} of '{level.label}'" in by_hand]
                how = " and ".join(fixed) + " set by hand" if fixed else "trained"
            tf = f"yes ({level.tf_column})" if level.tf_column else ""
            rows.append([level.label, str(level.outcome), m, u, w, tf, how])
        out += _table(
            ["level", "outcome", "m", "u", "match weight", "term frequency", "m, u"], rows, "llrrrll"
        )
        out.append("")
    out += [
        "### Term frequency",
        "",
        "Agreeing on a common name is weaker evidence than agreeing on a rare one. On the exact-name levels",
        "(marked above) the weight is adjusted as Splink does: + log2(u_exact) − log2(max(tf, tf_min)), tf",
        "being the name's relative frequency. The frequencies in the packaged model come from the",
        "SYNTHETIC data; production should use national name frequencies.",
        "",
    ]
    for column, table in sorted(model.term_frequencies.items()):
        top = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))[:1]
        out.append(f"- `{column}`: {len(table):,} names; most frequent share {top[0][1]:.4f}." if top else
                   f"- `{column}`: no names.")
    out += ["", "### Guard rules", ""]
    out += [
        "Applied after the match probability, whatever it is; the rules that capped a pair's grade are",
        "shown with it (GradedPair.rules, and the tables above).",
        "",
    ]
    out += [f"- {rule}" for rule in rules]
    out += [
        "",
        "### Thresholds",
        "",
        "Grades are the FHIR `$match` grades; only certain links are merged automatically, probable and",
        "possible ones are offered to the worker with the evidence.",
        "",
    ]
    out += _table(
        ["grade", "match probability at least", "match weight at least"],
        [
            [g, f"{getattr(thresholds, g):.6g}", f"{_weight(getattr(thresholds, g)):.2f}"]
            for g in ("certain", "probable", "possible")
        ],
    )
    out.append("")
    return out


def _model_source(model: Any) -> str:
    """The model file as the report names it: 'src/familyctx/linkage/data/model.json' for the packaged
    model (wherever the package is installed), else the path relative to the working directory when
    under it, else as loaded."""
    source = str(getattr(model, "source", ""))
    marker = "src/familyctx/"
    if marker in source:
        return marker + source.split(marker, 1)[1]
    if _is_packaged(model):
        return "src/familyctx/linkage/data/model.json"
    try:
        return str(Path(source).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return source


def _is_packaged(model: Any) -> bool:
    from familyctx.linkage.model import DATA_DIR, MODEL_FILE

    source = getattr(model, "source", None)
    try:
        return source is not None and Path(source).resolve() == (DATA_DIR / MODEL_FILE).resolve()
    except (OSError, RuntimeError):
        return False


def _prob(value: object) -> str:
    return f"{float(value):.4g}" if isinstance(value, (int, float)) else "—"


def _weight(probability: float) -> float:
    import math

    return math.log2(probability / (1 - probability))


#: What each guard rule of :data:`familyctx.linkage.linker.RULES` does, for the report.
RULE_EXPLANATIONS = {
    "different NHS numbers": "two different valid NHS numbers are never linked, whatever else agrees.",
    "same council": "records of one council are never linked (its own person index says they differ).",
    "given names disagree": "twins and siblings (same family name, date of birth and address): given names "
    "different and NHS numbers not equal → not linked; with equal NHS numbers → at most probable.",
    "date of birth not exact": "without the same NHS number, a certain link (an automatic merge) needs the "
    "dates of birth to agree exactly: a day/month swap, an estimated or expected date, a one-part "
    "difference or a missing date gives at most probable.",
    "sex disagrees": "no certain link on a contradicting sex unless the NHS numbers agree "
    "(at most probable).",
}


def guard_rules() -> list[str]:
    """The linker's guard rules (``familyctx.linkage.linker.RULES``), each with what it does."""
    from familyctx.linkage.linker import RULES

    return [f"`{name}`: {RULE_EXPLANATIONS.get(name, '(see familyctx.linkage.linker)')}" for name in RULES]


def _summary(evaluation: Evaluation) -> list[str]:
    rows = []
    for r in evaluation.results:
        rows.append([
            f"{r.noise:g}" + (" (default)" if abs(r.noise - DEFAULT_NOISE) < 1e-9 else ""),
            _n(r.records),
            _n(r.true_pairs),
            _p(r.grade("certain").precision),
            _p(r.grade("probable").precision),
            _p(r.grade("possible").precision),
            _p(r.cumulative_for("certain").recall),
            _p(r.cumulative_for("certain + probable").recall),
            _p(r.cumulative_for("all grades").recall),
            _p(r.merge.precision),
        ])
    return _table(
        ["noise", "records", "true pairs", "precision certain", "precision probable", "precision possible",
         "recall certain", "recall certain + probable", "recall all", "merge precision"],
        rows,
    )


def _result_section(r: NoiseResult) -> list[str]:
    default = abs(r.noise - DEFAULT_NOISE) < 1e-9
    title = f"### Noise {r.noise:g}" + (" (the default noise level)" if default else "")
    blocked = r.true_pairs_blocked / r.true_pairs if r.true_pairs else None
    out = [
        title,
        "",
        f"{_n(r.records)} council records of {_n(r.people)} people in {r.councils} councils; "
        f"{_n(r.true_pairs)} true pairs; {_n(r.candidate_pairs)} candidate pairs from blocking, holding "
        f"{_n(r.true_pairs_blocked)} of the true pairs ({_p(blocked)}).",
        "",
    ]
    rows = []
    for g in r.grades:
        rows.append([f"{g.grade} (this grade only)", _n(g.pairs), _n(g.true), _n(g.pairs - g.true),
                     _p(g.precision), "", ""])
    for c in r.cumulative:
        linked = c.true_positives + c.false_positives
        rows.append([f"{c.label} (cumulative)", _n(linked), _n(c.true_positives), _n(c.false_positives),
                     _p(c.precision), _p(c.recall), _p(c.f1)])
    m = r.merge
    rows.append(["merged groups (certain, transitive)", _n(m.implied_pairs), _n(m.true),
                 _n(m.implied_pairs - m.true), _p(m.precision), _p(m.recall), _p(m.f1)])
    out += _table(["pairs", "linked", "true", "wrong", "precision", "recall", "F1"], rows)
    out += [
        "",
        f"Merged groups: {_n(m.groups)} of two or more records; largest {m.largest} records; "
        f"{m.same_council_groups} holding two records of one council.",
        "",
    ]
    return out


def _fields(d: PairDetail) -> str:
    return "; ".join(f"{name}: {level}" for name, level, _ in d.fields)


def _pair_rows(details: Sequence[PairDetail]) -> list[list[str]]:
    return [
        [
            d.left,
            d.right,
            d.grade or "not linked",
            f"{d.match_probability:.4f}",
            f"{d.match_weight:+.2f}",
            _fields(d),
            ", ".join(d.rules) or "—",
            ", ".join(d.left_quirks) or "—",
            ", ".join(d.right_quirks) or "—",
            "yes" if d.blocked else "no",
        ]
        for d in details
    ]


_PAIR_HEADER = ["left", "right", "grade", "probability", "weight", "field levels", "guard rules",
                "quirks left", "quirks right", "blocked"]


def _by_grade(counts: dict[str, int]) -> str:
    order = ["certain", "probable", "possible", "not linked"]
    return ", ".join(f"{counts[g]:,} {g}" for g in order if counts.get(g))


def _listing(r: NoiseResult) -> list[str]:
    out = [
        f"## Wrong pairs at noise {r.noise:g}",
        "",
        f"{_n(r.wrong_total)} pairs graded but not the same person"
        + (f" ({_by_grade(r.wrong_by_grade)})" if r.wrong_total else "")
        + (f"; the first {LIST_CAP} shown" if r.wrong_total > LIST_CAP else "")
        + ", strongest grade and probability first. Records are synthetic: ids and quirks are shown.",
        "",
    ]
    if r.wrong:
        out += _table(_PAIR_HEADER, _pair_rows(r.wrong), "lllrrllllc")
        out.append("")
    out += [
        f"## Missed pairs at noise {r.noise:g}",
        "",
        f"{_n(r.missed_total)} true pairs graded neither certain nor probable"
        + (f" ({_by_grade(r.missed_by_grade)})" if r.missed_total else "")
        + (f"; the first {LIST_CAP} shown" if r.missed_total > LIST_CAP else "")
        + ". 'blocked: no' means no query could bring the two records together.",
        "",
    ]
    if r.missed:
        out += _table(_PAIR_HEADER, _pair_rows(r.missed), "lllrrllllc")
        out.append("")
    return out


def render_report(
    evaluation: Evaluation,
    *,
    model: Any,
    thresholds: Any,
    rules: Sequence[str] | None = None,
    machine: str | None = None,
) -> str:
    """The Markdown report of ``evaluation`` (see docs/linkage.md for the sections). ``model`` is a
    ``LinkModel`` and ``thresholds`` a ``Thresholds``; ``machine`` defaults to
    :func:`machine_description`. Only the run line varies between identical runs."""
    default = evaluation.at(DEFAULT_NOISE)
    missed = check_targets(evaluation)
    noise_list = ", ".join(f"{r.noise:g}" for r in evaluation.results)
    out = [
        "# Record linkage across councils: evaluation",
        "",
        "<!-- Generated by `make linkage-eval` (familyctx linkage eval --report docs/linkage.md);"
        " do not edit by hand. -->",
        "",
        "Regenerate with `make linkage-eval` (under a minute); it fails when the targets are missed.",
        "",
        f"Run: {evaluation.started_at:%Y-%m-%d %H:%M} UTC on {machine or machine_description()}; "
        f"wall time {evaluation.seconds:.0f} s.",
        "",
        f"Data: synthetic worlds from `familyctx synth` (three demo councils), {evaluation.people:,} true "
        f"people each, seed {evaluation.seed}, noise levels {noise_list} (share of council records given a "
        "real-data quirk: typos, name variants, day/month swaps, invalid or placeholder NHS numbers, "
        "postcode forms, ...). Each council's records are read through the adapter's own mapping and the "
        "gateway's conversion, exactly as a query sees them.",
        "",
        f"Model evaluated: `{_model_source(model)}`"
        + (" (the packaged model)." if _is_packaged(model) else " (not the packaged model)."),
        "",
        "## Targets",
        "",
    ]
    too_small = sample_too_small(default) if default is not None else None
    target_rows = []
    if default is None:
        target_rows = [[f"{name} at noise {DEFAULT_NOISE:g}", f"≥ {target}", "—", "—"]
                       for name, target in TARGETS.items()]
    else:
        for check in target_checks(default):
            if not check.judged:
                met = f"not judged: {check.sample:,} {check.sample_label}, at least {check.needed:,} needed"
            else:
                met = "met" if check.met else "**missed**"
            target_rows.append(
                [f"{check.name} at noise {DEFAULT_NOISE:g}", f"≥ {check.target}", _p(check.value), met]
            )
    out += _table(["target", "required", "measured", ""], target_rows, "lrrl")
    out.append("")
    if default is None:
        out += [f"The default noise level {DEFAULT_NOISE:g} was not evaluated: targets not checked.", ""]
    else:
        judged_missed = [m for m in missed if m != too_small]
        if judged_missed:
            out += ["**Targets missed**: " + "; ".join(judged_missed) + ".", ""]
        if too_small:
            out += [f"**Targets not judged**: {too_small}.", ""]
    out += ["## Results", "", METRICS, *_summary(evaluation), ""]
    for r in evaluation.results:
        out += _result_section(r)
    if default is not None:
        out += _listing(default)
    out += ["## Method", "", "### Normalisation", "", NORMALISATION, "### Blocking (candidate pairs)", "",
            BLOCKING, "### Unborn children", "", UNBORN]
    out += _model_section(model, thresholds, guard_rules() if rules is None else rules)
    return "\n".join(out).rstrip("\n") + "\n"


def write_report(evaluation: Evaluation, path: Path, *, linker: Any = None) -> Path:
    """Write :func:`render_report` of ``evaluation`` to ``path`` (UTF-8); returns ``path``.

    The model and thresholds are the ``linker``'s (``familyctx.linkage.Linker``), else the packaged
    defaults. Raises OSError when the file cannot be written.
    """
    from familyctx.linkage import LinkModel, Thresholds

    model = getattr(linker, "model", None) or LinkModel.default()
    thresholds = getattr(linker, "thresholds", None) or Thresholds.default()
    text = render_report(evaluation, model=model, thresholds=thresholds)
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)
