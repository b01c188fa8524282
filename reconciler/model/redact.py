"""Take secrets out of text before anyone sees it: registry error messages, Git output, audit records.

Two layers: the exact secrets in use (a password, a token, the base64 of ``user:password`` that a Basic
header carries), which the caller knows and passes in, and patterns that look like credentials whatever
they are (URL user-info, ``Authorization:`` values, ``Bearer``/``Basic`` tokens, ``password=...``). A
registry that echoes the ``Authorization`` header it received into a 403 page is caught by both.
No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_PATTERNS = (
    (re.compile(r"(?i)(\w+://)[^/@\s:]+:[^/@\s]*@"), r"\1***@"),
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)(\S+(\s+\S+)?)"), r"\1***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)\b(password|passwd|token|secret)(\"?\s*[:=]\s*\"?)[^\s\",}]+"), r"\1\2***"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and anything that looks like a credential replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
