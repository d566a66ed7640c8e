"""Configuration of the development OIDC provider: one pydantic-settings class.

Environment variables use the prefix ``FAMILYCTX_OIDC_`` (e.g. ``FAMILYCTX_OIDC_PORT=9000``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from familyctx_oidc.errors import NonLoopbackBindError

#: Audience of every access token: the gateway (interfaces.md, "Access tokens").
GATEWAY_AUDIENCE = "familyctx-gateway"


class OidcSettings(BaseSettings):
    """Settings of one development provider process.

    ``issuer``: the ``iss`` of every token and the base of every endpoint URL; defaults to
    ``http://<host>:<port>``. ``state_dir``: where the RSA signing key is kept (0600) across restarts.
    ``access_token_lifetime_seconds``: 900 (15 minutes). ``service_client_secret``: the
    ``familyctx-service`` client's secret, a published development value. ``allow_non_loopback``:
    must be set to listen on anything but 127.0.0.0/8 or ::1.
    """

    model_config = SettingsConfigDict(env_prefix="FAMILYCTX_OIDC_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    issuer: str | None = None
    state_dir: Path = Path("var/oidc")
    audience: str = GATEWAY_AUDIENCE
    access_token_lifetime_seconds: int = Field(default=900, ge=1, le=86400)
    service_client_secret: str = "familyctx-service-dev-secret"  # noqa: S105 - published dev value
    allow_non_loopback: bool = False

    def effective_issuer(self) -> str:
        """The issuer (RFC 8414 section 2): as configured, else ``http://host:port``; no trailing /."""
        if self.issuer:
            return self.issuer.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def check_bind_address(self) -> None:
        """Raise :class:`NonLoopbackBindError` unless ``host`` is loopback or non-loopback is allowed."""
        if self.allow_non_loopback or is_loopback(self.host):
            return
        raise NonLoopbackBindError(
            f"refusing to listen on {self.host!r}: the development OIDC provider publishes its demo "
            "passwords and must stay on loopback (127.0.0.1). Pass --allow-non-loopback only on an "
            "isolated development network."
        )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
