"""The controller's event log: one line per event on stdout, JSON (``--log-format json``) or text.

Events are transitions and completed work, never "still nothing to do": a new revision seen, a stall
and its end, a pass finished (trigger, commit, counts, duration, failures), an image starting or stopping
to fail, a source that cannot be fetched, start and shutdown. An idle controller therefore writes nothing.

A JSON line is ``{"time", "level", "event", ...fields}``; a text line is ``TIME LEVEL EVENT key=value...``.
Audit records are NOT written here (they go to the audit log file); messages are scrubbed of anything that
looks like a credential, as the audit log's are.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

from reconciler.model.redact import redact

Level = Literal["info", "warning", "error"]


def utc_now() -> str:
    """RFC 3339 UTC, millisecond precision, ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _text_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value) if (" " in value or not value or "=" in value) else value
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return json.dumps(value, separators=(",", ":"), default=str)


class EventLog:
    def __init__(self, stream: TextIO | None = None, *, fmt: Literal["text", "json"] = "text") -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._json = fmt == "json"

    def emit(self, event: str, *, level: Level = "info", **fields: object) -> None:
        cleaned = {key: _clean(value) for key, value in fields.items() if value is not None}
        if self._json:
            line = json.dumps(
                {"time": utc_now(), "level": level, "event": event, **cleaned},
                ensure_ascii=False,
                separators=(",", ":"),
                default=str,
            )
        else:
            pairs = " ".join(f"{key}={_text_value(value)}" for key, value in cleaned.items())
            line = f"{utc_now()} {level.upper():<7} {event}" + (f" {pairs}" if pairs else "")
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stdout closed (a log collector gone): the controller goes on
            pass
