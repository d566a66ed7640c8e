"""Kubernetes manifests (deploy/k8s): hardened pods, the right probes, one overlay per council.

The base and overlay files are parsed with PyYAML and validated with kubernetes-validate (strict,
offline schemas). Rendering the overlays needs `kubectl kustomize`; kubectl is not in the package
registries, so those tests are skipped with the reason when it is absent (the file-level tests still
check what each overlay replaces).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from familyctx.councils import DEMO_COUNCILS

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = K8S / "overlays"
GATEWAY_LABEL = {"app.kubernetes.io/name": "familyctx-gateway"}
ADAPTER_LABEL = {"app.kubernetes.io/name": "familyctx-adapter"}
RETENTION = "familyctx-gateway-audit-retention"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _kustomization(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))


def _resources(directory: Path) -> list[dict[str, Any]]:
    """Every resource a kustomization lists, following directories (no patches applied)."""
    out: list[dict[str, Any]] = []
    for entry in _kustomization(directory).get("resources", []):
        path = (directory / entry).resolve()
        out.extend(_resources(path) if path.is_dir() else _docs(path))
    return out


def _one(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return _resources(BASE)


@pytest.fixture(autouse=True)
def _disclosure_log_url_from_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter's disclosure log URL arrives from the Secret familyctx-adapter-disclosure-database as an
    environment variable (deployment.yaml); simulate it wherever an adapter config is loaded."""
    monkeypatch.setenv(
        "FAMILYCTX_ADAPTER_DISCLOSURE_LOG__DATABASE_URL", "postgresql+psycopg://log@db/disclosure"
    )


