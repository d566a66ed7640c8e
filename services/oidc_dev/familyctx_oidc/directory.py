"""Demo users and OAuth clients of the development provider (interfaces.md, "Access tokens").

DEVELOPMENT ONLY: every demo user's password is ``demo``. The ``familyctx-cli`` client is public
(RFC 6749 section 2.1, no secret) and may use only the resource-owner password grant; the
``familyctx-service`` client is confidential (client_secret_basic or client_secret_post) and may use
only client_credentials, which yields role ``service_client``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from authlib.oauth2.rfc6749 import ClientMixin

DEMO_PASSWORD = "demo"  # noqa: S105 - published development password
CLI_CLIENT_ID = "familyctx-cli"
SERVICE_CLIENT_ID = "familyctx-service"
#: Scope granted when none is asked for (RFC 6749 section 3.3 lets the server apply a default).
DEFAULT_SCOPE = "familyctx"


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo worker. ``roles``: subset of social_worker, team_manager, ig_officer, administrator;
    ``organisation``: GSS code of the worker's council."""

    username: str
    name: str
    roles: tuple[str, ...]
    organisation: str
    organisation_name: str

    def get_user_id(self) -> str:
        """The ``sub`` claim: the username, stable across restarts."""
        return self.username


DEMO_USERS: dict[str, DemoUser] = {
    user.username: user
    for user in (
        DemoUser("sw.stockport", "Sam Walker", ("social_worker",), "E08000007", "Stockport"),
        DemoUser("tm.leeds", "Taylor Moss", ("team_manager",), "E08000035", "Leeds"),
        DemoUser("ig.stockport", "Indra Gill", ("ig_officer",), "E08000007", "Stockport"),
        DemoUser("ig.leeds", "Lee Ng", ("ig_officer",), "E08000035", "Leeds"),
        DemoUser("admin.stockport", "Alex Price", ("administrator",), "E08000007", "Stockport"),
    )
}


@dataclass(frozen=True, slots=True)
class DemoClient(ClientMixin):  # type: ignore[misc]
    """An OAuth 2.0 client registration, as Authlib's :class:`ClientMixin` expects."""

    client_id: str
    grant_types: tuple[str, ...]
    auth_methods: tuple[str, ...]
    secret: str | None = None
    roles: tuple[str, ...] = field(default_factory=tuple)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or DEFAULT_SCOPE

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret is None:
            return False
        return hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def demo_clients(service_client_secret: str) -> dict[str, DemoClient]:
    """The two registered clients, keyed by client id."""
    return {
        CLI_CLIENT_ID: DemoClient(CLI_CLIENT_ID, ("password",), ("none",)),
        SERVICE_CLIENT_ID: DemoClient(
            SERVICE_CLIENT_ID,
            ("client_credentials",),
            ("client_secret_basic", "client_secret_post"),
            secret=service_client_secret,
            roles=("service_client",),
        ),
    }
