"""Readable terminal rendering of gateway answers (rich tables), for ``familyctx query`` and the demo.

Input shapes are the gateway's published schemas (``familyctx_gateway.api.schemas``). Every source's
state is shown explicitly; the six per-person outcomes of domain.md (records found, none found, not in
cohort, withheld, unavailable or timed out, stale) each have their own symbol and colour, so a blank
is never ambiguous. A partial answer (a council that did not answer: any state of the schema's
``SourceState`` or ``CouncilSearchState`` other than the answered ones, :data:`NOT_ANSWERED_STATES`,
so a state added to the schema is flagged, never silently passed over) and stale datasets are announced
in a banner BEFORE the tables, and so is an answer given under break glass (a BREAK GLASS banner and
header). Each dataset state's reason, as its council gave it ("withheld by Manchester policy"), is
printed once under the per-person states and marked ``[n]`` where it applies; what a policy withheld from
records it did share ("practitioner phone numbers withheld by Stockport policy") is also said beside
each involvement, so nothing withheld is silently missing. Nothing is cut with "…": every column
folds, and on a terminal narrower than :data:`WIDE_LAYOUT_MIN_WIDTH` involvements are printed one block
per person so that practitioner contact details stay whole on one line. Text that came from elsewhere
(a worker's name from their token, a reason they typed, a council's reason) is printed as plain text
with control and invisible formatting characters escaped (:func:`printable`), never as rich markup.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import defaultdict
from typing import Any

from familyctx_gateway.api.schemas import CouncilSearchState, DatasetState, SourceState
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = [
    "ANSWERED_STATES",
    "LEGEND_STATES",
    "NOT_ANSWERED_STATES",
    "STATE_STYLES",
    "WIDE_LAYOUT_MIN_WIDTH",
    "break_glass_banner",
    "completeness_banner",
    "conflict_notes",
    "evidence_text",
    "printable",
    "render_break_glass_notifications",
    "render_family_context",
    "render_search",
    "short_time",
    "source_label",
    "state_label",
]

#: Terminal width (columns) from which involvements are one table; below it, one block per person.
WIDE_LAYOUT_MIN_WIDTH = 140

#: state -> (symbol, words, style). Keys cover dataset states, council search states and source states.
STATE_STYLES: dict[str, tuple[str, str, str]] = {
    "records_found": ("●", "records found", "bold green"),
    "none_found": ("○", "searched, none found", "cyan"),
    "not_in_cohort": ("–", "not in cohort", "blue"),
    "withheld": ("⊘", "withheld by policy", "magenta"),
    "stale": ("⚠", "stale data", "bold yellow"),
    "unavailable": ("✖", "source unavailable", "bold red"),
    "timed_out": ("⏱", "timed out", "bold red"),
    "refused": ("⊘", "refused", "bold red"),
    "error": ("✖", "source error", "bold red"),
    "circuit_open": ("⊗", "circuit open: not asked, failing recently", "bold red"),
    "possible_match_only": ("?", "possible match only", "yellow"),
    "not_searched": ("·", "not searched", "dim"),
    "ok": ("●", "answered", "green"),
    "unknown": ("◌", "not asked", "bold red"),
    "unspecified": ("¿", "state not given by the council", "dim"),
}

#: States in which a council answered: for the whole request (``SourceState.ok``) or for one person
#: (``CouncilSearchState``: records found, a possible match only, none found, or not searched because
#: the person had no identifiers good enough to search on).
ANSWERED_STATES: frozenset[str] = frozenset(
    {
        SourceState.ok.value,
        CouncilSearchState.records_found.value,
        CouncilSearchState.possible_match_only.value,
        CouncilSearchState.none_found.value,
        CouncilSearchState.not_searched.value,
    }
)

#: Every other state of the schema's ``SourceState`` and ``CouncilSearchState``: the council did not
#: answer (unavailable, timed out, refused, error, circuit open, not asked), so what it holds is missing.
#: Derived from the enums, so that a state added to the schema is announced as missing by default.
NOT_ANSWERED_STATES: frozenset[str] = (
    frozenset(state.value for state in SourceState) | frozenset(state.value for state in CouncilSearchState)
) - ANSWERED_STATES

#: The states the legend under the per-person table always explains (the six of domain.md, and timed
#: out); any other state shown in that table is added to the legend after them.
LEGEND_STATES: tuple[str, ...] = (
    DatasetState.records_found.value,
    DatasetState.none_found.value,
    DatasetState.not_in_cohort.value,
    DatasetState.withheld.value,
    DatasetState.stale.value,
    CouncilSearchState.unavailable.value,
    CouncilSearchState.timed_out.value,
)


#: Unicode categories escaped by :func:`printable`: control, format (bidirectional overrides, zero-width
#: characters), private use, surrogates, line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def printable(value: object) -> str:
    """``value`` as text fit for a terminal line: every control or invisible formatting character (a
    terminal escape, a line break, a right-to-left override) written as its escape (``\\x1b``,
    ``\\u202e``), so text from a token or typed by someone cannot move the cursor, recolour or reorder
    what follows. Print the result as a rich ``Text``, never as markup."""
    out = []
    for char in str(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            code = ord(char)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            else:
                out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def short_time(value: Any) -> str:
    """An ISO 8601 time (text or datetime) as ``2026-11-29 17:03 UTC`` (20 characters, never split
    across lines in a narrow column); text that is not a time is shown :func:`printable`."""
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        return printable(value)
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def break_glass_banner(response: Any) -> Panel | None:
    """The BREAK GLASS banner of an answer given under a break-glass grant (``response.break_glass``:
    its id and expiry), printed before everything else; None for an ordinary answer."""
    grant = getattr(response, "break_glass", None)
    if grant is None:
        return None
    text = Text("BREAK GLASS", style="bold white on red")
    text.append(
        f"  This answer was given under break-glass grant {printable(grant.id)}, valid until "
        f"{short_time(grant.expires_at)}. Every council asked was told it is break glass, with your "
        "reason, and its IG officers are notified.",
        style="bold red",
    )
    return Panel(text, title="BREAK GLASS", title_align="left", border_style="bold red")


def state_label(state: str) -> Text:
    """The symbol, words and colour for ``state`` (unknown states shown verbatim, never hidden)."""
    symbol, words, style = STATE_STYLES.get(state, ("?", state, "dim"))
    return Text(f"{symbol} {words}", style=style)


def _date(value: Any) -> str:
    return str(value) if value else ""


def _table(title: str, *columns: str) -> Table:
    """A titled table whose every column folds long values instead of cutting them with "…"."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


