FROM alpine:3.19@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN apk add curl
RUN apk add --update bash && rm -rf /var/cache/apk/*
RUN apk --no-cache add jq && apk add --virtual .build gcc
RUN apk update && apk add --no-cache git
ONBUILD RUN apk add make
USER 1000
