"""Start the federation's processes and make sure none outlives the supervisor.

Each child runs in its own session (so a terminal's Ctrl-C reaches only the supervisor, which then
stops the children in order) and, on Linux, with ``PR_SET_PDEATHSIG`` = SIGTERM so that it is told to
stop even when the supervisor itself is killed without running any clean-up. Stopping is SIGTERM,
then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["ChildProcess", "Supervisor", "describe_exit", "familyctx_argv", "private_opener"]

_PR_SET_PDEATHSIG = 1


def familyctx_argv(*args: str) -> list[str]:
    """Command line running ``familyctx ARGS`` with the current interpreter (same venv)."""
    return [sys.executable, "-m", "familyctx", *args]


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved in the parent: the child must not dlopen between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def _die_with_parent_hook() -> Callable[[], None] | None:
    prctl = _prctl()
    if prctl is None:
        return None

    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


def describe_exit(code: int | None) -> str:
    """A ``subprocess`` return code in words: ``"exited with code 1"``, ``"was killed by signal
    SIGKILL"`` (negative codes are signals, ``signal.Signals(-code).name``), ``"is running"`` (None)."""
    if code is None:
        return "is running"
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = str(-code)
    return f"was killed by signal {name}"


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=)`` creating files with mode 0600 (logs may quote request details)."""
    return os.open(path, flags, 0o600)


@dataclass
class ChildProcess:
    """One supervised process: its role name, command, log file and ``subprocess.Popen``."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    _log: IO[bytes]

    @property
    def pid(self) -> int:
        """Process id (also its process-group id: each child leads its own session)."""
        return self.popen.pid

    def exited(self) -> int | None:
        """The exit code if the process has ended, else None."""
        return self.popen.poll()

    def exit_description(self) -> str:
        """How the process ended, for messages: ``"exited with code 1"``, or for a negative return code
        ``"was killed by signal SIGHUP"`` (the signal's name; its number if unknown); ``"is running"``
        while it runs."""
        return describe_exit(self.exited())

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the child's log, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Owns child processes; :meth:`stop_all` (also on ``with`` exit) stops them in reverse order.

    ``grace_seconds``: how long each child has to exit after SIGTERM before it is killed.
    """

    def __init__(self, *, grace_seconds: float = 5.0) -> None:
        self.grace_seconds = grace_seconds
        self.children: dict[str, ChildProcess] = {}

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        umask: int = -1,
    ) -> ChildProcess:
        """Start ``argv`` as child ``name``; stdout and stderr are appended to ``log_path`` (created
        owner-only, 0600). ``umask``: the child's file-creation mask (-1: inherit this process's)."""
        if name in self.children and self.children[name].exited() is None:
            raise ValueError(f"a child named {name!r} is already running")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab", opener=private_opener)  # closed in stop()
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),  # only calls prctl(2), resolved beforehand
            umask=umask,
        )
        child = ChildProcess(name, list(argv), log_path, popen, log)
        self.children[name] = child
        return child

    def stop(self, name: str) -> int | None:
        """Stop child ``name``: SIGCONT (in case it was stopped), SIGTERM, SIGKILL after the grace.

        Returns its exit code (negative for a signal), or None if it was never started.
        """
        child = self.children.get(name)
        if child is None:
            return None
        if child.exited() is None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, sig)
            try:
                child.popen.wait(timeout=self.grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.popen.wait()
        # Reap anything left in the child's process group (e.g. worker processes it started).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child._log.close()
        return child.popen.returncode

    def stop_all(self) -> None:
        """Stop every child, the most recently started first."""
        for name in reversed(list(self.children)):
            self.stop(name)

    def running(self) -> list[str]:
        """Names of the children still running."""
        return [name for name, child in self.children.items() if child.exited() is None]

    def wait_any_exit(self, poll_seconds: float = 0.5) -> ChildProcess:
        """Block until some child exits (used while the demo serves); returns that child."""
        while True:
            for child in self.children.values():
                if child.exited() is not None:
                    return child
            time.sleep(poll_seconds)
