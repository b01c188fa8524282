FROM registry.example.com/base/compile-osbase:20261101_01@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1 AS build
LABEL maintainer="build-team@example.com"
FROM registry.example.com/base/prod-osbase:20261101_01@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1 AS labelled
LABEL org.opencontainers.image.source="https://git.example.com/x/y"
FROM labelled
LABEL maintainer=""
USER app
