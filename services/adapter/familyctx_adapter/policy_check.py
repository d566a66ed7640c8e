"""Reading and checking a council's sharing policy file (Cedar) before the adapter serves anything.

:func:`read_policy` parses the file, validates it against the packaged schema
(``policy_schema.cedarschema``, Cedar's strict validator) and applies the federation's own rules:

* every policy carries a unique ``@id("...")`` (letters, digits, ``-``, ``_``, ``.``, ``:``), so that
  each disclosure decision can be logged with the policies that made it;
* no templates (``?principal`` / ``?resource`` slots): a sharing agreement is a set of plain policies;
* every ``Dataset::"..."`` named exists at this council (a misspelt dataset would silently never match);
* the file holds at least one policy.

Problems raise :class:`PolicyError` whose message names the file, the line (Cedar reports no source
positions, so the line is that of the policy, found by splitting the file into statements) and the
problem, e.g. ``policies/leeds.cedar:12: policy "housing-for-s47": attribute `org` on entity type
`Requester` not found``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import cedarpy
from cedarpy import pst

from familyctx.config_types import relative_path_note
from familyctx_adapter.errors import AdapterConfigError

__all__ = ["CheckedPolicy", "PolicyError", "policy_schema_text", "read_policy", "split_statements"]

_ID_TEXT = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
#: Cedar's validator names policies by position ("policy3"); these prefixes are replaced by @id.
_CEDAR_PREFIX = re.compile(r"^(\[policy\d+\] )?(for policy `policy\d+`[,:] )?")


class PolicyError(AdapterConfigError):
    """The sharing policy cannot be used; the message names the file, line and problem.

    The adapter refuses to start on this error (a subclass of :class:`AdapterConfigError`).
    """


@cache
def policy_schema_text() -> str:
    """The packaged Cedar schema every sharing policy is validated against (Cedar schema syntax)."""
    return resources.files("familyctx_adapter").joinpath("policy_schema.cedarschema").read_text("utf-8")


@cache
def _schema() -> cedarpy.Schema:
    return cedarpy.Schema.from_str(policy_schema_text())


@dataclass(frozen=True, slots=True)
class CheckedPolicy:
    """A validated policy set: the parsed ``policies`` handle, ``ids`` (Cedar's positional id, e.g.
    ``policy0`` -> the policy's ``@id``), ``lines`` (positional id -> 1-based line in the file) and
    ``schema`` (the parsed packaged schema)."""

    policies: cedarpy.PolicySet
    ids: dict[str, str]
    lines: dict[str, int]
    schema: cedarpy.Schema


def split_statements(text: str) -> list[tuple[int, str]]:
    """Split Cedar policy text into statements: ``[(line of first token, text up to and with ';')]``.

    Comments (``//`` to end of line) and string literals (with ``\\`` escapes) are skipped so that a
    ``;`` inside them does not end a statement. Text after the last ``;`` that is not blank or a comment
    is returned as a final statement (without ``;``) so that the parser can report it.
    """
    out: list[tuple[int, str]] = []
    start: int | None = None
    start_line = line = 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c.isspace():
            pass
        else:
            if start is None:
                start, start_line = i, line
            if c == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\":
                        i += 1
                    elif text[i] == "\n":
                        line += 1
                    i += 1
            elif c == ";":
                out.append((start_line, text[start : i + 1]))
                start = None
        i += 1
    if start is not None:
        out.append((start_line, text[start:]))
    return out


def _clean(error: str) -> str:
    return _CEDAR_PREFIX.sub("", error.strip()).removeprefix("Policy parse error: ")


def read_policy(path: Path, *, council_gss: str, datasets: Collection[str]) -> CheckedPolicy:
    """Read and check the sharing policy at ``path`` for the council ``council_gss`` (GSS code) offering
    ``datasets`` (dataset ids).

    Returns a :class:`CheckedPolicy`. Raises :class:`PolicyError` (file missing or unreadable, syntax
    error, schema violation such as an unknown entity type, attribute, role or purpose, missing or
    duplicate ``@id``, template, unknown dataset, another council's ``Council::"..."``, no policies)
    naming ``path`` and the line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # an editor's byte-order mark is not a syntax error
    except FileNotFoundError:
        raise PolicyError(f"sharing policy file {path} does not exist{relative_path_note(path)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(
            f"sharing policy file {path} cannot be read: {type(exc).__name__}{relative_path_note(path)}"
        ) from None
    statements = split_statements(text)
    if not statements:
        raise PolicyError(
            f"{path}: holds no policies, so nothing would ever be shared; "
            "write at least one (e.g. forbid (principal, action, resource); to share nothing)"
        )
    try:
        policies = cedarpy.PolicySet.from_str(text)
        tree = policies.to_pst()
    except ValueError as exc:
        raise PolicyError(_syntax_error(path, statements, exc)) from None
    # Cedar numbers policies and templates policy0, policy1... in file order, one per statement.
    count = len(tree.static_policies) + len(tree.templates)
    lines = {f"policy{k}": line for k, (line, _) in enumerate(statements)} if count == len(statements) else {}
    if tree.templates:
        line = lines.get(min(tree.templates, key=_position), 0)
        raise PolicyError(
            f"{_where(path, line)}: templates (?principal / ?resource) are not allowed in a sharing policy; "
            "name the entities in the policy itself"
        )
    ordered = sorted(tree.static_policies, key=_position)
    lines = {pid: lines.get(pid, 0) for pid in ordered}
    ids = _check_ids(path, tree, ordered, lines)
    _check_schema(path, text, ids, lines)
    _check_entities(path, tree, ids, lines, council_gss, datasets)
    return CheckedPolicy(policies=policies, ids=ids, lines=lines, schema=_schema())


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}" if line else str(path)


def _position(pid: str) -> int:
    return int(pid.removeprefix("policy"))


def _syntax_error(path: Path, statements: list[tuple[int, str]], exc: ValueError) -> str:
    for line, statement in statements:
        try:
            cedarpy.PolicySet.from_str(statement)
        except ValueError as own:
            return f"{path}:{line}: syntax error: {_clean(str(own))}"
    return f"{path}: syntax error: {_clean(str(exc))}"


def _check_ids(path: Path, tree: pst.PolicySet, ordered: list[str], lines: dict[str, int]) -> dict[str, str]:
    ids: dict[str, str] = {}
    seen: dict[str, str] = {}
    for pid in ordered:
        where = _where(path, lines[pid])
        annotation = tree.static_policies[pid].annotations.get("id")
        if not annotation:
            raise PolicyError(
                f'{where}: policy has no @id("..."); give every policy a short unique id, e.g. '
                '@id("csc-to-practitioners"), so that each decision can be logged with it'
            )
        if not _ID_TEXT.fullmatch(annotation):
            raise PolicyError(
                f"{where}: @id must be 1-80 letters, digits, '-', '_', '.' or ':' (it is written to logs)"
            )
        if annotation in seen:
            first = lines[seen[annotation]]
            raise PolicyError(f'{where}: @id("{annotation}") is used twice (first at line {first})')
        seen[annotation] = pid
        ids[pid] = annotation
    return ids


def _check_schema(path: Path, text: str, ids: dict[str, str], lines: dict[str, int]) -> None:
    result = cedarpy.validate_policies(text, _schema())
    if result.validation_passed:
        return
    problems = []
    for error in result.errors:
        pid = error.policy_id
        if pid in ids:
            problems.append(f'{_where(path, lines[pid])}: policy "{ids[pid]}": {_clean(error.error)}')
        else:
            problems.append(f"{path}: {_clean(error.error)}")
    raise PolicyError("; ".join(problems))


def _check_entities(
    path: Path,
    tree: pst.PolicySet,
    ids: dict[str, str],
    lines: dict[str, int],
    council_gss: str,
    datasets: Collection[str],
) -> None:
    for pid, policy in tree.static_policies.items():
        for uid in sorted(pst.entity_uids(policy), key=str):
            if str(uid.type) == "Council" and uid.id != council_gss:
                raise PolicyError(
                    f'{_where(path, lines[pid])}: policy "{ids[pid]}": names Council::"{uid.id}", but this '
                    f'adapter speaks for Council::"{council_gss}" (a requester\'s council is '
                    "principal.organisation)"
                )
            if str(uid.type) == "Dataset" and uid.id not in datasets:
                offered = ", ".join(sorted(datasets)) or "none"
                raise PolicyError(
                    f'{_where(path, lines[pid])}: policy "{ids[pid]}": this council offers no dataset '
                    f'"{uid.id}" (it offers: {offered})'
                )
