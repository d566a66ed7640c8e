from familycontext.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("council", "datasets", "contract_version", "source_system")
    COUNCIL_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    council: _types_pb2.Council
    datasets: _containers.RepeatedCompositeFieldContainer[_types_pb2.Dataset]
    contract_version: str
    source_system: str
    def __init__(self, council: _Optional[_Union[_types_pb2.Council, _Mapping]] = ..., datasets: _Optional[_Iterable[_Union[_types_pb2.Dataset, _Mapping]]] = ..., contract_version: _Optional[str] = ..., source_system: _Optional[str] = ...) -> None: ...

class PersonQuery(_message.Message):
    __slots__ = ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode", "local_person_id")
    NHS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    POSTCODE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: _types_pb2.Date
    postcode: str
    local_person_id: str
    def __init__(self, nhs_number: _Optional[str] = ..., given_name: _Optional[str] = ..., family_name: _Optional[str] = ..., date_of_birth: _Optional[_Union[_types_pb2.Date, _Mapping]] = ..., postcode: _Optional[str] = ..., local_person_id: _Optional[str] = ...) -> None: ...

class FindPeopleRequest(_message.Message):
    __slots__ = ("query", "max_results")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    query: PersonQuery
    max_results: int
    def __init__(self, query: _Optional[_Union[PersonQuery, _Mapping]] = ..., max_results: _Optional[int] = ...) -> None: ...

class FindPeopleResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[_types_pb2.Person]
    def __init__(self, candidates: _Optional[_Iterable[_Union[_types_pb2.Person, _Mapping]]] = ...) -> None: ...

class GetFamilyContextRequest(_message.Message):
    __slots__ = ("local_person_ids", "include_relatives")
    LOCAL_PERSON_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RELATIVES_FIELD_NUMBER: _ClassVar[int]
    local_person_ids: _containers.RepeatedScalarFieldContainer[str]
    include_relatives: bool
    def __init__(self, local_person_ids: _Optional[_Iterable[str]] = ..., include_relatives: _Optional[bool] = ...) -> None: ...

class GetFamilyContextResponse(_message.Message):
    __slots__ = ("people", "relationships", "involvements", "dataset_outcomes")
    PEOPLE_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    INVOLVEMENTS_FIELD_NUMBER: _ClassVar[int]
    DATASET_OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    people: _containers.RepeatedCompositeFieldContainer[_types_pb2.Person]
    relationships: _containers.RepeatedCompositeFieldContainer[_types_pb2.Relationship]
    involvements: _containers.RepeatedCompositeFieldContainer[_types_pb2.Involvement]
    dataset_outcomes: _containers.RepeatedCompositeFieldContainer[_types_pb2.DatasetOutcome]
    def __init__(self, people: _Optional[_Iterable[_Union[_types_pb2.Person, _Mapping]]] = ..., relationships: _Optional[_Iterable[_Union[_types_pb2.Relationship, _Mapping]]] = ..., involvements: _Optional[_Iterable[_Union[_types_pb2.Involvement, _Mapping]]] = ..., dataset_outcomes: _Optional[_Iterable[_Union[_types_pb2.DatasetOutcome, _Mapping]]] = ...) -> None: ...
