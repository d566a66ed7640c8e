"""Write the adapters' and the gateway's YAML configuration files (shapes of interfaces.md).

Each adapter serves mutual TLS with its council's certificate from the demo PKI, trusts the gateway's
client certificate (dev CA) and assertion keys, and loads its council's sharing policy; the gateway
calls every adapter with its client certificate, checking the adapter's certificate name
(``tls_server_name``), and signs an assertion per call with the demo key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from familyctx.councils import DEMO_COUNCILS
from familyctx.demo.layout import DataLayout, FederationPorts
from familyctx.demo.supervisor import private_opener
from familyctx.demo.trust import DEMO_ASSERTION_ISSUER, sharing_policy_file
from familyctx.trust.pki import GATEWAY_COMMON_NAME, DevPki, adapter_dns_name

__all__ = ["write_adapter_configs", "write_gateway_config"]


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", opener=private_opener) as out:  # owner-only (0600)
        out.write(yaml.safe_dump(data, sort_keys=False))
    return path


def _write_registry(path: Path, councils: list[dict[str, Any]]) -> Path:
    """The council registry file, one council per line (so that ``grep -v E08000035`` takes Leeds out;
    docs/demo.md), written beside ``path`` and renamed over it, owner-only (0600)."""
    lines = [
        '# The demo\'s council registry (docs/deployment.md, "The council registry"), one council per line.',
        "# The gateway re-reads it every 5 s and on SIGHUP. Change it by writing a new file and renaming it",
        "# over this one (docs/demo.md); `familyctx demo --registry` writes it afresh at each start.",
        "councils:",
    ]
    for council in councils:
        flow = yaml.safe_dump(council, default_flow_style=True, sort_keys=False, width=1_000_000)
        lines.append(f"  - {flow.strip()}")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".new")
    with open(scratch, "w", encoding="utf-8", opener=private_opener) as out:
        out.write("\n".join(lines) + "\n")
    os.replace(scratch, path)
    return path


def write_adapter_configs(
    layout: DataLayout, ports: FederationPorts, host: str, pki: DevPki
) -> dict[str, Path]:
    """One ``adapter-<slug>.yaml`` per demo council (mutual TLS and gateway keys from ``pki``, the
    council's sharing policy, its disclosure log in the data directory signed with its own key);
    returns {GSS code: config path}. Raises ``DataBuildError`` when a council's sharing policy file is
    missing."""
    paths = {}
    for council in DEMO_COUNCILS:
        code = council.gss_code
        data = {
            "council": {"gss_code": code, "name": council.name, "dfe_la_number": council.dfe_la_number},
            "cms": council.cms,
            "database_url": _sqlite_url(layout.warehouse(council)),
            "listen": {"host": host, "port": ports.adapters[code]},
            "tls": {
                "cert_file": str(pki.adapter_cert(code).resolve()),
                "key_file": str(pki.adapter_key(code).resolve()),
                "client_ca_file": str(pki.ca_cert.resolve()),
            },
            "gateway": {
                "issuer": DEMO_ASSERTION_ISSUER,
                "jwks_file": str(pki.assertion_jwks.resolve()),
                "client_cert_subject": GATEWAY_COMMON_NAME,
            },
            "policy_file": str(sharing_policy_file(council)),
            "disclosure_log": {
                "database_url": _sqlite_url(layout.disclosure_database(council)),
                "signing_key_file": str(pki.adapter_audit_key(code).resolve()),
            },
        }
        paths[council.gss_code] = _write(layout.adapter_config(council), data)
    return paths


def write_gateway_config(
    layout: DataLayout,
    ports: FederationPorts,
    host: str,
    pki: DevPki,
    *,
    deadline_ms: int = 2000,
    registry: bool = False,
) -> Path:
    """``gateway.yaml``: listen address, audit SQLite in the data dir (tree heads signed with the demo
    PKI's audit key), the OIDC issuer, the adapters
    (each with the DNS name its certificate carries), the assertion key and mutual TLS from ``pki``.
    With ``registry`` the adapters are not listed inline but in the council registry file
    ``<data>/config/councils.yaml`` (rewritten whole; docs/deployment.md, "The council registry"),
    which ``gateway.yaml`` names as ``registry_file``."""
    adapters = [
        {
            "gss_code": c.gss_code,
            "name": c.name,
            "address": f"{host}:{ports.adapters[c.gss_code]}",
            "deadline_ms": deadline_ms,
            "tls_server_name": adapter_dns_name(c.gss_code),
        }
        for c in DEMO_COUNCILS
    ]
    data: dict[str, Any] = {
        "listen": {"host": host, "port": ports.gateway},
        "audit": {
            "database_url": _sqlite_url(layout.audit_database),
            "signing_key_file": str(pki.gateway_audit_key.resolve()),
        },
        "oidc": {
            "issuer": f"http://{host}:{ports.oidc}",
            "audience": "familyctx-gateway",
            "algorithms": ["RS256", "ES256", "PS256"],
        },
        "adapters": adapters,
        "assertion": {
            "issuer": DEMO_ASSERTION_ISSUER,
            "signing_key_file": str(pki.assertion_key.resolve()),
            "ttl_seconds": 60,
        },
        "adapter_tls": {
            "ca_file": str(pki.ca_cert.resolve()),
            "cert_file": str(pki.gateway_cert.resolve()),
            "key_file": str(pki.gateway_key.resolve()),
        },
    }
    if registry:
        for entry in adapters:  # informational fields of a registry entry (fictional contacts)
            slug = next(c.slug for c in DEMO_COUNCILS if c.gss_code == entry["gss_code"])
            entry["datasets"] = ["csc", "early_help", "asc", "housing"]
            entry["ig_contact"] = {
                "name": f"{entry['name']} Information Governance",
                "email": f"ig@{slug}.example",
            }
        _write_registry(layout.council_registry, adapters)
        del data["adapters"]
        data["registry_file"] = str(layout.council_registry.resolve())
    return _write(layout.gateway_config, data)
