# syntax=docker/dockerfile:1.7
FROM debian:12.5@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" org.opencontainers.image.source="https://git.example.com/p/i"
RUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y curl
RUN --mount=type=cache,target=/var/lib/apt --mount=type=cache,target=/var/cache/apt apt-get update && apt-get install -y jq
RUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked apt-get update && apt-get install -y git
COPY run.sh /run.sh
EXPOSE 8080
VOLUME /app/logs
HEALTHCHECK --interval=30s CMD curl -f http://localhost:8080/health || exit 1
HEALTHCHECK CMD ["curl", "-f", "http://localhost:8080/health"]
USER 1000
ENTRYPOINT ["/run.sh"]