def test_every_listed_resource_file_exists() -> None:
    for kfile in K8S.rglob("kustomization.yaml"):
        kustomization = yaml.safe_load(kfile.read_text(encoding="utf-8"))
        for entry in kustomization.get("resources", []):
            assert (kfile.parent / entry).exists(), f"{kfile}: {entry} missing"
        for generator in kustomization.get("configMapGenerator", []):
            for name in generator["files"]:
                assert (kfile.parent / name).is_file(), f"{kfile}: {name} missing"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_base_manifests_pass_strict_schema_validation(base: list[dict[str, Any]], version: str) -> None:
    for resource in base:
        kubernetes_validate.validate(resource, version, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    # The check above is only worth something if an unknown field fails it.
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


def _pod(resource: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment or a CronJob."""
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return resource["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("kind", "name"),
    [("Deployment", "familyctx-gateway"), ("Deployment", "familyctx-adapter"), ("CronJob", RETENTION)],
)
def test_pods_are_hardened(base: list[dict[str, Any]], kind: str, name: str) -> None:
    pod = _pod(_one(base, kind, name))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, f"{name} {kind}"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, "a read-only root needs a writable /tmp"


def test_adapter_probes_use_grpc_health_on_the_plaintext_health_port(base: list[dict[str, Any]]) -> None:
    # The data port takes only the gateway's client certificate, which the kubelet does not hold.
    (container,) = _one(base, "Deployment", "familyctx-adapter")["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [
        {"name": "grpc", "containerPort": 50051, "protocol": "TCP"},
        {"name": "health", "containerPort": 50052, "protocol": "TCP"},
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": 50052}, probe
    assert container["args"] == ["adapter", "serve", "--config", "/etc/familyctx/adapter.yaml"]


def _mounted(deployment: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """mountPath -> (volume name, volume source) of the deployment's one container."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    return {m["mountPath"]: (m["name"], volumes[m["name"]]) for m in container["volumeMounts"]}


# Where each deployable's config expects its trust files, and which Secret or ConfigMap holds them.
TRUST_MOUNTS = {
    "familyctx-adapter": {
        "/etc/familyctx-tls": ("secret", "familyctx-adapter-tls"),
        "/etc/familyctx-gateway": ("configMap", "familyctx-gateway-jwks"),
        "/etc/familyctx-policy": ("configMap", "familyctx-adapter-policy"),
        "/etc/familyctx-audit": ("secret", "familyctx-adapter-audit-key"),
    },
    "familyctx-gateway": {
        "/etc/familyctx-tls": ("secret", "familyctx-gateway-tls"),
        "/etc/familyctx-assertion": ("secret", "familyctx-gateway-assertion-key"),
    },
}


@pytest.mark.parametrize("name", sorted(TRUST_MOUNTS))
def test_certificates_and_keys_are_mounted_read_only_from_secrets(
    base: list[dict[str, Any]], name: str
) -> None:
    deployment = _one(base, "Deployment", name)
    mounted = _mounted(deployment)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    read_only = {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly")}
    for path, (kind, source_name) in TRUST_MOUNTS[name].items():
        _, volume = mounted[path]
        assert path in read_only, path
        if kind == "secret":
            assert volume["secret"]["secretName"] == source_name
            # Owner and group (fsGroup 10001) only: private keys are never world-readable.
            assert volume["secret"]["defaultMode"] & 0o007 == 0
        else:
            assert volume["configMap"]["name"] == source_name


def _under(path: Path, mounts: dict[str, Any]) -> bool:
    return any(path.is_relative_to(mount) for mount in mounts)


def test_adapter_configs_name_files_in_the_mounted_secrets_and_config_maps(
    base: list[dict[str, Any]],
) -> None:
    from familyctx_adapter.settings import load_settings

    mounts = TRUST_MOUNTS["familyctx-adapter"]
    for config in [
        BASE / "adapter" / "adapter.yaml",
        *(OVERLAYS / c.slug / "adapter.yaml" for c in DEMO_COUNCILS),
    ]:
        settings = load_settings(config, database_url="sqlite:///unused.sqlite")
        for path in (settings.tls.cert_file, settings.tls.key_file, settings.tls.client_ca_file):
            assert path.is_relative_to("/etc/familyctx-tls"), (config, path)
        assert settings.gateway.jwks_file is not None and _under(settings.gateway.jwks_file, mounts)
        assert settings.policy_file.is_relative_to("/etc/familyctx-policy")
        assert settings.health_listen is not None
        assert (settings.health_listen.host, settings.health_listen.port) == ("0.0.0.0", 50052)


def test_gateway_configs_name_files_in_the_mounted_secrets_and_trust_the_adapters_issuer() -> None:
    from familyctx_adapter.settings import load_settings as load_adapter_settings
    from familyctx_gateway.settings import load_settings

    mounts = TRUST_MOUNTS["familyctx-gateway"]
    for config in (BASE / "gateway" / "gateway.yaml", OVERLAYS / "central" / "gateway.yaml"):
        settings = load_settings(config)
        assert settings.assertion is not None and settings.adapter_tls is not None
        tls = settings.adapter_tls
        for path in (settings.assertion.signing_key_file, tls.ca_file, tls.cert_file, tls.key_file):
            assert _under(path, mounts), (config, path)
        for council in DEMO_COUNCILS:
            adapter = load_adapter_settings(
                OVERLAYS / council.slug / "adapter.yaml", database_url="sqlite:///x"
            )
            assert adapter.gateway.issuer == settings.assertion.issuer


def test_gateway_probes_use_healthz_and_readyz(base: list[dict[str, Any]]) -> None:
    (container,) = _one(base, "Deployment", "familyctx-gateway")["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"] == ["gateway", "serve", "--config", "/etc/familyctx/gateway.yaml"]


def test_gateway_stop_budget_covers_the_pre_stop_pause_and_the_shutdown_grace(
    base: list[dict[str, Any]],
) -> None:
    from familyctx_gateway.settings import load_settings

    pod = _one(base, "Deployment", "familyctx-gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # An exec of the image's own Python (no writable file needed: the root filesystem is read-only).
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    found = re.fullmatch(r"import time; time\.sleep\((\d+)\)", command[2])
    assert found, command
    pause = int(found.group(1))
    assert 2 <= pause <= 15  # long enough for the endpoints to go, short enough not to delay rollouts
    closing = 5  # channels and the audit store closed, a last tree head signed
    for config in (BASE / "gateway" / "gateway.yaml", OVERLAYS / "central" / "gateway.yaml"):
        settings = load_settings(config)
        grace = settings.listen.shutdown_grace_seconds
        assert pause + grace + closing <= pod["terminationGracePeriodSeconds"], config
        # The grace lets a request waiting on its slowest council still finish.
        assert all(a.deadline_ms / 1000 + 1 <= grace for a in settings.adapters), config


def test_audit_retention_runs_the_gateway_retention_command_daily(base: list[dict[str, Any]]) -> None:
    from typer.testing import CliRunner

    from familyctx.cli import app

    cron = _one(base, "CronJob", RETENTION)
    fields = cron["spec"]["schedule"].split()
    assert len(fields) == 5 and fields[2:] == ["*", "*", "*"], "daily"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = _pod(cron)
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    gateway = _one(base, "Deployment", "familyctx-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == gateway["image"]
    assert container["args"] == ["gateway", "retention", "--config", "/etc/familyctx/gateway.yaml"]
    # The same config and audit database as the gateway; no keys or certificates.
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env == {
        "FAMILYCTX_GATEWAY_AUDIT_DATABASE_URL": {"name": "familyctx-gateway-audit-database", "key": "url"}
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "familyctx-gateway-config"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/familyctx", "/tmp"}
    # The command exists and takes --config.
    result = CliRunner().invoke(app, ["gateway", "retention", "--help"])
    assert result.exit_code == 0 and "--config" in result.output
    # Not selected by the gateway's Service or disruption budget; its own policy: DNS and PostgreSQL out.
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        _one(base, "Service", "familyctx-gateway")["spec"]["selector"],
        _one(base, "PodDisruptionBudget", "familyctx-gateway")["spec"]["selector"]["matchLabels"],
    ):
        assert not selector.items() <= labels.items()
    policy = _one(base, "NetworkPolicy", RETENTION)["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy
    ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432)}


def test_secrets_come_from_secret_references_not_config(base: list[dict[str, Any]]) -> None:
    wanted = {
        "familyctx-gateway": "FAMILYCTX_GATEWAY_AUDIT_DATABASE_URL",
        "familyctx-adapter": "FAMILYCTX_ADAPTER_DATABASE_URL",
    }
    for name, variable in wanted.items():
        (container,) = _one(base, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert "secretKeyRef" in env[variable]["valueFrom"], f"{name}: {variable}"


def test_gateway_has_a_disruption_budget_and_spare_replicas(base: list[dict[str, Any]]) -> None:
    pdb = _one(base, "PodDisruptionBudget", "familyctx-gateway")
    assert pdb["spec"]["selector"]["matchLabels"] == GATEWAY_LABEL
    assert pdb["spec"]["minAvailable"] == 1
    assert _one(base, "Deployment", "familyctx-gateway")["spec"]["replicas"] > pdb["spec"]["minAvailable"]


def test_only_the_gateway_may_call_an_adapter_and_only_on_grpc(base: list[dict[str, Any]]) -> None:
    policy = _one(base, "NetworkPolicy", "familyctx-adapter")["spec"]
    assert policy["podSelector"]["matchLabels"] == ADAPTER_LABEL
    assert "Ingress" in policy["policyTypes"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 50051}]
    assert [peer["podSelector"]["matchLabels"] for peer in rule["from"]] == [GATEWAY_LABEL]


def test_services_select_their_pods(base: list[dict[str, Any]]) -> None:
    assert _one(base, "Service", "familyctx-gateway")["spec"]["selector"] == GATEWAY_LABEL
    adapter = _one(base, "Service", "familyctx-adapter")["spec"]
    assert adapter["selector"] == ADAPTER_LABEL
    assert adapter["ports"][0]["port"] == 50051


# --- overlays -----------------------------------------------------------------------------------


def test_one_overlay_per_demo_council_plus_central() -> None:
    assert {p.name for p in OVERLAYS.iterdir() if p.is_dir()} == {c.slug for c in DEMO_COUNCILS} | {"central"}


@pytest.mark.parametrize("council", DEMO_COUNCILS, ids=lambda c: c.slug)
def test_council_overlay_configures_its_own_adapter(council: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from familyctx_adapter.settings import load_settings

    overlay = OVERLAYS / council.slug
    kustomization = _kustomization(overlay)
    assert kustomization["namespace"] == f"familyctx-{council.slug}"
    assert kustomization["resources"] == ["namespace.yaml", "../../base/adapter"]
    (generator,) = kustomization["configMapGenerator"]
    assert generator == {"name": "familyctx-adapter-config", "behavior": "replace", "files": ["adapter.yaml"]}
    (labels,) = kustomization["labels"]
    assert labels["pairs"]["familyctx/gss-code"] == council.gss_code
    # The database URL arrives from the Secret as an environment variable; simulate it.
    monkeypatch.setenv("FAMILYCTX_ADAPTER_DATABASE_URL", "postgresql+psycopg://reader@warehouse/ssd")
    settings = load_settings(overlay / "adapter.yaml")
    assert settings.council.gss_code == council.gss_code
    assert settings.council.dfe_la_number == council.dfe_la_number
    assert settings.cms == council.cms
    assert (settings.listen.host, settings.listen.port) == ("0.0.0.0", 50051)
    assert "database_url" not in yaml.safe_load((overlay / "adapter.yaml").read_text(encoding="utf-8"))


def test_central_overlay_lists_every_council_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    from familyctx_gateway.settings import load_settings

    kustomization = _kustomization(OVERLAYS / "central")
    assert kustomization["resources"] == ["namespace.yaml", "../../base/gateway"]
    settings = load_settings(OVERLAYS / "central" / "gateway.yaml")
    assert {(a.gss_code, a.address) for a in settings.adapters} == {
        (c.gss_code, f"familyctx-adapter.familyctx-{c.slug}.svc.cluster.local:50051") for c in DEMO_COUNCILS
    }
    assert settings.oidc[0].issuer.startswith("https://")


def test_namespaces_enforce_the_restricted_pod_security_profile() -> None:
    for overlay in OVERLAYS.iterdir():
        (namespace,) = _docs(overlay / "namespace.yaml")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert namespace["metadata"]["name"] == _kustomization(overlay)["namespace"]


# --- rendered with kubectl kustomize, when kubectl is installed ----------------------------------

requires_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is not installed (it is not in the package registries); overlays not rendered",
)


def _render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@requires_kubectl
@pytest.mark.parametrize("council", DEMO_COUNCILS, ids=lambda c: c.slug)
def test_rendered_council_overlay(council: Any) -> None:
    resources = _render(OVERLAYS / council.slug)
    namespace = f"familyctx-{council.slug}"
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSIONS[-1], strict=True)
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == namespace
    (config_map,) = [r for r in resources if r["kind"] == "ConfigMap"]
    adapter_config = yaml.safe_load(config_map["data"]["adapter.yaml"])
    assert adapter_config["council"]["gss_code"] == council.gss_code
    deployment = _one(resources, "Deployment", "familyctx-adapter")
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["familyctx/gss-code"] == council.gss_code
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert pod["spec"]["containers"][0]["image"] == "familyctx/adapter:0.1.0"
    assert not [r for r in resources if r["kind"] == "Deployment" and "gateway" in r["metadata"]["name"]]


@requires_kubectl
def test_rendered_central_overlay() -> None:
    resources = _render(OVERLAYS / "central")
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSIONS[-1], strict=True)
    (config_map,) = [r for r in resources if r["kind"] == "ConfigMap"]
    gateway_config = yaml.safe_load(config_map["data"]["gateway.yaml"])
    assert {a["gss_code"] for a in gateway_config["adapters"]} == {c.gss_code for c in DEMO_COUNCILS}
    kinds = sorted(r["kind"] for r in resources)
    assert kinds == sorted(
        ["Namespace", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy"]
        + ["CronJob", "NetworkPolicy"]  # audit retention
    )
    # The retention job mounts the very ConfigMap the gateway does (name with its hash suffix).
    cron_volumes = {v["name"]: v for v in _pod(_one(resources, "CronJob", RETENTION))["volumes"]}
    assert cron_volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert all(
        r["metadata"]["namespace"] == "familyctx-central" for r in resources if r["kind"] != "Namespace"
    )
