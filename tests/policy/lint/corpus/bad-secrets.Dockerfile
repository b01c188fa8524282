FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
ENV DB_PASSWORD=hunter2
ARG GITHUB_TOKEN=ghp_0123456789abcdef
ENV API_KEY="abc123" APP_NAME=payments
ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D
ENV SSL_KEY=/etc/pki/tls/private/server.key
ARG NPM_TOKEN
ENV DB_PASSWORD_FILE=/run/secrets/db
ENV JWT_SECRET=${JWT_SECRET}
ENV adminPassword changeme
USER 1000
