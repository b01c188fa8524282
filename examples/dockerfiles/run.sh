#!/bin/sh
# The container's process (seed 4.3): prepare, then exec the JVM so it receives SIGTERM directly.
set -eu
mkdir -p /app/logs
exec java ${JAVA_OPTS:-} -Dlogging.file.path=/app/logs -jar /app/api.jar "$@"
