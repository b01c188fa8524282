# How RUN scripts are cut into commands, checked against hadolint (ShellCheck's parser).
FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" org.opencontainers.image.source="https://git.example.com/p/i"
RUN exec cd /opt
RUN command cd /srv
RUN time cd /tmp
RUN ! cd /nonexistent
RUN nice cd /var
RUN [[ -d /opt ]]
RUN echo ${APP_DIR:-$(cd /opt && pwd)}
RUN diff <(cd /a && ls) <(cd /b && ls)
RUN case "$ARCH" in amd64) cd /x86;; *) cd /other;; esac
RUN for d in a b; do echo "$d"; done
RUN f() { echo x; }
RUN echo $((1 + 2))
USER 1000
