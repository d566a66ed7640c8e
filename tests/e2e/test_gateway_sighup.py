"""SIGHUP to a real ``familyctx gateway serve`` process (issue 6, from a fresh-user test).

docs/deployment.md gives ``kill -HUP <pid>`` as the way to reload the council registry. A gateway that
lists its councils inline (``adapters:``, as the demo and the deploy/ manifests do) used to die of it
(SIGHUP's default action); it now logs that there is nothing to reload and goes on answering. A
gateway with a ``registry_file`` applies an edit on SIGHUP at once (its poll interval here is an hour,
so only the signal can have applied it), and refuses an empty file (the registry in use stays).

Each gateway is its own process over the session federation's adapters; waits end as soon as the
line they wait for is printed (the safety net is generous: a 2-core machine may be busy).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from e2e_support import (
    LEEDS,
    MANCHESTER,
    PROCESS_WAIT_SECONDS,
    STOCKPORT,
    GatewayProcess,
    source_states,
    start_gateway_process,
    write_gateway_config,
)
from familyctx_gateway.registry import EMPTY_FILE_PROBLEM, INLINE_SIGHUP_MESSAGE

from familyctx.demo import Federation
from familyctx.demo.supervisor import familyctx_argv

SEARCH = {"purpose": "s47_enquiry", "case_reference": "E2E-SIGHUP", "family_name": "Nobody-Sighup"}


def _wait_for_output(process: GatewayProcess, text: str, *, count: int = 1) -> None:
    """Until ``text`` has been printed ``count`` times; fails if the process ends first or after the
    safety net."""
    ends = time.monotonic() + PROCESS_WAIT_SECONDS
    while process.text.count(text) < count:
        assert process.popen.poll() is None, (
            f"the gateway ended ({process.popen.returncode}):\n{process.text}"
        )
        assert time.monotonic() < ends, f"not printed within {PROCESS_WAIT_SECONDS} s: {text}\n{process.text}"
        time.sleep(0.05)


def _get(process: GatewayProcess, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(process.url + path, headers=headers, timeout=PROCESS_WAIT_SECONDS)


def _search(process: GatewayProcess, token: str) -> dict[str, Any]:
    response = httpx.post(
        process.url + "/v1/searches",
        json=SEARCH,
        headers={"Authorization": f"Bearer {token}"},
        timeout=PROCESS_WAIT_SECONDS,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_sighup_to_a_gateway_with_inline_councils_is_logged_and_it_carries_on(
    federation: Federation, token: str, tmp_path: Path
) -> None:
    config = write_gateway_config(
        federation, tmp_path / "gateway-inline.yaml", audit_url=f"sqlite:///{tmp_path / 'audit.sqlite'}"
    )
    process = start_gateway_process(config)
    try:
        for sent in (1, 2):  # a second one too: the handler stays installed
            os.kill(process.popen.pid, signal.SIGHUP)
            _wait_for_output(process, INLINE_SIGHUP_MESSAGE, count=sent)
        alive = process.popen.poll()
        ready = _get(process, "/readyz")
        answer = _search(process, token)
    finally:
        process.stop()
    assert alive is None
    assert ready.status_code == 200, ready.text
    assert source_states(answer) == dict.fromkeys((STOCKPORT, LEEDS, MANCHESTER), "ok")


def _registry_config(federation: Federation, tmp_path: Path) -> tuple[Path, Path, list[dict[str, Any]]]:
    """The session federation's gateway config with its councils moved to a registry file that is
    polled only hourly; returns (config, registry file, council entries)."""
    data: dict[str, Any] = yaml.safe_load(federation.layout.gateway_config.read_text(encoding="utf-8"))
    councils: list[dict[str, Any]] = data.pop("adapters")
    registry = tmp_path / "councils.yaml"
    _replace(registry, yaml.safe_dump({"councils": councils}))
    data["registry_file"] = str(registry)
    data["registry_poll_seconds"] = 3600
    data["audit"]["database_url"] = f"sqlite:///{tmp_path / 'audit-registry.sqlite'}"
    data.pop("audit_database_url", None)
    config = tmp_path / "gateway-registry.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config, registry, councils


def _replace(path: Path, text: str) -> None:
    """Write a new file beside ``path`` and rename it over ``path`` (as docs/deployment.md says)."""
    scratch = path.with_name(path.name + ".new")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)


def test_sighup_applies_a_registry_edit_at_once_and_an_empty_file_is_refused(
    federation: Federation, token: str, tmp_path: Path
) -> None:
    config, registry, councils = _registry_config(federation, tmp_path)
    process = start_gateway_process(config)
    try:
        _replace(registry, yaml.safe_dump({"councils": [c for c in councils if c["gss_code"] != LEEDS]}))
        os.kill(process.popen.pid, signal.SIGHUP)
        _wait_for_output(process, "registry applied version=2")
        applied = _get(process, "/v1/sources", token).json()
        answer = _search(process, token)

        registry.write_bytes(b"")  # truncated in place, as `> councils.yaml` or an editor does
        os.kill(process.popen.pid, signal.SIGHUP)
        _wait_for_output(process, "registry edit refused")
        refused = _get(process, "/v1/sources", token).json()
        after_refusal = _search(process, token)
        alive = process.popen.poll()
    finally:
        process.stop()
    assert alive is None
    assert applied["registry"]["version"] == 2 and applied["registry"]["councils"] == 2
    assert source_states(answer) == {STOCKPORT: "ok", MANCHESTER: "ok"}
    assert refused["registry"]["version"] == 2 and refused["registry"]["councils"] == 2
    assert refused["registry"]["last_error"] == EMPTY_FILE_PROBLEM
    assert source_states(after_refusal) == {STOCKPORT: "ok", MANCHESTER: "ok"}


def _sighup_ignored(pid: int) -> bool:
    """Whether the process ``pid`` ignores SIGHUP now (its SigIgn mask, /proc/<pid>/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGHUP - 1)))


