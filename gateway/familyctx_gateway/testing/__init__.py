"""Test support for the gateway: a fake council warehouse behind a real gRPC AdapterService, a slow
council, an unreachable one, and a real OIDC issuer (discovery + JWKS over HTTP) that signs real JWTs.

These are fakes of the *data owners*, not of gRPC, HTTP or JOSE: every byte still crosses a real
socket and every token is really signed and verified. Used by tests/unit and tests/integration.
"""
