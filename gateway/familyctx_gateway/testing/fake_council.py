"""A council adapter served for real over ``grpc.aio`` on 127.0.0.1 port 0, answering from fixture data.

It implements ``familycontext.v1.AdapterService`` over an in-memory "warehouse" (a :class:`CouncilData`),
so the gateway is tested against the contract without the SQL adapter. Like the real adapter, it serves
only mutual TLS (its server certificate from a development PKI, client certificates required and
checked against that PKI's CA) and verifies every call's requester assertion with
:class:`~familyctx.trust.assertion.AssertionVerifier` (audience = its own GSS code), refusing with
``UNAUTHENTICATED``; it records the verified :class:`~familyctx.trust.assertion.Requester` of each call.
Also: :func:`start_sleeping_council` (answers after its caller's deadline), :func:`start_broken_council`
and :func:`unreachable_address` (a bound port nobody listens on).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import unicodedata
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc, types_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from familyctx.trust.assertion import (
    ASSERTION_METADATA_KEY,
    AssertionRefused,
    AssertionVerifier,
    ReplayCache,
    Requester,
)
from familyctx.trust.pki import DevPki

__all__ = [
    "CouncilData",
    "CouncilTrust",
    "FakeAdapterService",
    "SleepingAdapterService",
    "BrokenAdapterService",
    "start_broken_council",
    "involvement",
    "person",
    "relationship",
    "start_council",
    "start_sleeping_council",
    "unreachable_address",
]

EXTRACTED_AT = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)


def _date(value: dt.date | None) -> types_pb2.Date | None:
    return None if value is None else types_pb2.Date(year=value.year, month=value.month, day=value.day)


def _ts(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def person(
    gss_code: str,
    local_id: str,
    given: str,
    family: str,
    dob: dt.date | None,
    *,
    nhs: str = "",
    postcode: str = "",
    lines: tuple[str, ...] = (),
    sex: int = types_pb2.SEX_UNSPECIFIED,
    system: str = "systemc",
) -> types_pb2.Person:
    """A contract ``Person`` as a council would send it (names as recorded)."""
    msg = types_pb2.Person(
        local_person_id=local_id,
        nhs_number=nhs,
        given_name=given,
        family_name=family,
        sex=sex,
        provenance=types_pb2.Provenance(
            council_gss_code=gss_code,
            source_system=system,
            source_table="ssd_person",
            record_id=local_id,
            extracted_at=_ts(EXTRACTED_AT),
        ),
    )
    if dob is not None:
        msg.date_of_birth.CopyFrom(_date(dob))
    if postcode or lines:
        msg.address.CopyFrom(types_pb2.Address(lines=list(lines), postcode=postcode))
    return msg


def relationship(
    gss_code: str, person_id: str, related_id: str, kind: int, description: str
) -> types_pb2.Relationship:
    """ "``related_id`` is ``kind`` of ``person_id``" (contract Relationship)."""
    return types_pb2.Relationship(
        local_person_id=person_id,
        related_local_person_id=related_id,
        type=kind,
        description=description,
        provenance=types_pb2.Provenance(
            council_gss_code=gss_code,
            source_system="fixture",
            source_table="person_relationships",
            record_id=f"{person_id}-{related_id}",
            extracted_at=_ts(EXTRACTED_AT),
        ),
    )


def involvement(
    gss_code: str,
    inv_id: str,
    person_id: str,
    dataset_id: str,
    category: int,
    service: str,
    *,
    open_: bool = True,
    start: dt.date = dt.date(2025, 1, 6),
    practitioner: tuple[str, str, str, str, str],
    summary: str = "",
) -> types_pb2.Involvement:
    name, role, team, phone, email = practitioner
    msg = types_pb2.Involvement(
        involvement_id=inv_id,
        local_person_id=person_id,
        dataset_id=dataset_id,
        category=category,
        service=service,
        status=types_pb2.INVOLVEMENT_STATUS_OPEN if open_ else types_pb2.INVOLVEMENT_STATUS_CLOSED,
        practitioner=types_pb2.Practitioner(name=name, role=role, team=team, phone=phone, email=email),
        summary=summary,
        provenance=types_pb2.Provenance(
            council_gss_code=gss_code,
            source_system="fixture",
            source_table=dataset_id,
            record_id=inv_id,
            extracted_at=_ts(EXTRACTED_AT),
        ),
    )
    msg.start_date.CopyFrom(_date(start))
    return msg


@dataclass
class CouncilData:
    """One council's fixture warehouse: people, relationships, involvements and datasets offered."""

    gss_code: str
    name: str
    people: list[types_pb2.Person] = field(default_factory=list)
    relationships: list[types_pb2.Relationship] = field(default_factory=list)
    involvements: list[types_pb2.Involvement] = field(default_factory=list)
    datasets: tuple[tuple[str, int], ...] = (
        ("csc", types_pb2.DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE),
        ("asc", types_pb2.DATASET_CATEGORY_ADULT_SOCIAL_CARE),
    )
    refreshed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


