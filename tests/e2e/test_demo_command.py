"""(f) ``familyctx demo --no-serve`` end to end on free ports, as a user would run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from familyctx.demo import FederationPorts
from familyctx.demo.layout import check_ports_free
from familyctx.demo.supervisor import familyctx_argv


def _free_base(count: int = 5) -> int:
    """A base port with ``count`` consecutive free ports after it (checked by binding each)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        start = int(probe.getsockname()[1])
    for base in range(start, start + 2000, count):
        try:
            check_ports_free("127.0.0.1", FederationPorts.from_base(base))
        except Exception:  # noqa: BLE001 - try the next block
            continue
        return base
    raise AssertionError("no block of free ports found")


def _run_demo(data_dir: Path, base: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        familyctx_argv("demo", "--data-dir", str(data_dir), "--people", "40", "--seed", "3", "--no-serve",
                       "--base-port", str(base)),
        capture_output=True, text=True, timeout=280, check=False,
        env={**os.environ, "COLUMNS": "220", "NO_COLOR": "1"},
    )


DemoRun = tuple[subprocess.CompletedProcess[str], Path, int]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    data_dir = tmp_path_factory.mktemp("demo")
    base = _free_base()
    return _run_demo(data_dir, base), data_dir, base


def test_demo_prints_the_mother_and_a_practitioner(demo_run: DemoRun) -> None:
    result, data_dir, _ = demo_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    scenario = json.loads((data_dir / "scenarios.json").read_text())["mother_moved"]
    mother_names = {f"{r['given_name']} {r['family_name']}" for r in (scenario["mother"],
                                                                        scenario["mother_previous_record"])}
    assert any(name in out for name in mother_names), "the mother's name is printed"
    child = scenario["child"]
    assert f"{child['given_name']} {child['family_name']} (subject)" in out

    staff = set()
    for slug in ("stockport", "leeds", "manchester"):
        engine = sa.create_engine(f"sqlite:///{data_dir / f'{slug}.sqlite'}")
        with engine.connect() as conn:
            staff |= set(conn.execute(sa.text("SELECT display_name FROM staff_directory")).scalars())
        engine.dispose()
    assert any(name in out for name in staff), "a named practitioner is printed"
    assert "records found" in out and "Sources" in out


def test_demo_leaves_no_process_behind(demo_run: DemoRun) -> None:
    result, data_dir, base = demo_run
    assert result.returncode == 0
    check_ports_free("127.0.0.1", FederationPorts.from_base(base))  # every listener is gone
    logs = {p.name for p in (data_dir / "logs").iterdir()}
    assert {"oidc.log", "gateway.log", "adapter-stockport.log", "adapter-leeds.log",
            "adapter-manchester.log"} <= logs


def test_demo_files_are_owner_only(demo_run: DemoRun) -> None:
    """The audit log holds query terms: the data directory is 0700 and nothing in it (warehouses, audit
    log, configs, logs, signing key) is readable by group or others."""
    result, data_dir, _ = demo_run
    assert result.returncode == 0
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    paths = [data_dir, *data_dir.rglob("*")]
    assert {"audit.sqlite", "stockport.sqlite", "gateway.log", "gateway.yaml"} <= {p.name for p in paths}
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths if p.stat().st_mode & 0o077}
    assert not loose


def test_demo_names_a_port_in_use(tmp_path: Path) -> None:
    base = _free_base()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base))
        squatter.listen()
        result = _run_demo(tmp_path / "data", base)
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert f"port {base}" in text and "in use" in text and "--base-port" in text
    assert not (tmp_path / "data" / "scenarios.json").exists(), "fails before the slow steps"


def test_demo_serves_until_interrupted_then_stops_everything(demo_run: DemoRun) -> None:
    """Without --no-serve: the federation keeps answering until Ctrl-C (SIGINT), then all of it stops.

    Reuses the data built by the --no-serve run, so it also shows a second start on existing data works.
    """
    _, data_dir, _ = demo_run
    base = _free_base()
    demo = subprocess.Popen(
        familyctx_argv("demo", "--data-dir", str(data_dir), "--base-port", str(base)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"},
    )
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:  # blocks until the demo prints; ends if the demo exits
            seen.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        assert demo.poll() is None, "".join(seen[-40:])
        text = "".join(seen)
        assert "using the synthetic data already in" in text
        gateway = f"http://127.0.0.1:{base}"
        assert httpx.get(f"{gateway}/readyz", timeout=10).status_code == 200
        child = json.loads((data_dir / "scenarios.json").read_text())["mother_moved"]["child"]
        assert f"--person-id {child['local_person_id']}" in text
        # The suggested commands: one line each, unwrapped at 80 columns, starting with a familyctx the
        # user can run (this venv's script; `familyctx` is not on PATH for a fresh user).
        [context_line] = [line for line in seen if " query family-context " in line]
        program = context_line.split()[0]
        assert program == "familyctx" or Path(program).is_file(), program
        assert context_line.rstrip().endswith(f"--gateway http://127.0.0.1:{base}")
        assert "…" not in text

        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0, rest[-2000:]
        assert "stopping" in rest
        check_ports_free("127.0.0.1", FederationPorts.from_base(base))
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
