# The central gateway: `familyctx gateway serve` (FastAPI over uvicorn, HTTP on 8000).
# Build from the repository root (the .dockerignore there keeps the context small):
#   docker build -f deploy/docker/gateway.Dockerfile -t familyctx/gateway:dev .
# Configuration: mount a gateway.yaml (docs/deployment.md) at /etc/familyctx/gateway.yaml;
# FAMILYCTX_GATEWAY_* variables override it (e.g. FAMILYCTX_GATEWAY_AUDIT_DATABASE_URL).
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
LABEL org.opencontainers.image.title="familyctx-gateway" \
      org.opencontainers.image.description="Family Context Federation gateway (HTTP API, links and merges)" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/familyctx/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 familyctx \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin familyctx \
 && install -d -o 10001 -g 10001 -m 0750 /etc/familyctx
COPY --from=build /opt/familyctx /opt/familyctx
COPY deploy/docker/healthcheck.py /opt/familyctx-tools/healthcheck.py
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/opt/familyctx-tools/healthcheck.py", "http", "http://127.0.0.1:8000/healthz"]
ENTRYPOINT ["familyctx"]
CMD ["gateway", "serve", "--config", "/etc/familyctx/gateway.yaml"]
