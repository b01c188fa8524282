FROM alpine:3.19@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN apk add --no-cache ca-certificates tzdata \
 && addgroup -S app && adduser -S -G app app
COPY --chown=app:app run.sh /run.sh
COPY --chown=app:app bin/ /app/bin/
WORKDIR /app
EXPOSE 9000/tcp
VOLUME ["/app/logs"]
USER app
ENTRYPOINT ["/run.sh"]
