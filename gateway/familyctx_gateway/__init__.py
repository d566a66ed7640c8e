"""The Family Context gateway: validates the worker's token, fans out to council adapters over gRPC,
links and merges their answers, and audits every access before returning data.

Public entry point: :func:`create_app` (a FastAPI application factory) and :class:`GatewaySettings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["GatewaySettings", "create_app"]

if TYPE_CHECKING:  # pragma: no cover
    from familyctx_gateway.app import create_app
    from familyctx_gateway.settings import GatewaySettings


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the schemas (e.g. from the CLI client) does not pull in grpc/sqlalchemy.
    if name == "create_app":
        from familyctx_gateway.app import create_app

        return create_app
    if name == "GatewaySettings":
        from familyctx_gateway.settings import GatewaySettings

        return GatewaySettings
    raise AttributeError(name)
