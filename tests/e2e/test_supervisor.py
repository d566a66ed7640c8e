"""The demo's process supervisor with real child processes: clean stop, forced stop, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from familyctx.demo.supervisor import Supervisor

SLEEPER = "import time; print('ready', flush=True); time.sleep(600)"
STUBBORN = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SLEEPER


def _wait_for(predicate, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_stop_terminates_children_in_reverse_order(tmp_path: Path) -> None:
    with Supervisor(grace_seconds=10) as supervisor:
        first = supervisor.start("first", [sys.executable, "-c", SLEEPER], log_path=tmp_path / "first.log")
        second = supervisor.start("second", [sys.executable, "-c", SLEEPER], log_path=tmp_path / "second.log")
        _wait_for(lambda: "ready" in first.log_tail() and "ready" in second.log_tail(), "children to start")
        assert supervisor.running() == ["first", "second"]
    assert first.exited() == -signal.SIGTERM
    assert second.exited() == -signal.SIGTERM
    assert supervisor.running() == []


def test_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    supervisor = Supervisor(grace_seconds=0.5)
    child = supervisor.start("stubborn", [sys.executable, "-c", STUBBORN], log_path=tmp_path / "s.log")
    _wait_for(lambda: "ready" in child.log_tail(), "the child to ignore SIGTERM")
    assert supervisor.stop("stubborn") == -signal.SIGKILL


def test_stopped_child_is_continued_then_terminated(tmp_path: Path) -> None:
    supervisor = Supervisor(grace_seconds=10)
    child = supervisor.start("paused", [sys.executable, "-c", SLEEPER], log_path=tmp_path / "p.log")
    _wait_for(lambda: "ready" in child.log_tail(), "the child to start")
    os.kill(child.pid, signal.SIGSTOP)
    assert supervisor.stop("paused") == -signal.SIGTERM


def test_children_die_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """SIGKILL the supervising process (no clean-up can run): its child must still go away."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from familyctx.demo.supervisor import Supervisor
        supervisor = Supervisor()
        log_path = Path({str(tmp_path)!r}) / "c.log"
        child = supervisor.start("sleeper", [sys.executable, "-c", {SLEEPER!r}], log_path=log_path)
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        _wait_for(lambda: "ready" in (tmp_path / "c.log").read_text(), "the grandchild to start")
        parent.kill()
        parent.wait()
        _wait_for(lambda: not _alive(grandchild), "the orphan to be terminated")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
