"""Every way of running an adapter gives it a disclosure log of its own and the council's tree-head key:
the example configs, docker-compose (a named volume per council) and Kubernetes (PostgreSQL URL and
signing key from Secrets, migrations in an init container)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from familyctx_adapter.settings import load_settings
from sqlalchemy.engine import make_url

from familyctx.councils import DEMO_COUNCILS
from familyctx.trust.pki import DevPki

REPO = Path(__file__).resolve().parents[2]
PKI_DIR = Path("/var/lib/familyctx/pki")
K8S_ADAPTER = REPO / "deploy" / "k8s" / "base" / "adapter"
DISCLOSURE_URL_VARIABLE = "FAMILYCTX_ADAPTER_DISCLOSURE_LOG__DATABASE_URL"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _mounts(volumes: list[str]) -> dict[str, str]:
    return {entry.split(":")[1]: entry.split(":")[0] for entry in volumes}


def test_example_configs_keep_the_log_apart_from_the_warehouse_with_the_make_certs_key() -> None:
    for council in DEMO_COUNCILS:
        settings = load_settings(REPO / "services" / "adapter" / "config" / f"{council.slug}.yaml")
        log = settings.disclosure_log
        assert make_url(log.database_url) != make_url(settings.database_url)
        assert log.signing_key_file == DevPki(Path("var/dev-pki"), ()).adapter_audit_key(council.gss_code)
        assert log.migrate_on_start


def test_compose_adapters_keep_their_log_on_their_own_volume_signed_with_their_key() -> None:
    compose = _load(REPO / "docker-compose.yml")
    pki = DevPki(PKI_DIR, tuple(c.gss_code for c in DEMO_COUNCILS))
    seen: set[str] = set()
    for council in DEMO_COUNCILS:
        config = REPO / "deploy" / "compose" / f"adapter-{council.slug}.yaml"
        log = load_settings(config).disclosure_log
        path = Path(make_url(log.database_url).database or "")
        mounts = _mounts(compose["services"][f"adapter-{council.slug}"]["volumes"])
        volume = mounts[str(path.parent)]
        assert volume == f"adapter-{council.slug}-disclosure" and volume in compose["volumes"]
        assert volume not in seen and not mounts[str(path.parent)].endswith("-warehouse")
        seen.add(volume)
        assert log.signing_key_file == pki.adapter_audit_key(council.gss_code)
        assert mounts[str(PKI_DIR)] == "dev-pki"
    # The image owns the mount point, so that a new named volume is writable by the app user.
    parser = DockerfileParser(path=str(REPO / "deploy" / "docker" / "adapter.Dockerfile"))
    runs = " ".join(i["value"] for i in parser.structure if i["instruction"] == "RUN")
    assert "-o 10001" in runs and "/var/lib/familyctx/disclosure" in runs


@pytest.fixture
def deployment() -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all((K8S_ADAPTER / "deployment.yaml").read_text()) if d]
    return doc


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container["env"]}


def test_kubernetes_adapter_gets_its_log_url_and_key_from_secrets(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = deployment["spec"]["template"]["spec"]
    (adapter,) = pod["containers"]
    ref = _env(adapter)[DISCLOSURE_URL_VARIABLE]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "familyctx-adapter-disclosure-database", "key": "url"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in adapter["volumeMounts"] if m["mountPath"] == "/etc/familyctx-audit"]
    assert mount["readOnly"] is True
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "familyctx-adapter-audit-key" and secret["defaultMode"] & 0o007 == 0
    monkeypatch.setenv(DISCLOSURE_URL_VARIABLE, "postgresql+psycopg://log@db/disclosure")
    for config in [
        K8S_ADAPTER / "adapter.yaml",
        *(REPO / "deploy/k8s/overlays" / c.slug / "adapter.yaml" for c in DEMO_COUNCILS),
    ]:
        assert "database_url" not in _load(config)["disclosure_log"], (
            config
        )  # never a password in a ConfigMap
        log = load_settings(config, database_url="sqlite:///unused").disclosure_log
        assert log.signing_key_file == Path("/etc/familyctx-audit/audit.jwk.json")
        assert not log.migrate_on_start  # PostgreSQL: the init container migrates


def test_kubernetes_init_container_migrates_the_log_before_the_adapter_starts(
    deployment: dict[str, Any],
) -> None:
    pod = deployment["spec"]["template"]["spec"]
    (adapter,) = pod["containers"]
    (init,) = pod["initContainers"]
    assert init["args"] == ["adapter", "migrate", "--config", "/etc/familyctx/adapter.yaml"]
    assert init["image"] == adapter["image"]
    assert _env(init)[DISCLOSURE_URL_VARIABLE] == _env(adapter)[DISCLOSURE_URL_VARIABLE]
    assert init["securityContext"] == adapter["securityContext"]
    assert {m["mountPath"] for m in init["volumeMounts"]} <= {m["mountPath"] for m in adapter["volumeMounts"]}
