"""The source port: what the adapter needs from a council's warehouse, independent of storage.

:class:`WarehouseSource` is the abstract port; :class:`familyctx_adapter.sql_source.SqlWarehouseSource`
is the SQLAlchemy implementation. The port speaks the contract's messages (familycontext.v1) so that
the gRPC layer only validates, calls and maps errors. Inputs arrive validated (:mod:`.queries`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from familycontext.v1 import adapter_pb2, types_pb2

from familyctx_adapter.queries import PersonSearch

__all__ = ["WarehouseSource"]


class WarehouseSource(abc.ABC):
    """A council's warehouse, read-only, as the adapter sees it."""

    @abc.abstractmethod
    def describe(self) -> adapter_pb2.DescribeResponse:
        """Council, datasets with freshness/coverage/cohort, contract version, source system."""

    @abc.abstractmethod
    def find_people(self, search: PersonSearch, max_results: int) -> list[types_pb2.Person]:
        """Local candidates for ``search``, best first, at most ``max_results``; demographics only."""

    @abc.abstractmethod
    def get_family_context(
        self, local_person_ids: Sequence[str], include_relatives: bool
    ) -> adapter_pb2.GetFamilyContextResponse:
        """People, relationships, involvements and one outcome per (person, dataset).

        Raises :class:`familyctx_adapter.errors.PeopleNotFound` when none of the ids exist.
        """

    @abc.abstractmethod
    def check(self) -> bool:
        """True when the warehouse answers a trivial query (for grpc.health.v1)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
