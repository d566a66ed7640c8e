"""Configuration of one council adapter: one pydantic-settings class, loaded from a YAML file.

Precedence, highest first: explicit overrides (command-line flags), environment variables
(prefix ``FAMILYCTX_ADAPTER_``, nested delimiter ``__``, e.g. ``FAMILYCTX_ADAPTER_LISTEN__PORT=50099``),
the YAML file, then defaults. File shape (docs/adapter.md)::

    council: {gss_code: E08000007, name: Stockport, dfe_la_number: 356}
    cms: systemc
    database_url: sqlite:///var/demo/stockport.sqlite
    listen: {host: 127.0.0.1, port: 50061}
    tls:            # required: the adapter only ever listens with mutual TLS
      cert_file: var/dev-pki/adapter-E08000007.pem
      key_file: var/dev-pki/adapter-E08000007.key
      client_ca_file: var/dev-pki/ca.pem
    gateway:        # who may call, and the keys its assertions are signed with
      issuer: https://gateway.familyctx.local
      jwks_file: var/dev-pki/gateway-assertion-jwks.json   # or jwks_url: https://.../.well-known/jwks.json
      client_cert_subject: familyctx-gateway               # optional
    policy_file: services/adapter/config/policies/stockport.cedar
    disclosure_log: # required: what this adapter released, to whom and why (tamper-evident)
      database_url: sqlite:///var/demo/disclosure-E08000007.sqlite   # PostgreSQL in production
      signing_key_file: var/dev-pki/adapter-E08000007-audit.jwk.json # the council's tree-head key
      tree_head_interval_seconds: 60
      retention_days: {disclosure: 2557, refusal: 2557}      # optional; these are the defaults
    health_listen: {host: 127.0.0.1, port: 50071}          # optional plaintext grpc.health.v1 only

Relative file paths are relative to the working directory (like a ``sqlite:///`` URL). The files are
read when the server is built (:mod:`familyctx_adapter.trust`), not here, so a config can be checked
on a machine without the keys.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from familyctx.auditlog.retention import check_retention_days
from familyctx.config_types import GssCode
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.mapping import CMS_FLAVOURS

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "DISCLOSURE_RECORD_CLASSES",
    "AdapterSettings",
    "CouncilSettings",
    "DisclosureLogSettings",
    "GatewayTrustSettings",
    "ListenSettings",
    "TlsSettings",
    "load_settings",
]

# The YAML file for the settings being built; a context variable so loading stays re-entrant.
_yaml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("_yaml_file", default=None)


class CouncilSettings(BaseModel):
    """The local authority this adapter speaks for: ONS/GSS code (E + 8 digits), name, DfE LA number."""

    gss_code: GssCode = Field(description="ONS/GSS code, e.g. E08000007")
    name: str = Field(min_length=1, max_length=100)
    dfe_la_number: int = Field(ge=100, le=999, description="DfE three-digit LA number, e.g. 356")


class ListenSettings(BaseModel):
    """Where the gRPC server listens. Port 0 asks the OS for a free port."""

    host: str = "127.0.0.1"
    port: int = Field(default=50061, ge=0, le=65535)


class TlsSettings(BaseModel):
    """Mutual TLS on the data port: the adapter's server certificate and key (PEM) and the CA (PEM)
    that issues the gateway's client certificate. Every call must present a certificate chained to it."""

    model_config = {"extra": "forbid"}

    cert_file: Path
    key_file: Path
    client_ca_file: Path


