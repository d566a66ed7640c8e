"""Subcommands of ``familyctx``; each module exposes ``register(app: typer.Typer) -> None``."""
