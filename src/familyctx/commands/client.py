"""``familyctx token`` and ``familyctx query ...``: talk to the development provider and the gateway.

``familyctx token --user sw.stockport`` prints only the access token, for ``$(...)`` use.
``familyctx query search|family-context --user NAME ...`` gets a token, calls the gateway and prints
the answer with rich tables (or the raw JSON with ``--json``); ``--break-glass-id`` sends a grant.
Every command that calls the gateway takes ``--token`` (or ``FAMILYCTX_TOKEN``) instead of ``--user``
to use a token you already have; with neither, or with both, it stops with a usage error (exit 2) naming
both.
``familyctx break-glass open|show|notifications`` opens a break-glass grant, shows one of yours, or
lists your council's break-glass notifications (IG officers).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer

query_app = typer.Typer(help="Query the gateway as a demo user and print the answer.", no_args_is_help=True)
break_glass_app = typer.Typer(
    help="Break glass: open a time-boxed grant with a written reason; IG officers list notifications.",
    no_args_is_help=True,
)

_ISSUER = "http://127.0.0.1:9000"
_GATEWAY = "http://127.0.0.1:8000"
_DEMO_PASSWORD = "demo"  # noqa: S105 - the development provider's published password
_PURPOSES = ("s17_assessment", "s47_enquiry", "cp_conference", "cla_review", "early_help_assessment")


def _http_url(value: str) -> str:
    """Typer callback: ``value`` must be an absolute http(s) URL with a host and a valid port."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 1 <= parts.port <= 65535
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise typer.BadParameter(f"{value!r} is not an http(s) URL such as http://127.0.0.1:8000")
    return value


UserOpt = Annotated[
    str,
    typer.Option(
        "--user", help="Demo user: sw.stockport, tm.leeds, ig.stockport, ig.leeds or admin.stockport."
    ),
]
#: ``--user`` where ``--token`` may be given instead (checked by :func:`_token`).
UserOrTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="Demo user: sw.stockport, tm.leeds, ig.stockport, ig.leeds or admin.stockport; not needed "
        "with --token.",
        show_default=False,
    ),
]
IssuerOpt = Annotated[str, typer.Option("--issuer", callback=_http_url, help="OIDC provider (issuer URL).")]
PasswordOpt = Annotated[
    str,
    typer.Option("--password", envvar="FAMILYCTX_PASSWORD", help="Demo user's password (dev: demo)."),
]
GatewayOpt = Annotated[str, typer.Option("--gateway", callback=_http_url, help="Gateway base URL.")]
PurposeOpt = Annotated[str, typer.Option("--purpose", help=f"Purpose of the query: {', '.join(_PURPOSES)}.")]
CaseOpt = Annotated[str, typer.Option("--case-ref", help="Your case reference, e.g. CASE-2026-0042.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the gateway's raw JSON answer.")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="FAMILYCTX_TOKEN", help="Use this access token instead of getting one."),
]
BreakGlassIdOpt = Annotated[
    str | None,
    typer.Option(
        "--break-glass-id",
        help="Your break-glass grant for this case and purpose (familyctx break-glass open).",
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


def _token(user: str | None, issuer: str, password: str, token: str | None) -> str:
    """``token`` when given (``--token`` or ``FAMILYCTX_TOKEN``), else one fetched from the provider for
    ``user``. Raises typer.Exit: 2 (a usage error naming both options) when neither or both are given
    (two identities: which one the request should run as is not guessed), 1 when the provider refuses
    or cannot be reached."""
    from familyctx.gateway_client import ClientError, fetch_token

    if token and user:
        raise _fail(_both_given_message(token), code=2)
    if token:
        return token
    if not user:
        raise _fail(
            "missing option '--user' or '--token': give --user NAME (a demo user: a token is fetched from "
            "the development provider) or --token TOKEN (or FAMILYCTX_TOKEN) to use a token you already "
            "have",
            code=2,
        )
    try:
        return fetch_token(issuer, user, password)
    except ClientError as exc:
        raise _fail(str(exc)) from exc


def _both_given_message(token: str) -> str:
    """The usage error for ``--user`` with ``token``, saying whether the token is FAMILYCTX_TOKEN's."""
    import os

    if os.environ.get("FAMILYCTX_TOKEN") == token:
        return (
            "--user and --token (here FAMILYCTX_TOKEN, set in your environment) were both given: give one "
            "of them; unset FAMILYCTX_TOKEN to query as --user, or leave out --user to use the token"
        )
    return (
        "--user and --token were both given: give one of them (--user NAME fetches a token for a demo "
        "user; --token TOKEN uses one you already have)"
    )


def _gateway_call(gateway: str, token: str, call: Any) -> dict[str, Any]:
    """``call(client)`` with a :class:`GatewayClient`; gateway errors exit 2 (4xx) or 3 (5xx), others 1."""
    from familyctx.gateway_client import ClientError, GatewayClient, GatewayHttpError

    try:
        with GatewayClient(gateway, token) as client:
            return call(client)  # type: ignore[no-any-return]
    except GatewayHttpError as exc:
        raise _fail(str(exc), code=3 if exc.status >= 500 else 2) from exc
    except ClientError as exc:
        raise _fail(str(exc)) from exc


def _call(gateway: str, token: str, kind: str, body: dict[str, Any], as_json: bool) -> None:
    from rich.console import Console

    answer = _gateway_call(
        gateway, token, lambda c: c.search(body) if kind == "search" else c.family_context(body)
    )
    if as_json:
        typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))
        return
    print_answer(kind, answer, Console())


