"""The council registry file and the gateway settings it shares rules with, checked without a network
(issue 6, fixes from a fresh-user test): an empty file or list is refused (it would remove every
council); names and IG contacts must be plain text (no control or bidirectional-override characters
that could forge a line in the CLI's output), refused with the field named and the value never
echoed; a count cap (``max_councils``); a YAML syntax error says the parser's problem and where;
NaN and infinity are not numbers a setting takes; body limit and poll intervals have bounds; and
``familyctx gateway check-registry`` says all of it offline."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from familyctx_gateway.adapter_trust import load_signer
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.registry import (
    EMPTY_FILE_PROBLEM,
    INLINE_SIGHUP_MESSAGE,
    CouncilRegistry,
    RegistryError,
    read_registry,
)
from familyctx_gateway.settings import PLAIN_TEXT_RULE, GatewaySettings, ResilienceSettings, load_settings
from familyctx_gateway.testing.gateway import gateway_trust_settings
from familyctx_gateway.testing.pki import session_pki
from typer.testing import CliRunner

from familyctx.cli import app
from familyctx.config_types import HOST_PORT_RULE

STOCKPORT, LEEDS = "E08000007", "E08000035"

#: Characters that colour a terminal, reverse the text after them or start a new line.
HOSTILE = {"escape": "\x1b[31m", "bidi_override": "\u202e", "newline": "\n", "zero_width": "\u200b"}


def council(code: str = STOCKPORT, **changes: Any) -> dict[str, Any]:
    entry = {"gss_code": code, "name": "Stockport", "address": "127.0.0.1:50061"}
    return {**entry, **changes}


def registry_file(tmp_path: Path, content: str | bytes | list[dict[str, Any]]) -> Path:
    path = tmp_path / "councils.yaml"
    if isinstance(content, list):
        content = yaml.safe_dump({"councils": content})
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def problems(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(RegistryError) as raised:
        read_registry(path, ResilienceSettings(), **kwargs)
    return raised.value.problems


@pytest.mark.parametrize("content", ["", "\n  \n", "# every council removed for now\n"])
def test_an_empty_registry_file_is_refused_and_says_how_to_write_one(tmp_path: Path, content: str) -> None:
    assert problems(registry_file(tmp_path, content)) == [EMPTY_FILE_PROBLEM]
    assert "rename it over the old one" in EMPTY_FILE_PROBLEM


@pytest.mark.parametrize("content", ["councils: []\n", "{}\n"])
def test_a_registry_listing_no_council_is_refused(tmp_path: Path, content: str) -> None:
    assert problems(registry_file(tmp_path, content)) == [
        "councils: the registry lists no councils: an empty list is refused (to stop asking a council, "
        "remove its entry; the gateway needs at least one)"
    ]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("name", lambda bad: {"name": f"Stock{bad}port"}),
        (
            "ig_contact.name",
            lambda bad: {"ig_contact": {"name": f"IG{bad}", "email": "ig@stockport.example"}},
        ),
        (
            "ig_contact.email",
            lambda bad: {"ig_contact": {"name": "IG", "email": f"ig{bad}@stockport.example"}},
        ),
    ],
)
def test_free_text_shown_to_workers_must_be_plain_text(
    tmp_path: Path, kind: str, field: str, changes: Any
) -> None:
    bad = HOSTILE[kind]
    found = problems(registry_file(tmp_path, [council(LEEDS, name="Leeds"), council(**changes(bad))]))
    assert found == [f"councils[1].{field}: {PLAIN_TEXT_RULE}"]
    assert bad not in str(found) and "Stock" not in str(found)


def test_inline_adapters_follow_the_same_plain_text_rule() -> None:
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(adapters=[council(name="Stockport\nINCOMPLETE: Leeds (E08000035) did not answer")])
    assert raised.value.problems == [f"adapters[0].name: {PLAIN_TEXT_RULE}"]


def test_ordinary_names_with_accents_and_punctuation_are_plain_text(tmp_path: Path) -> None:
    names = [
        "Stockport",
        "Bristol, City of",
        "Rhondda Cynon Taf",
        "Ynys Môn",
        "St. Helens",
        "Kingston upon Hull",
    ]
    path = registry_file(
        tmp_path,
        [
            council(f"E080000{i:02d}", name=name, address=f"127.0.0.1:{50061 + i}")
            for i, name in enumerate(names)
        ],
    )
    targets, _ = read_registry(path, ResilienceSettings())
    assert [t.name for t in targets] == names


def test_more_councils_than_max_councils_is_refused_before_validating_them(tmp_path: Path) -> None:
    many = [council(f"E08{i:06d}", address=f"127.0.0.1:{1 + i}") for i in range(501)]
    path = registry_file(tmp_path, many)
    [problem] = problems(path)
    assert problem.startswith("councils: lists 501 councils, more than max_councils (500): a soft cap")
    assert "raise max_councils in the gateway config" in problem
    targets, _ = read_registry(path, ResilienceSettings(), max_councils=501)
    assert len(targets) == 501
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(max_councils=2, adapters=many[:3])
    assert raised.value.problems[0].startswith("adapters: lists 3 councils, more than max_councils (2)")


def test_a_yaml_syntax_error_says_the_parsers_problem_and_where_and_no_value(tmp_path: Path) -> None:
    path = registry_file(tmp_path, 'councils:\n  - {gss_code: E08000007, name: "s3cret Stockport\n')
    [problem] = problems(path)
    assert problem.startswith(
        "(file): is not valid YAML: while scanning a quoted scalar, found unexpected end"
    )
    assert "(line 3, column 1)" in problem and "s3cret" not in problem
    config = tmp_path / "gateway.yaml"
    config.write_text("audit: {database_url: 'postgresql://u:s3cret@db/audit'\nlisten: {port: 1}\n")
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(config)
    [problem] = raised.value.problems
    assert problem.startswith("(file): is not valid YAML: while parsing a flow mapping")
    assert "line" in problem and "s3cret" not in problem


def test_undecodable_bytes_are_the_only_utf8_problem(tmp_path: Path) -> None:
    assert problems(registry_file(tmp_path, b"councils:\n  - name: Stockport\xff\n")) == [
        "(file): is not valid UTF-8 (byte 30 cannot be decoded)"
    ]
    assert problems(registry_file(tmp_path, "councils: [\x00]\n")) == [
        "(file): is not valid YAML: character U+0000 is not allowed in YAML (character 12)"
    ]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("where", "settings"),
    [
        (
            "resilience.retry.backoff_multiplier",
            lambda v: {"resilience": {"retry": {"backoff_multiplier": v}}},
        ),
        ("resilience.breaker.open_seconds", lambda v: {"resilience": {"breaker": {"open_seconds": v}}}),
        ("describe_cache_seconds", lambda v: {"describe_cache_seconds": v}),
        ("registry_poll_seconds", lambda v: {"registry_poll_seconds": v}),
    ],
)
def test_nan_and_infinity_are_not_finite_numbers(value: str, where: str, settings: Any) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(**settings(value))
    assert raised.value.problems == [f"{where}: must be a finite number (not nan or infinity)"]


def test_nan_in_a_registry_entry_is_refused_too(tmp_path: Path) -> None:
    path = registry_file(
        tmp_path, "councils:\n  - {gss_code: E08000007, name: S, address: 'a:1', deadline_ms: .nan}\n"
    )
    assert problems(path) == ["councils[0].deadline_ms: must be a finite number (not nan or infinity)"]


@pytest.mark.parametrize("setting", ["registry_poll_seconds", "health_poll_seconds"])
@pytest.mark.parametrize("seconds", [0.0001, 0.5, 3601])
def test_poll_intervals_are_from_one_second_to_an_hour(setting: str, seconds: float) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(**{setting: seconds})
    [problem] = raised.value.problems
    assert problem.startswith(f"{setting}: must be from 1 to 3600 seconds (")
    assert getattr(load_settings(**{setting: 1}), setting) == 1


@pytest.mark.parametrize("size", [0, 1023, 16 * 1024 * 1024 + 1, 10**30])
def test_the_body_limit_is_from_1_kib_to_16_mib(size: int) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(max_body_bytes=size)
    assert raised.value.problems == [
        "max_body_bytes: must be from 1024 to 16777216 bytes (1 KiB to 16 MiB); requests to the gateway are "
        "small JSON bodies and the default, 65536, fits every valid one"
    ]
    assert GatewaySettings(max_body_bytes=16 * 1024 * 1024).max_body_bytes == 16 * 1024 * 1024


# -- familyctx gateway check-registry ------------------------------------------------------------------

runner = CliRunner()


def test_check_registry_lists_a_valid_files_councils(tmp_path: Path) -> None:
    path = registry_file(
        tmp_path, [council(), council(LEEDS, name="Leeds", address="adapter-leeds:50051", datasets=["csc"])]
    )
    result = runner.invoke(app, ["gateway", "check-registry", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{path}: valid council registry, 2 councils (sha256 ")
    assert lines[1:] == [
        f"  {STOCKPORT}  Stockport  127.0.0.1:50061",
        f"  {LEEDS}  Leeds      adapter-leeds:50051",
    ]


def test_check_registry_says_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = registry_file(
        tmp_path,
        [
            council(name="Stock\u202eport"),
            council(LEEDS, name="Leeds", address="adapter-leeds"),
            {"gss_code": LEEDS, "name": "Leeds", "adress": "x:1"},
        ],
    )
    result = runner.invoke(app, ["gateway", "check-registry", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: council registry {path}: councils[0].name: {PLAIN_TEXT_RULE}",
        f"error: council registry {path}: councils[1].address: {HOST_PORT_RULE}",
        f"error: council registry {path}: councils[2].address: is required",
        f"error: council registry {path}: councils[2]: has a key that is not a known setting: adress; "
        "remove it or check its spelling (the fields are: gss_code, name, address, deadline_ms, "
        "tls_server_name, datasets, ig_contact)",
    ]
    assert "\u202e" not in result.stderr


def test_check_registry_refuses_an_empty_or_missing_file(tmp_path: Path) -> None:
    empty = runner.invoke(app, ["gateway", "check-registry", str(registry_file(tmp_path, ""))])
    assert (empty.exit_code, empty.stderr.strip()) == (
        2,
        f"error: council registry {tmp_path / 'councils.yaml'}: {EMPTY_FILE_PROBLEM}",
    )
    missing = runner.invoke(app, ["gateway", "check-registry", str(tmp_path / "absent.yaml")])
    assert missing.exit_code == 2
    assert "(file): cannot be read (No such file or directory)" in missing.stderr


def test_check_registry_takes_max_councils_from_the_gateway_config(tmp_path: Path) -> None:
    path = registry_file(tmp_path, [council(), council(LEEDS, name="Leeds")])
    config = tmp_path / "gateway.yaml"
    config.write_text("max_councils: 1\n")
    result = runner.invoke(app, ["gateway", "check-registry", str(path), "--config", str(config)])
    assert result.exit_code == 2
    assert "councils: lists 2 councils, more than max_councils (1)" in result.stderr


# -- SIGHUP in the gateway process ----------------------------------------------------------------------


async def test_sighup_with_inline_councils_is_logged_and_the_previous_disposition_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under ``nohup`` (SIGHUP ignored) the handler is installed all the same, so that ``kill -HUP``
    does what docs/deployment.md says, and SIG_IGN is put back when the registry closes. (The real
    process, SIGHUP's default action: tests/e2e/test_gateway_sighup.py.)"""
    caplog.set_level(logging.INFO, logger="familyctx_gateway.registry")
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # also keeps this test process safe
    try:
        registry = CouncilRegistry.open(GatewaySettings(), _no_transport, signer=None)
        await registry.start()
        logged = asyncio.Event()
        handler = _Notify(logged, INLINE_SIGHUP_MESSAGE)
        logging.getLogger("familyctx_gateway.registry").addHandler(handler)
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(logged.wait(), timeout=30)
        finally:
            logging.getLogger("familyctx_gateway.registry").removeHandler(handler)
            await registry.close()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
    assert [r.getMessage() for r in caplog.records if "SIGHUP" in r.getMessage()] == [INLINE_SIGHUP_MESSAGE]


