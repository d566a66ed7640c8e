"""The demo's data directory, option checks and suggested commands (no processes started)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from familyctx.cli import app
from familyctx.demo import DataLayout, FederationPorts
from familyctx.demo.configs import write_adapter_configs, write_gateway_config
from familyctx.demo.errors import DataDirError
from familyctx.demo.hints import cli_invocation, try_commands
from familyctx.demo.supervisor import describe_exit
from familyctx.demo.trust import ensure_demo_pki


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_data_dir_is_private_and_old_world_readable_files_are_closed(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    old = root / "audit.sqlite"
    old.write_bytes(b"query terms")
    old.chmod(0o644)
    layout = DataLayout(root)
    layout.make_private()
    pki, _ = ensure_demo_pki(layout)
    write_adapter_configs(layout, FederationPorts(), "127.0.0.1", pki)
    write_gateway_config(layout, FederationPorts(), "127.0.0.1", pki)
    modes = _modes(root)
    assert modes["."] == 0o700
    assert modes["config"] == modes["logs"] == modes["oidc"] == modes["pki"] == 0o700
    assert modes["pki/ca.key"] == modes["pki/gateway-assertion.jwk.json"] == 0o600
    assert modes["audit.sqlite"] == 0o600
    assert modes["config/gateway.yaml"] == 0o600  # written owner-only whatever this process's umask
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes


def test_with_registry_the_demo_gateway_reads_its_councils_from_a_registry_file(tmp_path: Path) -> None:
    """``familyctx demo --registry``: gateway.yaml names config/councils.yaml (owner-only), which lists
    the three councils as the inline list would, and is a registry the gateway accepts."""
    from familyctx_gateway.registry import read_registry
    from familyctx_gateway.settings import load_settings

    layout = DataLayout(tmp_path / "demo")
    layout.make_private()
    pki, _ = ensure_demo_pki(layout)
    inline = load_settings(write_gateway_config(layout, FederationPorts(), "127.0.0.1", pki))
    settings = load_settings(write_gateway_config(layout, FederationPorts(), "127.0.0.1", pki, registry=True))
    assert settings.adapters == [] and settings.registry_file == layout.council_registry
    targets, _ = read_registry(layout.council_registry, settings.resilience)
    fields = ("gss_code", "name", "address", "deadline_ms", "tls_server_name")
    assert [t.model_dump(include=set(fields)) for t in targets] == [
        a.model_dump(include=set(fields)) for a in inline.adapters
    ]
    assert all(t.ig_contact is not None and t.datasets for t in targets)
    assert _modes(layout.root)["config/councils.yaml"] == 0o600


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0, "exited with code 0"),
        (1, "exited with code 1"),
        (-1, "was killed by signal SIGHUP"),
        (-9, "was killed by signal SIGKILL"),
        (-200, "was killed by signal 200"),
        (None, "is running"),
    ],
)
def test_a_childs_end_is_said_in_words(code: int | None, words: str) -> None:
    assert describe_exit(code) == words


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("x")
    with pytest.raises(DataDirError, match="cannot use .* as the demo's data directory .*--data-dir"):
        DataLayout(in_the_way / "demo").make_private()


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--base-port", "65534"], "--base-port"),
        (["--base-port", "-1"], "--base-port"),
        (["--base-port", "80"], "--base-port"),
        (["--gateway-port", "70000"], "--gateway-port"),
        (["--oidc-port", "0"], "--oidc-port"),
        (["--adapter-base-port", "65534"], "--adapter-base-port"),
        (["--deadline-ms", "0"], "--deadline-ms"),
        (["--ready-timeout", "-5"], "--ready-timeout"),
        (["--people", "5"], "--people"),
        (["--seed", "-1"], "--seed"),
        (["--gateway-port", "9000"], "both use port 9000"),
    ],
)
def test_bad_demo_options_exit_2_with_a_message(args: list[str], says: str) -> None:
    """Rejected while parsing, before any port is bound or file written (no traceback)."""
    result = runner.invoke(app, ["demo", "--no-serve", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OverflowError)


def test_demo_data_dir_that_is_a_file_exits_2(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = runner.invoke(app, ["demo", "--no-serve", "--data-dir", str(afile)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "is a file" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "99999"], "--port"),
        (["--port", "-1"], "--port"),
        (["--log-level", "bogus"], "--log-level"),
    ],
)
def test_bad_oidc_options_exit_2(args: list[str], says: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["oidc", "serve", "--state-dir", str(tmp_path / "s"), *args], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and says in result.output


def _script(directory: Path) -> Path:
    directory.mkdir(parents=True)
    script = directory / "familyctx"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)
    return script


def test_cli_invocation_is_the_running_script_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path / ".venv" / "bin")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # familyctx not on PATH, as for a fresh user
    assert cli_invocation(str(script), "/usr/bin/python3", tmp_path) == ".venv/bin/familyctx"
    # From a directory the script is not below: its absolute path.
    assert cli_invocation(str(script), "/usr/bin/python3", tmp_path / "elsewhere") == str(script)


def test_cli_invocation_for_python_dash_m_uses_the_venv_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _script(tmp_path / ".venv" / "bin")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    python = tmp_path / ".venv" / "bin" / "python"
    main = "/somewhere/familyctx/__main__.py"
    assert cli_invocation(main, str(python), tmp_path) == ".venv/bin/familyctx"
    bare = tmp_path / "plain" / "python3"
    assert cli_invocation(main, str(bare), tmp_path) == f"{bare} -m familyctx"


def test_cli_invocation_is_bare_when_path_finds_this_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path / ".venv" / "bin")
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}/usr/bin")
    assert cli_invocation(str(script), "/usr/bin/python3", tmp_path) == "familyctx"


CHILD = {
    "gss_code": "E08000007",
    "local_person_id": "100001",
    "family_name": "O'Neill",
    "date_of_birth": "2016-03-05",
}


def test_try_commands_are_runnable_lines() -> None:
    search, context, curl = try_commands(
        ".venv/bin/familyctx", CHILD, issuer="http://127.0.0.1:9000", gateway_url="http://127.0.0.1:8000"
    )
    assert search.startswith(".venv/bin/familyctx query search ") and '--family-name "O\'Neill"' in search
    assert "--person-id 100001" in context and "--issuer" not in context
    assert curl == (
        'curl -H "Authorization: Bearer $(.venv/bin/familyctx token --user sw.stockport)" '
        "http://127.0.0.1:8000/v1/sources"
    )
    elsewhere = try_commands(
        "familyctx", CHILD, issuer="http://127.0.0.1:19001", gateway_url="http://127.0.0.1:19000"
    )
    assert all("--issuer http://127.0.0.1:19001" in line for line in elsewhere)


def test_try_commands_print_unwrapped_at_80_columns() -> None:
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    lines = try_commands(
        "/a/long/path/to/the/project/.venv/bin/familyctx",
        CHILD,
        issuer="http://127.0.0.1:19001",
        gateway_url="http://127.0.0.1:19000",
    )
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    printed = console.export_text().splitlines()
    assert printed == [f"  {line}" for line in lines]  # one physical line each, nothing inserted


@pytest.mark.parametrize("url", ["http://[bad", "ftp://x", "", "http://127.0.0.1:99999", "http://:80"])
@pytest.mark.parametrize(
    "command",
    [
        ["token", "--user", "sw.stockport", "--issuer"],
        [
            "query",
            "search",
            "--user",
            "sw.stockport",
            "--purpose",
            "s47_enquiry",
            "--case-ref",
            "C",
            "--family-name",
            "X",
            "--token",
            "t",
            "--gateway",
        ],
    ],
)
def test_bad_issuer_or_gateway_url_exits_2_before_any_request(command: list[str], url: str) -> None:
    result = runner.invoke(app, [*command, url], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "is not an http(s) URL" in result.output