def print_answer(kind: str, answer: dict[str, Any], console: Any) -> None:
    """Validate ``answer`` against the gateway's response schema and print it with rich."""
    from familyctx_gateway.api.schemas import FamilyContextResponse, SearchResponse

    from familyctx.render import render_family_context, render_search

    if kind == "search":
        render_search(SearchResponse.model_validate(answer), console)
    else:
        render_family_context(FamilyContextResponse.model_validate(answer), console)


def token(
    user: UserOpt,
    issuer: IssuerOpt = _ISSUER,
    password: PasswordOpt = _DEMO_PASSWORD,
) -> None:
    """Print an access token for a demo user (only the token, for `$(familyctx token --user ...)`)."""
    typer.echo(_token(user, issuer, password, None))


@query_app.command("search")
def search(
    purpose: PurposeOpt,
    case_ref: CaseOpt,
    user: UserOrTokenOpt = None,
    family_name: Annotated[str | None, typer.Option(help="Family name.")] = None,
    given_name: Annotated[str | None, typer.Option(help="Given name.")] = None,
    dob: Annotated[str | None, typer.Option("--dob", help="Date of birth, YYYY-MM-DD.")] = None,
    nhs_number: Annotated[str | None, typer.Option(help="NHS number (10 digits).")] = None,
    postcode: Annotated[str | None, typer.Option(help="UK postcode.")] = None,
    issuer: IssuerOpt = _ISSUER,
    password: PasswordOpt = _DEMO_PASSWORD,
    gateway: GatewayOpt = _GATEWAY,
    as_json: JsonOpt = False,
    token_value: TokenOpt = None,
    break_glass_id: BreakGlassIdOpt = None,
) -> None:
    """Search every council for a person (POST /v1/searches)."""
    if dob is not None:
        try:
            dt.date.fromisoformat(dob)
        except ValueError as exc:
            raise _fail("--dob must be a real date in the form YYYY-MM-DD", code=2) from exc
    body: dict[str, Any] = {"purpose": purpose, "case_reference": case_ref}
    for key, value in (
        ("family_name", family_name),
        ("given_name", given_name),
        ("date_of_birth", dob),
        ("nhs_number", nhs_number),
        ("postcode", postcode),
        ("break_glass_id", break_glass_id),
    ):
        if value is not None:
            body[key] = value
    _call(gateway, _token(user, issuer, password, token_value), "search", body, as_json)


@query_app.command("family-context")
def family_context(
    council: Annotated[str, typer.Option("--council", help="GSS code of the subject's council (E08000007).")],
    person_id: Annotated[str, typer.Option("--person-id", help="That council's own person id.")],
    purpose: PurposeOpt,
    case_ref: CaseOpt,
    user: UserOrTokenOpt = None,
    issuer: IssuerOpt = _ISSUER,
    password: PasswordOpt = _DEMO_PASSWORD,
    gateway: GatewayOpt = _GATEWAY,
    as_json: JsonOpt = False,
    token_value: TokenOpt = None,
    break_glass_id: BreakGlassIdOpt = None,
) -> None:
    """Assemble the family context around one person (POST /v1/family-context)."""
    body: dict[str, Any] = {
        "purpose": purpose,
        "case_reference": case_ref,
        "subject": {"gss_code": council, "local_person_id": person_id},
    }
    if break_glass_id is not None:
        body["break_glass_id"] = break_glass_id
    _call(gateway, _token(user, issuer, password, token_value), "family-context", body, as_json)