_MISSING_WHAT = {
    "family_context": "people, links and services held there are missing from this answer",
    "search": "people recorded there are missing from these results",
}


def completeness_banner(
    sources: list[Any], *, kind: str = "family_context", people: list[Any] | None = None
) -> Panel | None:
    """The banner printed before any table: one ``INCOMPLETE:`` line per council that did not answer
    (any state in :data:`NOT_ANSWERED_STATES`: unavailable, timed out, refused, error, circuit open, not
    asked) and one ``STALE:`` warning per dataset older than its promised refresh interval, or that a
    council marked ``stale`` for a person of ``people`` (``FamilyPerson`` list) without its freshness
    saying so. None when every council answered with fresh data. ``kind``: ``family_context`` or
    ``search`` (changes only what is said to be missing)."""
    lines: list[Text] = []
    for source in sources:
        state = source.state.value
        if state in NOT_ANSWERED_STATES:
            words = _state_words(state)
            if state == "refused" and source.detail:
                # Refused by its sharing policy, or refused the gateway itself: the detail says which.
                words = printable(source.detail)
            line = Text(
                f"INCOMPLETE: {source.name} ({source.gss_code}) did not answer ({words}): "
                f"{_MISSING_WHAT[kind]}.",
                style="bold red",
            )
            lines.append(line)
    for source in sources:
        for dataset in source.datasets:
            if not dataset.stale:
                continue
            when = (
                dataset.refreshed_at.strftime("%Y-%m-%d %H:%M UTC")
                if dataset.refreshed_at
                else "an unknown time"
            )
            promise = (
                f" (promised every {_interval(dataset.refresh_interval_seconds)})"
                if dataset.refresh_interval_seconds
                else ""
            )
            what = dataset.name or dataset.dataset_id
            lines.append(
                Text(
                    f"STALE: {source.name} ({source.gss_code}) {what} data was last refreshed "
                    f"{when}{promise}: it may be out of date.",
                    style="bold yellow",
                )
            )
    lines.extend(_marked_stale_lines(sources, people or []))
    if not lines:
        return None
    incomplete = any(line.plain.startswith("INCOMPLETE") for line in lines)
    title = "PARTIAL ANSWER: not every council answered" if incomplete else "Warning: stale data"
    return Panel(
        Text("\n").join(lines),
        title=title,
        title_align="left",
        border_style="bold red" if incomplete else "bold yellow",
    )


