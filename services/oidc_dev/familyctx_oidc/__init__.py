"""Development OpenID Connect provider for the Family Context Federation.

FOR DEVELOPMENT AND TESTS ONLY. It knows three demo users with a shared, published password and a
public command-line client; it binds only to loopback unless told otherwise. Production deployments
use the council's own identity provider (Entra ID, Keycloak and the like).

Public API: :func:`create_app` (ASGI application factory) and :class:`OidcSettings`.
"""

from __future__ import annotations

from familyctx_oidc.app import create_app
from familyctx_oidc.errors import NonLoopbackBindError, OidcDevError, SigningKeyError
from familyctx_oidc.settings import OidcSettings

__all__ = ["NonLoopbackBindError", "OidcDevError", "OidcSettings", "SigningKeyError", "create_app"]
