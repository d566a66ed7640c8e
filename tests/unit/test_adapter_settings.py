"""Adapter configuration: YAML file, environment overrides, validation with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
GOOD = """
council: {gss_code: E08000007, name: Stockport, dfe_la_number: 356}
cms: systemc
database_url: sqlite:///var/demo/stockport.sqlite
listen: {host: 127.0.0.1, port: 50061}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "adapter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_the_yaml_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD))
    assert (s.council.gss_code, s.council.name, s.council.dfe_la_number) == ("E08000007", "Stockport", 356)
    assert (s.cms, s.listen.host, s.listen.port) == ("systemc", "127.0.0.1", 50061)
    assert (s.default_max_results, s.max_results_cap) == (25, 100)


def test_environment_overrides_the_file_and_flags_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAMILYCTX_ADAPTER_LISTEN__PORT", "50099")
    monkeypatch.setenv("FAMILYCTX_ADAPTER_DATABASE_URL", "postgresql+psycopg://u@db/stockport")
    s = load_settings(write(tmp_path, GOOD))
    assert s.listen.port == 50099
    assert s.listen.host == "127.0.0.1"  # the rest of the nested section still comes from the file
    assert s.database_url == "postgresql+psycopg://u@db/stockport"
    s = load_settings(write(tmp_path, GOOD), listen={"port": 0, "host": None}, database_url=None)
    assert (s.listen.port, s.listen.host) == (0, "127.0.0.1")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("E08000007", "X123", "council.gss_code"),
        ("cms: systemc", "cms: azeus", "cms: Value error, must be one of systemc, mosaic, eclipse"),
        ("sqlite:///var/demo/stockport.sqlite", "not a url", "database_url"),
        ("port: 50061", "port: 70000", "listen.port"),
        ("dfe_la_number: 356", "dfe_la_number: 3560", "council.dfe_la_number"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        load_settings(write(tmp_path, GOOD.replace(old, new)))


def test_unknown_keys_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(AdapterConfigError, match="colour"):
        load_settings(write(tmp_path, GOOD + "colour: blue\n"))
    with pytest.raises(AdapterConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(AdapterConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "council: [unclosed"))
    with pytest.raises(AdapterConfigError, match="must hold a mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(AdapterConfigError, match="database_url"):
        load_settings(
            write(tmp_path, "council: {gss_code: E08000007, name: S, dfe_la_number: 356}\ncms: mosaic\n")
        )


@pytest.mark.parametrize("slug", ["stockport", "leeds", "manchester"])
def test_example_configs_match_the_demo_councils(slug: str) -> None:
    from familyctx.councils import DEMO_COUNCILS

    council = next(c for c in DEMO_COUNCILS if c.slug == slug)
    s = load_settings(REPO / "services" / "adapter" / "config" / f"{slug}.yaml")
    assert (s.council.gss_code, s.cms, s.listen.port) == (council.gss_code, council.cms, council.port)
    assert s.council.dfe_la_number == council.dfe_la_number
