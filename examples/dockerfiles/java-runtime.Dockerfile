# java17 runtime: prod-osbase plus a JDK at a fixed path (seed section 3: runtime layer, JAVA_HOME).
# The JDK is fetched and unpacked in a compile-osbase stage, so the runtime itself needs no root step
# and no download tools; the version is declared once (ENV) and the archive is pinned by checksum.
FROM registry.example.com/base/compile-osbase:20261101_01@sha256:7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d AS jdk
ENV JAVA_VERSION=17.0.9
ADD --checksum=sha256:7b133bf2e2e9ab4d2dc7d6c1d1e6e0d4a5f3c2b1a09f8e7d6c5b4a3928170615 \
    https://downloads.example.com/java/${JAVA_VERSION}/jdk-${JAVA_VERSION}_linux-x64_bin.tar.gz /build/jdk.tar.gz
RUN tar -xzf /build/jdk.tar.gz -C /build \
 && mv "/build/jdk-${JAVA_VERSION}" /build/java \
 && rm -f /build/jdk.tar.gz

FROM registry.example.com/base/prod-osbase:20261101_01@sha256:4b6e1f0c2d3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images" \
      org.opencontainers.image.title="runtime/java17" \
      com.example.java.version="17.0.9"
ENV JAVA_HOME=/opt/java \
    PATH=/opt/java/bin:$PATH
COPY --from=jdk /build/java /opt/java
USER 1000:1000