def _marked_stale_lines(sources: list[Any], people: list[Any]) -> list[Text]:
    """``STALE:`` lines for datasets a council marked ``stale`` for a person whose freshness (the
    council's Describe, in ``sources``) does not already say so: one per council and dataset."""
    names = {source.gss_code: source.name for source in sources}
    announced = {(s.gss_code, d.dataset_id) for s in sources for d in s.datasets if d.stale}
    lines = []
    for person in people:
        for state in person.dataset_states:
            key = (state.gss_code, state.dataset_id)
            if state.state.value != DatasetState.stale.value or key in announced:
                continue
            announced.add(key)
            lines.append(
                Text(
                    f"STALE: {names.get(state.gss_code, state.gss_code)} ({state.gss_code}) "
                    f"{printable(state.dataset_id)} data is marked stale by the council: it may be out "
                    "of date.",
                    style="bold yellow",
                )
            )
    return lines


def _state_words(state: str) -> str:
    """The words for ``state`` (the state itself when it has none: never hidden)."""
    return STATE_STYLES.get(state, ("?", state, "dim"))[1]


def _interval(seconds: int) -> str:
    if seconds % 86_400 == 0:
        days = seconds // 86_400
        return "day" if days == 1 else f"{days} days"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{seconds} s"


def source_label(council_name: str, provenance: Any) -> str:
    """Where a fact came from, readably: ``Stockport · Liquidlogic LCS (ssd_cin_episodes)``."""
    if provenance is None:
        return council_name
    label = council_name
    if provenance.source_system:
        label += f" · {provenance.source_system}"
    if provenance.source_table:
        label += f" ({provenance.source_table})"
    return label


def _person_name(person: Any) -> str:
    return f"{person.given_name} {person.family_name}".strip() or person.person_id


def _sources_table(sources: list[Any]) -> Table:
    table = _table("Sources", "council", "state", "latency", "datasets (last refreshed)")
    for source in sources:
        state = state_label(source.state.value)
        if source.detail:
            state.append(f"\n{source.detail}", style="dim")
        datasets = Text()
        for index, dataset in enumerate(source.datasets):
            refreshed = dataset.refreshed_at.strftime("%Y-%m-%d %H:%M") if dataset.refreshed_at else "unknown"
            line = ("\n" if index else "") + f"{dataset.dataset_id}: {refreshed}"
            datasets.append(
                line + (" STALE" if dataset.stale else ""), style="bold yellow" if dataset.stale else ""
            )
        latency = f"{source.latency_ms} ms" if source.latency_ms is not None else ""
        table.add_row(f"{source.name} ({source.gss_code})", state, latency, datasets)
    return table


def _records_text(records: list[Any]) -> Text:
    lines = []
    for record in records:
        nhs = f" NHS {record.nhs_number}" if record.nhs_number else ""
        postcode = f" {record.address.postcode}" if record.address and record.address.postcode else ""
        lines.append(f"{record.council_name}: {record.local_person_id}{nhs}{postcode}")
    return Text("\n".join(lines))


#: Field names of match evidence, in words.
_FIELD_WORDS = {
    "nhs_number": "NHS number",
    "given_name": "given name",
    "family_name": "family name",
    "date_of_birth": "date of birth",
    "sex": "sex",
    "postcode": "postcode",
}

#: Evidence outcomes, in the order they are listed, with their line's heading and style.
_OUTCOME_LINES = (
    ("agree", "agreed", "green"),
    ("similar", "similar", "green"),
    ("swapped", "swapped", "yellow"),
    ("partial", "partly agreed", "yellow"),
    ("disagree", "disagreed", "red"),
    ("missing", "missing", "dim"),
)


