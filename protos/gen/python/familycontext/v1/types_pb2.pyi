import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_CATEGORY_UNSPECIFIED: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_EARLY_HELP: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_ADULT_SOCIAL_CARE: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_HOUSING: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_EDUCATION: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_POLICE: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_HEALTH: _ClassVar[DatasetCategory]
    DATASET_CATEGORY_YOUTH_JUSTICE: _ClassVar[DatasetCategory]

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]
    SEX_UNKNOWN: _ClassVar[Sex]

class RelationshipType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELATIONSHIP_TYPE_UNSPECIFIED: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_PARENT: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_CHILD: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_SIBLING: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_HALF_SIBLING: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_STEP_PARENT: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_STEP_CHILD: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_PARTNER: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_GRANDPARENT: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_GRANDCHILD: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_OTHER_RELATIVE: _ClassVar[RelationshipType]
    RELATIONSHIP_TYPE_HOUSEHOLD_MEMBER: _ClassVar[RelationshipType]

class InvolvementStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOLVEMENT_STATUS_UNSPECIFIED: _ClassVar[InvolvementStatus]
    INVOLVEMENT_STATUS_OPEN: _ClassVar[InvolvementStatus]
    INVOLVEMENT_STATUS_CLOSED: _ClassVar[InvolvementStatus]

class DatasetState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_STATE_UNSPECIFIED: _ClassVar[DatasetState]
    DATASET_STATE_RECORDS_FOUND: _ClassVar[DatasetState]
    DATASET_STATE_NONE_FOUND: _ClassVar[DatasetState]
    DATASET_STATE_NOT_IN_COHORT: _ClassVar[DatasetState]
    DATASET_STATE_WITHHELD: _ClassVar[DatasetState]
    DATASET_STATE_STALE: _ClassVar[DatasetState]
DATASET_CATEGORY_UNSPECIFIED: DatasetCategory
DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE: DatasetCategory
DATASET_CATEGORY_EARLY_HELP: DatasetCategory
DATASET_CATEGORY_ADULT_SOCIAL_CARE: DatasetCategory
DATASET_CATEGORY_HOUSING: DatasetCategory
DATASET_CATEGORY_EDUCATION: DatasetCategory
DATASET_CATEGORY_POLICE: DatasetCategory
DATASET_CATEGORY_HEALTH: DatasetCategory
DATASET_CATEGORY_YOUTH_JUSTICE: DatasetCategory
SEX_UNSPECIFIED: Sex
SEX_FEMALE: Sex
SEX_MALE: Sex
SEX_UNKNOWN: Sex
RELATIONSHIP_TYPE_UNSPECIFIED: RelationshipType
RELATIONSHIP_TYPE_PARENT: RelationshipType
RELATIONSHIP_TYPE_CHILD: RelationshipType
RELATIONSHIP_TYPE_SIBLING: RelationshipType
RELATIONSHIP_TYPE_HALF_SIBLING: RelationshipType
RELATIONSHIP_TYPE_STEP_PARENT: RelationshipType
RELATIONSHIP_TYPE_STEP_CHILD: RelationshipType
RELATIONSHIP_TYPE_PARTNER: RelationshipType
RELATIONSHIP_TYPE_GRANDPARENT: RelationshipType
RELATIONSHIP_TYPE_GRANDCHILD: RelationshipType
RELATIONSHIP_TYPE_OTHER_RELATIVE: RelationshipType
RELATIONSHIP_TYPE_HOUSEHOLD_MEMBER: RelationshipType
INVOLVEMENT_STATUS_UNSPECIFIED: InvolvementStatus
INVOLVEMENT_STATUS_OPEN: InvolvementStatus
INVOLVEMENT_STATUS_CLOSED: InvolvementStatus
DATASET_STATE_UNSPECIFIED: DatasetState
DATASET_STATE_RECORDS_FOUND: DatasetState
DATASET_STATE_NONE_FOUND: DatasetState
DATASET_STATE_NOT_IN_COHORT: DatasetState
DATASET_STATE_WITHHELD: DatasetState
DATASET_STATE_STALE: DatasetState

class Date(_message.Message):
    __slots__ = ("year", "month", "day")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    year: int
    month: int
    day: int
    def __init__(self, year: _Optional[int] = ..., month: _Optional[int] = ..., day: _Optional[int] = ...) -> None: ...

class Council(_message.Message):
    __slots__ = ("gss_code", "name", "dfe_la_number")
    GSS_CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DFE_LA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    gss_code: str
    name: str
    dfe_la_number: int
    def __init__(self, gss_code: _Optional[str] = ..., name: _Optional[str] = ..., dfe_la_number: _Optional[int] = ...) -> None: ...

