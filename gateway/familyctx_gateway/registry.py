"""The council registry: which councils' adapters the gateway calls, changed without a restart.

Where the councils come from (one rule): when the setting ``registry_file`` is set, that YAML file is
the only list (``adapters:`` must then be empty, or the settings are refused); otherwise the inline
``adapters:`` list is used as it always was, read once at start-up.

The file (docs/deployment.md, "The council registry")::

    councils:
      - gss_code: E08000007          # ONS/GSS code of the council
        name: Stockport
        address: adapter-stockport:50051            # gRPC host:port
        tls_server_name: adapter-e08000007.familyctx.local   # its server certificate's DNS name
        deadline_ms: 2000
        datasets: [csc, early_help]                  # informational
        ig_contact: {name: Information Governance, email: ig@stockport.gov.uk}

Each entry is an :class:`~familyctx_gateway.settings.AdapterTarget`. The file is read at start-up (an
invalid file stops the gateway there), then again every ``registry_poll_seconds`` and on SIGHUP; it is
applied when its SHA-256 differs from the version in use, as a whole or not at all: bad YAML, an
unknown key, a duplicate GSS code, a bad address, a name that is not plain text, no council at all
(an empty file: most often one being written in place) or more than ``max_councils`` keeps the
registry in use, logs the problems (field and rule, never a value) and shows them in
``GET /v1/sources`` (``registry.last_error``); ``familyctx gateway check-registry FILE`` runs the same
checks offline. A good file makes a new :class:`~familyctx_gateway.adapter_client.Federation`
snapshot: new councils get a client (channel opened on first use), unchanged ones keep theirs, removed
or changed ones are retired: requests that started before keep using them, and their channels are
closed once those requests' adapter budget (``request_deadline_ms``) has passed and no call is in
flight.

Audit: the gateway's audit log has no record class for a configuration change (access, break_glass,
ig_access are all about a worker's request), so a registry change is logged only (``registry applied
version=... added=... removed=... changed=...``), with GSS codes, never contact details.

SIGHUP: the gateway always handles it (its default action would kill the process). With a registry
file it re-reads the file at once; with inline ``adapters`` it logs that there is nothing to reload
(:data:`INLINE_SIGHUP_MESSAGE`) and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from familyctx.config_types import config_problems
from familyctx.trust.assertion import AssertionSigner
from familyctx_gateway.adapter_client import AdapterClient, Federation, TransportFactory
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.settings import (
    DEFAULT_MAX_COUNCILS,
    AdapterTarget,
    GatewaySettings,
    ResilienceSettings,
    councils_over_cap,
    load_config_yaml,
    yaml_file_problem,
)

__all__ = [
    "EMPTY_FILE_PROBLEM",
    "EMPTY_LIST_PROBLEM",
    "INLINE_SIGHUP_MESSAGE",
    "CouncilRegistry",
    "RegistryDocument",
    "RegistryError",
    "RegistryState",
    "read_registry",
]

log = logging.getLogger("familyctx_gateway.registry")

#: The largest registry file read (bytes): far above thousands of councils, far below a mistake.
MAX_REGISTRY_BYTES = 1024 * 1024

#: The problem of a registry file with no YAML document in it (0 bytes, blanks or comments only).
EMPTY_FILE_PROBLEM = (
    "(file): the registry lists no councils: an empty file is refused (was it written in place? write a "
    "new file and rename it over the old one)"
)
#: The problem of a registry whose ``councils`` list is empty (or absent).
EMPTY_LIST_PROBLEM = (
    "councils: the registry lists no councils: an empty list is refused (to stop asking a council, "
    "remove its entry; the gateway needs at least one)"
)
#: Logged on SIGHUP by a gateway whose councils are listed inline (``adapters:``).
INLINE_SIGHUP_MESSAGE = (
    "registry reload requested (SIGHUP): no registry_file, councils are listed inline; nothing to "
    "reload - restart to change them"
)


class RegistryError(ValueError):
    """A registry file that cannot be used; ``problems``: one ``"where: what"`` line each, no values."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"council registry {path}: " + "; ".join(problems))


