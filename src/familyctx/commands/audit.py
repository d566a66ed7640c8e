"""``familyctx audit``: check a tamper-evident log, the gateway's or a council adapter's, from outside.

Works on either log (tables ``audit_*`` at the gateway, ``disclosure_*`` at an adapter; found by looking,
or chosen with ``--log``) with only the database URL, and the public keys and tree heads the IG team
keeps (``--jwks``, ``--kept-heads``): no gateway, adapter or configuration needed.

- ``verify``: recompute the Merkle tree and check every entry, the stored signed tree heads and the
  kept ones (:func:`familyctx.auditlog.verify.verify_log`);
- ``tree-head``: the current size and root, the latest signed head; ``--sign-with KEY`` signs one now;
- ``export-heads``: copy the signed tree heads to a ``.jsonl`` file kept outside the system (merged with
  what the file already holds; a kept head that the log now contradicts is reported);
- ``proof``: an inclusion proof for one record (``--seq``) or a consistency proof (``--old-size``).

Exit status: 0 ok, 1 problems found (tampering, a contradicted kept head, a bad proof), 2 usage or
configuration error (bad URL, unreachable database, no log in it, unreadable key or heads file). Output is
for people (rich) unless ``--json``; messages never show record content or a database password.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    import sqlalchemy as sa
    from rich.console import Console

    from familyctx.auditlog.heads import SignedTreeHead
    from familyctx.auditlog.log import MerkleLog
    from familyctx.auditlog.tables import LogTables
    from familyctx.auditlog.verify import VerifyReport

__all__ = ["register"]

audit_app = typer.Typer(
    help="Verify the gateway's audit log or a council adapter's disclosure log; export tree heads; proofs.",
    no_args_is_help=True,
)

#: --log choice -> table prefix.
PREFIXES = {"gateway": "audit", "adapter": "disclosure"}
GATEWAY_LOG_ID = "familyctx-gateway"

#: What each verify problem means, for people.
MEANINGS = {
    "edited": "a record's content no longer matches the hash it was logged with (edited)",
    "gap": "a record is missing (deleted)",
    "unauthorised_redaction": "a record's content was removed without a retention redaction record "
    "authorising it (removed by hand)",
    "root_mismatch": "the tree no longer has the root a signed head states (records edited, "
    "reordered, inserted or deleted)",
    "truncated": "the log is shorter than a tree head says it was (records removed at the end)",
    "empty_log": "the log is empty but a tree head says it held records",
    "edited_head": "a stored or kept tree head was edited after it was signed (its values differ "
    "from its signature's)",
    "bad_signature": "a tree head's signature does not verify with the given keys",
    "state_mismatch": "the stored tree state or node cache disagrees with the records",
    "index_mismatch": "the index the IG API and subject access reports read differs from the records "
    "(rows edited, deleted or added without a record)",
}
#: Index tables whose presence means the owner's index can be checked, by log kind.
INDEX_TABLES = {"gateway": "audit_events", "adapter": "disclosure_index"}

DatabaseOption = Annotated[
    str,
    typer.Option(
        "--database",
        "-d",
        help="SQLAlchemy URL of the log database (or the path of a SQLite file).",
        show_default=False,
    ),
]
LogOption = Annotated[
    str | None,
    typer.Option(
        "--log",
        help="Which log: gateway (audit_* tables) or adapter (disclosure_* tables). Default: the one found.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a report.")]


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    _console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code=code)


class _Opened:
    """An open log: engine, tables, which kind (``gateway``/``adapter``), display URL."""

    def __init__(
        self, engine: sa.Engine, tables: LogTables, kind: str, shown: str, names: set[str] | None = None
    ) -> None:
        from familyctx.auditlog.log import MerkleLog

        self.engine, self.tables, self.kind, self.shown = engine, tables, kind, shown
        self.names = names or set()
        self.log: MerkleLog = MerkleLog(engine, tables)

    @property
    def title(self) -> str:
        return "gateway audit log" if self.kind == "gateway" else "adapter disclosure log"


class _LogGone(Exception):
    """The database names no log (file missing, or no log tables in it): a finding when heads are kept."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _url(database: str) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in database:  # a path: a SQLite file
        path = Path(database).expanduser()
        if not path.is_file():
            raise _LogGone(
                f"--database {database}: no such file (give a SQLAlchemy URL or a SQLite file's path)"
            )
        return make_url(f"sqlite:///{path.resolve()}")
    try:
        url = make_url(database)
    except ArgumentError:
        _fail("--database is not a SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db)")
    if url.get_backend_name() == "sqlite":
        name = url.database or ""
        if not name or name == ":memory:":
            _fail(f"--database {url.render_as_string(hide_password=True)}: not a SQLite file")
        if not Path(name).is_file():
            raise _LogGone(f"--database {url.render_as_string(hide_password=True)}: no such SQLite file")
    return url


