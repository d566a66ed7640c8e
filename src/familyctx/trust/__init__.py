"""Trust between the gateway and council adapters: development PKI and signed requester assertions.

:mod:`familyctx.trust.pki` writes a development CA and the certificates for mutual TLS;
:mod:`familyctx.trust.assertion` signs (gateway) and verifies (adapter) the per-request assertion
saying who is asking, under which role and for which purpose. See docs/access-control.md.
"""
