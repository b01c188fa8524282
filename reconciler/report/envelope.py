"""The versioned JSON envelope every reporting command (and the controller's ``/api/status``) emits.

``{"version": 1, "command": ..., "status": ..., ...}``: ``version`` is the envelope's schema version,
bumped on any incompatible change (a field renamed or removed), so CI jobs can parse it safely; fields may
be added freely. Pure: it builds the dict, the caller prints or serves it.
"""

from __future__ import annotations

from typing import Any

ENVELOPE_VERSION = 1


def envelope(command: str, status: str, **payload: Any) -> dict[str, Any]:
    return {"version": ENVELOPE_VERSION, "command": command, "status": status, **payload}