#: Conflict field names not in :data:`_FIELD_WORDS`.
_CONFLICT_WORDS = {**_FIELD_WORDS, "address": "address"}


def conflict_notes(conflicts: list[Any]) -> list[str]:
    """One line per ``FieldConflict`` of a merged person (search candidate or family person), every
    value kept, none chosen: "recorded differently: date of birth 1979-12-15 / 1979-12-09". Values
    are :func:`printable` (print the lines as rich ``Text``, never as markup)."""
    return [
        "recorded differently: "
        + printable(f"{_CONFLICT_WORDS.get(c.field, c.field.replace('_', ' '))} {' / '.join(c.values)}")
        for c in conflicts
    ]


def _field_words(evidence: Any) -> str:
    words = _FIELD_WORDS.get(evidence.field, evidence.field.replace("_", " "))
    details = [evidence.level] if evidence.level and evidence.outcome.value != "missing" else []
    if evidence.score is not None:
        details.append(f"similarity {evidence.score:g}")
    return f"{words} ({', '.join(details)})" if details else words


def evidence_text(evidence: Any) -> Text:
    """A ``MatchEvidence`` for a worker: the grade and match weight (log2 odds, with the probability),
    then one line per outcome naming the fields and their comparison levels ("agreed: family name
    (exact), date of birth (exact)"; "missing: NHS number"), then the guard rules that capped the grade."""
    text = Text(evidence.match_grade.value, style="bold")
    if evidence.match_weight is not None:
        text.append(f" · match weight {evidence.match_weight:+.1f}")
    if evidence.match_probability is not None:
        text.append(f" (probability {evidence.match_probability:.4f})")
    for outcome, heading, style in _OUTCOME_LINES:
        fields = [_field_words(f) for f in evidence.fields if f.outcome.value == outcome]
        if fields:
            text.append(f"\n{heading}: ", style=style)
            text.append(printable(", ".join(fields)))
    for rule in evidence.rules:
        text.append(f"\ncapped: {printable(rule)}", style="yellow")
    return text


def _possible_matches_table(rows: list[tuple[str, str, Any]]) -> Table:
    table = _table(
        "Possible matches (not merged: confirm before treating them as one person)",
        "record",
        "might be",
        "evidence",
    )
    for here, there, evidence in rows:
        table.add_row(here, there, evidence_text(evidence))
    return table


def _search_possible_matches(response: Any) -> list[tuple[str, str, Any]]:
    """Each probable/possible link between two candidates once (it is listed under both)."""
    rows, seen = [], set()
    for candidate in response.candidates:
        for match in candidate.possible_matches:
            pair = frozenset((candidate.candidate_id, match.candidate_id or ""))
            if pair in seen:
                continue
            seen.add(pair)
            rows.append((candidate.candidate_id, match.candidate_id or "", match.evidence))
    return rows


def render_search(response: Any, console: Console) -> None:
    """Print a ``SearchResponse``: the completeness banner (if any council did not answer or is stale),
    candidates with per-council records, match grade and notes (the fields a merged candidate's
    records disagree on, "recorded differently: ..."; its possible matches), the possible matches
    between candidates with their evidence (grade, match weight, fields agreed / disagreed / missing
    with their levels), then sources. An answer given under break glass starts with the BREAK GLASS
    banner."""
    glass = break_glass_banner(response)
    if glass is not None:
        console.print(glass)
    banner = completeness_banner(response.sources, kind="search")
    if banner is not None:
        console.print(banner)
    table = _table(
        f"Search results ({len(response.candidates)})",
        "candidate",
        "name",
        "date of birth",
        "match",
        "records (council: local id)",
        "notes",
    )
    for candidate in response.candidates:
        first = candidate.records[0] if candidate.records else None
        name = f"{first.given_name} {first.family_name}" if first else ""
        grade = candidate.match_grade.value if candidate.match_grade else "single record"
        notes = Text("\n".join(conflict_notes(candidate.conflicts)), style="yellow")
        possible = ", ".join(f"{p.candidate_id} ({p.match_grade.value})" for p in candidate.possible_matches)
        if possible:
            notes.append(("\n" if notes else "") + f"possible: {possible}")
        table.add_row(
            candidate.candidate_id,
            name,
            _date(first.date_of_birth if first else None),
            grade,
            _records_text(candidate.records),
            notes,
        )
    console.print(table)
    links = _search_possible_matches(response)
    if links:
        console.print(_possible_matches_table(links))
    console.print(_sources_table(response.sources))