class GatewayTrustSettings(BaseModel):
    """Who may call: the gateway's assertion ``issuer`` and its public keys, from ``jwks_file`` (read at
    start-up) or ``jwks_url`` (fetched, cached; refreshed on an unknown ``kid`` at most once every
    ``jwks_refresh_seconds``). ``jwks_ca_file``: CA bundle (PEM) for an https ``jwks_url`` when not the
    system's. ``client_cert_subject``: the CN the gateway's client certificate must carry (optional).
    ``leeway_seconds``: clock skew allowed on ``exp``/``nbf``/``iat`` (0-60 s)."""

    model_config = {"extra": "forbid"}

    issuer: str = Field(min_length=1, max_length=500)
    jwks_file: Path | None = None
    jwks_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2000)
    jwks_ca_file: Path | None = None
    jwks_refresh_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    client_cert_subject: str | None = Field(default=None, min_length=1, max_length=200)
    leeway_seconds: int = Field(default=5, ge=0, le=60)

    @model_validator(mode="after")
    def _one_key_source(self) -> GatewayTrustSettings:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of jwks_file or jwks_url (the gateway's public keys)")
        return self


def _check_url(value: str) -> str:
    try:
        make_url(value)
    except ArgumentError as exc:
        raise ValueError("is not a SQLAlchemy database URL (e.g. sqlite:///path/to/file.sqlite)") from exc
    return value


#: Record classes of the disclosure log (:mod:`familyctx_adapter.disclosure_record`): ``disclosure`` (an
#: answer given) and ``refusal`` (a refusal by the sharing policy). Retention is set per class.
DISCLOSURE_RECORD_CLASSES = ("disclosure", "refusal")

#: Seven years (365 * 7 + 2 leap days), as the gateway's ``audit.retention_days``: the default retention
#: of every disclosure log record class.
DEFAULT_RETENTION_DAYS = 2557


class DisclosureLogSettings(BaseModel):
    """The adapter's own disclosure log (:mod:`familyctx_adapter.disclosure`): one tamper-evident record
    per answer it gives and per refusal by policy, committed before the answer leaves.

    ``database_url``: SQLAlchemy URL of the log (a SQLite file, or PostgreSQL shared by the adapter's
    replicas); never the warehouse's URL in production (the log must outlive a warehouse refresh).
    ``signing_key_file``: the council's private EC P-256 JWK (ES256) that signs tree heads, log id
    ``adapter-<GSS>``. ``tree_head_interval_seconds``: how often a new head is signed when the log grew
    (1 s .. 1 day). ``auto_migrate``: apply the Alembic migrations at start-up; default (None) is yes
    for SQLite and no for a database server, where ``familyctx adapter migrate`` is run by the operator
    and the adapter refuses to start on an old schema.

    ``retention_days``: per record class (``disclosure``, ``refusal``), the whole number of days
    (1 .. 36500) after which ``familyctx adapter retention`` redacts a record: its content and the
    personal data of its index rows (requester, client, case reference, token id, local person ids) are
    removed, its hash stays, so the log and its signed tree heads still verify. Default for both classes:
    2557 days (seven years), as the gateway's ``audit.retention_days``, so that the two ends of one
    request are kept as long as each other. A class left out keeps the default; an unknown class, a
    period under a day or a value that is not a whole number is a configuration error.
    """

    model_config = {"extra": "forbid"}

    database_url: str
    signing_key_file: Path
    tree_head_interval_seconds: float = Field(default=60.0, ge=1.0, le=86400.0)
    #: Longest wait (seconds) for an answer's disclosure record to commit before the call ends UNAVAILABLE
    #: "disclosure log unavailable"; keep it under the gateway's deadline for this council (default 2 s),
    #: so a stuck log is reported as such rather than as a time-out.
    commit_timeout_seconds: float = Field(default=1.5, gt=0.0, le=60.0)
    auto_migrate: bool | None = None
    retention_days: dict[str, int] = Field(
        default_factory=lambda: dict.fromkeys(DISCLOSURE_RECORD_CLASSES, DEFAULT_RETENTION_DAYS)
    )

    @field_validator("retention_days", mode="before")
    @classmethod
    def _retention_per_class(cls, value: Any) -> dict[str, int]:
        return check_retention_days(value, DISCLOSURE_RECORD_CLASSES, DEFAULT_RETENTION_DAYS)

    @field_validator("database_url")
    @classmethod
    def _parseable_url(cls, value: str) -> str:
        return _check_url(value)

    @property
    def migrate_on_start(self) -> bool:
        """Whether start-up applies the migrations (``auto_migrate``, or SQLite when unset)."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return make_url(self.database_url).get_backend_name() == "sqlite"


class AdapterSettings(BaseSettings):
    """Everything one adapter deployment needs.

    ``cms`` selects the SSD extract flavour mapping (systemc, mosaic, eclipse). ``table_names`` maps a
    logical table (e.g. ``housing_tenancies``) to the council's physical table name when it differs.
    Limits: ``default_max_results`` (25) and ``max_results_cap`` (100) bound FindPeople;
    ``max_message_bytes`` bounds gRPC messages both ways; ``worker_threads`` see :attr:`threads`.
    ``tls``, ``gateway`` and ``policy_file`` (the council's Cedar sharing policy) are required: the
    adapter never answers without mutual TLS, a verified gateway assertion and its sharing policy.
    ``health_listen``: optional second, plaintext port serving grpc.health.v1 only (for probes).
    ``disclosure_log`` (required): where the adapter records each disclosure (:class:`DisclosureLogSettings`).
    """

    model_config = SettingsConfigDict(
        env_prefix="FAMILYCTX_ADAPTER_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    council: CouncilSettings
    cms: str
    database_url: str
    listen: ListenSettings = ListenSettings()
    tls: TlsSettings
    gateway: GatewayTrustSettings
    policy_file: Path
    disclosure_log: DisclosureLogSettings
    health_listen: ListenSettings | None = None
    table_names: dict[str, str] = Field(default_factory=dict)
    default_max_results: int = Field(default=25, ge=1, le=100)
    max_results_cap: int = Field(default=100, ge=1, le=1000)
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024, le=256 * 1024 * 1024)
    worker_threads: int | None = Field(default=None, ge=0, le=64)
    health_check_interval_seconds: float = Field(default=15.0, gt=0)
    coverage_area: str = ""

    @field_validator("cms")
    @classmethod
    def _known_cms(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in CMS_FLAVOURS:
            raise ValueError(f"must be one of {', '.join(CMS_FLAVOURS)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _parseable_url(cls, value: str) -> str:
        return _check_url(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _yaml_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @property
    def threads(self) -> int:
        """Warehouse threads: ``worker_threads`` if set, else 0 for SQLite (embedded, sub-millisecond
        indexed reads run on the event loop with no thread hop) and 8 for a database server (whose
        network waits overlap across threads)."""
        if self.worker_threads is not None:
            return self.worker_threads
        return 0 if make_url(self.database_url).get_backend_name() == "sqlite" else 8

    @property
    def area_name(self) -> str:
        """Area the datasets cover, for Describe (defaults to the council's name)."""
        return self.coverage_area or self.council.name


def _describe_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_settings(config_file: str | Path | None, **overrides: Any) -> AdapterSettings:
    """Load settings from ``config_file`` (YAML) with env overrides, then ``overrides`` on top.

    ``overrides`` are nested dicts like ``{"listen": {"port": 0}}``; ``None`` values are dropped.
    Raises :class:`AdapterConfigError` with a message naming the file and each bad field.
    """
    path = Path(config_file) if config_file is not None else None
    if path is not None:
        if not path.is_file():
            raise AdapterConfigError(f"config file {path} does not exist or is not a file")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise AdapterConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise AdapterConfigError(
                f"config file {path} must hold a mapping (council, cms, database_url...)"
            )
    clean = _drop_none(overrides)
    token = _yaml_file.set(path)
    try:
        return AdapterSettings(**clean)
    except ValidationError as exc:
        where = f"config file {path}" if path else "adapter settings"
        raise AdapterConfigError(f"{where} is invalid: {_describe_errors(exc)}") from None
    finally:
        _yaml_file.reset(token)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            nested = _drop_none(value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out
