# A council adapter: `familyctx adapter serve` (gRPC on 50051, mutual TLS only:
# familycontext.v1.AdapterService and grpc.health.v1.Health; with health_listen in the config, a
# plaintext port 50052 serving grpc.health.v1 only, for probes). One image for every council; the
# config file says which council and CMS, and names its certificates, the gateway's keys and the
# council's sharing policy.
# Build from the repository root:
#   docker build -f deploy/docker/adapter.Dockerfile -t familyctx/adapter:dev .
# Configuration: mount an adapter.yaml (docs/deployment.md) at /etc/familyctx/adapter.yaml;
# FAMILYCTX_ADAPTER_* variables override it (e.g. FAMILYCTX_ADAPTER_DATABASE_URL).
# The image also runs `familyctx synth` and `familyctx adapter prepare` (the compose "synth" job) and
# `familyctx dev-pki` (the compose "certs" job: a development PKI in /var/lib/familyctx/pki).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the project and its pinned dependencies into a virtual environment -------------------
# (This stage is the same in every familyctx Dockerfile; tests/unit/test_deploy_docker.py checks it.)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/familyctx
ENV PATH=/opt/familyctx/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY src/ src/
COPY protos/gen/python/ protos/gen/python/
COPY services/ services/
COPY gateway/ gateway/
RUN pip install -c constraints.txt .

# --- runtime: no compilers, no pip cache, a fixed non-root user ---------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="familyctx-adapter" \
      org.opencontainers.image.description="Family Context Federation council adapter (gRPC over the council warehouse)" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/familyctx/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# /var/lib/familyctx/warehouse: where a single SQLite warehouse may be mounted. The councils/<slug>
# folders, disclosure (the adapter's own disclosure log) and pki are the one-host compose mount points
# (owned by the app user so new volumes are writable).
RUN groupadd --system --gid 10001 familyctx \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin familyctx \
 && install -d -o 10001 -g 10001 -m 0750 /etc/familyctx /var/lib/familyctx/warehouse \
      /var/lib/familyctx/councils/stockport /var/lib/familyctx/councils/leeds \
      /var/lib/familyctx/councils/manchester /var/lib/familyctx/disclosure /var/lib/familyctx/pki
COPY --from=build /opt/familyctx /opt/familyctx
COPY deploy/docker/healthcheck.py /opt/familyctx-tools/healthcheck.py
USER 10001:10001
EXPOSE 50051 50052
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/opt/familyctx-tools/healthcheck.py", "grpc", "127.0.0.1:50052"]
ENTRYPOINT ["familyctx"]
CMD ["adapter", "serve", "--config", "/etc/familyctx/adapter.yaml"]
