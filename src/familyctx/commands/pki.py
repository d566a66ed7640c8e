"""``familyctx dev-pki``: a development CA, mTLS certificates and the gateway's assertion key.

DEVELOPMENT ONLY: a council plugs its real PKI in by pointing the adapter's and gateway's settings at
its own files (docs/access-control.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def dev_pki(
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="Directory for the files (0700).")],
    council: Annotated[
        list[str] | None,
        typer.Option(
            "--council",
            help="GSS code to issue an adapter certificate for (repeatable); "
            "default: the three demo councils.",
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Validity of new certificates in days.")] = 825,
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing files instead of reusing them.")
    ] = False,
) -> None:
    """Write a development CA, gateway and adapter certificates and the assertion signing key."""
    from familyctx.councils import DEMO_COUNCILS
    from familyctx.trust.pki import PkiError, generate_dev_pki

    codes = council or [c.gss_code for c in DEMO_COUNCILS]
    try:
        pki = generate_dev_pki(out, councils=codes, days=days, overwrite=force)
    except (PkiError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(
        f"development PKI in {pki.directory} (CA {pki.ca_cert.name}; adapters {', '.join(pki.councils)})"
    )


def register(app: typer.Typer) -> None:
    """Add ``familyctx dev-pki`` to the command-line tool."""
    app.command("dev-pki")(dev_pki)