def _people_table(response: Any) -> Table:
    table = _table("People", "id", "name", "date of birth", "match", "records (council: local id)", "notes")
    names = {s.gss_code: s.name for s in response.sources}
    for person in response.people:
        councils = {r.gss_code for r in person.records}
        grade = "certain (merged)" if len(person.records) > 1 else "single record"
        notes = conflict_notes(person.conflicts)
        for possible in person.possible_matches:
            where = possible.record.council_name if possible.record else possible.candidate_id
            notes.append(f"possible match ({possible.match_grade.value}) in {where}: not merged")
        for council_state in person.council_states:
            state = council_state.state.value
            if state in NOT_ANSWERED_STATES:
                notes.append(
                    f"{names.get(council_state.gss_code, council_state.gss_code)} did not answer: "
                    f"any records there are missing ({_state_words(state)})"
                )
        name = Text(_person_name(person), style="bold" if person.is_subject else "")
        if person.is_subject:
            name.append(" (subject)", style="bold cyan")
        table.add_row(
            person.person_id,
            name,
            _date(person.date_of_birth),
            f"{grade}, {len(councils)} council(s)",
            _records_text(person.records),
            Text("\n".join(notes), style="yellow"),
        )
    return table


def _family_possible_matches(response: Any) -> list[Table]:
    rows = []
    for person in response.people:
        for match in person.possible_matches:
            record = match.record
            there = f"{record.council_name}: {record.local_person_id}" if record else match.candidate_id or ""
            rows.append((f"{person.person_id} {_person_name(person)}", there, match.evidence))
    return [_possible_matches_table(rows)] if rows else []


def _relationships_table(response: Any, names: dict[str, str], councils: dict[str, str]) -> Table:
    """The subject's relationships, then every other pair once (its inverse is implied)."""
    table = _table(
        "Relationships (relative is the person's ...)", "person", "relative", "is their", "recorded by"
    )
    subject = response.subject_person_id
    ordered = sorted(response.relationships, key=lambda r: r.person_id != subject)
    seen: set[frozenset[str]] = set()
    for rel in ordered:
        pair = frozenset((rel.person_id, rel.related_person_id))
        if pair in seen:
            continue
        seen.add(pair)
        recorded = ", ".join(
            sorted({councils.get(p.council_gss_code, p.council_gss_code) for p in rel.provenance})
        )
        kind = rel.type.replace("_", " ") + (f" ({rel.description})" if rel.description else "")
        table.add_row(
            names.get(rel.person_id, rel.person_id),
            names.get(rel.related_person_id, rel.related_person_id),
            kind,
            recorded,
        )
    return table


def _practitioner_text(inv: Any) -> Text:
    practitioner = Text()
    if inv.practitioner and inv.practitioner.name:
        p = inv.practitioner
        practitioner.append(p.name, style="bold")
        practitioner.append("".join(f"\n{part}" for part in (p.role, p.team, p.phone, p.email) if part))
    else:
        practitioner.append("no named practitioner", style="dim")
    return practitioner


def _ordered_involvements(response: Any) -> list[Any]:
    return sorted(response.involvements, key=lambda i: (i.person_id, i.status.value != "open", i.service))


def _status_text(inv: Any) -> Text:
    return Text(inv.status.value, style="bold green" if inv.status.value == "open" else "dim")


def _dates(inv: Any) -> str:
    return f"{_date(inv.start_date)} – {_date(inv.end_date) or 'open'}"


def _withheld_notes(response: Any) -> dict[tuple[str, str, str], str]:
    """(council GSS code, local person id, dataset id) -> what the council's policy withheld from the
    records it did share (e.g. "practitioner phone numbers withheld by Stockport policy"): the parts of
    that dataset state's reason that say "withheld", escaped (:func:`printable`)."""
    notes = {}
    for person in response.people:
        for state in person.dataset_states:
            parts = [part.strip() for part in state.reason.split(";") if "withheld" in part]
            if parts and state.state.value != "withheld":
                key = (state.gss_code, state.local_person_id, state.dataset_id)
                notes[key] = printable("; ".join(parts))
    return notes


