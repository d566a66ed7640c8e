"""Write the adapters' and the gateway's YAML configuration files (shapes of interfaces.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from familyctx.councils import DEMO_COUNCILS
from familyctx.demo.layout import DataLayout, FederationPorts
from familyctx.demo.supervisor import private_opener

__all__ = ["write_adapter_configs", "write_gateway_config"]


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", opener=private_opener) as out:  # owner-only (0600)
        out.write(yaml.safe_dump(data, sort_keys=False))
    return path


def write_adapter_configs(layout: DataLayout, ports: FederationPorts, host: str) -> dict[str, Path]:
    """One ``adapter-<slug>.yaml`` per demo council; returns {GSS code: config path}."""
    paths = {}
    for council in DEMO_COUNCILS:
        data = {
            "council": {"gss_code": council.gss_code, "name": council.name,
                        "dfe_la_number": council.dfe_la_number},
            "cms": council.cms,
            "database_url": _sqlite_url(layout.warehouse(council)),
            "listen": {"host": host, "port": ports.adapters[council.gss_code]},
        }
        paths[council.gss_code] = _write(layout.adapter_config(council), data)
    return paths


def write_gateway_config(
    layout: DataLayout, ports: FederationPorts, host: str, *, deadline_ms: int = 2000
) -> Path:
    """``gateway.yaml``: listen address, audit SQLite in the data dir, the OIDC issuer, the adapters."""
    data = {
        "listen": {"host": host, "port": ports.gateway},
        "audit_database_url": _sqlite_url(layout.audit_database),
        "oidc": {"issuer": f"http://{host}:{ports.oidc}", "audience": "familyctx-gateway",
                 "algorithms": ["RS256", "ES256", "PS256"]},
        "adapters": [
            {"gss_code": c.gss_code, "name": c.name, "address": f"{host}:{ports.adapters[c.gss_code]}",
             "deadline_ms": deadline_ms}
            for c in DEMO_COUNCILS
        ],
    }
    return _write(layout.gateway_config, data)
