"""Keep gRPC's own TLS handshake refusals in a council adapter's log.

A caller refused by mutual TLS (no TLS at all, no client certificate, one the council's CA did not
issue) never reaches a handler: gRPC's TLS layer refuses it during the handshake and its C core logs
one line itself, at INFO level, on stderr::

    I1129 17:12:01.843068 29506 ssl_transport_security.cc:2563] Handshake failed with error SSL_ERROR_SSL:
    error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER ...

That line is the adapter's only record of such a refusal: gRPC's Python API offers no server-side hook
on a failed handshake (``grpc.dynamic_ssl_server_credentials`` is called before each handshake, not
after), so refusals cannot be counted in Python. The environment variable ``GRPC_VERBOSITY`` set to
``ERROR`` or ``NONE`` would silence the line, and gRPC reads it once, when the ``grpc`` module is first
imported: :func:`keep_handshake_log_lines` is called by ``familyctx adapter serve`` before that import.

This module imports no grpc (the adapter package does, on import), so the command can call it first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["SHOWS_HANDSHAKE_LINES", "keep_handshake_log_lines"]

#: ``GRPC_VERBOSITY`` values at which gRPC (1.6x and later: absl logging) writes its INFO lines; unset
#: is gRPC's default, which writes them too.
SHOWS_HANDSHAKE_LINES = ("", "INFO", "DEBUG")


def keep_handshake_log_lines(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Make sure gRPC will log TLS handshake refusals: remove a ``GRPC_VERBOSITY`` that would hide
    them (any value but INFO or DEBUG) from ``environ`` (default ``os.environ``), leaving gRPC's
    default. Returns a sentence for the adapter's log when something was changed or cannot be
    (``grpc`` already imported in this process), else None. Call it before anything imports grpc.
    """
    env = os.environ if environ is None else environ
    value = env.get("GRPC_VERBOSITY")
    if value is None or value.strip().upper() in SHOWS_HANDSHAKE_LINES:
        return None
    if environ is None and "grpc" in sys.modules:
        return (
            f"GRPC_VERBOSITY={value[:20]} hides gRPC's log lines of refused TLS handshakes, and gRPC "
            "is already loaded: unset GRPC_VERBOSITY (or set INFO) for the adapter"
        )
    del env["GRPC_VERBOSITY"]
    return (
        f"GRPC_VERBOSITY={value[:20]} ignored: it would hide gRPC's log lines of refused TLS handshakes "
        "(no client certificate, or one the council's CA did not issue); gRPC's default is used"
    )