def _fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if c.isalnum())


@dataclass(frozen=True)
class CouncilTrust:
    """How a fake council trusts the gateway and proves itself.

    ``pki``: the federation's PKI: its CA checks client certificates, its assertion JWKS verifies
    assertions; ``server_pki``: the PKI whose adapter certificate the council presents (default ``pki``;
    another PKI makes a council the gateway must not trust); ``issuer``: the expected ``iss``;
    ``jwks``: the JWK Set to verify with instead of ``pki``'s (e.g. another gateway's keys).
    """

    pki: DevPki
    issuer: str
    server_pki: DevPki | None = None
    jwks: dict[str, Any] | None = None

    def server_credentials(self, gss_code: str) -> grpc.ServerCredentials:
        """TLS server credentials requiring a client certificate issued by ``pki``'s CA."""
        serving = self.server_pki or self.pki
        return grpc.ssl_server_credentials(
            [(serving.adapter_key(gss_code).read_bytes(), serving.adapter_cert(gss_code).read_bytes())],
            root_certificates=self.pki.ca_cert.read_bytes(),
            require_client_auth=True,
        )

    def verifier(self, gss_code: str) -> AssertionVerifier:
        """The assertion verifier of council ``gss_code`` (audience = its GSS code), refusing a replayed
        assertion as a real adapter does (so tests show the gateway never sends one twice)."""
        jwks = self.jwks or json.loads(self.pki.assertion_jwks.read_text(encoding="utf-8"))
        return AssertionVerifier(jwks, issuer=self.issuer, audience=gss_code, replay_cache=ReplayCache())


class FakeAdapterService(adapter_pb2_grpc.AdapterServiceServicer):
    """AdapterService over a :class:`CouncilData`, verifying each call's assertion with ``verifier``.

    ``calls``: (method, verified Requester) of every accepted call; ``metadata``: the gRPC metadata of
    every call (accepted or not); ``refusals``: (method, AssertionRefused reason) of every refused call.
    """

    def __init__(self, data: CouncilData, verifier: AssertionVerifier) -> None:
        self.data = data
        self.verifier = verifier
        self.calls: list[tuple[str, Requester]] = []
        self.metadata: list[dict[str, str]] = []
        self.refusals: list[tuple[str, str]] = []

    async def _note(self, method: str, context: Any) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        self.metadata.append(metadata)
        try:
            verified = self.verifier.verify(metadata.get(ASSERTION_METADATA_KEY))
        except AssertionRefused as exc:
            self.refusals.append((method, exc.reason))
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "requester assertion refused")
        self.calls.append((method, verified.requester))

    async def Describe(self, request: Any, context: Any) -> adapter_pb2.DescribeResponse:  # noqa: N802
        await self._note("Describe", context)
        return adapter_pb2.DescribeResponse(
            council=types_pb2.Council(gss_code=self.data.gss_code, name=self.data.name),
            datasets=[
                types_pb2.Dataset(
                    dataset_id=ds,
                    name=ds.upper(),
                    category=cat,
                    refreshed_at=_ts(self.data.refreshed_at),
                    refresh_interval_seconds=86400,
                    coverage_area=self.data.name,
                )
                for ds, cat in self.data.datasets
            ],
            contract_version="1.0.0",
            source_system="fixture",
        )

    async def FindPeople(self, request: Any, context: Any) -> adapter_pb2.FindPeopleResponse:  # noqa: N802
        await self._note("FindPeople", context)
        q = request.query
        out = []
        for p in self.data.people:
            if q.nhs_number:
                if p.nhs_number == q.nhs_number.replace(" ", ""):
                    out.append(p)
                continue
            if q.family_name and _fold(q.family_name) != _fold(p.family_name):
                continue
            if q.given_name and _fold(q.given_name) != _fold(p.given_name):
                continue
            if (
                q.HasField("date_of_birth")
                and q.date_of_birth.year
                and (
                    (q.date_of_birth.year, q.date_of_birth.month, q.date_of_birth.day)
                    not in {
                        (p.date_of_birth.year, p.date_of_birth.month, p.date_of_birth.day),
                        (p.date_of_birth.year, p.date_of_birth.day, p.date_of_birth.month),
                    }
                )
            ):
                continue
            out.append(p)
        return adapter_pb2.FindPeopleResponse(candidates=out[: request.max_results or 25])

    async def GetFamilyContext(self, request: Any, context: Any) -> adapter_pb2.GetFamilyContextResponse:  # noqa: N802
        await self._note("GetFamilyContext", context)
        ids = set(request.local_person_ids)
        if not ids & {p.local_person_id for p in self.data.people}:
            # As the SQL adapter does (PeopleNotFound -> NOT_FOUND), with its value-free message.
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                "none of the local_person_ids asked for exist in this council's records",
            )
        if request.include_relatives:
            for r in self.data.relationships:
                if r.local_person_id in ids:
                    ids.add(r.related_local_person_id)
                elif r.related_local_person_id in ids:
                    ids.add(r.local_person_id)
        people = [p for p in self.data.people if p.local_person_id in ids]
        involvements = [i for i in self.data.involvements if i.local_person_id in ids]
        outcomes = []
        for p in people:
            for ds, _cat in self.data.datasets:
                found = any(
                    i.local_person_id == p.local_person_id and i.dataset_id == ds for i in involvements
                )
                outcomes.append(
                    types_pb2.DatasetOutcome(
                        local_person_id=p.local_person_id,
                        dataset_id=ds,
                        state=types_pb2.DATASET_STATE_RECORDS_FOUND
                        if found
                        else types_pb2.DATASET_STATE_NONE_FOUND,
                    )
                )
        return adapter_pb2.GetFamilyContextResponse(
            people=people,
            relationships=[
                r
                for r in self.data.relationships
                if r.local_person_id in ids and r.related_local_person_id in ids
            ],
            involvements=involvements,
            dataset_outcomes=outcomes,
        )