def _open(database: str, log: str | None) -> _Opened:
    """The log in ``database``; exit 2 when there is none (see :func:`_open_or_gone`)."""
    try:
        return _open_or_gone(database, log)
    except _LogGone as gone:
        _fail(gone.message)


def _open_or_gone(database: str, log: str | None) -> _Opened:
    """The log in ``database``. Raises :class:`_LogGone` when the file or the log's tables are missing;
    exits 2 for other usage errors."""
    import sqlalchemy as sa

    from familyctx.auditlog.engine import create_log_engine
    from familyctx.auditlog.tables import log_tables

    if log is not None and log not in PREFIXES:
        _fail(f"--log must be one of {', '.join(PREFIXES)}")
    url = _url(database)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = create_log_engine(url)
        names = set(sa.inspect(engine).get_table_names())
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        _fail(f"cannot read the database {shown} ({type(exc).__name__})")
    found = [kind for kind, prefix in PREFIXES.items() if f"{prefix}_entries" in names]
    if log is None:
        if not found:
            raise _LogGone(f"{shown} holds no audit log (no audit_entries or disclosure_entries table)")
        if len(found) > 1:
            _fail(f"{shown} holds both the gateway's and an adapter's log: choose one with --log")
        log = found[0]
    elif log not in found:
        raise _LogGone(f"{shown} holds no {log} log ({PREFIXES[log]}_entries table missing)")
    return _Opened(engine, log_tables(sa.MetaData(), PREFIXES[log]), log, shown, names)


def _read_jwks(path: Path | None) -> dict[str, Any] | None:
    from familyctx.auditlog.errors import TreeHeadKeyError
    from familyctx.auditlog.heads import load_public_jwks

    if path is None:
        return None
    try:
        return load_public_jwks(path)
    except TreeHeadKeyError as exc:
        _fail(f"--jwks: {exc}")


def _read_kept(path: Path | None) -> list[SignedTreeHead]:
    from familyctx.auditlog.heads import read_heads_jsonl

    if path is None:
        return []
    try:
        return read_heads_jsonl(path)
    except OSError as exc:
        _fail(f"--kept-heads: cannot read {path}: {exc.strerror or type(exc).__name__}")
    except ValueError as exc:
        _fail(f"--kept-heads: {exc}")


def _print_report(opened: _Opened, report: VerifyReport, kept: int) -> None:
    out = _console()
    out.print(f"[bold]{opened.title}[/] at {opened.shown}")
    out.print(
        f"entries: {report.entries} (redacted under retention: {report.redacted}); "
        f"tree size {report.tree_size}, root {report.root_hash.hex()}"
    )
    signatures = "checked" if report.signatures_checked else "[yellow]NOT checked (give --jwks)[/]"
    out.print(f"tree heads compared: {report.checked_heads} (kept outside: {kept}); signatures {signatures}")
    if report.ok:
        out.print("[bold green]OK[/]: every record matches the tree and every tree head.")
        return
    out.print("[bold red]problems found[/] (each with the first affected record):")
    for p in report.problems:
        where = [f"first seq {p.seq}" if p.seq is not None else "no record named", f"{p.count} affected"]
        if p.tree_size is not None:
            where.append(f"tree head of size {p.tree_size}")
        out.print(f"  [bold]{p.kind}[/] ({', '.join(where)}): {p.detail}")
        out.print(f"      meaning: {MEANINGS.get(p.kind, p.kind)}")
    out.print(
        f"[bold red]FAILED[/]: {len(report.problems)} kind(s) of problem; the log cannot be trusted as is."
    )


