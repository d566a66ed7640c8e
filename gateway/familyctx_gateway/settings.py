"""Configuration of one gateway deployment: a YAML file (interfaces.md) with environment overrides.

Precedence, highest first: keyword arguments, environment (prefix ``FAMILYCTX_GATEWAY_``, nested
delimiter ``__``, e.g. ``FAMILYCTX_GATEWAY_OIDC__AUDIENCE``), the YAML file, defaults.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from yaml.reader import ReaderError

from familyctx.config_types import GssCode, HostPort, config_problems
from familyctx.linkage import Thresholds
from familyctx_gateway.errors import GatewayConfigError

__all__ = [
    "AdapterTarget",
    "AdapterTlsSettings",
    "AssertionSettings",
    "AuditSettings",
    "BreakGlassSettings",
    "BreakerSettings",
    "DEFAULT_MAX_COUNCILS",
    "GatewaySettings",
    "IgContact",
    "LinkageSettings",
    "LimitsSettings",
    "LinkageThresholds",
    "ListenSettings",
    "OidcSettings",
    "PLAIN_TEXT_RULE",
    "ResilienceSettings",
    "RetrySettings",
    "TokenProfile",
    "check_plain_text",
    "councils_over_cap",
    "ConfigValueError",
    "ConfigYamlLoader",
    "load_config_yaml",
    "load_settings",
    "safe_key",
    "yaml_file_problem",
]


#: Algorithms a token may be signed with. Asymmetric only: HS* would let anyone holding the (public)
#: key forge tokens, and "none" is no signature at all (RFC 8725 section 3.1).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class _Section(BaseModel):
    # A misspelt key (``deadline: 500``) is an error, not a silently ignored line; a float setting
    # must be a finite number (``.nan`` or ``.inf`` would slip past every bound).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: Unicode categories refused in free text shown to people (council names, IG contacts): controls
#: (Cc: ESC, newline, ...), format characters (Cf: bidirectional overrides such as U+202E, zero-width
#: characters), line and paragraph separators, surrogates and private-use characters. A registry could
#: otherwise colour a terminal, or forge a line (an "INCOMPLETE: ..." banner) in the CLI's output.
_NOT_PLAIN_TEXT = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})

PLAIN_TEXT_RULE = (
    "must be plain text: no control characters, line breaks or invisible formatting characters "
    "(such as bidirectional overrides)"
)


def check_plain_text(value: str) -> str:
    """Return ``value`` when it has no character of :data:`_NOT_PLAIN_TEXT`'s Unicode categories;
    raise ``ValueError`` (:data:`PLAIN_TEXT_RULE`, without the value) otherwise."""
    if any(unicodedata.category(char) in _NOT_PLAIN_TEXT for char in value):
        raise ValueError(PLAIN_TEXT_RULE)
    return value


#: A key shown in a message only when it is this plain (letters, digits, underscore, at most 40); any
#: other key may be a forged log line or a person's details pasted by mistake.
_SAFE_KEY = re.compile(r"[A-Za-z0-9_]{1,40}")

_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def safe_key(key: object, known: frozenset[str] | None = None) -> str | None:
    """``key`` when it is a string of at most 40 of ``[A-Za-z0-9_]`` (and, given ``known``, one of
    them); None otherwise: the caller then says "an unknown field" instead of echoing it."""
    if not isinstance(key, str) or not _SAFE_KEY.fullmatch(key):
        return None
    if known is not None and key not in known:
        return None
    return key


class ConfigValueError(yaml.constructor.ConstructorError):
    """A YAML document :class:`ConfigYamlLoader` refuses (a duplicate key, a number too long)."""


class ConfigYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stricter for configuration files (gateway.yaml, the council registry):
    a mapping that holds the same key twice is refused (``ConstructorError``: the key named only when
    it is one of :attr:`known_keys`, with its line), and so is an integer too long for Python to read
    (more than ``sys.get_int_max_str_digits()`` digits, CVE-2020-10735): "number too long", naming the
    key it is the value of when that is a known field, never the value."""

    #: The setting and registry field names, which a message may name (filled in below).
    known_keys: frozenset[str] = frozenset()

    def _shown(self, key: object) -> str:
        name = safe_key(key, self.known_keys)
        return name if name is not None else "an unknown field"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # "<<: *base" merges: keys written here override the merged ones
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: refused by the base constructor below
                    duplicate = False
                if duplicate:
                    raise ConfigValueError(
                        None,
                        None,
                        f"{self._shown(key)} is listed twice in the same mapping (duplicate key; keep one)",
                        key_node.start_mark,
                    )
                if isinstance(value_node, yaml.ScalarNode) and value_node.tag == _INT_TAG:
                    try:
                        self.construct_object(value_node, deep=deep)
                    except ConfigValueError:
                        raise ConfigValueError(
                            None, None, f"{self._shown(key)}: number too long", value_node.start_mark
                        ) from None
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
            str(value)  # 0x... or 0o... digits are not limited, but the number could not be shown
        except ValueError:  # more digits than int() reads; named by construct_mapping when a value
            raise ConfigValueError(None, None, "number too long", node.start_mark) from None
        return value


