"""The in-cluster controller: the reconcile loop (watch, skip-unchanged, shards, backoff) and its HTTP side
(health, metrics, the status board). It runs the engine; it never edits desired state.
"""
