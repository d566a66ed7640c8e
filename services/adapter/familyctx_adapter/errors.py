"""The adapter's one error tree. Mapped to gRPC status codes in one place: :func:`grpc_status_for`.

Messages must never contain personal data (names, dates of birth, NHS numbers): they are sent to
the caller and may be logged.
"""

from __future__ import annotations

import grpc
from sqlalchemy import exc as sa_exc

__all__ = [
    "AdapterConfigError",
    "AdapterError",
    "DisclosureLogUnavailable",
    "DisclosureRefused",
    "InvalidQuery",
    "PeopleNotFound",
    "SourceUnavailable",
    "WarehouseMappingError",
    "grpc_status_for",
]


class AdapterError(Exception):
    """Root of every error the adapter raises on purpose."""


class AdapterConfigError(AdapterError):
    """The configuration file or environment is unusable (message names the field)."""


class WarehouseMappingError(AdapterError):
    """The warehouse lacks a table or column the CMS flavour's mapping needs."""


class InvalidQuery(AdapterError):
    """The request cannot be answered as asked; the message says how to fix it."""


class PeopleNotFound(AdapterError):
    """None of the local person ids asked for exist in this council's warehouse."""


class SourceUnavailable(AdapterError):
    """The warehouse did not answer (connection refused, timeout, locked)."""


class DisclosureRefused(AdapterError):
    """The council's sharing policy discloses no people to this requester (PERMISSION_DENIED)."""


class DisclosureLogUnavailable(AdapterError):
    """The disclosure record of an answer could not be committed, so the answer is not sent (fail
    closed: UNAVAILABLE "disclosure log unavailable")."""

    def __init__(self, message: str = "disclosure log unavailable") -> None:
        super().__init__(message)


_STATUS: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (InvalidQuery, grpc.StatusCode.INVALID_ARGUMENT),
    (PeopleNotFound, grpc.StatusCode.NOT_FOUND),
    (SourceUnavailable, grpc.StatusCode.UNAVAILABLE),
    (WarehouseMappingError, grpc.StatusCode.FAILED_PRECONDITION),
    (DisclosureRefused, grpc.StatusCode.PERMISSION_DENIED),
    (DisclosureLogUnavailable, grpc.StatusCode.UNAVAILABLE),
)

_UNAVAILABLE = "the council's warehouse did not answer; try again later"


def grpc_status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Map an exception to (gRPC status code, caller-safe message). Unknown errors are INTERNAL."""
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return code, str(exc)
    # A connection lost or refused mid-request, or no pooled connection in time.
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return grpc.StatusCode.UNAVAILABLE, _UNAVAILABLE
    return grpc.StatusCode.INTERNAL, "internal error in the adapter; see its logs with the request id"
