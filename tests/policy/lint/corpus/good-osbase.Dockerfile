# The production OS base: everything an application image stands on.
FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
ENV LANG=en_US.UTF-8 \
    LC_ALL=en_US.UTF-8 \
    TZ=Asia/Shanghai
RUN yum install -y tzdata procps-ng less \
 && yum clean all \
 && groupadd --gid 1000 app \
 && useradd --uid 1000 --gid app --home-dir /app --no-create-home app \
 && mkdir -p /app/logs /app/data \
 && chown -R app:app /app
WORKDIR /app
VOLUME ["/app/logs", "/app/data"]
USER app
