"""A broken sharing policy stops the adapter with a message naming the file, line and problem.

Also: the packaged schema and the module's constants agree, the statement splitter, and the
``familyctx adapter check-policy`` command an IG team runs on a policy change.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.policy import FIELDS, PURPOSES, ROLES, PolicyError, SharingPolicy
from familyctx_adapter.policy_check import policy_schema_text, split_statements
from typer.testing import CliRunner

from familyctx.cli import app

REPO = Path(__file__).resolve().parents[2]
DATASETS = ("csc", "early_help", "asc", "housing")
LEEDS = "E08000035"

GOOD = """// Leeds test policy
@id("people")
permit (principal, action == Action::"disclose_people", resource)
when { principal.role in [Role::"social_worker", Role::"team_manager"] };

@id("csc")
permit (principal, action == Action::"disclose", resource == Dataset::"csc")
when { principal.role == Role::"social_worker" };
"""


def check(tmp_path: Path, text: str) -> str:
    path = tmp_path / "leeds.cedar"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        SharingPolicy.load(path, council_gss=LEEDS, datasets=DATASETS, council_name="Leeds")
    message = str(err.value)
    assert message.startswith(str(path)), message
    return message.removeprefix(str(path))


def test_good_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "leeds.cedar"
    path.write_text(GOOD, encoding="utf-8")
    policy = SharingPolicy.load(path, council_gss=LEEDS, datasets=DATASETS, council_name="Leeds")
    assert policy.checked.ids == {"policy0": "people", "policy1": "csc"}
    assert policy.checked.lines == {"policy0": 2, "policy1": 6}
    assert policy.withheld_reason == "withheld by Leeds policy"


@pytest.mark.parametrize("council", ["stockport", "leeds", "manchester"])
def test_demo_policies_are_valid(council: str) -> None:
    from familyctx.councils import DEMO_COUNCILS

    c = next(c for c in DEMO_COUNCILS if c.slug == council)
    policy = SharingPolicy.load(
        REPO / f"services/adapter/config/policies/{council}.cedar",
        council_gss=c.gss_code,
        datasets=DATASETS,
        council_name=c.name,
    )
    assert len(policy.checked.ids) >= 4


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    broken = GOOD.replace('when { principal.role == Role::"social_worker" };', "when { principal.role == };")
    assert check(tmp_path, broken) == ":6: syntax error: unexpected token `}`"


def test_missing_semicolon_at_the_end(tmp_path: Path) -> None:
    message = check(tmp_path, GOOD.rstrip().removesuffix(";"))
    assert message.startswith(":6: syntax error:")


def test_unknown_entity_type(tmp_path: Path) -> None:
    message = check(tmp_path, GOOD.replace('Dataset::"csc"', 'Datset::"csc"'))
    assert message.startswith(':6: policy "csc": unrecognized entity type `Datset`'), message


def test_unknown_attribute(tmp_path: Path) -> None:
    message = check(
        tmp_path, GOOD + '\n@id("org")\nforbid (principal, action, resource) when { principal.org == "x" };\n'
    )
    assert message == ':10: policy "org": attribute `org` on entity type `Requester` not found'


def test_misspelt_role_and_purpose(tmp_path: Path) -> None:
    message = check(tmp_path, GOOD.replace('Role::"social_worker" };', 'Role::"socal_worker" };'))
    assert ':6: policy "csc":' in message and '"socal_worker"' in message and "enumerated" in message
    message = check(
        tmp_path,
        GOOD
        + '\n@id("p")\npermit (principal, action, resource) when { context.purpose == "s47_enquiry" };\n',
    )
    assert message.startswith(':10: policy "p":') and "Purpose" in message


def test_unknown_dataset(tmp_path: Path) -> None:
    message = check(tmp_path, GOOD.replace('Dataset::"csc"', 'Dataset::"police"'))
    assert message == (
        ':6: policy "csc": this council offers no dataset "police" (it offers: asc, csc, early_help, housing)'
    )


def test_unknown_field_and_action(tmp_path: Path) -> None:
    message = check(
        tmp_path,
        GOOD + '\n@id("f")\nforbid (principal, action, resource == Field::"practitioner.mobile");\n',
    )
    assert ':10: policy "f":' in message and "practitioner.mobile" in message
    message = check(tmp_path, GOOD + '\n@id("a")\npermit (principal, action == Action::"read", resource);\n')
    assert ':10: policy "a":' in message


def test_another_councils_entity(tmp_path: Path) -> None:
    message = check(
        tmp_path, GOOD + '\n@id("c")\npermit (principal, action, resource == Council::"E08000007");\n'
    )
    assert message.startswith(':10: policy "c": names Council::"E08000007"')


def test_ids_are_required_unique_and_loggable(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD.replace('@id("csc")\n', "")).startswith(":6: policy has no @id")
    assert check(tmp_path, GOOD.replace('@id("csc")', '@id("people")')) == (
        ':6: @id("people") is used twice (first at line 2)'
    )
    assert "@id must be" in check(tmp_path, GOOD.replace('@id("csc")', '@id("csc to social workers")'))


def test_templates_empty_and_missing_files(tmp_path: Path) -> None:
    message = check(tmp_path, GOOD + '\n@id("t")\npermit (principal == ?principal, action, resource);\n')
    assert message.startswith(":10: templates")
    assert "holds no policies" in check(tmp_path, "// nothing yet\n")
    with pytest.raises(PolicyError, match="does not exist"):
        SharingPolicy.load(tmp_path / "none.cedar", council_gss=LEEDS, datasets=DATASETS)
    assert issubclass(PolicyError, AdapterConfigError)


def test_split_statements_skips_comments_and_strings() -> None:
    text = '// a; comment\n@id("x;y")\npermit (principal, action, resource)\n'
    text += ' when { "a;\\"b" == "c" };\n\n  tail'
    assert split_statements(text) == [
        (2, '@id("x;y")\npermit (principal, action, resource)\n when { "a;\\"b" == "c" };'),
        (6, "tail"),
    ]


def test_schema_enumerations_match_the_module() -> None:
    schema = policy_schema_text()

    def enum(name: str) -> tuple[str, ...]:
        match = re.search(rf"entity {name} enum \[([^\]]*)\]", schema)
        assert match, name
        return tuple(re.findall(r'"([^"]+)"', match.group(1)))

    assert enum("Role") == ROLES
    assert enum("Purpose") == PURPOSES
    assert enum("Field") == FIELDS


# --- familyctx adapter check-policy -------------------------------------------------------------------


def _config(tmp_path: Path, policy: Path) -> Path:
    path = tmp_path / "leeds.yaml"
    path.write_text(
        "council: {gss_code: E08000035, name: Leeds, dfe_la_number: 383}\n"
        f"cms: mosaic\ndatabase_url: sqlite:///{tmp_path}/missing.sqlite\n"
        "tls: {cert_file: a.pem, key_file: a.key, client_ca_file: ca.pem}\n"
        "gateway: {issuer: https://gateway.test, jwks_file: jwks.json}\n"
        f"policy_file: {policy}\n"
        f"disclosure_log: {{database_url: 'sqlite:///{tmp_path}/d.sqlite', signing_key_file: k.json}}\n",
        encoding="utf-8",
    )
    return path


def test_check_policy_prints_who_gets_what(tmp_path: Path) -> None:
    config = _config(tmp_path, REPO / "services/adapter/config/policies/leeds.cedar")
    result = CliRunner().invoke(
        app, ["adapter", "check-policy", "--config", str(config)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "valid sharing policy for Leeds (E08000035)" in result.output
    assert "housing-for-child-protection-only" in result.output
    rows = {
        tuple(line.split()[:4]): line.split() for line in result.output.splitlines() if line[:1].isalpha()
    }
    # role, council ("any council"), purpose, then people csc early_help asc housing
    assert rows[("social_worker", "any", "council", "s17_assessment")][4:9] == [
        "yes",
        "yes",
        "yes",
        "yes",
        "no",
    ]
    assert rows[("social_worker", "any", "council", "s47_enquiry")][4:9] == ["yes"] * 5
    assert any(
        line.startswith("ig_officer") and "nothing (refused by" in line for line in result.output.splitlines()
    )


def test_check_policy_shows_break_glass_and_council_differences(tmp_path: Path) -> None:
    manchester = tmp_path / "m"
    manchester.mkdir()
    config = _config(manchester, REPO / "services/adapter/config/policies/manchester.cedar")
    config.write_text(config.read_text().replace("E08000035, name: Leeds", "E08000003, name: Manchester"))
    out = CliRunner().invoke(app, ["adapter", "check-policy", "--config", str(config)]).output
    # people csc early_help asc housing: adult social care only for s47, and then only under break glass
    assert re.search(r"social_worker\s+any council\s+s47_enquiry\s+yes\s+yes\s+yes\s+break glass\s+yes", out)
    assert re.search(r"social_worker\s+any council\s+s17_assessment\s+yes\s+yes\s+yes\s+no\s+yes", out)
    stockport = tmp_path / "s"
    stockport.mkdir()
    config = _config(stockport, REPO / "services/adapter/config/policies/stockport.cedar")
    config.write_text(config.read_text().replace("E08000035, name: Leeds", "E08000007, name: Stockport"))
    out = CliRunner().invoke(app, ["adapter", "check-policy", "--config", str(config)]).output
    assert re.search(r"social_worker\s+another council\s+s47_enquiry\s+(yes\s+){5}practitioner.phone", out)
    assert re.search(r"social_worker\s+Stockport \(own\)\s+s47_enquiry\s+(yes\s+){5}-", out)


def test_check_policy_refuses_a_broken_policy_and_tests_a_change(tmp_path: Path) -> None:
    good = REPO / "services/adapter/config/policies/leeds.cedar"
    config = _config(tmp_path, good)
    changed = tmp_path / "leeds-change.cedar"
    changed.write_text(good.read_text().replace('Dataset::"housing"', 'Dataset::"housnig"'), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["adapter", "check-policy", "--config", str(config), "--policy", str(changed)]
    )
    assert result.exit_code == 1
    assert f"error: {changed}:" in result.output and 'no dataset "housnig"' in result.output
    only_csc = CliRunner().invoke(
        app, ["adapter", "check-policy", "--config", str(config), "--dataset", "csc", "--dataset", "housing"]
    )
    assert only_csc.exit_code == 1 and 'no dataset "asc"' in only_csc.output


def test_check_policy_says_where_a_relative_path_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths in a config file are resolved against the current directory, not the config
    file's: the error says so, with the directory, so "it is right there" is not a mystery."""
    config = _config(tmp_path, Path("policies/leeds.cedar"))
    if "disclosure_log" not in config.read_text():  # required since issue 4
        with config.open("a", encoding="utf-8") as f:
            log = f"{{database_url: 'sqlite:///{tmp_path}/d.sqlite', signing_key_file: k.json}}"
            f.write(f"disclosure_log: {log}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, ["adapter", "check-policy", "--config", str(config)])
    assert result.exit_code == 1
    assert "policies/leeds.cedar does not exist" in result.output
    assert f"resolved against the current directory {elsewhere}" in " ".join(result.output.split())
