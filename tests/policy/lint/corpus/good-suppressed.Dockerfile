# reconciler-lint ignore-file=RL103
FROM ubuntu:22.04
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
# The vendor installer insists on running from its own directory.
# reconciler-lint ignore=RL307
RUN cd /opt/vendor && ./install.sh --prefix /opt/vendor
# hadolint ignore=DL3059
RUN /opt/vendor/bin/selftest
USER 1000:1000