ConfigYamlLoader.add_constructor(_INT_TAG, ConfigYamlLoader.construct_yaml_int)


def load_config_yaml(text: str) -> Any:
    """The YAML document in ``text`` read by :class:`ConfigYamlLoader` (None for an empty document).
    Raises ``yaml.YAMLError`` (turn it into a problem with :func:`yaml_file_problem`)."""
    try:
        return yaml.load(text, Loader=ConfigYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:  # nesting deeper than Python's stack
        raise yaml.YAMLError("the document is nested too deeply") from None


def yaml_file_problem(exc: yaml.YAMLError | UnicodeDecodeError) -> str:
    """The ``"(file): ..."`` problem of a config or registry file that did not parse: undecodable bytes
    are "not valid UTF-8" (with the byte offset); a YAML error says the parser's problem and where
    (line and column, 1-based), e.g. ``(file): is not valid YAML: while parsing a flow mapping,
    expected ',' or '}', but got '<stream end>' (line 2, column 1)``. The parser's words name tokens,
    at most one character, or an anchor or tag name, never a scalar value (cut at 200 characters)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"(file): is not valid UTF-8 (byte {exc.start + 1} cannot be decoded)"
    if type(exc) is yaml.YAMLError:  # ours (load_config_yaml): a plain message, no value
        return f"(file): is not valid YAML: {exc}"
    if isinstance(exc, ConfigValueError):
        mark = exc.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"(file): {exc.problem}{at}"
    if isinstance(exc, ReaderError):  # a character YAML does not allow, e.g. U+0000
        code = exc.character if isinstance(exc.character, int) else -1
        what = f"character U+{code:04X} is not allowed in YAML" if code >= 0 else "a byte is not allowed"
        return f"(file): is not valid YAML: {what} (character {exc.position + 1})"
    words = [w for w in (getattr(exc, "context", None), getattr(exc, "problem", None)) if w]
    what = ", ".join(" ".join(str(w).split()) for w in words) or "the parser gave no reason"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"(file): is not valid YAML: {what[:200]}{at}"


class ListenSettings(_Section):
    """Where the gateway listens: ``host`` (address) and ``port`` (0 = any free port).

    ``shutdown_grace_seconds``: on SIGTERM (or SIGINT) the gateway drains (``/readyz`` 503, new
    requests 503; :mod:`familyctx_gateway.stopping`) and gives the requests in progress this long
    (whole seconds from the signal, 1-600) to finish and commit their audit records; requests still
    running then are cancelled and answered 503 with no data, and the adapters' channels and the
    audit store are closed.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    shutdown_grace_seconds: int = Field(default=10, ge=1, le=600)


class LimitsSettings(_Section):
    """How many data requests (``POST /v1/searches``, ``POST /v1/family-context``) run at once.

    ``max_in_flight_per_user``: per worker (token issuer and subject), 1-1000; ``max_in_flight_total``:
    for the whole gateway process, 1-100000, at least ``max_in_flight_per_user``. One more is refused
    at once with 429 and ``Retry-After: retry_after_seconds`` (whole seconds, 1-3600), and audited
    ``denied``. Health, readiness, JWKS, sources, break glass and the IG audit API are not counted.
    """

    max_in_flight_per_user: int = Field(default=4, ge=1, le=1000)
    max_in_flight_total: int = Field(default=64, ge=1, le=100_000)
    retry_after_seconds: int = Field(default=2, ge=1, le=3600)

    @model_validator(mode="after")
    def _per_user_within_total(self) -> LimitsSettings:
        if self.max_in_flight_per_user > self.max_in_flight_total:
            raise ValueError(
                f"max_in_flight_per_user ({self.max_in_flight_per_user}) must not exceed "
                f"max_in_flight_total ({self.max_in_flight_total})"
            )
        return self


#: How an issuer marks its access tokens. ``rfc9068``: header ``typ`` must be ``at+jwt`` and the client
#: is the ``client_id`` claim (RFC 9068 sections 2.1, 2.2 and 4). ``keycloak``: header ``typ`` ``JWT``,
#: absent or ``at+jwt``, a ``typ`` claim (when present) must be ``Bearer`` (Keycloak marks ID and refresh
#: tokens ``ID`` / ``Refresh``), and the client is ``azp`` (or ``client_id``).
TokenProfile = Literal["rfc9068", "keycloak"]

_CLAIM_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")


class OidcSettings(_Section):
    """One trusted OpenID provider (issuer) whose access tokens the gateway accepts (docs/access-control.md).

    Keys come from ``jwks_uri`` or, when it is not set, from OIDC Discovery 1.0
    (``<issuer>/.well-known/openid-configuration``). ``roles_claim`` / ``organisation_claim`` are dotted
    paths into the token's claims (``roles``, ``realm_access.roles``,
    ``resource_access.familyctx-gateway.roles``). Times are seconds.
    """

    issuer: str = Field(default="http://127.0.0.1:9000", min_length=1)
    audience: str = Field(default="familyctx-gateway", min_length=1)
    #: The issuer's JWKS (RFC 7517) address; default: found by discovery.
    jwks_uri: str | None = None
    token_profile: TokenProfile = "rfc9068"  # noqa: S105 (a token format, not a secret)
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256"])
    roles_claim: str = "roles"
    organisation_claim: str = "organisation"
    #: When not empty, the only organisations (GSS codes) this issuer may vouch for.
    organisations: list[GssCode] = Field(default_factory=list)
    leeway_seconds: int = Field(default=60, ge=0, le=300)
    #: Keys older than this are re-fetched on the next request (a failed fetch keeps the old ones).
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    #: Last good keys are used for at most this long after they were fetched, then tokens get 401.
    max_cached_key_age_seconds: float = Field(default=3600.0, gt=0)
    #: Minimum seconds between two key fetches triggered by requests (unknown ``kid``, old keys).
    jwks_refresh_min_interval_seconds: float = Field(default=30.0, ge=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)

    @property
    def rfc9068(self) -> bool:
        """True for the ``rfc9068`` token profile (``typ: at+jwt`` and ``client_id`` required)."""
        return self.token_profile == "rfc9068"  # noqa: S105 (a token format, not a secret)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if bad or not value:
            raise ValueError(f"only asymmetric algorithms are allowed, got {bad or 'none'}")
        return value

    @field_validator("roles_claim", "organisation_claim")
    @classmethod
    def _claim_path(cls, value: str) -> str:
        if not _CLAIM_PATH.fullmatch(value):
            raise ValueError("must be a claim name or a dotted path such as realm_access.roles")
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, for example https://login.example/realms/x/certs")
        return value

    @model_validator(mode="after")
    def _cache_within_max_age(self) -> OidcSettings:
        if self.jwks_cache_seconds > self.max_cached_key_age_seconds:
            raise ValueError("jwks_cache_seconds must not exceed max_cached_key_age_seconds")
        return self


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: A DNS name (RFC 1123 labels, at most 253 characters).
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


class RetrySettings(_Section):
    """gRPC's own retry policy on every adapter channel (gRFC A6, ``grpc.service_config`` ``retryPolicy``):
    only the reads of the contract (Describe, FindPeople, GetFamilyContext: all idempotent) and only
    on ``UNAVAILABLE``. ``max_attempts``: attempts in all, 1 (no retry) to 5 (gRPC's own cap);
    backoff before retry n is random in [0, min(initial_backoff_ms * backoff_multiplier^(n-1),
    max_backoff_ms)] (gRPC's jitter). Retries stay within the call's deadline."""

    max_attempts: int = Field(default=3, ge=1, le=5)
    initial_backoff_ms: int = Field(default=100, ge=1, le=10_000)
    max_backoff_ms: int = Field(default=1000, ge=1, le=60_000)
    backoff_multiplier: float = Field(default=2.0, ge=1.0, le=10.0)

    @model_validator(mode="after")
    def _ordered(self) -> RetrySettings:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError("max_backoff_ms must not be less than initial_backoff_ms")
        return self


class BreakerSettings(_Section):
    """A circuit breaker per adapter (:mod:`familyctx_gateway.breaker`): after ``failures`` requests in
    a row whose calls to the adapter failed (unavailable, timed out, error; never refused or not found;
    several failed calls in one request count once), the last of them within ``window_seconds`` of the
    first, the adapter is not called for ``open_seconds``; then one trial call decides (success closes
    the circuit, failure opens it again), sooner if its health check reports SERVING."""

    failures: int = Field(default=5, ge=1, le=1000)
    window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    open_seconds: float = Field(default=30.0, gt=0, le=3600)


class ResilienceSettings(_Section):
    """How the gateway stays up when councils don't (docs/gateway-api.md, "Staying up when councils
    don't"). ``request_deadline_ms``: the whole request's budget for calls to adapters: each call gets
    the smaller of its adapter's ``deadline_ms`` and what is left of it; None (default): twice the
    longest adapter ``deadline_ms`` (4000 ms with the default 2000 ms), so that a council that hangs
    in the first round of calls still leaves time for the second; ``max_answer_mib``: the largest
    answer (MiB, gRPC's max receive message length) taken from one adapter; ``retry``; ``breaker``."""

    request_deadline_ms: int | None = Field(default=None, ge=100, le=120_000)
    max_answer_mib: int = Field(default=8, ge=1, le=1024)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)