def _involvement_note(inv: Any, notes: dict[tuple[str, str, str], str]) -> str:
    return notes.get((inv.gss_code, inv.local_person_id, inv.dataset_id), "")


def _involvements_table(response: Any, names: dict[str, str], councils: dict[str, str]) -> Table:
    """Wide terminals: one row per involvement; what a council's policy withheld from it is said under
    the practitioner."""
    table = _table("Involvements", "person", "service", "status", "dates", "practitioner", "council / source")
    notes = _withheld_notes(response)
    for inv in _ordered_involvements(response):
        source = source_label(councils.get(inv.gss_code, inv.gss_code), inv.provenance)
        service = inv.service + (f"\n{inv.summary}" if inv.summary else "")
        practitioner = _practitioner_text(inv)
        if note := _involvement_note(inv, notes):
            practitioner.append(f"\n{note}", style="magenta")
        table.add_row(
            names.get(inv.person_id, inv.person_id),
            service,
            _status_text(inv),
            _dates(inv),
            practitioner,
            source,
        )
    return table


def _involvements_by_person(response: Any, names: dict[str, str], councils: dict[str, str]) -> Group:
    """Narrow terminals: one panel per person, one labelled block per involvement, values whole."""
    panels: list[RenderableType] = [Text("Involvements", style="italic")]
    by_person: dict[str, list[Any]] = defaultdict(list)
    notes = _withheld_notes(response)
    for inv in _ordered_involvements(response):
        by_person[inv.person_id].append(inv)
    for person_id, involvements in by_person.items():
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for index, inv in enumerate(involvements):
            if index:
                grid.add_row("", "")
            service = Text(inv.service, style="bold")
            service.append("  ").append_text(_status_text(inv)).append(f"  {_dates(inv)}")
            grid.add_row("service", service)
            if inv.summary:
                grid.add_row("summary", inv.summary)
            grid.add_row("practitioner", _practitioner_text(inv))
            if note := _involvement_note(inv, notes):
                grid.add_row("withheld", Text(note, style="magenta"))
            grid.add_row("source", source_label(councils.get(inv.gss_code, inv.gss_code), inv.provenance))
        panels.append(Panel(grid, title=names.get(person_id, person_id), title_align="left"))
    return Group(*panels)


def _states_table(response: Any, names: dict[str, str], councils: dict[str, str]) -> tuple[Group, set[str]]:
    """Per person, per council: the council state, or each dataset's own state, marked ``[n]`` when the
    council gave a reason (e.g. "withheld by Manchester policy"); the reasons follow the table, each once,
    printed whole (escaped, :func:`printable`), so nothing withheld is silently missing. Also returns
    the states shown (for the legend)."""
    codes = [s.gss_code for s in response.sources]
    table = _table(
        "What each source said, per person (\\[n]: the council's reason, below)",
        "person",
        *(councils.get(code, code) for code in codes),
    )
    reasons: dict[str, int] = {}
    shown: set[str] = set()

    def label(state: str) -> Text:
        shown.add(state)
        return state_label(state)

    for person in response.people:
        by_council: dict[str, list[Any]] = defaultdict(list)
        for state in person.dataset_states:
            by_council[state.gss_code].append(state)
        council_state = {c.gss_code: c for c in person.council_states}
        cells = []
        for code in codes:
            cell = Text()
            datasets = by_council.get(code)
            if datasets:
                for ds in sorted(datasets, key=lambda d: d.dataset_id):
                    cell.append(f"{ds.dataset_id}: ")
                    cell.append_text(label(ds.state.value))
                    if ds.reason:
                        number = reasons.setdefault(printable(ds.reason), len(reasons) + 1)
                        cell.append(f" [{number}]", style="bold")
                    cell.append("\n")
            elif code in council_state:
                cell.append_text(label(council_state[code].state.value))
            else:
                cell.append_text(label("not_searched"))
            cells.append(cell)
        table.add_row(names.get(person.person_id, person.person_id), *cells)
    notes = [Text(f"[{number}] ", style="bold").append(reason) for reason, number in reasons.items()]
    return Group(table, *notes), shown


