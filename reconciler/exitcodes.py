"""Process exit codes: named constants, documented in the README. Only the CLI uses them."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Success; with ``plan``, everything is in sync."""
    FAILURE = 1
    """Runtime failure: a registry, Git or the filesystem failed (for some or all images)."""
    USAGE = 2
    """The command line itself is wrong (unknown option, missing argument)."""
    INVALID = 3
    """The desired state is invalid or a policy gate refused it."""
    CHANGES = 4
    """``plan --detailed-exitcode``: the registries differ from the desired state."""
