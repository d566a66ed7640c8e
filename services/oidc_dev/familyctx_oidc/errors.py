"""The development OIDC provider's error tree (one root, :class:`OidcDevError`).

Token-endpoint errors are not here: they are Authlib's RFC 6749 section 5.2 errors
(``invalid_request``, ``invalid_client``, ``invalid_grant``, ``unsupported_grant_type``), rendered by
:mod:`familyctx_oidc.authorization`.
"""

from __future__ import annotations


class OidcDevError(Exception):
    """Root of every error the development provider raises on start-up."""


class NonLoopbackBindError(OidcDevError):
    """Refused to listen on a non-loopback address without ``allow_non_loopback``."""


class SigningKeyError(OidcDevError):
    """The signing key in the state directory is unreadable, malformed or has unsafe permissions."""