def test_sighup_in_start_up_and_in_shutdown_does_not_kill_the_gateway(
    federation: Federation, tmp_path: Path
) -> None:
    """`familyctx gateway serve` ignores SIGHUP from its first line (before its imports, seconds on a
    busy machine) until the registry's handler takes over, and again once the registry is closed in
    the shutdown: HUPs sent then neither kill it nor change how SIGTERM ends it."""
    config = write_gateway_config(
        federation, tmp_path / "gateway-hup.yaml", audit_url=f"sqlite:///{tmp_path / 'audit.sqlite'}"
    )
    popen = subprocess.Popen(
        familyctx_argv("gateway", "serve", "--config", str(config), "--host", "127.0.0.1", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    process = GatewayProcess(popen)

    def read() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            with process.changed:
                process.output.append(line)
                process.changed.notify_all()
        with process.changed:
            process.ended = True
            process.changed.notify_all()

    process.reader = threading.Thread(target=read, daemon=True)
    process.reader.start()
    try:
        ends = time.monotonic() + PROCESS_WAIT_SECONDS
        while not _sighup_ignored(popen.pid):  # the serve command's first line has run
            assert popen.poll() is None, process.text
            assert time.monotonic() < ends, "SIGHUP was never ignored"
            time.sleep(0.01)
        hups_in_start_up = 0
        while "gateway ready" not in process.text and popen.poll() is None:
            os.kill(popen.pid, signal.SIGHUP)
            hups_in_start_up += 1
            process.wait_for_output("gateway ready", timeout=0.05)
        assert process.wait_for_output("gateway ready"), process.text
        assert popen.poll() is None, process.text

        popen.send_signal(signal.SIGTERM)
        while popen.poll() is None:  # HUPs all through the shutdown, until the process is gone
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGHUP)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=0.02)
            assert time.monotonic() < ends + PROCESS_WAIT_SECONDS, process.text
        returncode = popen.wait()
    finally:
        process.stop()
    assert hups_in_start_up >= 1
    # uvicorn re-raises the SIGTERM it caught once it has shut down: ended by SIGTERM, not by SIGHUP.
    assert returncode in (0, -signal.SIGTERM), process.text
    assert "Finished server process" in process.text
    assert "Traceback" not in process.text
