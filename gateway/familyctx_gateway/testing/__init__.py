"""Test support for the gateway: a fake council warehouse behind a real gRPC AdapterService (mutual
TLS, verifying the gateway's signed assertions), a slow council, an unreachable one, a development PKI
per test process (:mod:`.pki`), and a real OIDC issuer (discovery + JWKS over HTTP) that signs real JWTs.

These are fakes of the *data owners*, not of gRPC, TLS, HTTP or JOSE: every byte still crosses a real
socket and every certificate and token is really signed and verified. Used by tests/unit and
tests/integration.
"""
