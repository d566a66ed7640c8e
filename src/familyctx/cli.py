"""The ``familyctx`` command-line tool: one entry point, a subcommand per job.

Each area registers its own commands from ``familyctx.commands.<area>``; those modules import their
heavy dependencies inside the command functions so that ``familyctx --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="familyctx",
    help="Family Context Federation: council adapters, the gateway, and the tools around them.",
    no_args_is_help=True,
    add_completion=False,
)

_AREAS = ("synth", "adapter", "gateway", "oidc", "client", "demo", "pki", "audit", "linkage")

for _area in _AREAS:
    try:
        _module = importlib.import_module(f"familyctx.commands.{_area}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while an area is being built
        if exc.name != f"familyctx.commands.{_area}":
            raise
        continue
    _module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - ``python -m familyctx.cli``
    main()
