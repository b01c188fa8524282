FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
ADD jdk-17.tar.gz /opt/
ADD app.jar /app/app.jar
ADD --chown=app:app "config.yml" /app/config.yml
ADD ["logback.xml", "/app/logback.xml"]
ADD bundle.zip /opt/bundle/
ADD vendor.tgz notes.txt /opt/vendor/
ADD https://downloads.example.com/tools/agent.tar.gz /opt/agent/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://downloads.example.com/tools/agent.tar.gz /opt/agent/
USER app
