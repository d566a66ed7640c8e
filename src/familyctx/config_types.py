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
from typing import Annotated

from pydantic import AfterValidator, ValidationError
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
    "extra_forbidden": "is not a known setting; remove it or check its spelling",
    "finite_number": "must be a finite number (not nan or infinity)",
}


def config_problems(exc: ValidationError) -> list[str]:
    """One ``"<dotted.field>: <message>"`` per error (list items as ``adapters[0]``), in order.

    Values are never included (``include_input=False``), nor pydantic's documentation URLs.
    """
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ""
        for part in err["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = _MESSAGES.get(err["type"], err["msg"])
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