class RegistryDocument(BaseModel):
    """The registry file's shape: ``councils``, a list of adapters' entries, each GSS code once (that
    the list is not empty, nor longer than ``max_councils``, is checked by :func:`read_registry`)."""

    model_config = ConfigDict(extra="forbid")

    councils: list[AdapterTarget] = Field(default_factory=list)

    @field_validator("councils")
    @classmethod
    def _unique_councils(cls, value: list[AdapterTarget]) -> list[AdapterTarget]:
        seen: set[str] = set()
        for i, target in enumerate(value):
            if target.gss_code in seen:
                raise ValueError(f"councils[{i}].gss_code: each council (gss_code) may be listed once")
            seen.add(target.gss_code)
        return value


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_REGISTRY_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RegistryError(path, [f"(file): cannot be read ({reason})"]) from None
    if len(raw) > MAX_REGISTRY_BYTES:
        raise RegistryError(path, [f"(file): larger than {MAX_REGISTRY_BYTES} bytes"])
    return raw


def read_registry(
    path: Path, resilience: ResilienceSettings, *, max_councils: int = DEFAULT_MAX_COUNCILS
) -> tuple[list[AdapterTarget], str]:
    """The councils listed in the registry file at ``path``, each given the gateway's ``resilience``
    section, and the file's SHA-256 (hex). Raises :class:`RegistryError` when the file cannot be read,
    is larger than :data:`MAX_REGISTRY_BYTES`, is not UTF-8 YAML holding a mapping, lists no council
    (:data:`EMPTY_FILE_PROBLEM` for an empty file) or more than ``max_councils``, or any entry is
    invalid (every problem found: each names the field and the rule, never the value)."""
    return _parse(path, _read_bytes(path), resilience, max_councils)


def _parse(
    path: Path, raw: bytes, resilience: ResilienceSettings, max_councils: int
) -> tuple[list[AdapterTarget], str]:
    digest = hashlib.sha256(raw).hexdigest()
    try:
        loaded = load_config_yaml(raw.decode("utf-8"))  # refuses duplicate keys, too-long numbers
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RegistryError(path, [yaml_file_problem(exc)]) from None
    if loaded is None:  # 0 bytes, blanks or comments: most often a file caught while written in place
        raise RegistryError(path, [EMPTY_FILE_PROBLEM])
    if not isinstance(loaded, dict):
        raise RegistryError(path, ["(file): must be a YAML mapping with a councils list"])
    listed = loaded.get("councils")
    if isinstance(listed, list):  # before validating thousands of entries
        too_many = councils_over_cap(len(listed), max_councils)
        if too_many:
            raise RegistryError(path, [f"councils: {too_many}"])
    try:
        document = RegistryDocument.model_validate(loaded)
    except ValidationError as exc:
        problems = [
            p.replace("councils: councils[", "councils[", 1)
            for p in config_problems(exc, model=RegistryDocument)
        ]
        raise RegistryError(path, problems) from None
    if not document.councils:
        raise RegistryError(path, [EMPTY_LIST_PROBLEM])
    for target in document.councils:
        target._resilience = resilience
    return document.councils, digest


def _read_at_start(settings: GatewaySettings, path: Path) -> tuple[list[AdapterTarget], str]:
    try:
        return read_registry(path, settings.resilience, max_councils=settings.max_councils)
    except RegistryError as exc:
        raise GatewayConfigError(f"council registry {path}", exc.problems) from None


@dataclass
class RegistryState:
    """What ``GET /v1/sources`` shows of the registry: ``source`` (``file`` or ``settings``), ``path``,
    ``version`` (1 at start-up, +1 per change applied), ``loaded_at`` (UTC, when the version in use was
    applied), ``sha256`` of the file in use, ``councils`` (count), and the last refused edit:
    ``last_error`` (problems, no values) and ``last_error_at`` (None once a later edit applied)."""

    source: str
    path: str | None = None
    version: int = 1
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    sha256: str | None = None
    councils: int = 0
    last_error: str | None = None
    last_error_at: dt.datetime | None = None


