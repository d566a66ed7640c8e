"""A real OIDC issuer for tests: RSA/EC keys generated per run, served as a discovery document and a
JWKS by ``http.server`` on 127.0.0.1 port 0, and a :meth:`TestIssuer.token` that signs real JWTs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

__all__ = ["TestIssuer", "running_issuer"]

AUDIENCE = "familyctx-gateway"

USERS: dict[str, dict[str, Any]] = {
    "sw.stockport": {"name": "Sam Walker", "roles": ["social_worker"], "organisation": "E08000007"},
    "tm.leeds": {"name": "Taylor Moss", "roles": ["team_manager"], "organisation": "E08000035"},
    "ig.stockport": {"name": "Indra Gill", "roles": ["ig_officer"], "organisation": "E08000007"},
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestIssuer:
    """Keys, JWKS and token signing. ``issuer`` is set once the HTTP server is listening."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig", "alg": "RS256"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig", "alg": "ES256"})
        self.published: list[Any] = [self.rsa, self.ec]
        self.issuer = ""
        self.jwks_requests = 0
        #: When true, discovery and JWKS answer 500 (an issuer outage).
        self.failing = False
        #: When set, each JWKS request is counted, then held until the event is set (concurrency tests).
        self.jwks_gate: threading.Event | None = None

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet(self.published).as_dict(private=False))

    def claims(self, user: str = "sw.stockport", **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": f"user-{user}",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "azp": "familyctx-cli",
            "client_id": "familyctx-cli",
            "scope": "familyctx",
            "preferred_username": user,
            **USERS[user],
        }
        base["organisation_name"] = "Stockport" if base["organisation"] == "E08000007" else "Leeds"
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def token(
        self,
        user: str = "sw.stockport",
        *,
        key: Any = None,
        alg: str = "RS256",
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT signed with ``key`` (default: the published RSA key) carrying ``claims`` over defaults."""
        key = key or (self.ec if alg.startswith("ES") else self.rsa)
        hdr = {"alg": alg, "kid": key.kid, "typ": "at+jwt", **(header or {})}
        hdr = {k: v for k, v in hdr.items() if v is not None}
        return jwt.encode(hdr, self.claims(user, **claims), key, algorithms=[alg])

    def unsigned_token(self, user: str = "sw.stockport") -> str:
        """``alg: none`` (RFC 7519 section 6): no signature at all."""
        header = _b64(json.dumps({"alg": "none", "kid": "rsa-1", "typ": "JWT"}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(user)).encode())}."

    def hs256_with_public_key(self, user: str = "sw.stockport") -> str:
        """The key-confusion attack: HMAC-SHA256 keyed with the RSA public key's PEM (RFC 8725 2.1)."""
        pem = self.rsa.as_pem(private=False)
        header = _b64(json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(self.claims(user)).encode())
        signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"


@contextmanager
def running_issuer() -> Iterator[TestIssuer]:
    """Serve a :class:`TestIssuer`'s discovery document and JWKS on a free loopback port."""
    issuer = TestIssuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if issuer.failing:
                self.send_error(500)
                return
            if self.path == "/.well-known/openid-configuration":
                body: dict[str, Any] = {
                    "issuer": issuer.issuer,
                    "jwks_uri": f"{issuer.issuer}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                }
            elif self.path == "/jwks":
                issuer.jwks_requests += 1
                if issuer.jwks_gate is not None:
                    issuer.jwks_gate.wait(timeout=60)
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