def _show_grant(grant: dict[str, Any], *, as_json: bool) -> None:
    """Print a break-glass grant (the gateway's JSON object) as JSON or as a readable block."""
    if as_json:
        typer.echo(json.dumps(grant, indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    _print_grant(grant, Console())


def _print_grant(grant: dict[str, Any], console: Any) -> None:
    from rich.text import Text

    from familyctx.render import printable, short_time

    active = "active" if grant.get("active") else "expired"
    grant_id = printable(grant["break_glass_id"])
    line = Text("BREAK GLASS", style="bold white on red")
    line.append(f" grant {grant_id} ({active})", style="bold")
    console.print(line)
    console.print(Text(f"purpose {printable(grant['purpose'])}, case {printable(grant['case_reference'])}"))
    console.print(Text(f"opened {short_time(grant['opened_at'])}, expires {short_time(grant['expires_at'])}"))
    notified = ", ".join(printable(c) for c in grant.get("councils_notified") or []) or "none"
    console.print(
        Text(f"IG officers notified so far: {notified} (each council asked is told before it is asked)")
    )
    console.print(Text("Send it with: --break-glass-id " + grant_id))


@break_glass_app.command("open")
def break_glass_open(
    purpose: PurposeOpt,
    case_ref: Annotated[
        str, typer.Option("--case", "--case-ref", help="Your case reference, e.g. CASE-2026-0042.")
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why you need access beyond your role's purposes: one line, 20-1000 characters, at least "
            "20 letters or digits.",
        ),
    ],
    minutes: Annotated[
        int | None,
        typer.Option("--minutes", min=1, help="How long the grant lasts, in whole minutes (default 30)."),
    ] = None,
    user: UserOrTokenOpt = None,
    issuer: IssuerOpt = _ISSUER,
    password: PasswordOpt = _DEMO_PASSWORD,
    gateway: GatewayOpt = _GATEWAY,
    as_json: JsonOpt = False,
    token_value: TokenOpt = None,
) -> None:
    """Open a time-boxed break-glass grant (POST /v1/break-glass); your council's IG officers are told
    now, and each other council's when it is first asked for data under the grant."""

    body: dict[str, Any] = {"purpose": purpose, "case_reference": case_ref, "reason": reason}
    if minutes is not None:
        body["minutes"] = minutes
    token_value = _token(user, issuer, password, token_value)
    grant = _gateway_call(gateway, token_value, lambda c: c.open_break_glass(body))
    _show_grant(grant, as_json=as_json)


@break_glass_app.command("show")
def break_glass_show(
    break_glass_id: Annotated[str, typer.Argument(help="The grant's id.")],
    user: UserOrTokenOpt = None,
    issuer: IssuerOpt = _ISSUER,
    password: PasswordOpt = _DEMO_PASSWORD,
    gateway: GatewayOpt = _GATEWAY,
    as_json: JsonOpt = False,
    token_value: TokenOpt = None,
) -> None:
    """Show one of your own break-glass grants (GET /v1/break-glass/ID)."""

    grant = _gateway_call(
        gateway, _token(user, issuer, password, token_value), lambda c: c.break_glass(break_glass_id)
    )
    _show_grant(grant, as_json=as_json)


@break_glass_app.command("notifications")
def break_glass_notifications(
    user: UserOrTokenOpt = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only grants opened at or after this ISO 8601 time.")
    ] = None,
    after: Annotated[int | None, typer.Option(min=0, help="The previous page's next_after.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, max=200, help="At most this many (1-200).")] = None,
    issuer: IssuerOpt = _ISSUER,
    password: PasswordOpt = _DEMO_PASSWORD,
    gateway: GatewayOpt = _GATEWAY,
    as_json: JsonOpt = False,
    token_value: TokenOpt = None,
) -> None:
    """List your council's break-glass notifications, oldest first (IG officers): one block per
    notification, readable at 80 columns."""
    from rich.console import Console

    from familyctx.render import render_break_glass_notifications

    if since is not None:
        try:
            dt.datetime.fromisoformat(since)
        except ValueError as exc:
            raise _fail("--since must be an ISO 8601 date-time such as 2026-05-01T09:00:00Z", code=2) from exc
    page = _gateway_call(
        gateway,
        _token(user, issuer, password, token_value),
        lambda c: c.break_glass_notifications(since=since, after=after, limit=limit),
    )
    if as_json:
        typer.echo(json.dumps(page, indent=2, ensure_ascii=False))
        return
    render_break_glass_notifications(page, Console())


def register(app: typer.Typer) -> None:
    """Add ``familyctx token``, ``familyctx query ...`` and ``familyctx break-glass ...`` to the tool."""
    app.command("token")(token)
    app.add_typer(query_app, name="query")
    app.add_typer(break_glass_app, name="break-glass")
