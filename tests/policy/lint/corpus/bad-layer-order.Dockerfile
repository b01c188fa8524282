FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
COPY repos/internal.repo /etc/yum.repos.d/internal.repo
RUN yum install -y java-17-openjdk-headless && yum clean all
COPY target/app.jar /app/app.jar
RUN yum install -y fontconfig && yum clean all
USER 1000
