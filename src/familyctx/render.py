"""Readable terminal rendering of gateway answers (rich tables), for ``familyctx query`` and the demo.

Input shapes are the gateway's published schemas (``familyctx_gateway.api.schemas``). Every source's
state is shown explicitly; the six per-person outcomes of domain.md (records found, none found, not in
cohort, withheld, unavailable or timed out, stale) each have their own symbol and colour, so a blank
is never ambiguous.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["STATE_STYLES", "render_family_context", "render_search", "state_label"]

#: state -> (symbol, words, style). Keys cover dataset states, council search states and source states.
STATE_STYLES: dict[str, tuple[str, str, str]] = {
    "records_found": ("●", "records found", "bold green"),
    "none_found": ("○", "searched, none found", "cyan"),
    "not_in_cohort": ("–", "not in cohort", "blue"),
    "withheld": ("⊘", "withheld by policy", "magenta"),
    "stale": ("⚠", "stale data", "bold yellow"),
    "unavailable": ("✖", "source unavailable", "bold red"),
    "timed_out": ("⏱", "timed out", "bold red"),
    "error": ("✖", "source error", "bold red"),
    "possible_match_only": ("?", "possible match only", "yellow"),
    "not_searched": ("·", "not searched", "dim"),
    "ok": ("●", "answered", "green"),
    "unknown": ("?", "not yet asked", "dim"),
    "unspecified": ("?", "unspecified", "dim"),
}


def state_label(state: str) -> Text:
    """The symbol, words and colour for ``state`` (unknown states shown verbatim, never hidden)."""
    symbol, words, style = STATE_STYLES.get(state, ("?", state, "dim"))
    return Text(f"{symbol} {words}", style=style)


def _date(value: Any) -> str:
    return str(value) if value else ""


def _person_name(person: Any) -> str:
    return f"{person.given_name} {person.family_name}".strip() or person.person_id


def _sources_table(sources: list[Any]) -> Table:
    table = Table(title="Sources", title_justify="left", expand=False)
    for column in ("council", "state", "latency", "datasets (last refreshed)"):
        table.add_column(column)
    for source in sources:
        state = state_label(source.state.value)
        if source.detail:
            state.append(f"\n{source.detail}", style="dim")
        datasets = Text()
        for index, dataset in enumerate(source.datasets):
            refreshed = dataset.refreshed_at.strftime("%Y-%m-%d %H:%M") if dataset.refreshed_at else "unknown"
            line = ("\n" if index else "") + f"{dataset.dataset_id}: {refreshed}"
            datasets.append(line + (" STALE" if dataset.stale else ""),
                            style="bold yellow" if dataset.stale else "")
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


def render_search(response: Any, console: Console) -> None:
    """Print a ``SearchResponse``: candidates with per-council records and match grade, then sources."""
    table = Table(title=f"Search results ({len(response.candidates)})", title_justify="left")
    for column in ("candidate", "name", "date of birth", "match", "records (council: local id)", "possible"):
        table.add_column(column)
    for candidate in response.candidates:
        first = candidate.records[0] if candidate.records else None
        name = f"{first.given_name} {first.family_name}" if first else ""
        grade = candidate.match_grade.value if candidate.match_grade else "single record"
        possible = ", ".join(f"{p.candidate_id} ({p.match_grade.value})" for p in candidate.possible_matches)
        table.add_row(candidate.candidate_id, name, _date(first.date_of_birth if first else None),
                      grade, _records_text(candidate.records), possible)
    console.print(table)
    console.print(_sources_table(response.sources))


def _people_table(response: Any) -> Table:
    table = Table(title="People", title_justify="left")
    for column in ("id", "name", "date of birth", "match", "records (council: local id)", "notes"):
        table.add_column(column)
    for person in response.people:
        councils = {r.gss_code for r in person.records}
        grade = "certain (merged)" if len(person.records) > 1 else "single record"
        notes = [f"recorded differently: {c.field} {' / '.join(c.values)}" for c in person.conflicts]
        for possible in person.possible_matches:
            where = possible.record.council_name if possible.record else possible.candidate_id
            notes.append(f"possible match ({possible.match_grade.value}) in {where}: not merged")
        name = Text(_person_name(person), style="bold" if person.is_subject else "")
        if person.is_subject:
            name.append(" (subject)", style="bold cyan")
        table.add_row(person.person_id, name, _date(person.date_of_birth),
                      f"{grade}, {len(councils)} council(s)", _records_text(person.records),
                      Text("\n".join(notes), style="yellow"))
    return table


def _relationships_table(response: Any, names: dict[str, str], councils: dict[str, str]) -> Table:
    """The subject's relationships, then every other pair once (its inverse is implied)."""
    table = Table(title="Relationships (relative is the person's ...)", title_justify="left")
    for column in ("person", "relative", "is their", "recorded by"):
        table.add_column(column)
    subject = response.subject_person_id
    ordered = sorted(response.relationships, key=lambda r: r.person_id != subject)
    seen: set[frozenset[str]] = set()
    for rel in ordered:
        pair = frozenset((rel.person_id, rel.related_person_id))
        if pair in seen:
            continue
        seen.add(pair)
        recorded = ", ".join(sorted({councils.get(p.council_gss_code, p.council_gss_code)
                                     for p in rel.provenance}))
        kind = rel.type.replace("_", " ") + (f" ({rel.description})" if rel.description else "")
        table.add_row(names.get(rel.person_id, rel.person_id), names.get(rel.related_person_id,
                      rel.related_person_id), kind, recorded)
    return table


