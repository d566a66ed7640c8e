"""``familyctx token`` and ``familyctx query ...``: talk to the development provider and the gateway.

``familyctx token --user sw.stockport`` prints only the access token, for ``$(...)`` use.
``familyctx query search|family-context --user NAME ...`` gets a token, calls the gateway and prints
the answer with rich tables (or the raw JSON with ``--json``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer

query_app = typer.Typer(help="Query the gateway as a demo user and print the answer.", no_args_is_help=True)

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


UserOpt = Annotated[str, typer.Option("--user", help="Demo user: sw.stockport, tm.leeds or ig.stockport.")]
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


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


def _token(user: str, issuer: str, password: str, token: str | None) -> str:
    from familyctx.gateway_client import ClientError, fetch_token

    if token:
        return token
    try:
        return fetch_token(issuer, user, password)
    except ClientError as exc:
        raise _fail(str(exc)) from exc


def _call(gateway: str, token: str, kind: str, body: dict[str, Any], as_json: bool) -> None:
    from rich.console import Console

    from familyctx.gateway_client import ClientError, GatewayClient, GatewayHttpError

    try:
        with GatewayClient(gateway, token) as client:
            answer = client.search(body) if kind == "search" else client.family_context(body)
    except GatewayHttpError as exc:
        raise _fail(str(exc), code=3 if exc.status >= 500 else 2) from exc
    except ClientError as exc:
        raise _fail(str(exc)) from exc
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
    user: UserOpt,
    purpose: PurposeOpt,
    case_ref: CaseOpt,
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
) -> None:
    """Search every council for a person (POST /v1/searches)."""
    if dob is not None:
        try:
            dt.date.fromisoformat(dob)
        except ValueError as exc:
            raise _fail("--dob must be a real date in the form YYYY-MM-DD", code=2) from exc
    body: dict[str, Any] = {"purpose": purpose, "case_reference": case_ref}
    for key, value in (("family_name", family_name), ("given_name", given_name), ("date_of_birth", dob),
                       ("nhs_number", nhs_number), ("postcode", postcode)):
        if value is not None:
            body[key] = value
    _call(gateway, _token(user, issuer, password, token_value), "search", body, as_json)


@query_app.command("family-context")
def family_context(
    user: UserOpt,
    council: Annotated[str, typer.Option("--council", help="GSS code of the subject's council (E08000007).")],
    person_id: Annotated[str, typer.Option("--person-id", help="That council's own person id.")],
    purpose: PurposeOpt,
    case_ref: CaseOpt,
    issuer: IssuerOpt = _ISSUER,
    password: PasswordOpt = _DEMO_PASSWORD,
    gateway: GatewayOpt = _GATEWAY,
    as_json: JsonOpt = False,
    token_value: TokenOpt = None,
) -> None:
    """Assemble the family context around one person (POST /v1/family-context)."""
    body = {
        "purpose": purpose,
        "case_reference": case_ref,
        "subject": {"gss_code": council, "local_person_id": person_id},
    }
    _call(gateway, _token(user, issuer, password, token_value), "family-context", body, as_json)


def register(app: typer.Typer) -> None:
    """Add ``familyctx token`` and ``familyctx query ...`` to the command-line tool."""
    app.command("token")(token)
    app.add_typer(query_app, name="query")
