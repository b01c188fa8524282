# syntax=docker/dockerfile:1
# Nothing here yet.
