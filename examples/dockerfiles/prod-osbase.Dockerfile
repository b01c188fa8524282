# prod-osbase: the base of every production image (seed section 3). Built on the official Rocky Linux
# image, pinned by tag AND digest; adds the encoding, the time zone, a fixed set of basic tools, the
# non-root run user, the fixed application directory and its mount points. Nothing application-specific.
#
# The OS base is the bottom layer: it is the one image built on the official base, not on prod-osbase.
# reconciler-lint ignore=RL105
FROM rockylinux:9.3@sha256:9a5d6d3d8f0f1e4f1d5b6c7a8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images" \
      org.opencontainers.image.title="prod-osbase" \
      com.example.os.version="rockylinux-9.3"
ENV LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    TZ=Asia/Shanghai \
    APP_HOME=/app
RUN yum install -y --setopt=install_weak_deps=False \
        tzdata-2024a procps-ng-3.3.17 less-590 shadow-utils-4.9 \
 && yum clean all \
 && groupadd --gid 1000 app \
 && useradd --uid 1000 --gid app --home-dir /app --no-create-home --shell /sbin/nologin app \
 && mkdir -p /app/bin /app/config /app/logs /app/data \
 && chown -R app:app /app
WORKDIR /app
VOLUME ["/app/logs", "/app/data"]
# numeric, so Kubernetes' runAsNonRoot can verify it (the uid useradd created above)
USER 1000:1000
