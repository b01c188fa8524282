"""Value types with no I/O: versions, digests, references, desired state, observed state, plan actions.

Nothing in this package imports anything else of reconciler's, opens a file or a socket.
"""
