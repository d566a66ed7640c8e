# The DEVELOPMENT OpenID Connect provider: `familyctx oidc serve` (HTTP on 9000). Demo users with a
# published password: never deploy it where real people log in. Production uses the council's or the
# federation's identity provider (the compose file runs Keycloak for that role).
# Build from the repository root:
#   docker build -f deploy/docker/oidc-dev.Dockerfile -t familyctx/oidc-dev:dev .
# Set --issuer to the URL the gateway uses to reach this container (compose: http://oidc-dev:9000).
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
LABEL org.opencontainers.image.title="familyctx-oidc-dev" \
      org.opencontainers.image.description="Family Context Federation development OIDC provider (demo users only)" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/familyctx/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# /var/lib/familyctx-oidc keeps the signing key (0600) across restarts: mount a volume there.
RUN groupadd --system --gid 10001 familyctx \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin familyctx \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/familyctx-oidc
COPY --from=build /opt/familyctx /opt/familyctx
COPY deploy/docker/healthcheck.py /opt/familyctx-tools/healthcheck.py
USER 10001:10001
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "/opt/familyctx-tools/healthcheck.py", "http", "http://127.0.0.1:9000/healthz"]
ENTRYPOINT ["familyctx"]
CMD ["oidc", "serve", "--host", "0.0.0.0", "--port", "9000", "--allow-non-loopback", \
     "--issuer", "http://127.0.0.1:9000", "--state-dir", "/var/lib/familyctx-oidc"]
