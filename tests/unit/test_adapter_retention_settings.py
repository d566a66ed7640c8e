"""``disclosure_log.retention_days``: defaults, a file setting one class, environment overrides, and a
clear configuration error for unknown classes and periods that are not whole days from 1 to 36500."""

from __future__ import annotations

from pathlib import Path

import pytest
from familyctx_adapter import disclosure_record as dr
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.settings import DISCLOSURE_RECORD_CLASSES, load_settings
from unit.test_adapter_settings import GOOD, write

from familyctx.auditlog.retention import check_retention_days


def _with(retention: str) -> str:
    return GOOD + f"  retention_days: {retention}\n"


def test_record_classes_are_the_ones_the_adapter_writes() -> None:
    assert DISCLOSURE_RECORD_CLASSES == (dr.CLASS_DISCLOSURE, dr.CLASS_REFUSAL)


def test_default_is_seven_years_for_each_class(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD))
    assert s.disclosure_log.retention_days == {"disclosure": 2557, "refusal": 2557}


def test_a_file_may_set_one_class_and_the_environment_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings(write(tmp_path, _with("{refusal: 365}")))
    assert s.disclosure_log.retention_days == {"disclosure": 2557, "refusal": 365}
    monkeypatch.setenv("FAMILYCTX_ADAPTER_DISCLOSURE_LOG__RETENTION_DAYS", '{"disclosure": "730"}')
    s = load_settings(write(tmp_path, GOOD))
    assert s.disclosure_log.retention_days == {"disclosure": 730, "refusal": 2557}


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ("{disclosures: 30}", "unknown record class 'disclosures'; the classes are disclosure, refusal"),
        ("{access: 30}", "unknown record class 'access'"),
        ("{disclosure: 0}", "disclosure: must be from 1 to 36500 days, not 0"),
        ("{refusal: -5}", "refusal: must be from 1 to 36500 days, not -5"),
        ("{refusal: 36501}", "must be from 1 to 36500 days, not 36501"),
        ("{disclosure: true}", "disclosure: must be a whole number of days"),
        ("{disclosure: 30.5}", "disclosure: must be a whole number of days"),
        ("{disclosure: seven years}", "disclosure: must be a whole number of days"),
        ("{disclosure: null}", "disclosure: must be a whole number of days"),
        ("[30, 90]", "must map record classes \\(disclosure, refusal\\) to days"),
    ],
)
def test_bad_retention_is_a_config_error_naming_the_setting(
    tmp_path: Path, retention: str, message: str
) -> None:
    with pytest.raises(AdapterConfigError, match="disclosure_log.retention_days") as info:
        load_settings(write(tmp_path, _with(retention)))
    assert info.match(message)


def test_check_retention_days_directly() -> None:
    classes = ("a", "b")
    assert check_retention_days({}, classes, 10) == {"a": 10, "b": 10}
    assert check_retention_days({"b": "3"}, classes, 10) == {"a": 10, "b": 3}
    with pytest.raises(ValueError, match="unknown record class 'c'; the classes are a, b"):
        check_retention_days({"c": 1}, classes, 10)
