"""Container health probe for the familyctx images (Docker ``HEALTHCHECK`` and docker-compose).

Usage::

    python /opt/familyctx-tools/healthcheck.py http URL
    python /opt/familyctx-tools/healthcheck.py grpc HOST:PORT [SERVICE]

``http``: healthy when ``GET URL`` answers 2xx. ``grpc``: healthy when ``grpc.health.v1.Health/Check``
(gRPC Health Checking Protocol, grpc/doc/health-checking.md) answers ``SERVING`` for ``SERVICE``
(default ``""``, the whole server). Exit status follows Docker's contract: 0 healthy, 1 unhealthy.
Kubernetes does not use this script: it probes with ``httpGet`` and ``grpc`` itself.

The slim images have no curl or grpc_health_probe, hence this small script on the image's own venv.
It prints one line naming the target and the reason, never a response body.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

HEALTHY = 0
UNHEALTHY = 1


def check_http(url: str, *, timeout_seconds: float = 3.0) -> tuple[bool, str]:
    """GET ``url``; return (healthy, reason). Healthy only on a 2xx status within ``timeout_seconds``.

    Only ``http``/``https`` URLs are accepted (raises ``ValueError`` otherwise).
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:  # noqa: S310 - scheme checked
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"unreachable ({type(exc).__name__})"
    return 200 <= status < 300, f"HTTP {status}"


def check_grpc(target: str, service: str = "", *, timeout_seconds: float = 3.0) -> tuple[bool, str]:
    """Ask ``grpc.health.v1.Health/Check`` at ``target`` (HOST:PORT, insecure channel) about ``service``.

    Returns (healthy, reason); healthy only when the status is ``SERVING``.
    """
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_seconds)
        except grpc.RpcError as exc:
            return False, f"gRPC {exc.code().name}"
    status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status_name


def main(argv: Sequence[str] | None = None) -> int:
    """Run one probe from the command line; return the exit status (0 healthy, 1 unhealthy)."""
    parser = argparse.ArgumentParser(prog="healthcheck", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    http = sub.add_parser("http", help="GET a URL, healthy on 2xx")
    http.add_argument("url")
    grpc_parser = sub.add_parser("grpc", help="grpc.health.v1 Check, healthy on SERVING")
    grpc_parser.add_argument("target", help="HOST:PORT")
    grpc_parser.add_argument("service", nargs="?", default="")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)

    if args.kind == "http":
        healthy, reason = check_http(args.url, timeout_seconds=args.timeout)
        where = args.url
    else:
        healthy, reason = check_grpc(args.target, args.service, timeout_seconds=args.timeout)
        where = args.target
    print(f"{'healthy' if healthy else 'unhealthy'}: {where} {reason}")
    return HEALTHY if healthy else UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