def _one_log_id(kept: list[SignedTreeHead], path: Path | None) -> str | None:
    """The log id of the kept heads; exit 2 when they are of several logs."""
    ids = sorted({h.log_id for h in kept})
    if len(ids) > 1:
        _fail(
            f"--kept-heads {path} holds tree heads of several logs ({', '.join(ids)}): keep one file per "
            "log and give the file of the log checked"
        )
    return ids[0] if ids else None


def _kind_of(log_id: str | None, log: str | None) -> str:
    if log is not None:
        return log
    if log_id == GATEWAY_LOG_ID:
        return "gateway"
    return "adapter" if log_id and log_id.startswith("adapter-") else "log"


def _report_gone(message: str, kept: list[SignedTreeHead], kind: str, as_json: bool) -> NoReturn:
    """A log checked against kept heads is gone (file or tables missing): an ``empty_log`` finding."""
    largest = max(h.tree_size for h in kept)
    detail = f"the log the kept heads describe is gone ({message}); the largest kept head says {largest}"
    if as_json:
        problem = {"kind": "empty_log", "seq": 0, "count": len(kept), "tree_size": largest, "detail": detail}
        data = {"log": kind, "ok": False, "entries": 0, "redacted": 0, "problems": [problem]}
        typer.echo(json.dumps(data, indent=2))
    else:
        out = _console()
        out.print(
            f"[bold red]problems found[/]: [bold]empty_log[/] ({len(kept)} kept tree head(s)): {detail}"
        )
        out.print(f"      meaning: {MEANINGS['empty_log']}")
        out.print("[bold red]FAILED[/]: the log cannot be trusted as is.")
    raise typer.Exit(code=1)


def _index_checker(kind: str) -> Any:
    """The owner's index checker for a log kind (imported only when checking)."""
    if kind == "gateway":
        from familyctx_gateway.audit_index_check import GatewayIndexChecker

        return GatewayIndexChecker()
    from familyctx_adapter.disclosure_index_check import DisclosureIndexChecker

    return DisclosureIndexChecker()


