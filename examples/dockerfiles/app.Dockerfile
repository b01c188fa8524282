# syntax=docker/dockerfile:1
# payments/api: built in compile-osbase, shipped on the java17 runtime (seed sections 3 and 4).
# The same image runs in every environment: configuration comes from the config centre / environment
# files at run time, logs go to the mounted /app/logs as rotated files.
FROM registry.example.com/base/compile-osbase:20261101_01@sha256:7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d AS build
COPY --chown=build:build pom.xml /build/pom.xml
RUN mvn -B -q dependency:go-offline
COPY --chown=build:build src /build/src
RUN mvn -B -q package -DskipTests

FROM registry.example.com/runtime/java17:20261101_01@sha256:2e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f
LABEL maintainer="payments-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/payments/api" \
      org.opencontainers.image.title="payments/api" \
      com.example.runtime="runtime/java17:20261101_01"
COPY --from=build --chown=app:app /build/target/api.jar /app/api.jar
COPY --chown=app:app --chmod=0755 run.sh /run.sh
EXPOSE 8080
VOLUME ["/app/logs"]
USER 1000:1000
ENTRYPOINT ["/run.sh"]
CMD ["--server.port=8080"]