def _no_transport(target: Any) -> Any:
    raise AssertionError("no council is listed, so no channel is opened")


class _Notify(logging.Handler):
    def __init__(self, event: asyncio.Event, text: str) -> None:
        super().__init__()
        self.event, self.text = event, text

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


# -- round 2 (issue 6): long numbers, keys never echoed, duplicate keys, every SIGHUP's outcome --------

LONG_NUMBER = "9" * 5000  # more digits than Python reads (sys.get_int_max_str_digits(): 4300)


def test_a_number_too_long_in_a_registry_entry_is_refused_with_its_field_and_exit_2(tmp_path: Path) -> None:
    path = registry_file(
        tmp_path,
        f"councils:\n  - {{gss_code: {STOCKPORT}, name: S, address: a:1, deadline_ms: {LONG_NUMBER}}}\n",
    )
    assert problems(path) == ["(file): deadline_ms: number too long (line 2, column 63)"]
    result = CliRunner().invoke(app, ["gateway", "check-registry", str(path)])
    assert result.exit_code == 2, result.output
    assert "deadline_ms: number too long" in result.stderr and "99999" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    [f"max_councils: {LONG_NUMBER}\n", f"listen: {{port: 0x{'f' * 5000}}}\n", f"oidc: [{LONG_NUMBER}]\n"],
)
def test_a_number_too_long_in_the_gateway_config_is_refused(tmp_path: Path, text: str) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(config)
    [problem] = raised.value.problems
    assert "number too long" in problem and "999" not in problem and "fff" not in problem
    result = CliRunner().invoke(
        app, ["gateway", "check-registry", str(tmp_path / "x.yaml"), "-c", str(config)]
    )
    assert result.exit_code == 2 and "number too long" in result.stderr


