"""Tests of the Dockerfile linter (``reconciler.policy.lint``) and ``reconciler lint-dockerfile``."""
