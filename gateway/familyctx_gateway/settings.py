"""Configuration of one gateway deployment: a YAML file (interfaces.md) with environment overrides.

Precedence, highest first: keyword arguments, environment (prefix ``FAMILYCTX_GATEWAY_``, nested
delimiter ``__``, e.g. ``FAMILYCTX_GATEWAY_OIDC__AUDIENCE``), the YAML file, defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from familyctx.config_types import GssCode, HostPort, config_problems
from familyctx_gateway.errors import GatewayConfigError

__all__ = [
    "AdapterTarget",
    "GatewaySettings",
    "ListenSettings",
    "OidcSettings",
    "load_settings",
]


#: Algorithms a token may be signed with. Asymmetric only: HS* would let anyone holding the (public)
#: key forge tokens, and "none" is no signature at all (RFC 8725 section 3.1).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class _Section(BaseModel):
    # A misspelt key (``deadline: 500``) is an error, not a silently ignored line.
    model_config = ConfigDict(extra="forbid")


class ListenSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class OidcSettings(_Section):
    """The OIDC provider whose access tokens the gateway accepts (RFC 8414 / OIDC Discovery 1.0)."""

    issuer: str = "http://127.0.0.1:9000"
    audience: str = "familyctx-gateway"
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256"])
    leeway_seconds: int = Field(default=60, ge=0, le=300)
    #: Minimum seconds between two JWKS refreshes triggered by unknown key ids.
    jwks_refresh_min_interval_seconds: float = Field(default=30.0, ge=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if bad or not value:
            raise ValueError(f"only asymmetric algorithms are allowed, got {bad or 'none'}")
        return value


class AdapterTarget(_Section):
    """One council's adapter: where it listens and how long the gateway waits for each call."""

    gss_code: GssCode
    name: str = Field(min_length=1, max_length=100)
    #: gRPC target ``host:port`` (port 1-65535).
    address: HostPort
    deadline_ms: int = Field(default=2000, gt=0, le=60000)


class GatewaySettings(BaseSettings):
    """All settings of the gateway process. Build with :func:`load_settings` or directly."""

    model_config = SettingsConfigDict(
        env_prefix="FAMILYCTX_GATEWAY_", env_nested_delimiter="__", extra="forbid", yaml_file=None
    )

    listen: ListenSettings = Field(default_factory=ListenSettings)
    audit_database_url: str = "sqlite:///var/demo/audit.sqlite"
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    adapters: list[AdapterTarget] = Field(default_factory=list)
    #: Requests with a larger body are refused with 413.
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    #: How long an adapter's Describe answer (datasets, freshness) is reused.
    describe_cache_seconds: float = Field(default=60.0, ge=0)
    #: Candidates asked of each adapter per FindPeople.
    max_results_per_source: int = Field(default=25, gt=0, le=200)
    log_level: str = "INFO"

    @field_validator("adapters")
    @classmethod
    def _unique_councils(cls, value: list[AdapterTarget]) -> list[AdapterTarget]:
        codes = [a.gss_code for a in value]
        if len(codes) != len(set(codes)):
            raise ValueError("each council (gss_code) may be configured once")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls),
        )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> GatewaySettings:
    """Read settings from ``config_file`` (YAML, interfaces.md shape), environment and ``overrides``.

    Raises :class:`GatewayConfigError` when the file is missing, is not a YAML mapping, or any value
    is invalid (``problems`` lists each bad field as ``"adapters[0].address: must be host:port ..."``).
    """
    if config_file is None:
        try:
            return GatewaySettings(**overrides)
        except ValidationError as exc:
            raise GatewayConfigError("gateway settings", config_problems(exc)) from None
    path = Path(config_file)
    where = f"gateway config {path}"
    if not path.is_file():
        raise GatewayConfigError(where, ["(file): does not exist or is not a file"])
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise GatewayConfigError(where, [f"(file): is not valid UTF-8 YAML{at}"]) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise GatewayConfigError(where, ["(file): must be a YAML mapping (listen, oidc, adapters, ...)"])

    class _FromFile(GatewaySettings):
        model_config = SettingsConfigDict(yaml_file=str(path))

    try:
        return _FromFile(**overrides)
    except ValidationError as exc:
        raise GatewayConfigError(where, config_problems(exc)) from None
