"""Rendering of break glass in the command line: the BREAK GLASS marker on answers given under a grant,
the notification listing readable at 80 columns, text from tokens and workers printed escaped (never as
terminal control or rich markup), and a council's policy refusal told apart from a refusal of the
gateway."""

from __future__ import annotations

from typing import Any

import pytest
from familyctx_gateway.api.schemas import FamilyContextResponse, SearchResponse
from rich.console import Console

from familyctx.render import (
    printable,
    render_break_glass_notifications,
    render_family_context,
    render_search,
    short_time,
)

STOCKPORT, LEEDS = "E08000007", "E08000035"
GRANT = "80cd79d7-d270-4d08-8f50-b7d0ac5ddb97"
MARKER = {"id": GRANT, "expires_at": "2026-11-29T17:33:24.353000Z"}


def _text(render: Any, value: Any, width: int = 120) -> str:
    console = Console(record=True, width=width, color_system=None)
    render(value, console)
    return console.export_text()


def _sources(**leeds: Any) -> list[dict[str, Any]]:
    return [
        {"gss_code": STOCKPORT, "name": "Stockport", "state": "ok", "latency_ms": 3},
        {"gss_code": LEEDS, "name": "Leeds", "state": "ok", "latency_ms": 4, **leeds},
    ]


def _family(**extra: Any) -> FamilyContextResponse:
    return FamilyContextResponse.model_validate(
        {
            "request_id": "req-1",
            "purpose": "early_help_assessment",
            "case_reference": "CASE-1",
            "subject_person_id": None,
            "people": [],
            "relationships": [],
            "involvements": [],
            "sources": _sources(),
            **extra,
        }
    )


def _search(**extra: Any) -> SearchResponse:
    return SearchResponse.model_validate(
        {
            "request_id": "req-2",
            "purpose": "s47_enquiry",
            "case_reference": "CASE-2",
            "candidates": [],
            "sources": _sources(),
            **extra,
        }
    )


def test_answers_under_break_glass_are_marked_before_anything_else() -> None:
    family = _text(render_family_context, _family(break_glass=MARKER))
    lines = family.splitlines()
    assert "Family context  BREAK GLASS  purpose early_help_assessment" in lines[1]
    assert "BREAK GLASS" in family.split("Sources")[0]
    assert GRANT in family and "2026-11-29 17:33 UTC" in family
    search = _text(render_search, _search(break_glass=MARKER))
    assert search.splitlines()[0].startswith("╭─ BREAK GLASS")
    assert search.index("BREAK GLASS") < search.index("Search results")


def test_ordinary_answers_have_no_marker() -> None:
    assert "BREAK GLASS" not in _text(render_family_context, _family())
    assert "BREAK GLASS" not in _text(render_search, _search())


def test_a_councils_policy_refusal_is_told_apart_from_a_refusal_of_the_gateway() -> None:
    policy = _search(
        sources=_sources(state="refused", detail="Leeds refused this request under its sharing policy")
    )
    text = " ".join(_text(render_search, policy, width=200).split())
    assert "Leeds (E08000035) did not answer (Leeds refused this request under its sharing policy)" in text
    gateway = _search(
        sources=_sources(
            state="refused",
            detail="Leeds's adapter refused the gateway's credentials (certificate or assertion): ask the "
            "federation's operators",
        )
    )
    assert "refused the gateway's credentials" in " ".join(_text(render_search, gateway, width=200).split())


def _page(**worker: Any) -> dict[str, Any]:
    base = {
        "id": 12,
        "council_gss_code": STOCKPORT,
        "break_glass_id": GRANT,
        "notified_because": "used",
        "first_used_at": "2026-11-29T17:05:01.100000Z",
        "worker": {"sub": "user-1", "name": "Sam Walker", "organisation": STOCKPORT, **worker},
        "purpose": "early_help_assessment",
        "case_reference": "CASE-1",
        "reason": "Out of hours emergency, need early help history now " * 3,
        "opened_at": "2026-11-29T17:03:24.353000Z",
        "expires_at": "2026-11-29T17:33:24.353000Z",
    }
    opened = {**base, "id": 11, "notified_because": "opened", "first_used_at": None}
    return {"notifications": [opened, base], "next_after": 12}


def test_notifications_read_whole_at_80_columns() -> None:
    text = _text(render_break_glass_notifications, _page(), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    # Times are short and never split; the grant id and worker are whole on their lines.
    assert "2026-11-29 17:03 UTC, expires 2026-11-29 17:33 UTC" in text
    assert "first asked for data here at 2026-11-29 17:05 UTC" in text
    assert "opened by a worker of this council" in text
    assert GRANT in text and "Sam Walker (E08000007)" in text
    assert "More: --after 12" in text


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Sam\x1b[2J\x1b[31mWalker", "Sam\\x1b[2J\\x1b[31mWalker"),  # terminal escapes
        ("Sam\u202eWalker", "Sam\\u202eWalker"),  # right-to-left override
        ("Sam\nWalker", "Sam\\x0aWalker"),
        ("[bold red]Sam[/]", "[bold red]Sam[/]"),  # rich markup is printed, not applied
    ],
)
def test_names_from_tokens_are_printed_escaped(name: str, shown: str) -> None:
    text = _text(render_break_glass_notifications, _page(name=name), width=100)
    assert f"{shown} (E08000007)" in text
    assert "\x1b" not in text and "\u202e" not in text


def test_printable_and_short_time() -> None:
    assert printable("Zoë O'Neill") == "Zoë O'Neill"
    assert printable("a\u200bb\ue000c") == "a\\u200bb\\ue000c"
    assert short_time("2026-11-29T18:03:24+01:00") == "2026-11-29 17:03 UTC"
    assert short_time("not a time\x07") == "not a time\\x07"


def test_no_notifications() -> None:
    assert "No break-glass notifications." in _text(render_break_glass_notifications, {"notifications": []})
