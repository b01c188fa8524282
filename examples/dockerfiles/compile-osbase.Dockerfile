# compile-osbase: compilers and build tools for the build cluster only (seed section 3). Application
# images use it as the first stage of a multi-stage build; it never reaches production.
#
# The OS base is the bottom layer: it is built on the official base, not on prod-osbase.
# reconciler-lint ignore=RL105
FROM rockylinux:9.3@sha256:9a5d6d3d8f0f1e4f1d5b6c7a8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images" \
      org.opencontainers.image.title="compile-osbase"
ENV LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk \
    MAVEN_OPTS="-Dmaven.repo.local=/build/.m2"
RUN yum install -y --setopt=install_weak_deps=False \
        gcc-11.4.1 make-4.3 git-2.39.3 tar-1.34 gzip-1.12 java-17-openjdk-devel-17.0.9.0.9 maven-3.6.3 \
        shadow-utils-4.9 \
 && yum clean all \
 && groupadd --gid 1000 build \
 && useradd --uid 1000 --gid build --home-dir /build --create-home build
WORKDIR /build
USER 1000:1000
