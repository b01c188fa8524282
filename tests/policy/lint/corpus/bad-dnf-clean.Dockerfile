FROM fedora:39@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN dnf install -y gcc
RUN dnf -y install make && dnf clean all
RUN microdnf install -y jq
RUN dnf install -y git && rm -rf /var/cache/dnf
RUN dnf clean all && dnf install -y curl
RUN dnf install -y vim && rm -rf /tmp/vim-build
USER 1000
