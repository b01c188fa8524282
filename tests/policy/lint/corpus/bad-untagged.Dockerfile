FROM ubuntu AS base
FROM registry.example.com:5000/team/builder AS build
FROM scratch AS empty
FROM base
FROM build AS again
FROM registry.example.com/base/prod-osbase@sha256:3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1
USER app