class SleepingAdapterService(adapter_pb2_grpc.AdapterServiceServicer):
    """A council that answers nothing in time: every call waits ``seconds`` (far past any deadline).

    The wait is the behaviour under test (a slow warehouse), not synchronisation: gRPC cancels it
    when the caller's deadline passes.
    """

    def __init__(self, seconds: float = 60.0) -> None:
        self.seconds = seconds

    async def _wait(self) -> None:
        await asyncio.sleep(self.seconds)

    async def Describe(self, request: Any, context: Any) -> Any:  # noqa: N802
        await self._wait()
        return adapter_pb2.DescribeResponse()

    async def FindPeople(self, request: Any, context: Any) -> Any:  # noqa: N802
        await self._wait()
        return adapter_pb2.FindPeopleResponse()

    async def GetFamilyContext(self, request: Any, context: Any) -> Any:  # noqa: N802
        await self._wait()
        return adapter_pb2.GetFamilyContextResponse()


class BrokenAdapterService(adapter_pb2_grpc.AdapterServiceServicer):
    """A council whose warehouse fails: every call aborts INTERNAL with a message quoting the query
    (as careless code might), which the gateway must not pass on."""

    async def _fail(self, context: Any) -> Any:
        await context.abort(grpc.StatusCode.INTERNAL, "query failed for Zoë O'Neill 9990000018")

    async def Describe(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._fail(context)

    async def FindPeople(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._fail(context)

    async def GetFamilyContext(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._fail(context)


@asynccontextmanager
async def _serve(servicer: Any, credentials: grpc.ServerCredentials) -> AsyncIterator[str]:
    server = grpc.aio.server()
    adapter_pb2_grpc.add_AdapterServiceServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


@asynccontextmanager
async def start_council(
    data: CouncilData, trust: CouncilTrust
) -> AsyncIterator[tuple[str, FakeAdapterService]]:
    """Serve ``data`` over mutual TLS on a free loopback port, verifying assertions as ``trust`` says;
    yields (address, servicer)."""
    servicer = FakeAdapterService(data, trust.verifier(data.gss_code))
    async with _serve(servicer, trust.server_credentials(data.gss_code)) as address:
        yield address, servicer


@asynccontextmanager
async def start_sleeping_council(
    gss_code: str, trust: CouncilTrust, seconds: float = 60.0
) -> AsyncIterator[str]:
    """A council (mutual TLS) that answers nothing within any deadline; yields its address."""
    async with _serve(SleepingAdapterService(seconds), trust.server_credentials(gss_code)) as address:
        yield address


@asynccontextmanager
async def start_broken_council(gss_code: str, trust: CouncilTrust) -> AsyncIterator[str]:
    """A council (mutual TLS) whose every call fails INTERNAL; yields its address."""
    async with _serve(BrokenAdapterService(), trust.server_credentials(gss_code)) as address:
        yield address


@contextmanager
def unreachable_address() -> Iterator[str]:
    """A loopback address bound but not listening: connections are refused for as long as it is held."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
