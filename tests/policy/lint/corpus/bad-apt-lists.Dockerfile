FROM debian:12.5@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1 AS builder
RUN apt-get update && apt-get install -y build-essential

FROM debian:12.5@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN apt-get update && apt-get install -y --no-install-recommends curl
RUN apt-get update && apt-get install -y jq && rm -rf /tmp/jq-build
RUN rm -rf /var/lib/apt/lists/* && apt-get update && apt-get install -y tini
RUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y git
RUN apt-get -y update && apt-get -y install less && rm -rf /var/lib/apt/lists/*
RUN apt update && apt install -y vim
USER 1000
