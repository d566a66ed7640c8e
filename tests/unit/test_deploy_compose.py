"""The one-host deployment (docker-compose.yml, deploy/compose/, deploy/keycloak/) holds together.

Parsed with PyYAML and checked against the real settings classes of each deployable; validated by
`docker-compose config -q` when docker-compose is installed (required when
FAMILYCTX_REQUIRE_DEPLOY_TOOLS=1, as in CI). Nothing is started: there is no Docker engine here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from familyctx.councils import DEMO_COUNCILS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEV_OVERRIDE = REPO / "deploy" / "compose" / "docker-compose.dev.yml"
REALM_FILE = REPO / "deploy" / "keycloak" / "realm-familyctx.json"
ADAPTER_PORT_IN_CONTAINER = 50051


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _adapter_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if name.startswith("adapter-")}


def _is_one_shot(svc: dict[str, Any]) -> bool:
    return svc.get("restart") == "no"


def _dockerfile_healthcheck(svc: dict[str, Any]) -> str | None:
    build = svc.get("build")
    if not build:
        return None
    parser = DockerfileParser(path=str(REPO / build["dockerfile"]))
    checks = [i["value"] for i in parser.structure if i["instruction"] == "HEALTHCHECK"]
    return checks[-1] if checks else None


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """Container path -> source, for short-syntax volumes ("source:target[:mode]")."""
    out = {}
    for entry in svc.get("volumes", []):
        source, target = entry.split(":")[:2]
        out[target] = source
    return out


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if _is_one_shot(svc):
            continue
        in_compose = svc.get("healthcheck") and not svc["healthcheck"].get("disable")
        in_image = _dockerfile_healthcheck(svc)
        assert in_compose or in_image, f"service {name} has no healthcheck (compose or its Dockerfile)"


def test_dependencies_wait_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for dep, spec in svc.get("depends_on", {}).items():
            expected = "service_completed_successfully" if _is_one_shot(services[dep]) else "service_healthy"
            assert spec == {"condition": expected}, f"{name} -> {dep} must wait for {expected}"


def test_gateway_waits_for_database_identity_provider_and_every_adapter(
    services: dict[str, dict[str, Any]],
) -> None:
    adapters = set(_adapter_services(services))
    assert set(services["gateway"]["depends_on"]) == {"certs", "postgres", "keycloak"} | adapters
    assert set(services["gateway-dev-oidc"]["depends_on"]) == {"certs", "postgres", "oidc-dev"} | adapters


def test_synth_is_a_one_shot_job_every_adapter_waits_for(services: dict[str, dict[str, Any]]) -> None:
    synth = services["synth"]
    assert _is_one_shot(synth)
    assert synth["network_mode"] == "none", "the data generator needs no network"
    for name, svc in _adapter_services(services).items():
        assert svc["depends_on"] == {
            "certs": {"condition": "service_completed_successfully"},
            "synth": {"condition": "service_completed_successfully"},
        }, name


PKI_DIR = "/var/lib/familyctx/pki"


def test_certs_job_writes_the_development_pki_every_party_mounts_read_only(
    services: dict[str, dict[str, Any]],
) -> None:
    certs = services["certs"]
    assert _is_one_shot(certs) and certs["network_mode"] == "none"
    command = certs["command"]
    assert command[:3] == ["dev-pki", "--out", PKI_DIR]
    councils = [command[i + 1] for i, arg in enumerate(command) if arg == "--council"]
    assert sorted(councils) == sorted(c.gss_code for c in DEMO_COUNCILS)
    assert _mounts(certs)[PKI_DIR] == "dev-pki"
    readers = [*_adapter_services(services), "gateway", "gateway-dev-oidc"]
    for name in readers:
        entries = [v for v in services[name]["volumes"] if v.split(":")[1] == PKI_DIR]
        assert entries == [f"dev-pki:{PKI_DIR}:ro"], name
        assert services[name]["depends_on"]["certs"] == {"condition": "service_completed_successfully"}


def test_each_adapter_mounts_its_councils_sharing_policy(services: dict[str, dict[str, Any]]) -> None:
    from familyctx_adapter.settings import load_settings

    for council in DEMO_COUNCILS:
        svc = services[f"adapter-{council.slug}"]
        settings = load_settings(REPO / "deploy" / "compose" / f"adapter-{council.slug}.yaml")
        source = _mounts(svc)[str(settings.policy_file)]
        assert source == f"./services/adapter/config/policies/{council.slug}.cedar"
        assert (REPO / source).is_file()


def test_compose_configs_use_the_certs_jobs_files_and_names_that_match(
    services: dict[str, dict[str, Any]],
) -> None:
    from familyctx_adapter.settings import load_settings as load_adapter_settings
    from familyctx_gateway.settings import load_settings

    from familyctx.trust.pki import DevPki, adapter_dns_name

    pki = DevPki(Path(PKI_DIR), tuple(c.gss_code for c in DEMO_COUNCILS))
    for service in ("gateway", "gateway-dev-oidc"):
        gateway = load_settings(REPO / _mounts(services[service])["/etc/familyctx/gateway.yaml"])
        assert gateway.assertion is not None and gateway.adapter_tls is not None
        assert gateway.assertion.signing_key_file == pki.assertion_key
        tls = gateway.adapter_tls
        assert (tls.ca_file, tls.cert_file, tls.key_file) == (pki.ca_cert, pki.gateway_cert, pki.gateway_key)
        # The compose service name is not in the certificate: the gateway checks the certificate's name.
        assert {a.gss_code: a.tls_server_name for a in gateway.adapters} == {
            c.gss_code: adapter_dns_name(c.gss_code) for c in DEMO_COUNCILS
        }
        for council in DEMO_COUNCILS:
            adapter = load_adapter_settings(REPO / "deploy" / "compose" / f"adapter-{council.slug}.yaml")
            assert adapter.tls.cert_file == pki.adapter_cert(council.gss_code)
            assert adapter.tls.key_file == pki.adapter_key(council.gss_code)
            assert adapter.tls.client_ca_file == pki.ca_cert
            assert adapter.gateway.jwks_file == pki.assertion_jwks
            assert adapter.gateway.issuer == gateway.assertion.issuer
            # The image's HEALTHCHECK probes 127.0.0.1:50052: the plaintext health-only port.
            assert adapter.health_listen is not None
            assert (adapter.health_listen.host, adapter.health_listen.port) == ("127.0.0.1", 50052)


def test_one_adapter_per_demo_council_with_its_own_config_and_volume(
    services: dict[str, dict[str, Any]],
) -> None:
    adapters = _adapter_services(services)
    assert set(adapters) == {f"adapter-{c.slug}" for c in DEMO_COUNCILS}
    volumes_seen: set[str] = set()
    for council in DEMO_COUNCILS:
        svc = adapters[f"adapter-{council.slug}"]
        mounts = _mounts(svc)
        assert mounts["/etc/familyctx/adapter.yaml"] == f"./deploy/compose/adapter-{council.slug}.yaml"
        config = _load(REPO / "deploy" / "compose" / f"adapter-{council.slug}.yaml")
        assert config["council"]["gss_code"] == council.gss_code
        assert config["council"]["dfe_la_number"] == council.dfe_la_number
        assert config["cms"] == council.cms
        assert config["listen"] == {"host": "0.0.0.0", "port": ADAPTER_PORT_IN_CONTAINER}
        # The warehouse file sits on the council's own named volume, mounted where the config says.
        warehouse_dir = f"/var/lib/familyctx/councils/{council.slug}"
        assert config["database_url"] == f"sqlite:///{warehouse_dir}/{council.slug}.sqlite"
        volume = mounts[warehouse_dir]
        assert volume == f"adapter-{council.slug}-warehouse"
        assert volume not in volumes_seen
        volumes_seen.add(volume)
        # The synth job writes into the same volume at the same path and indexes with the same config.
        synth_mounts = _mounts(services["synth"])
        assert synth_mounts[warehouse_dir] == volume
        assert synth_mounts[f"/etc/familyctx/adapters/{council.slug}.yaml"] == (
            f"./deploy/compose/adapter-{council.slug}.yaml"
        )


def test_adapters_are_reachable_only_on_internal_networks(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name, svc in _adapter_services(services).items():
        assert "ports" not in svc, f"{name} must not publish host ports (dev override only)"
        for network in svc["networks"]:
            assert compose["networks"][network].get("internal") is True, f"{name} on {network}"


def test_dev_override_publishes_adapters_on_loopback_demo_ports() -> None:
    override = _load(DEV_OVERRIDE)["services"]
    for council in DEMO_COUNCILS:
        assert override[f"adapter-{council.slug}"]["ports"] == [
            f"127.0.0.1:{council.port}:{ADAPTER_PORT_IN_CONTAINER}"
        ]


def test_published_ports_bind_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    all_services = dict(services)
    all_services.update({f"dev:{k}": v for k, v in _load(DEV_OVERRIDE)["services"].items()})
    published = {name: svc["ports"] for name, svc in all_services.items() if "ports" in svc}
    assert "gateway" in published
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_our_images_run_hardened(services: dict[str, dict[str, Any]]) -> None:
    ours = {name: svc for name, svc in services.items() if "build" in svc}
    assert {"gateway", "synth", "oidc-dev"} <= set(ours)
    for name, svc in ours.items():
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert "user" not in svc, f"{name}: the image's non-root USER must not be overridden"


def test_gateway_configs_point_at_the_compose_adapters_and_identity_providers(
    services: dict[str, dict[str, Any]],
) -> None:
    from familyctx_gateway.settings import load_settings

    keycloak_env = services["keycloak"]["environment"]
    oidc_cmd = services["oidc-dev"]["command"]
    expected_issuer = {
        "gateway": f"{keycloak_env['KC_HOSTNAME']}/realms/{json.loads(REALM_FILE.read_text())['realm']}",
        "gateway-dev-oidc": oidc_cmd[oidc_cmd.index("--issuer") + 1],
    }
    for service, issuer in expected_issuer.items():
        source = _mounts(services[service])["/etc/familyctx/gateway.yaml"]
        settings = load_settings(REPO / source)
        assert settings.oidc[0].issuer == issuer
        assert settings.oidc[0].audience == "familyctx-gateway"
        assert settings.listen.host == "0.0.0.0"
        assert {(a.gss_code, a.address) for a in settings.adapters} == {
            (c.gss_code, f"adapter-{c.slug}:{ADAPTER_PORT_IN_CONTAINER}") for c in DEMO_COUNCILS
        }
        # The audit database URL holds a password: it comes from the environment, not the file.
        assert "audit_database_url" not in _load(REPO / source)
        assert services[service]["environment"]["FAMILYCTX_GATEWAY_AUDIT_DATABASE_URL"].startswith(
            "postgresql+psycopg://"
        )


def test_adapter_configs_load_with_the_adapter_settings() -> None:
    from familyctx_adapter.settings import load_settings

    for council in DEMO_COUNCILS:
        settings = load_settings(REPO / "deploy" / "compose" / f"adapter-{council.slug}.yaml")
        assert settings.council.gss_code == council.gss_code
        assert settings.cms == council.cms


# --- Keycloak realm: the claims the gateway relies on (interfaces.md, "Access tokens") -------------


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    return json.loads(REALM_FILE.read_text(encoding="utf-8"))


ROLES = {"social_worker", "team_manager", "ig_officer", "administrator", "service_client"}
DEMO_USERS = {
    "sw.stockport": ("social_worker", "E08000007", "Sam", "Walker"),
    "tm.leeds": ("team_manager", "E08000035", "Taylor", "Moss"),
    "ig.stockport": ("ig_officer", "E08000007", "Indra", "Gill"),
    "ig.leeds": ("ig_officer", "E08000035", "Lee", "Ng"),
    "admin.stockport": ("administrator", "E08000007", "Alex", "Price"),
}


def _mapper(client: dict[str, Any], kind: str, **config: str) -> dict[str, Any]:
    found = [
        m
        for m in client["protocolMappers"]
        if m["protocolMapper"] == kind and all(m["config"].get(k) == v for k, v in config.items())
    ]
    assert len(found) == 1, f"{client['clientId']}: expected one {kind} mapper with {config}"
    assert found[0]["config"]["access.token.claim"] == "true"
    return found[0]


def test_realm_roles_belong_to_the_gateway_client(realm: dict[str, Any]) -> None:
    roles = {r["name"] for r in realm["roles"]["client"]["familyctx-gateway"]}
    assert roles == ROLES


def test_token_clients_put_audience_roles_and_organisation_in_the_access_token(
    realm: dict[str, Any],
) -> None:
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert "familyctx-gateway" in clients
    for client_id in ("familyctx-cli", "familyctx-service"):
        client = clients[client_id]
        _mapper(client, "oidc-audience-mapper", **{"included.client.audience": "familyctx-gateway"})
        roles = _mapper(
            client,
            "oidc-usermodel-client-role-mapper",
            **{"claim.name": "roles", "usermodel.clientRoleMapping.clientId": "familyctx-gateway"},
        )
        assert roles["config"]["multivalued"] == "true"
        for attribute in ("organisation", "organisation_name"):
            _mapper(
                client,
                "oidc-usermodel-attribute-mapper",
                **{"user.attribute": attribute, "claim.name": attribute},
            )


def test_demo_users_match_the_development_provider(realm: dict[str, Any]) -> None:
    users = {u["username"]: u for u in realm["users"] if "serviceAccountClientId" not in u}
    assert set(users) == set(DEMO_USERS)
    for username, (role, gss_code, first, last) in DEMO_USERS.items():
        user = users[username]
        assert user["clientRoles"] == {"familyctx-gateway": [role]}
        assert user["attributes"]["organisation"] == [gss_code]
        assert (user["firstName"], user["lastName"]) == (first, last)
        assert user["enabled"] and user["email"] and not user["requiredActions"]


def test_realm_user_profile_declares_the_organisation_attributes(realm: dict[str, Any]) -> None:
    # Keycloak 24+ drops user attributes that the user profile does not declare.
    (provider,) = realm["components"]["org.keycloak.userprofile.UserProfileProvider"]
    profile = json.loads(provider["config"]["kc.user.profile.config"][0])
    declared = {a["name"] for a in profile["attributes"]}
    assert {"username", "email", "firstName", "lastName", "organisation", "organisation_name"} <= declared


# --- the tool itself ----------------------------------------------------------------------------


def _compose_tool() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.parametrize(
    "args",
    [
        ["-f", "docker-compose.yml"],
        ["-f", "docker-compose.yml", "-f", "deploy/compose/docker-compose.dev.yml"],
        ["-f", "docker-compose.yml", "--profile", "dev-oidc"],
    ],
    ids=["main", "dev-override", "dev-oidc-profile"],
)
def test_docker_compose_config_validates(args: list[str]) -> None:
    tool = _compose_tool()
    if tool is None:
        if os.environ.get("FAMILYCTX_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(
                "docker-compose is not installed but FAMILYCTX_REQUIRE_DEPLOY_TOOLS=1: "
                "run `apt-get update && apt-get install -y docker-compose`"
            )
        pytest.skip(
            "docker-compose not installed (apt-get install -y docker-compose); set "
            "FAMILYCTX_REQUIRE_DEPLOY_TOOLS=1 to make this a failure"
        )
    result = subprocess.run(
        [*tool, *args, "config", "-q"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
