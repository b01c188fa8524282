FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN curl -fsSLo /tmp/jdk.tgz https://downloads.example.com/java/jdk-17.0.9_linux-x64_bin.tar.gz
ENV MAVEN_VERSION=3.9.6
RUN curl -fsSLo /tmp/maven.tgz https://archive.example.com/maven/${MAVEN_VERSION}/apache-maven-${MAVEN_VERSION}-bin.tar.gz
RUN curl -fsSL http://10.0.0.12/tools/agent.sh -o /tmp/agent.sh
USER 1000
