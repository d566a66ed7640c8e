"""The commands the demo suggests trying, written the way the user can actually run them.

``familyctx`` is usually not on PATH (it lives in the project's virtual environment), so the suggested
commands start with the console script that is running (``.venv/bin/familyctx``, relative to the
current directory when it is below it), or with the venv's script next to the interpreter when the
demo was started as ``python -m familyctx``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["cli_invocation", "try_commands"]


def _shown(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when below it (``.venv/bin/familyctx``), else absolute."""
    try:
        relative = path.relative_to(cwd)
    except ValueError:
        return str(path)
    text = str(relative)
    return text if os.sep in text else f".{os.sep}{text}"


def cli_invocation(
    argv0: str | None = None, executable: str | None = None, cwd: Path | None = None
) -> str:
    """The shell words that run this ``familyctx`` (already shell-quoted).

    ``argv0``/``executable``/``cwd`` default to ``sys.argv[0]``, ``sys.executable`` and the current
    directory. Plain ``familyctx`` only when that name on PATH is this very script.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    cwd = Path.cwd() if cwd is None else cwd
    script = Path(os.path.abspath(argv0)) if argv0 else None
    if script is None or script.name != "familyctx" or not script.is_file():
        # python -m familyctx (argv0 is .../familyctx/__main__.py): the venv's script, if installed.
        beside = Path(os.path.abspath(executable)).parent / "familyctx"
        if not beside.is_file():
            return f"{shlex.quote(executable)} -m familyctx"
        script = beside
    on_path = shutil.which("familyctx")
    if on_path and Path(os.path.abspath(on_path)) == script:
        return "familyctx"
    return shlex.quote(_shown(script, cwd))


def _arg(value: str) -> str:
    """One shell word: bare when safe, in double quotes when that suffices (``"O'Neill"``)."""
    quoted = shlex.quote(value)
    if quoted == value or any(c in value for c in '"$`\\!'):
        return quoted
    return f'"{value}"'


def try_commands(
    cli: str, child: Mapping[str, str], *, issuer: str, gateway_url: str,
    default_issuer: str = "http://127.0.0.1:9000", default_gateway: str = "http://127.0.0.1:8000",
) -> list[str]:
    """Three runnable command lines about the planted ``child`` (keys gss_code, local_person_id,
    family_name, date_of_birth): a search, a family context, a curl of /v1/sources with a token.
    ``--issuer``/``--gateway`` are added when not the defaults. Every argument is shell-quoted."""
    q = _arg
    where = ""
    if issuer != default_issuer or gateway_url != default_gateway:
        where = f" --issuer {q(issuer)} --gateway {q(gateway_url)}"
    token_issuer = f" --issuer {q(issuer)}" if where else ""
    return [
        f"{cli} query search --user sw.stockport --family-name {q(child['family_name'])} "
        f"--dob {q(child['date_of_birth'])} --purpose s47_enquiry --case-ref CASE-1{where}",
        f"{cli} query family-context --user tm.leeds --council {q(child['gss_code'])} "
        f"--person-id {q(child['local_person_id'])} --purpose s17_assessment --case-ref CASE-2{where}",
        f"curl -H \"Authorization: Bearer $({cli} token --user sw.stockport{token_issuer})\" "
        f"{q(gateway_url + '/v1/sources')}",
    ]