def _legend(shown: set[str]) -> Text:
    """:data:`LEGEND_STATES`, then every other state in ``shown`` (in the order of
    :data:`STATE_STYLES`, unknown ones last), so that no symbol in the table goes unexplained."""
    rank = {state: index for index, state in enumerate(STATE_STYLES)}
    extra = sorted(set(shown) - set(LEGEND_STATES), key=lambda state: (rank.get(state, len(rank)), state))
    legend = Text("Legend: ")
    for state in (*LEGEND_STATES, *extra):
        legend.append_text(state_label(state))
        legend.append("   ")
    return legend


def render_family_context(response: Any, console: Console) -> None:
    """Print a ``FamilyContextResponse``: header, the completeness banner (councils that did not answer,
    stale datasets), people, their possible matches with the evidence (not merged), relationships,
    involvements, per-person states, legend, sources."""
    names = {p.person_id: _person_name(p) for p in response.people}
    councils = {s.gss_code: s.name for s in response.sources}
    header = Text("Family context  ")
    if getattr(response, "break_glass", None) is not None:
        header.append("BREAK GLASS", style="bold white on red")
        header.append("  ")
    header.append(
        f"purpose {response.purpose.value}  case {response.case_reference}  request {response.request_id}"
    )
    glass = break_glass_banner(response)
    console.print(Panel(header, style="bold red" if glass is not None else "bold"))
    if glass is not None:
        console.print(glass)
    banner = completeness_banner(response.sources, people=response.people)
    if banner is not None:
        console.print(banner)
    if not response.people:
        down = [f"{s.name}: {_state_words(s.state.value)}" for s in response.sources if s.state.value != "ok"]
        console.print(
            Text(
                "No family context: the subject's council did not answer"
                + (f" ({'; '.join(down)})" if down else "")
                + ". Nothing here means 'no records'.",
                style="bold red",
            )
        )
        console.print(_sources_table(response.sources))
        return
    states, shown = _states_table(response, names, councils)
    console.print(
        Group(
            _people_table(response),
            *_family_possible_matches(response),
            _relationships_table(response, names, councils),
            (
                _involvements_table(response, names, councils)
                if console.width >= WIDE_LAYOUT_MIN_WIDTH
                else _involvements_by_person(response, names, councils)
            ),
            states,
            _legend(shown),
            _sources_table(response.sources),
        )
    )


def render_break_glass_notifications(page: dict[str, Any], console: Console) -> None:
    """Print a ``GET /v1/break-glass/notifications`` page (JSON as received) one block per notification,
    label and value on a line each, so that it reads whole at 80 columns: times as ``2026-11-29 17:03
    UTC``, long reasons wrapped at words, every value from a token or typed by a worker escaped
    (:func:`printable`) and printed as plain text."""
    notifications = page.get("notifications") or []
    if not notifications:
        console.print("No break-glass notifications.")
        return
    console.print(Text(f"Break-glass notifications ({len(notifications)})", style="bold"))
    for n in notifications:
        worker = n.get("worker") or {}
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        if n.get("notified_because") == "used":
            first = short_time(n.get("first_used_at"))
            why = Text(f"first asked for data here at {first}")
        else:
            why = Text("opened by a worker of this council")
        grid.add_row("notified", why)
        name, organisation = printable(worker.get("name", "")), printable(worker.get("organisation", ""))
        grid.add_row("worker", Text(f"{name} ({organisation})"))
        case = printable(n.get("case_reference", ""))
        grid.add_row("purpose", Text(f"{printable(n.get('purpose', ''))}, case {case}"))
        opened, expires = short_time(n.get("opened_at")), short_time(n.get("expires_at"))
        grid.add_row("opened", Text(f"{opened}, expires {expires}"))
        grid.add_row("reason", Text(printable(n.get("reason", ""))))
        grid.add_row("grant", Text(printable(n.get("break_glass_id", ""))))
        title = Text(f"#{printable(n.get('id', ''))} break glass", style="bold red")
        console.print(Panel(grid, title=title, title_align="left", border_style="red"))
    if page.get("next_after") is not None:
        console.print(Text(f"More: --after {printable(page['next_after'])}"))
