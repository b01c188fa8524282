"""Tests of the archive store (OCI image layout): unit, copier and skopeo round trips, safety, kill -9."""