def _involvements_table(response: Any, names: dict[str, str], councils: dict[str, str]) -> Table:
    table = Table(title="Involvements", title_justify="left")
    for column in ("person", "service", "status", "dates", "practitioner", "council / source"):
        table.add_column(column)
    ordered = sorted(response.involvements, key=lambda i: (i.person_id, i.status.value != "open", i.service))
    for inv in ordered:
        status = Text(inv.status.value, style="bold green" if inv.status.value == "open" else "dim")
        dates = f"{_date(inv.start_date)} – {_date(inv.end_date) or 'open'}"
        practitioner = Text()
        if inv.practitioner and inv.practitioner.name:
            p = inv.practitioner
            practitioner.append(p.name, style="bold")
            practitioner.append("".join(f"\n{part}" for part in (p.role, p.team, p.phone, p.email) if part))
        else:
            practitioner.append("no named practitioner", style="dim")
        source = councils.get(inv.gss_code, inv.gss_code)
        if inv.provenance:
            source += f"\n{inv.provenance.source_system}: {inv.provenance.source_table}"
        service = inv.service + (f"\n{inv.summary}" if inv.summary else "")
        table.add_row(names.get(inv.person_id, inv.person_id), service, status, dates, practitioner, source)
    return table


def _states_table(response: Any, names: dict[str, str], councils: dict[str, str]) -> Table:
    """Per person, per council: the council state, or each dataset's own state."""
    codes = [s.gss_code for s in response.sources]
    table = Table(title="What each source said, per person", title_justify="left")
    table.add_column("person")
    for code in codes:
        table.add_column(councils.get(code, code))
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
                    cell.append_text(state_label(ds.state.value))
                    cell.append("\n")
            elif code in council_state:
                cell.append_text(state_label(council_state[code].state.value))
            else:
                cell.append_text(state_label("not_searched"))
            cells.append(cell)
        table.add_row(names.get(person.person_id, person.person_id), *cells)
    return table


_LEGEND_STATES = (
    "records_found", "none_found", "not_in_cohort", "withheld", "stale", "unavailable", "timed_out",
)


def _legend() -> Text:
    legend = Text("Legend: ")
    for state in _LEGEND_STATES:
        legend.append_text(state_label(state))
        legend.append("   ")
    return legend


def render_family_context(response: Any, console: Console) -> None:
    """Print a ``FamilyContextResponse``: people, relationships, involvements, states, sources."""
    names = {p.person_id: _person_name(p) for p in response.people}
    councils = {s.gss_code: s.name for s in response.sources}
    header = Text(f"Family context  purpose {response.purpose.value}  case {response.case_reference}  "
                  f"request {response.request_id}")
    console.print(Panel(header, style="bold"))
    if not response.people:
        down = [f"{s.name}: {STATE_STYLES.get(s.state.value, ('', s.state.value, ''))[1]}"
                for s in response.sources if s.state.value != "ok"]
        console.print(Text("No family context: the subject's council did not answer"
                           + (f" ({'; '.join(down)})" if down else "") + ". Nothing here means 'no records'.",
                           style="bold red"))
        console.print(_sources_table(response.sources))
        return
    console.print(Group(
        _people_table(response),
        _relationships_table(response, names, councils),
        _involvements_table(response, names, councils),
        _states_table(response, names, councils),
        _legend(),
        _sources_table(response.sources),
    ))
