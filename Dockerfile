# The reconciler controller image (docs/deploy.md). Follows the Dockerfile rules of SEED.md section 4,
# checked by tests/deploy/test_dockerfile.py (hadolint, `reconciler lint-dockerfile`, structure).
#
#   docker build -t registry.example.com/platform/reconciler:0.1.0 \
#     --build-arg SOURCE_COMMIT="$(git rev-parse HEAD)" .
#
# Needs BuildKit (the default builder since Docker 23) for RUN --mount. There is deliberately no
# "# syntax=docker/dockerfile:1" line: it would pull a frontend image by a floating tag at build time.
#
# Stage "build" turns the source tree into wheels; the final stage installs only those wheels (the
# reconciler runtime and its dependencies: no test kit, no tests, no compiler, no pip) on the same
# pinned base, plus git and ssh-keygen, which the controller runs.

# One version, used by both stages: it must equal reconciler.__version__ (the build fails otherwise).
ARG RECONCILER_VERSION=0.1.0

# The official Python image, pinned by version AND digest (the multi-platform index). A moved tag
# cannot change the build; to upgrade, change both together and check the digest first:
#   reconciler digest docker.io/library/python:3.12.12-slim-bookworm
FROM python:3.12.12-slim-bookworm@sha256:593bd06efe90efa80dc4eee3948be7c0fde4134606dd40d8dd8dbcade98e669c AS build
ARG RECONCILER_VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (.dockerignore admits nothing else).
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
# The reconciler wheel from the source tree, then every runtime dependency as a binary wheel (a
# dependency that would need a compiler fails the build here instead of shipping one).
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --only-binary=:all: --wheel-dir /wheels \
        "/wheels/reconciler-${RECONCILER_VERSION}-py3-none-any.whl"

# The image: the same base, nothing from the build stage but the wheels (mounted, never copied).
FROM python:3.12.12-slim-bookworm@sha256:593bd06efe90efa80dc4eee3948be7c0fde4134606dd40d8dd8dbcade98e669c
ARG RECONCILER_VERSION
ARG SOURCE_COMMIT=""

# Versions first (seed 4: ENV for versions): the Debian packages are pinned to bookworm's current
# releases; when Debian supersedes one, apt-get fails and the pin is refreshed on purpose.
ENV RECONCILER_VERSION=${RECONCILER_VERSION} \
    GIT_VERSION=1:2.39.5-0+deb12u3 \
    OPENSSH_CLIENT_VERSION=1:9.2p1-2+deb12u10 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.title="reconciler" \
      org.opencontainers.image.description="GitOps reconciler for container images: the in-cluster controller" \
      org.opencontainers.image.source="https://git.example.com/platform/reconciler" \
      org.opencontainers.image.documentation="https://git.example.com/platform/reconciler/-/blob/main/docs/deploy.md" \
      org.opencontainers.image.version="${RECONCILER_VERSION}" \
      org.opencontainers.image.revision="${SOURCE_COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Platform team" \
      org.opencontainers.image.base.name="docker.io/library/python:3.12.12-slim-bookworm" \
      org.opencontainers.image.base.digest="sha256:593bd06efe90efa80dc4eee3948be7c0fde4134606dd40d8dd8dbcade98e669c" \
      com.example.reconciler.git.version="${GIT_VERSION}" \
      com.example.reconciler.openssh-client.version="${OPENSSH_CLIENT_VERSION}"

# General before specific (seed 4.1): OS tools and the run user change rarely, the application often.
# git runs the desired-state clones (gitpython); ssh-keygen (openssh-client) verifies commit signatures
# and ssh fetches ssh:// URLs. The run user has a fixed uid/gid for Kubernetes' runAsUser/fsGroup.
# A checkout bind-mounted at the default CMD's /srv/desired-state belongs to the host's user: git would
# refuse it as "dubious ownership" without this one trusted path.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "git=${GIT_VERSION}" \
        "openssh-client=${OPENSSH_CLIENT_VERSION}" \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory /srv/desired-state \
    && groupadd --system --gid 10001 reconciler \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /home/reconciler --create-home \
        --shell /usr/sbin/nologin reconciler \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/reconciler /var/cache/reconciler

# Where the controller keeps things (docs/deploy.md, "Storage"): state, audit log and archive on the
# data volume; Git clones in a cache that may be lost; registry credentials mounted at DOCKER_CONFIG.
ENV HOME=/home/reconciler \
    RECONCILER_STATE_DIR=/var/lib/reconciler/state \
    RECONCILER_AUDIT_LOG=/var/lib/reconciler/audit/audit.jsonl \
    RECONCILER_CACHE_DIR=/var/cache/reconciler \
    DOCKER_CONFIG=/etc/reconciler/docker \
    RECONCILER_LOG_FORMAT=json

# The runtime wheel and its dependencies, offline from the build stage's wheels, pinned to this
# version; the exact set is recorded in the image; pip itself is removed (nothing installs at run time).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "reconciler==${RECONCILER_VERSION}" \
    && install -d /usr/local/share/doc/reconciler \
    && pip freeze > /usr/local/share/doc/reconciler/requirements.txt \
    && pip uninstall --yes pip \
    && reconciler --version

WORKDIR /var/lib/reconciler
USER 10001:10001
EXPOSE 8080
VOLUME ["/var/lib/reconciler", "/var/cache/reconciler"]
# The controller is the container's process itself (exec form: PID 1 receives SIGTERM and drains within
# --grace). There is nothing to prepare before it starts, so no /run.sh wrapper (seed 4.3); the reason is
# in docs/deploy.md, "The image".
# reconciler-lint ignore=RL203
ENTRYPOINT ["reconciler"]
# The default: a desired-state checkout mounted at /srv/desired-state, watched. Kubernetes replaces
# these arguments (examples/deploy/statefulset.yaml: --repo, shards).
CMD ["controller", "/srv/desired-state", "--watch", "--listen", "0.0.0.0:8080"]