class Cohort(_message.Message):
    __slots__ = ("min_age_years", "max_age_years")
    MIN_AGE_YEARS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_YEARS_FIELD_NUMBER: _ClassVar[int]
    min_age_years: int
    max_age_years: int
    def __init__(self, min_age_years: _Optional[int] = ..., max_age_years: _Optional[int] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("dataset_id", "name", "category", "refreshed_at", "refresh_interval_seconds", "coverage_from", "coverage_area", "cohort")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_AT_FIELD_NUMBER: _ClassVar[int]
    REFRESH_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FROM_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_AREA_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    name: str
    category: DatasetCategory
    refreshed_at: _timestamp_pb2.Timestamp
    refresh_interval_seconds: int
    coverage_from: Date
    coverage_area: str
    cohort: Cohort
    def __init__(self, dataset_id: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[_Union[DatasetCategory, str]] = ..., refreshed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_interval_seconds: _Optional[int] = ..., coverage_from: _Optional[_Union[Date, _Mapping]] = ..., coverage_area: _Optional[str] = ..., cohort: _Optional[_Union[Cohort, _Mapping]] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("council_gss_code", "source_system", "source_table", "record_id", "extracted_at")
    COUNCIL_GSS_CODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TABLE_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRACTED_AT_FIELD_NUMBER: _ClassVar[int]
    council_gss_code: str
    source_system: str
    source_table: str
    record_id: str
    extracted_at: _timestamp_pb2.Timestamp
    def __init__(self, council_gss_code: _Optional[str] = ..., source_system: _Optional[str] = ..., source_table: _Optional[str] = ..., record_id: _Optional[str] = ..., extracted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("lines", "postcode", "uprn", "start_date", "end_date")
    LINES_FIELD_NUMBER: _ClassVar[int]
    POSTCODE_FIELD_NUMBER: _ClassVar[int]
    UPRN_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    postcode: str
    uprn: str
    start_date: Date
    end_date: Date
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., postcode: _Optional[str] = ..., uprn: _Optional[str] = ..., start_date: _Optional[_Union[Date, _Mapping]] = ..., end_date: _Optional[_Union[Date, _Mapping]] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("local_person_id", "nhs_number", "given_name", "family_name", "date_of_birth", "date_of_birth_estimated", "expected_date_of_birth", "sex", "address", "date_of_death", "provenance")
    LOCAL_PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    NHS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_DEATH_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    local_person_id: str
    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: Date
    date_of_birth_estimated: bool
    expected_date_of_birth: Date
    sex: Sex
    address: Address
    date_of_death: Date
    provenance: Provenance
    def __init__(self, local_person_id: _Optional[str] = ..., nhs_number: _Optional[str] = ..., given_name: _Optional[str] = ..., family_name: _Optional[str] = ..., date_of_birth: _Optional[_Union[Date, _Mapping]] = ..., date_of_birth_estimated: _Optional[bool] = ..., expected_date_of_birth: _Optional[_Union[Date, _Mapping]] = ..., sex: _Optional[_Union[Sex, str]] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., date_of_death: _Optional[_Union[Date, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class Relationship(_message.Message):
    __slots__ = ("local_person_id", "related_local_person_id", "type", "description", "provenance")
    LOCAL_PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    RELATED_LOCAL_PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    local_person_id: str
    related_local_person_id: str
    type: RelationshipType
    description: str
    provenance: Provenance
    def __init__(self, local_person_id: _Optional[str] = ..., related_local_person_id: _Optional[str] = ..., type: _Optional[_Union[RelationshipType, str]] = ..., description: _Optional[str] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class Practitioner(_message.Message):
    __slots__ = ("name", "role", "team", "phone", "email")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    team: str
    phone: str
    email: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., team: _Optional[str] = ..., phone: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class Involvement(_message.Message):
    __slots__ = ("involvement_id", "local_person_id", "dataset_id", "category", "service", "status", "start_date", "end_date", "practitioner", "summary", "provenance")
    INVOLVEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    PRACTITIONER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    involvement_id: str
    local_person_id: str
    dataset_id: str
    category: DatasetCategory
    service: str
    status: InvolvementStatus
    start_date: Date
    end_date: Date
    practitioner: Practitioner
    summary: str
    provenance: Provenance
    def __init__(self, involvement_id: _Optional[str] = ..., local_person_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., category: _Optional[_Union[DatasetCategory, str]] = ..., service: _Optional[str] = ..., status: _Optional[_Union[InvolvementStatus, str]] = ..., start_date: _Optional[_Union[Date, _Mapping]] = ..., end_date: _Optional[_Union[Date, _Mapping]] = ..., practitioner: _Optional[_Union[Practitioner, _Mapping]] = ..., summary: _Optional[str] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class DatasetOutcome(_message.Message):
    __slots__ = ("local_person_id", "dataset_id", "state", "reason")
    LOCAL_PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    local_person_id: str
    dataset_id: str
    state: DatasetState
    reason: str
    def __init__(self, local_person_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., state: _Optional[_Union[DatasetState, str]] = ..., reason: _Optional[str] = ...) -> None: ...
