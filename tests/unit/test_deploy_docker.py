"""The Dockerfiles (deploy/docker) and .dockerignore, checked offline with dockerfile-parse.

No Docker engine here, so nothing is built; these tests hold the properties a build would rely on:
slim Python 3.11 base, multi-stage, pinned install, non-root user, health check, the documented
entrypoint, and a build context that contains every file the Dockerfiles copy.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"

#: image -> (command, exposed ports, port its HEALTHCHECK probes). The adapter's data port 50051 is mutual
#: TLS only, so its image probes the plaintext health-only port 50052 (health_listen).
EXPECTED = {
    "gateway": (["familyctx", "gateway", "serve", "--config", "/etc/familyctx/gateway.yaml"], "8000", 8000),
    "adapter": (
        ["familyctx", "adapter", "serve", "--config", "/etc/familyctx/adapter.yaml"],
        "50051 50052",
        50052,
    ),
    "oidc-dev": (["familyctx", "oidc", "serve"], "9000", 9000),
}


def _parse(name: str) -> DockerfileParser:
    return DockerfileParser(path=str(DOCKER / f"{name}.Dockerfile"))


def _instructions(parser: DockerfileParser, instruction: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == instruction]


def _build_stage(name: str) -> list[tuple[str, str]]:
    """The build stage's instructions, from its FROM up to the next FROM."""
    structure = _parse(name).structure
    froms = [n for n, i in enumerate(structure) if i["instruction"] == "FROM"]
    return [(i["instruction"], i["value"]) for i in structure[froms[0] : froms[1]]]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_multi_stage_on_slim_python_311(name: str) -> None:
    parser = _parse(name)
    (arg,) = _instructions(parser, "ARG")
    assert arg.startswith("PYTHON_IMAGE=python:3.11-slim")
    assert _instructions(parser, "FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    assert "pip install -c constraints.txt ." in _instructions(parser, "RUN")
    assert any(v.startswith("--from=build /opt/familyctx ") for v in _instructions(parser, "COPY"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_runs_as_a_fixed_non_root_user(name: str) -> None:
    users = _instructions(_parse(name), "USER")
    assert users, "no USER: the container would run as root"
    assert users[-1] == "10001:10001"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entrypoint_port_and_healthcheck(name: str) -> None:
    parser = _parse(name)
    command, exposed, port = EXPECTED[name]
    (entrypoint,) = _instructions(parser, "ENTRYPOINT")
    (cmd,) = _instructions(parser, "CMD")
    full = json.loads(entrypoint) + json.loads(cmd)
    assert full[: len(command)] == command
    assert _instructions(parser, "EXPOSE") == [exposed]
    (healthcheck,) = _instructions(parser, "HEALTHCHECK")
    assert "/opt/familyctx-tools/healthcheck.py" in healthcheck
    assert f"127.0.0.1:{port}" in healthcheck


def test_oidc_dev_image_listens_beyond_loopback_only_by_explicit_flag() -> None:
    (cmd,) = _instructions(_parse("oidc-dev"), "CMD")
    args = json.loads(cmd)
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert "--allow-non-loopback" in args


def test_build_stage_is_the_same_in_every_dockerfile() -> None:
    # Three files, one way of building the project: any edit must be made in all of them.
    stages = {name: _build_stage(name) for name in EXPECTED}
    assert stages["adapter"] == stages["gateway"] == stages["oidc-dev"]


def _dockerignore_allows(relative: str) -> bool:
    """Docker's rule: the last matching pattern wins; a path is also matched through its parents."""
    allowed = True
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatch(c, body) for c in candidates):
            allowed = negate
    return allowed


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_copied_path_exists_and_is_in_the_build_context(name: str) -> None:
    for value in _instructions(_parse(name), "COPY"):
        if value.startswith("--from="):
            continue
        *sources, _target = value.split()
        for source in sources:
            assert (REPO / source).exists(), f"{name}: COPY {source} does not exist"
            assert _dockerignore_allows(source), f"{name}: COPY {source} is excluded by .dockerignore"


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    for path in (
        ".venv/bin/python",
        ".git/config",
        "var/demo/stockport.sqlite",
        "tests/conftest.py",
        "src/familyctx/__pycache__/cli.cpython-311.pyc",
    ):
        assert not _dockerignore_allows(path), path