#: A dataset id as the contract names them (``csc``, ``early_help``).
_DATASET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: An email address, checked loosely (one ``@``, a dot in the domain, no spaces); RFC 5321 length limit.
_EMAIL = re.compile(r"^(?=.{3,254}$)[^@\s]+@[^@\s]+\.[^@\s]+$")


class IgContact(_Section):
    """A council's information governance contact: ``name`` (1-100 characters) and ``email``, both
    plain text (:func:`check_plain_text`: they are shown to workers)."""

    name: str = Field(min_length=1, max_length=100)
    email: str

    @field_validator("name", "email")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        return check_plain_text(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise ValueError("must be an email address, for example ig@council.gov.uk")
        return value


class AdapterTarget(_Section):
    """One council's adapter: where it listens and how long the gateway waits for each call.

    :attr:`resilience` is the gateway's ``resilience`` section, given to each target when
    :class:`GatewaySettings` is validated (defaults for a target built alone). ``name`` is shown to
    workers, so it must be plain text (:func:`check_plain_text`), like the ``ig_contact``.
    """

    _resilience: ResilienceSettings = PrivateAttr(default_factory=ResilienceSettings)

    @property
    def resilience(self) -> ResilienceSettings:
        """The gateway's request deadline, retry policy, circuit breaker and answer size limit."""
        return self._resilience

    gss_code: GssCode
    name: str = Field(min_length=1, max_length=100)
    #: gRPC target ``host:port`` (port 1-65535).
    address: HostPort
    deadline_ms: int = Field(default=2000, gt=0, le=60000)
    #: The DNS name the adapter's server certificate must carry, when it is not the host of ``address``
    #: (sets ``grpc.ssl_target_name_override``), e.g. ``adapter-e08000007.familyctx.local``.
    tls_server_name: str | None = None
    #: Datasets the council offers (ids such as ``csc``, ``housing``): informational, for the registry;
    #: what an adapter really holds is what its Describe says.
    datasets: list[str] = Field(default_factory=list, max_length=100)
    #: The council's information governance contact (the council registry, docs/deployment.md).
    ig_contact: IgContact | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return check_plain_text(value)

    @field_validator("datasets")
    @classmethod
    def _dataset_ids(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if not _DATASET_ID.fullmatch(d)]
        if bad:
            raise ValueError("dataset ids are 1-64 letters, digits, '_' or '-', for example csc, early_help")
        return value

    @field_validator("tls_server_name")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_NAME.fullmatch(value):
            raise ValueError("must be a DNS name, for example adapter-e08000007.familyctx.local")
        return value


class AssertionSettings(_Section):
    """How the gateway signs the per-request assertion it sends each adapter (docs/access-control.md,
    "What the assertion says").

    ``issuer``: the ``iss`` claim, which every adapter's ``gateway.issuer`` must equal;
    ``signing_key_file``: a private EC P-256 JWK (RFC 7517, JSON, with ``kid``); ``ttl_seconds``: the
    assertion's lifetime (``exp - iat``), 1-300 seconds; ``additional_jwks_files``: public JWK Sets to
    publish as well (key rotation: docs/access-control.md, "Rotating keys and certificates"). Files are
    read when the app is created (:mod:`familyctx_gateway.adapter_trust`), not here.
    """

    issuer: str = Field(min_length=1)
    signing_key_file: Path
    ttl_seconds: int = Field(default=60, gt=0, le=300)
    #: Public JWK Sets published beside the signing key at ``/.well-known/jwks.json`` during a key
    #: rotation: the next key before the switch, or the previous one until its assertions have expired.
    additional_jwks_files: list[Path] = Field(default_factory=list)


class AdapterTlsSettings(_Section):
    """The gateway's mutual TLS identity towards adapters, and the CA it trusts for their certificates.

    ``ca_file``: PEM CA certificate(s) that issue adapters' server certificates; ``cert_file`` /
    ``key_file``: the gateway's client certificate (PEM) and its private key (PEM, unencrypted).
    """

    ca_file: Path
    cert_file: Path
    key_file: Path


class BreakGlassSettings(_Section):
    """Break glass (docs/access-control.md): ``max_minutes``, the longest a grant may last (1-1440);
    ``max_grants_per_day``, the most grants one worker may open in any 24 hours (1-100; more are
    answered 429 with Retry-After)."""

    max_minutes: int = Field(default=60, ge=1, le=1440)
    max_grants_per_day: int = Field(default=5, ge=1, le=100)


#: Record classes of the gateway's audit log (docs/audit.md): ``access`` (searches, family context),
#: ``break_glass`` (a grant opened), ``ig_access`` (reads of the audit and review notes).
AUDIT_RECORD_CLASSES = ("access", "break_glass", "ig_access")

#: Seven years (365 * 7 + 2 leap days): the default retention of every record class.
DEFAULT_RETENTION_DAYS = 2557


class AuditSettings(_Section):
    """The gateway's audit log (docs/audit.md): a Merkle-tree log on ``database_url`` (SQLAlchemy URL;
    SQLite by default, PostgreSQL in production), its schema managed by Alembic.

    ``signing_key_file``: a private EC P-256 JWK (RFC 7517) that signs tree heads (ES256); None: no
    tree heads are signed (a warning at start-up). ``tree_head_interval_seconds``: how often a new tree
    head is signed when the log grew (and once at shutdown). ``auto_migrate``: upgrade the schema to the
    current version at start-up; None (default) means true for SQLite and false for any other database,
    where ``familyctx gateway migrate`` is a deployment step. ``retention_days``: per record class, days
    after which a record's content is redacted (its hash stays, so the log still verifies).
    ``log_id``: the name signed into every tree head. ``flag_daily_records``: the IG API flags a
    worker's UTC day for review when their requests named more distinct council records than this
    (``GET /v1/audit/flags``; docs/audit.md, "Records flagged for review").
    """

    database_url: str = "sqlite:///var/demo/audit.sqlite"
    signing_key_file: Path | None = None
    tree_head_interval_seconds: float = Field(default=60.0, gt=0, le=86400)
    auto_migrate: bool | None = None
    retention_days: dict[str, int] = Field(
        default_factory=lambda: dict.fromkeys(AUDIT_RECORD_CLASSES, DEFAULT_RETENTION_DAYS)
    )
    log_id: str = Field(default="familyctx-gateway", min_length=1, max_length=100)
    flag_daily_records: int = Field(default=50, ge=1, le=1_000_000)

    @field_validator("retention_days")
    @classmethod
    def _known_classes(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(AUDIT_RECORD_CLASSES))
        if unknown:
            shown = safe_key(unknown[0]) or "(not shown)"
            raise ValueError(
                f"unknown record class {shown}; the classes are {', '.join(AUDIT_RECORD_CLASSES)}"
            )
        short = sorted(name for name, days in value.items() if days < 1)
        if short:
            raise ValueError(f"{short[0]}: must be at least 1 day")  # a known class (checked above)
        # A class left out keeps the default, so a file may set only the one it changes.
        return {**dict.fromkeys(AUDIT_RECORD_CLASSES, DEFAULT_RETENTION_DAYS), **value}

    @property
    def migrate_at_startup(self) -> bool:
        """``auto_migrate``, or when it is not set: True for SQLite only."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.database_url.startswith("sqlite")


class LinkageThresholds(_Section):
    """Match probabilities (each strictly between 0 and 1) from which a pair of council records is
    graded ``certain`` (merged), ``probable`` or ``possible`` (shown, never merged); below ``possible``
    it is not linked. ``certain > probable > possible``. Defaults: the packaged model's
    (:meth:`familyctx.linkage.Thresholds.default`); docs/gateway-api.md, "Match evidence"."""

    certain: float = Field(default_factory=lambda: Thresholds.default().certain)
    probable: float = Field(default_factory=lambda: Thresholds.default().probable)
    possible: float = Field(default_factory=lambda: Thresholds.default().possible)

    @field_validator("certain", "probable", "possible")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not 0 < value < 1:  # NaN fails too
            raise ValueError("must be a match probability strictly between 0 and 1, for example 0.95")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> LinkageThresholds:
        if not self.certain > self.probable > self.possible:
            raise ValueError(
                f"must be ordered certain > probable > possible, got certain {self.certain}, "
                f"probable {self.probable}, possible {self.possible}"
            )
        return self

    def to_thresholds(self) -> Thresholds:
        """These thresholds as the linker takes them."""
        return Thresholds(certain=self.certain, probable=self.probable, possible=self.possible)


class LinkageSettings(_Section):
    """Record linkage across councils (docs/gateway-api.md, "Match evidence").

    ``model_path``: a trained model (written by ``make linkage-train``): its directory, or its
    ``model.json`` (Splink's model JSON) with ``term_frequencies.json`` beside it; None (default): the
    model packaged with familyctx. It is read
    once when the app is created: an unusable file stops the gateway there. ``thresholds``: see
    :class:`LinkageThresholds`.
    """

    model_path: Path | None = None
    thresholds: LinkageThresholds = Field(default_factory=LinkageThresholds)


#: Bounds of ``registry_poll_seconds`` and ``health_poll_seconds`` (seconds).
MIN_POLL_SECONDS, MAX_POLL_SECONDS = 1.0, 3600.0
#: Bounds of ``max_body_bytes``: 1 KiB to 16 MiB.
MIN_BODY_BYTES, MAX_BODY_BYTES = 1024, 16 * 1024 * 1024
#: Default of ``max_councils`` (England has 153 councils with children's services).
DEFAULT_MAX_COUNCILS = 500


def councils_over_cap(count: int, max_councils: int) -> str | None:
    """The problem (no field name) when ``count`` councils exceed ``max_councils``, else None."""
    if count <= max_councils:
        return None
    return (
        f"lists {count} councils, more than max_councils ({max_councils}): a soft cap against a "
        "mistaken file (each council holds a channel and a health watch); if the federation really "
        "has more, raise max_councils in the gateway config"
    )


class GatewaySettings(BaseSettings):
    """All settings of the gateway process. Build with :func:`load_settings` or directly."""

    model_config = SettingsConfigDict(
        env_prefix="FAMILYCTX_GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        yaml_file=None,
        allow_inf_nan=False,
    )

    listen: ListenSettings = Field(default_factory=ListenSettings)
    #: The audit log (database, tree-head signing, migrations, retention).
    audit: AuditSettings = Field(default_factory=AuditSettings)
    #: The earlier top-level name of ``audit.database_url``, still accepted (also as the environment
    #: variable ``FAMILYCTX_GATEWAY_AUDIT_DATABASE_URL``); after loading it always equals it.
    audit_database_url: str | None = None
    #: Signing of per-request assertions; required when ``adapters`` is not empty.
    assertion: AssertionSettings | None = None
    #: Mutual TLS towards adapters; required when ``adapters`` is not empty (never plaintext).
    adapter_tls: AdapterTlsSettings | None = None
    #: Trusted issuers. YAML: one mapping (a single issuer, the original shape) or a list of them.
    oidc: list[OidcSettings] = Field(default_factory=lambda: [OidcSettings()], min_length=1)
    #: The most councils the gateway takes (inline ``adapters`` or the registry file), 1-10000: a soft
    #: cap against a mistaken file (each council holds a channel and a health watch); raise it when a
    #: federation really has more.
    max_councils: int = Field(default=DEFAULT_MAX_COUNCILS, ge=1, le=10_000)
    #: The councils, inline (the original shape). Either this or ``registry_file``, not both.
    adapters: list[AdapterTarget] = Field(default_factory=list)
    #: The council registry: a YAML file (``councils:``, a list of adapters' entries) re-read while the
    #: gateway runs (:mod:`familyctx_gateway.registry`). When set, ``adapters`` must be empty.
    registry_file: Path | None = None
    #: How often the registry file is checked for a change (seconds, 1-3600; also on SIGHUP).
    registry_poll_seconds: float = 5.0
    #: How often each adapter's grpc.health.v1 status is asked (seconds, 1-3600;
    #: :mod:`familyctx_gateway.health`).
    health_poll_seconds: float = 10.0
    #: In-flight data requests per worker and overall (429 with Retry-After beyond them).
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    #: Requests with a larger body are refused with 413 (bytes, 1 KiB-16 MiB).
    max_body_bytes: int = 64 * 1024
    #: How long an adapter's Describe answer (datasets, freshness) is reused.
    describe_cache_seconds: float = Field(default=60.0, ge=0)
    #: Candidates asked of each adapter per FindPeople.
    max_results_per_source: int = Field(default=25, gt=0, le=200)
    #: The gateway access policy (roles x purposes, Cedar); None: the packaged
    #: ``familyctx_gateway/policies/access.cedar``. Validated at start-up (docs/access-control.md).
    access_policy_file: Path | None = None
    break_glass: BreakGlassSettings = Field(default_factory=BreakGlassSettings)
    #: Record linkage: the model file and the match-probability thresholds of each grade.
    linkage: LinkageSettings = Field(default_factory=LinkageSettings)
    #: Request deadline, retries, circuit breakers and answer size limit for calls to adapters.
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    log_level: str = "INFO"

    @field_validator("oidc", mode="before")
    @classmethod
    def _one_issuer_or_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict | OidcSettings) else value

    @field_validator("oidc")
    @classmethod
    def _unique_issuers(cls, value: list[OidcSettings]) -> list[OidcSettings]:
        issuers = [o.issuer for o in value]
        if len(issuers) != len(set(issuers)):
            raise ValueError("each issuer may be configured once")
        return value

    @field_validator("registry_poll_seconds", "health_poll_seconds")
    @classmethod
    def _poll_interval(cls, value: float, info: ValidationInfo) -> float:
        if not MIN_POLL_SECONDS <= value <= MAX_POLL_SECONDS:
            why = (
                "to apply an edit at once, send the gateway SIGHUP"
                if info.field_name == "registry_poll_seconds"
                else "a shorter interval only adds load on the adapters"
            )
            raise ValueError(f"must be from {MIN_POLL_SECONDS:g} to {MAX_POLL_SECONDS:g} seconds ({why})")
        return value

    @field_validator("max_body_bytes")
    @classmethod
    def _body_limit(cls, value: int) -> int:
        if not MIN_BODY_BYTES <= value <= MAX_BODY_BYTES:
            raise ValueError(
                f"must be from {MIN_BODY_BYTES} to {MAX_BODY_BYTES} bytes (1 KiB to 16 MiB); requests "
                "to the gateway are small JSON bodies and the default, 65536, fits every valid one"
            )
        return value

    @field_validator("adapters")
    @classmethod
    def _unique_councils(cls, value: list[AdapterTarget], info: ValidationInfo) -> list[AdapterTarget]:
        codes = [a.gss_code for a in value]
        if len(codes) != len(set(codes)):
            raise ValueError("each council (gss_code) may be configured once")
        # max_councils is declared before adapters, so it is validated first (absent when invalid).
        problem = councils_over_cap(len(value), info.data.get("max_councils", DEFAULT_MAX_COUNCILS))
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_audit_database(self) -> GatewaySettings:
        explicit = "database_url" in self.audit.model_fields_set
        if self.audit_database_url is not None:
            if explicit and self.audit.database_url != self.audit_database_url:
                raise ValueError(
                    "audit_database_url and audit.database_url name different databases; set only "
                    "audit.database_url (audit_database_url is its earlier name)"
                )
            self.audit.database_url = self.audit_database_url
        self.audit_database_url = self.audit.database_url
        return self

    @model_validator(mode="after")
    def _one_source_of_councils(self) -> GatewaySettings:
        if self.registry_file is not None and self.adapters:
            raise ValueError(
                "adapters and registry_file are both set; list the councils in one place: the registry "
                "file (re-read while the gateway runs) or inline adapters (read at start-up only)"
            )
        return self

    @model_validator(mode="after")
    def _adapters_share_resilience(self) -> GatewaySettings:
        # Each target carries the gateway's section, so the adapter client needs nothing else.
        # With a registry the councils change while the gateway runs: an unset request deadline stays
        # unset and is worked out from the registry's longest deadline_ms each time it is loaded.
        if self.resilience.request_deadline_ms is None and self.registry_file is None:
            longest = max((t.deadline_ms for t in self.adapters), default=2000)
            self.resilience = self.resilience.model_copy(update={"request_deadline_ms": 2 * longest})
        for target in self.adapters:
            target._resilience = self.resilience
        return self

    @model_validator(mode="after")
    def _adapters_need_trust(self) -> GatewaySettings:
        # The gateway never calls an adapter without mutual TLS and a signed assertion.
        if self.adapters or self.registry_file is not None:
            missing = [name for name in ("adapter_tls", "assertion") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} must be set when adapters are configured: the gateway "
                    "calls adapters only over mutual TLS with a signed assertion (docs/deployment.md)"
                )
        return self

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


def _field_names(model: type[BaseModel], into: set[str]) -> set[str]:
    """Every field name of ``model`` and of the models its fields hold (lists, unions, dicts)."""
    for name, info in model.model_fields.items():
        into.add(name)
        stack: list[Any] = [info.annotation]
        while stack:
            kind = stack.pop()
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                if kind is not model and not set(kind.model_fields) <= into:
                    _field_names(kind, into)
            else:
                stack.extend(get_args(kind))
    return into


# The registry file's one top-level key ("councils") and every gateway setting, at any depth.
ConfigYamlLoader.known_keys = frozenset(_field_names(GatewaySettings, {"councils"}))

_NESTED_OIDC_ENV = "FAMILYCTX_GATEWAY_OIDC__"


def _problems(exc: ValidationError, oidc_input: Any) -> list[str]:
    """Config problems, naming a single-issuer ``oidc`` mapping as written (``oidc.x``, not ``oidc[0].x``)."""
    problems = config_problems(exc, model=GatewaySettings)
    if isinstance(oidc_input, dict | OidcSettings) or oidc_input is None:
        problems = [re.sub(r"^oidc\[0\](?=[.:])", "oidc", p) for p in problems]
    return problems


def _check_nested_oidc_env(oidc_input: Any, where: str) -> None:
    # FAMILYCTX_GATEWAY_OIDC__<KEY> overrides one key of a single issuer; against a list it would
    # silently replace every configured issuer by one default issuer.
    nested = sorted(k for k in os.environ if k.upper().startswith(_NESTED_OIDC_ENV))
    if isinstance(oidc_input, list) and nested:
        raise GatewayConfigError(
            where,
            [
                f"oidc: is a list of issuers, so {nested[0]} cannot override one key; set "
                "FAMILYCTX_GATEWAY_OIDC to the whole list as JSON, or change the file"
            ],
        )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> GatewaySettings:
    """Read settings from ``config_file`` (YAML, interfaces.md shape), environment and ``overrides``.

    ``oidc`` may be one issuer mapping or a list of them. Raises :class:`GatewayConfigError` when the
    file is missing, is not a YAML mapping, or any value is invalid (``problems`` lists each bad field
    as ``"adapters[0].address: must be host:port ..."``), or when ``FAMILYCTX_GATEWAY_OIDC__*``
    variables are set while ``oidc`` is a list.
    """
    if config_file is None:
        _check_nested_oidc_env(overrides.get("oidc"), "gateway settings")
        try:
            return GatewaySettings(**overrides)
        except ValidationError as exc:
            raise GatewayConfigError("gateway settings", _problems(exc, overrides.get("oidc"))) from None
    path = Path(config_file)
    where = f"gateway config {path}"
    if not path.is_file():
        raise GatewayConfigError(where, ["(file): does not exist or is not a file"])
    try:
        loaded = load_config_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GatewayConfigError(where, [yaml_file_problem(exc)]) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise GatewayConfigError(where, ["(file): must be a YAML mapping (listen, oidc, adapters, ...)"])
    oidc_input = overrides["oidc"] if "oidc" in overrides else (loaded or {}).get("oidc")
    _check_nested_oidc_env(oidc_input, where)

    class _FromFile(GatewaySettings):
        model_config = SettingsConfigDict(yaml_file=str(path))

    try:
        return _FromFile(**overrides)
    except ValidationError as exc:
        raise GatewayConfigError(where, _problems(exc, oidc_input)) from None
