FROM centos:7.9.2009@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.source="https://git.example.com/platform/images"
RUN yum install -y httpd
RUN yum clean all && yum install -y mod_ssl
RUN yum -y install php && rm -rf /var/cache/yum/*
RUN yum install -y git && yum clean metadata
RUN sudo yum install -y vim && yum clean all
RUN /usr/bin/yum install -y tar
USER apache
