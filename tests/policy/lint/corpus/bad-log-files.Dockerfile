FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN /opt/app/bin/setup > /opt/app/logs/setup.log 2>&1
RUN /opt/app/bin/migrate 2>> /var/log/migrate.txt
RUN /opt/app/bin/check | tee /tmp/check.log
RUN /opt/app/bin/quiet > /dev/null 2>&1
RUN ln -sf /dev/stdout /var/log/app.log
USER 1000
