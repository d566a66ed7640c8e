"""Pydantic field types and error wording shared by the deployables' settings (adapter and gateway).

``GssCode``: an English council's ONS/GSS code (``E`` + 8 digits); ``HostPort``: a gRPC target
``host:port`` (RFC 3986 host: a DNS name, IPv4 address or ``[IPv6]``; port 1-65535).
:func:`config_problems` turns a ``pydantic.ValidationError`` into one ``"field: message"`` line per
bad field, without the submitted values or pydantic's documentation links. :func:`relative_path_note`
says, in an error about a missing file, where a relative path was looked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from familyctx.councils import GSS_CODE_RULE, check_gss_code

__all__ = [
    "HOST_PORT_RULE",
    "GssCode",
    "HostPort",
    "check_host_port",
    "config_problems",
    "relative_path_note",
]

HOST_PORT_RULE = (
    "must be host:port with a port from 1 to 65535, for example 127.0.0.1:50061 or adapter-leeds:50051"
)

# A DNS name or IPv4 address (letters, digits, dots, hyphens; no leading/trailing dot or hyphen), or a
# bracketed IPv6 literal (RFC 3986 section 3.2.2).
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)$")


def check_host_port(value: str) -> str:
    """Return ``value`` when it is ``host:port`` with a port 1-65535; raise ``ValueError`` otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not _HOST.fullmatch(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(HOST_PORT_RULE)
    return value


def _as_custom(check: Callable[[str], str], code: str, rule: str) -> AfterValidator:
    def validate(value: str) -> str:
        try:
            return check(value)
        except ValueError:
            # A custom error keeps the message exactly ours (no "Value error, " prefix).
            raise PydanticCustomError(code, rule) from None

    return AfterValidator(validate)


GssCode = Annotated[str, _as_custom(check_gss_code, "gss_code", GSS_CODE_RULE)]
HostPort = Annotated[str, _as_custom(check_host_port, "host_port", HOST_PORT_RULE)]

_MESSAGES = {
    "missing": "is required",
    "finite_number": "must be a finite number (not nan or infinity)",
}


#: A key named in a message only when it is this plain; any other key (which may be a forged log line,
#: or a person's details pasted by mistake) is shown as ``(a key)``.
_SETTING_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_DIGIT_RUN = re.compile(r"[0-9]{4}")
_SAFE_KEY = re.compile(r"[A-Za-z0-9_]{1,40}")


def _allowed_fields(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str] | None:
    """The field names of the model at ``loc`` inside ``model`` (through lists, unions, dicts)."""
    kinds: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                if isinstance(part, str) and part in kind.model_fields:
                    following.append(kind.model_fields[part].annotation)
            elif isinstance(part, int) or get_origin(kind) is dict:
                following.extend(get_args(kind)[-1:])  # list[X] / dict[str, X]: X
        kinds = following
        # X | None, Annotated[X, ...]: try each member
        while any(get_args(k) and get_origin(k) not in (list, dict) for k in kinds):
            kinds = [m for k in kinds for m in (get_args(k) if get_origin(k) not in (list, dict) else (k,))]
    for kind in kinds:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return list(kind.model_fields)
    return None


def config_problems(exc: ValidationError, *, model: type[BaseModel] | None = None) -> list[str]:
    """One ``"<dotted.field>: <message>"`` per error (list items as ``adapters[0]``), in order.

    Values are never included (``include_input=False``), nor pydantic's documentation URLs, nor the
    name of an unknown key unless it looks like a setting's name (lower-case snake_case, at most 40
    characters, no run of 4 digits: ``"resilience: has a key that is not a known setting: retries"``;
    otherwise ``"councils[2]: has a key that is not a known setting (its name is not shown) ... (the
    fields are: ...)"``, the list given ``model``, the model validated); a mapping key that is not plain
    (``[A-Za-z0-9_]``, at most 40) is shown as ``(a key)``.
    """
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        unknown = err["type"] == "extra_forbidden"
        unknown_name = None
        if unknown:
            # A misspelt setting is named (`retries`), as it is what the operator must fix; a key that
            # does not look like a setting's name (spaces, capitals, long digit runs: it could hold a
            # person's details, or forge a log line) is not.
            key = loc[-1]
            if isinstance(key, str) and _SETTING_NAME.fullmatch(key) and not _DIGIT_RUN.search(key):
                unknown_name = key
            loc = loc[:-1]
        where = ""
        for part in loc:
            if isinstance(part, str) and not _SAFE_KEY.fullmatch(part):
                part = "(a key)"
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = _MESSAGES.get(err["type"], err["msg"])
        if unknown:
            allowed = _allowed_fields(model, loc) if model is not None else None
            message = (
                f"has a key that is not a known setting: {unknown_name}; remove it or check its spelling"
                if unknown_name
                else "has a key that is not a known setting (its name is not shown); remove it or check "
                "its spelling"
            )
            if allowed:
                message += f" (the fields are: {', '.join(allowed)})"
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        lines.append(f"{where or '(file)'}: {message}")
    return lines


def relative_path_note(path: Path | str) -> str:
    """For an error about the file at ``path``: "" when it is absolute, else a note that it was
    resolved against the current directory (as every relative path in a config file is, not against
    the config file's own directory), e.g. ``" (relative path, resolved against the current directory
    /srv/familyctx)"``."""
    if Path(path).is_absolute():
        return ""
    return f" (relative path, resolved against the current directory {Path.cwd()})"