@audit_app.command("verify")
def verify_command(
    database: DatabaseOption,
    log: LogOption = None,
    kept_heads: Annotated[
        Path | None,
        typer.Option("--kept-heads", help="Tree heads kept outside the system (.jsonl from export-heads)."),
    ] = None,
    jwks: Annotated[
        Path | None,
        typer.Option("--jwks", help="Public JWK Set of the log's tree-head key (checks signatures)."),
    ] = None,
    log_id: Annotated[
        str | None, typer.Option("--log-id", help="Expected log id in heads, e.g. adapter-E08000007.")
    ] = None,
    no_index: Annotated[
        bool, typer.Option("--no-index", help="Skip comparing the index tables with the records.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Recompute the log's Merkle tree and check every record, tree head and index row. Exit 1 if anything
    is wrong; 2 for a usage error (including kept heads of another log)."""
    import sqlalchemy as sa

    from familyctx.auditlog.errors import TreeHeadKeyError
    from familyctx.auditlog.verify import verify_log

    public = _read_jwks(jwks)
    kept = _read_kept(kept_heads)
    kept_id = _one_log_id(kept, kept_heads)
    if log_id is not None and kept_id is not None and kept_id != log_id:
        _fail(f"--kept-heads {kept_heads} are tree heads of log {kept_id}, not of --log-id {log_id}")
    try:
        opened = _open_or_gone(database, log)
    except _LogGone as gone:
        if not kept:
            _fail(gone.message)
        _report_gone(gone.message, kept, _kind_of(kept_id, log), as_json)
    try:
        expected = log_id or _default_log_id(opened)
        if kept_id is not None and expected is not None and kept_id != expected:
            _fail(
                f"--kept-heads {kept_heads} are tree heads of log {kept_id}, but {opened.shown} is log "
                f"{expected}: give the kept heads of this log (or --log-id if the log was renamed)"
            )
        checker = None
        if not no_index and INDEX_TABLES[opened.kind] in opened.names:
            checker = _index_checker(opened.kind)
        report = verify_log(
            opened.engine,
            opened.tables,
            public_jwks=public,
            kept_heads=kept,
            log_id=expected or kept_id,
            index_checker=checker,
        )
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"cannot read the log in {opened.shown} ({type(exc).__name__})")
    except TreeHeadKeyError as exc:
        _fail(f"--jwks: {exc}")
    finally:
        opened.engine.dispose()
    if as_json:
        typer.echo(json.dumps({"log": opened.kind, **report.to_dict()}, indent=2))
    else:
        _print_report(opened, report, len(kept))
    if not report.ok:
        raise typer.Exit(code=1)


def _default_log_id(opened: _Opened) -> str | None:
    import sqlalchemy as sa

    latest = opened.log.latest_signed_head()
    if latest is not None:
        return latest.log_id
    if opened.kind == "gateway":
        return GATEWAY_LOG_ID
    e = opened.tables.entries
    with opened.engine.connect() as conn:
        query = sa.select(e.c.seq).where(e.c.payload.is_not(None), e.c.record_class != "redaction")
        row = conn.execute(query.order_by(e.c.seq.desc()).limit(1)).first()
    entry = opened.log.entry(row.seq) if row is not None else None
    council = (entry.record or {}).get("council") if entry is not None else None
    return f"adapter-{council}" if isinstance(council, str) and council else None


@audit_app.command("tree-head")
def tree_head_command(
    database: DatabaseOption,
    log: LogOption = None,
    sign_with: Annotated[
        Path | None,
        typer.Option("--sign-with", help="Private JWK (EC P-256) to sign and store a tree head with, now."),
    ] = None,
    log_id: Annotated[
        str | None,
        typer.Option("--log-id", help="Log id to sign (default: as the stored heads, else from the log)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the current tree head and the latest signed one; with --sign-with, sign one now."""
    import sqlalchemy as sa

    from familyctx.auditlog.errors import AuditLogError, TreeHeadKeyError
    from familyctx.auditlog.heads import TreeHeadSigner

    opened = _open(database, log)
    try:
        signed = None
        if sign_with is not None:
            name = log_id or _default_log_id(opened)
            if not name:
                _fail("cannot tell the log id: give --log-id (e.g. adapter-E08000007)")
            try:
                signer = TreeHeadSigner(sign_with, log_id=name)
            except TreeHeadKeyError as exc:
                _fail(f"--sign-with: {exc}")
            signed = opened.log.sign_tree_head(signer)
        current = opened.log.tree_head()
        latest = opened.log.latest_signed_head()
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"cannot use the log in {opened.shown} ({type(exc).__name__})")
    except AuditLogError as exc:
        _fail(f"the log's tree state is unusable: {exc}", code=1)
    finally:
        opened.engine.dispose()
    if as_json:
        data = {
            "log": opened.kind,
            "tree_size": current.tree_size,
            "root_hash": current.root_hash.hex(),
            "latest_signed": latest.to_dict() if latest is not None else None,
        }
        typer.echo(json.dumps(data, indent=2))
        return
    out = _console()
    out.print(f"[bold]{opened.title}[/] at {opened.shown}")
    out.print(f"current tree: size {current.tree_size}, root {current.root_hash.hex()}")
    if latest is None:
        out.print("no signed tree head stored yet")
    else:
        when = latest.issued_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        out.print(
            f"latest signed head: log {latest.log_id}, size {latest.tree_size}, root "
            f"{latest.root_hash.hex()}, issued {when}"
        )
        if signed is not None:
            out.print(f"signed now: {'yes' if signed.jws == latest.jws else 'no (already covered)'}")
        if latest.tree_size < current.tree_size:
            out.print(
                f"{current.tree_size - latest.tree_size} record(s) are not yet covered by a signed head"
            )


@audit_app.command("export-heads")
def export_heads_command(
    database: DatabaseOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .jsonl file to keep (created or extended).")],
    log: LogOption = None,
) -> None:
    """Copy the log's signed tree heads to a file kept outside the system (one JSON object per line).

    Heads already in the file are kept; new ones are appended. Exit 1 when a head in the file disagrees
    with the log's head of the same size (evidence that the log was rewritten)."""
    import sqlalchemy as sa

    from familyctx.auditlog.heads import read_heads_jsonl, write_heads_jsonl

    kept: list[SignedTreeHead] = []
    if out.exists():
        try:
            kept = read_heads_jsonl(out)
        except (OSError, ValueError) as exc:
            _fail(f"--out {out} exists but is not a tree-head file: {exc}")
    kept_id = _one_log_id(kept, out)
    opened = _open(database, log)
    try:
        stored = opened.log.signed_heads()
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"cannot read the tree heads in {opened.shown} ({type(exc).__name__})")
    finally:
        opened.engine.dispose()
    other = sorted({h.log_id for h in stored} - {kept_id} if kept_id is not None else set())
    if other:
        _fail(
            f"--out {out} keeps the tree heads of log {kept_id}; {opened.shown} is log {', '.join(other)}: "
            "keep each log's heads in its own file"
        )
    by_size = {(h.log_id, h.tree_size): h for h in kept}
    new = [h for h in stored if (h.log_id, h.tree_size) not in by_size]
    clashes = [
        h
        for h in stored
        if (h.log_id, h.tree_size) in by_size and by_size[(h.log_id, h.tree_size)].root_hash != h.root_hash
    ]
    try:
        written = write_heads_jsonl(new, out, append=True)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or type(exc).__name__}")
    console = _console()
    console.print(
        f"{written} new tree head(s) written to {out} "
        f"({len(kept)} already kept; the log stores {len(stored)})"
    )
    if clashes:
        sizes = ", ".join(str(h.tree_size) for h in clashes[:10])
        console.print(
            f"[bold red]MISMATCH[/]: the log's tree head(s) of size {sizes} state another root than the "
            "head(s) kept in the file: the log has been rewritten. Run `familyctx audit verify --kept-heads`."
        )
        raise typer.Exit(code=1)