class CouncilRegistry:
    """The live set of councils: :attr:`federation` is the snapshot a request takes when it starts.

    ``settings``: the gateway's (``registry_file``, ``registry_poll_seconds``, ``adapters``,
    ``resilience``); ``federation``: the snapshot built at start-up (from the file or ``adapters``).
    ``on_change``: called with each new snapshot (the health watch follows the councils). Build with
    :meth:`open`; :meth:`start` begins watching the file, :meth:`close` stops it and closes every
    channel. Single event loop, no locks.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        federation: Federation,
        state: RegistryState,
    ) -> None:
        self.settings = settings
        self.path = settings.registry_file
        self.state = state
        self._federation = federation
        self._refused: str | None = None  # SHA-256 of the last file refused
        self._task: asyncio.Task[None] | None = None
        self._retiring: dict[asyncio.Task[None], AdapterClient] = {}
        self._background: set[asyncio.Task[bool]] = set()
        #: SIGHUP's disposition before :meth:`start` installed the handler (None: not installed),
        #: put back by :meth:`close`.
        self._sighup: signal.Handlers | None = None
        self._lock = asyncio.Lock()
        self._refusals_logged = 0  # "registry edit refused" lines logged
        self.on_change: Callable[[Federation], None] | None = None

    @staticmethod
    def check(settings: GatewaySettings) -> None:
        """Raise :class:`~familyctx_gateway.errors.GatewayConfigError` (problems listed, no values) when
        ``settings.registry_file`` is set and cannot be read or is invalid; nothing when it is not set."""
        if settings.registry_file is not None:
            _read_at_start(settings, settings.registry_file)

    @classmethod
    def open(
        cls, settings: GatewaySettings, transport_factory: TransportFactory, *, signer: AssertionSigner | None
    ) -> CouncilRegistry:
        """The registry of ``settings`` at start-up: the registry file's councils (raises
        :class:`~familyctx_gateway.errors.GatewayConfigError` listing the problems when the file is
        missing or invalid), or the inline ``adapters``. Opens no connection."""
        path = settings.registry_file
        if path is None:
            federation = Federation.open(settings.adapters, transport_factory, signer=signer)
            return cls(settings, federation, RegistryState("settings", councils=len(federation.clients)))
        targets, digest = _read_at_start(settings, path)
        federation = Federation.open(targets, transport_factory, signer=signer)
        state = RegistryState("file", str(path), sha256=digest, councils=len(targets))
        log.info("registry loaded version=1 councils=%s", ",".join(federation.clients) or "-")
        return cls(settings, federation, state)

    @property
    def federation(self) -> Federation:
        """The current snapshot (a request keeps the one it read)."""
        return self._federation

    @property
    def retiring(self) -> int:
        """Retired clients whose channels are not closed yet."""
        return len(self._retiring)

    async def start(self) -> None:
        """Watch the registry file (every ``registry_poll_seconds``), and handle SIGHUP when this
        process's SIGHUP is free (its default action, or ignored as under ``nohup``): a reload of the
        file at once, or with inline ``adapters`` one log line saying there is nothing to reload (so
        that ``kill -HUP`` never kills the gateway)."""
        if self.path is not None:
            self._task = asyncio.create_task(self._poll(), name="council-registry-poll")
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGHUP) if hasattr(signal, "SIGHUP") else None
        if isinstance(previous, signal.Handlers):  # SIG_DFL or SIG_IGN: no Python handler there

            def handler(signum: int, frame: object) -> None:
                # Runs in the main thread between two bytecodes: hand the work to the loop.
                with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to reload
                    loop.call_soon_threadsafe(self._on_sighup)

            # signal.signal, not loop.add_signal_handler: the latter's removal sets SIG_DFL (even at
            # the loop's close), so a SIGHUP in that moment would kill the process; swapping one
            # disposition for the other leaves no such moment.
            with contextlib.suppress(ValueError):  # not the main thread: SIGHUP is left as it is
                signal.signal(signal.SIGHUP, handler)
                self._sighup = previous

    def _on_sighup(self) -> None:
        if self.path is None:
            log.info(INLINE_SIGHUP_MESSAGE)
            return
        log.info("registry reload requested (SIGHUP)")
        task = asyncio.create_task(self._reload_on_sighup())
        self._background.add(task)  # keeps a reference until done
        task.add_done_callback(self._background.discard)

    async def _reload_on_sighup(self) -> bool:
        # Every SIGHUP logs its outcome: applied, unchanged, refused (logged by reload) or, when the
        # same refusal was logged before (the log says a refusal once), still refused.
        refusals_logged = self._refusals_logged
        applied = await self.reload(force=True)
        if applied:
            return True
        if self.state.last_error is None:
            log.info("registry unchanged: version %d in use", self.state.version)
        elif self._refusals_logged == refusals_logged:
            log.error(
                "registry still refused path=%s version_in_use=%d problems=%s",
                self.path,
                self.state.version,
                self.state.last_error,
            )
        return False

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.registry_poll_seconds)
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the watch must go on
                log.error("registry check failed error=%s", type(exc).__name__)

    async def reload(self, *, force: bool = False) -> bool:
        """Read the file and apply it when its SHA-256 differs from the version in use. A file refused
        before is parsed again only when it changed or with ``force`` (SIGHUP). Returns True when a new
        version was applied; False when nothing changed or the file was refused (the registry in use
        stays, the refusal is logged and kept in :attr:`state`)."""
        if self.path is None:
            return False
        async with self._lock:
            try:
                raw = await asyncio.to_thread(_read_bytes, self.path)
            except RegistryError as exc:
                self._refuse(exc.problems)
                return False
            digest = hashlib.sha256(raw).hexdigest()
            if digest == self.state.sha256:
                if self.state.last_error is not None:
                    log.info("registry file is back to version %d in use", self.state.version)
                    self.state.last_error = self.state.last_error_at = None
                    self._refused = None
                return False
            if digest == self._refused and not force:
                return False
            try:
                targets, digest = _parse(self.path, raw, self.settings.resilience, self.settings.max_councils)
            except RegistryError as exc:
                self._refused = digest
                self._refuse(exc.problems)
                return False
            self._refused = None
            self._apply(targets, digest)
            return True

    def _refuse(self, problems: list[str]) -> None:
        message = "; ".join(problems)
        if message != self.state.last_error:
            self._refusals_logged += 1
            log.error(
                "registry edit refused path=%s version_in_use=%d problems=%s",
                self.path,
                self.state.version,
                message,
            )
        self.state.last_error = message
        self.state.last_error_at = dt.datetime.now(dt.UTC)

    def _apply(self, targets: list[AdapterTarget], digest: str) -> None:
        old = self._federation
        new, retired = old.updated(targets)
        added = [code for code in new.clients if code not in old.clients]
        removed = [code for code in old.clients if code not in new.clients]
        changed = [c.gss_code for c in retired if c.gss_code in new.clients]
        self._federation = new
        self.state.version += 1
        self.state.loaded_at = dt.datetime.now(dt.UTC)
        self.state.sha256 = digest
        self.state.councils = len(new.clients)
        self.state.last_error = None
        self.state.last_error_at = None
        log.info(
            "registry applied version=%d councils=%d added=%s removed=%s changed=%s",
            self.state.version,
            len(new.clients),
            ",".join(added) or "-",
            ",".join(removed) or "-",
            ",".join(changed) or "-",
        )
        if self.on_change is not None:
            self.on_change(new)
        grace = max(old.request_deadline_ms, new.request_deadline_ms) / 1000
        for client in retired:
            task = asyncio.create_task(self._retire(client, grace), name=f"retire-{client.gss_code}")
            self._retiring[task] = client
            task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def _retire(self, client: AdapterClient, grace_seconds: float) -> None:
        # Requests that took the old snapshot make adapter calls only within their budget
        # (request_deadline_ms from their start); after it, only calls already in flight remain.
        await asyncio.sleep(grace_seconds)
        await client.close()
        log.info("registry retired council=%s channel closed", client.gss_code)

    async def close(self) -> None:
        """Stop watching and close every channel, current and retiring (at shutdown)."""
        if self._sighup is not None:
            # As it was before start: `familyctx gateway serve` ignores SIGHUP from its first line, so
            # SIG_IGN for the rest of the shutdown (one swap, no moment with the default action).
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGHUP, self._sighup)
            self._sighup = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        pending = [*self._retiring.items(), *((t, None) for t in self._background)]
        for task, _client in pending:
            task.cancel()
        for task, client in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if client is not None:  # its retirement was cut short: close the channel now
                client.closed = True
                await client.transport.close()
        await self._federation.close()