@pytest.mark.parametrize(
    "key", ["evil\nregistry applied version=99", "Jane Smith 943 476 5919", "jane_smith_9434765919"]
)
def test_an_unknown_keys_name_is_not_echoed_unless_it_looks_like_a_setting(tmp_path: Path, key: str) -> None:
    leeds = council(LEEDS, name="Leeds", ig_contact={"name": "IG", key: 1}, **{key: 2})
    path = registry_file(tmp_path, [council(), leeds])
    found = problems(path)
    assert not [p for p in found if any(part in p for part in ("evil", "Smith", "smith", "5919", "adress"))]
    assert sorted(found) == [
        "councils[1].ig_contact.email: is required",
        "councils[1].ig_contact: has a key that is not a known setting (its name is not shown); remove it "
        "or check its spelling (the fields are: name, email)",
        "councils[1]: has a key that is not a known setting (its name is not shown); remove it or check its "
        "spelling (the fields are: gss_code, name, address, deadline_ms, tls_server_name, datasets, "
        "ig_contact)",
    ]


def test_a_misspelt_setting_is_named(tmp_path: Path) -> None:
    leeds = council(LEEDS, name="Leeds", adress="127.0.0.1:1")
    path = registry_file(tmp_path, [council(), leeds])
    assert problems(path) == [
        "councils[1]: has a key that is not a known setting: adress; remove it or check its spelling (the "
        "fields are: gss_code, name, address, deadline_ms, tls_server_name, datasets, ig_contact)"
    ]


