"""Tests of the reconcile engine: planner (pure), audit log, and end to end on real registries."""