@audit_app.command("proof")
def proof_command(
    database: DatabaseOption,
    log: LogOption = None,
    seq: Annotated[int | None, typer.Option("--seq", min=0, help="Inclusion proof for this record.")] = None,
    old_size: Annotated[
        int | None, typer.Option("--old-size", min=0, help="Consistency proof from this older tree size.")
    ] = None,
    tree_size: Annotated[
        int | None, typer.Option("--tree-size", min=0, help="Tree size to prove against (default: current).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """An RFC 9162 inclusion proof (--seq) or consistency proof (--old-size), checked before it is printed."""
    import sqlalchemy as sa

    from familyctx.auditlog.errors import AuditLogError, ProofError

    if (seq is None) == (old_size is None):
        _fail("give exactly one of --seq (inclusion proof) or --old-size (consistency proof)")
    opened = _open(database, log)
    try:
        proof: Any = (
            opened.log.inclusion_proof(seq, tree_size)
            if seq is not None
            else opened.log.consistency_proof(old_size or 0, tree_size)
        )
        heads = {h.tree_size: h for h in opened.log.signed_heads()}
    except ProofError as exc:
        _fail(f"no such proof: {exc}")
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"cannot read the log in {opened.shown} ({type(exc).__name__})")
    except AuditLogError as exc:
        _fail(f"the log cannot give this proof: {exc}", code=1)
    finally:
        opened.engine.dispose()
    size = proof.tree_size if seq is not None else proof.new_size
    root = proof.root_hash if seq is not None else proof.new_root
    valid = proof.verify()
    head = heads.get(size)
    matches_head = None if head is None else head.root_hash == root
    if as_json:
        data = {"log": opened.kind, **proof.to_dict(), "valid": valid, "matches_signed_head": matches_head}
        typer.echo(json.dumps(data, indent=2))
    else:
        out = _console()
        kind = f"inclusion of record {seq}" if seq is not None else f"consistency from size {old_size}"
        out.print(f"[bold]{kind}[/] in the {opened.title}'s tree of size {size}, root {root.hex()}")
        path = proof.hashes
        out.print(f"path: {len(path)} hash(es), {32 * len(path)} bytes")
        for i, h in enumerate(path):
            out.print(f"  {i:>2}  {h.hex()}")
        if not valid:
            out.print(
                "proof [bold red]does NOT verify[/]: the log's stored hashes disagree with each other "
                "(tampering); run `familyctx audit verify` on this log"
            )
        else:
            out.print("proof [green]verifies[/]")
        if matches_head is not None and valid:
            out.print(
                f"root {'matches' if matches_head else '[bold red]differs from[/]'} "
                f"the signed head of size {size}"
            )
    if not valid or matches_head is False:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``familyctx audit ...`` to the command-line tool."""
    app.add_typer(audit_app, name="audit")
