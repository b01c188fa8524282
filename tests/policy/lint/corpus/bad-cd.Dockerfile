FROM rockylinux:9.3@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN cd /opt && tar xzf vendor.tgz
RUN echo "$(cd /tmp && pwd)"
RUN (cd /opt/vendor && ./configure) && echo done
RUN if [ -d /opt/x ]; then cd /opt/x; fi
RUN X=1 cd /srv
RUN echo cd is just a word here
RUN pushd /opt && popd
USER 1000
