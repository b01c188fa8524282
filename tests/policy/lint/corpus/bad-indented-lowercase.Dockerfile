from alpine:3.19
  label maintainer="x@example.com" org.opencontainers.image.source="https://git.example.com/a/b"
	run apk add --no-cache curl
    run cd /srv
  user root