def test_an_unknown_audit_record_class_is_not_echoed_unless_plain(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text('audit: {retention_days: {"evil\\nline x": 3}}\n', encoding="utf-8")
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(config)
    assert "evil" not in str(raised.value.problems) and "(not shown)" in str(raised.value.problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"councils:\n  - gss_code: {STOCKPORT}\n    name: S\n    address: a:1\n    address: b:2\n",
            "(file): address is listed twice in the same mapping (duplicate key; keep one) "
            "(line 5, column 5)",
        ),
        (
            f"councils:\n  - {{gss_code: {STOCKPORT}, name: S, address: 'a:1', "
            "Jane Smith: 1, Jane Smith: 2}\n",
            "(file): an unknown field is listed twice in the same mapping (duplicate key; keep one) "
            "(line 2, column 67)",
        ),
        (
            f"councils: []\ncouncils:\n  - {{gss_code: {STOCKPORT}, name: S, address: 'a:1'}}\n",
            "(file): councils is listed twice in the same mapping (duplicate key; keep one) "
            "(line 2, column 1)",
        ),
    ],
)
def test_a_duplicate_key_in_the_registry_is_refused_with_its_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems(registry_file(tmp_path, text)) == [expected]


def test_a_duplicate_key_in_the_gateway_config_is_refused_and_merge_keys_still_work(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("listen: {port: 8080}\nmax_councils: 3\nlisten: {port: 9090}\n", encoding="utf-8")
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(config)
    assert raised.value.problems == [
        "(file): listen is listed twice in the same mapping (duplicate key; keep one) (line 3, column 1)"
    ]
    path = registry_file(
        tmp_path,
        f"base: &base {{name: S, address: 'a:1'}}\n"
        f"councils:\n  - {{<<: *base, gss_code: {STOCKPORT}, name: T}}\n",
    )
    assert problems(path)[0].startswith("(file): has a key that is not a known setting")  # "base", not a dup


async def test_every_sighup_on_a_refused_file_logs_that_it_is_still_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="familyctx_gateway.registry")
    path = registry_file(tmp_path, [council()])
    settings = GatewaySettings(
        registry_file=path, registry_poll_seconds=3600, **gateway_trust_settings(session_pki())
    )
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # also keeps this test process safe
    try:
        signer = load_signer(settings.assertion) if settings.assertion is not None else None
        registry = CouncilRegistry.open(settings, lambda target: _Unused(), signer=signer)
        await registry.start()
        path.write_bytes(b"")
        logged = asyncio.Event()
        handler = _Notify(logged, "registry unchanged")
        logging.getLogger("familyctx_gateway.registry").addHandler(handler)
        try:
            for sent in range(3):
                os.kill(os.getpid(), signal.SIGHUP)
                await _wait_for_messages(caplog, "registry reload requested", sent + 1)
                await _wait_for_messages(caplog, "refused", sent + 1)
            registry_file(tmp_path, [council()])  # back to the file in use
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(logged.wait(), timeout=30)
        finally:
            logging.getLogger("familyctx_gateway.registry").removeHandler(handler)
            await registry.close()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
    outcomes = [r.getMessage().split(" path=")[0] for r in caplog.records if "refused" in r.getMessage()]
    assert outcomes == ["registry edit refused", "registry still refused", "registry still refused"]


class _Unused:
    """A council's transport no call is made on (the test only reloads the registry)."""

    async def close(self) -> None:
        return None


async def _wait_for_messages(caplog: pytest.LogCaptureFixture, text: str, count: int) -> None:
    """Until ``count`` records holding ``text`` have been logged (30 s safety net)."""
    logged = asyncio.Event()
    handler = _Notify(logged, text)
    logger = logging.getLogger("familyctx_gateway.registry")
    logger.addHandler(handler)
    try:
        while sum(text in r.getMessage() for r in caplog.records) < count:
            logged.clear()
            if sum(text in r.getMessage() for r in caplog.records) >= count:
                break
            await asyncio.wait_for(logged.wait(), timeout=30)
    finally:
        logger.removeHandler(handler)
