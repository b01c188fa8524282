"""Content digests (``sha256:<64 hex>``, ``sha512:<128 hex>``)."""

from __future__ import annotations

import re

_DIGEST = re.compile(r"^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


def is_valid_digest(text: str) -> bool:
    """True for ``sha256:`` + 64 lowercase hex or ``sha512:`` + 128 lowercase hex."""
    return _DIGEST.fullmatch(text) is not None


class Digest(str):
    """A validated digest string. Behaves as ``str`` (hashing, JSON, dict keys)."""

    __slots__ = ()

    def __new__(cls, text: str) -> Digest:
        if not is_valid_digest(text):
            raise ValueError(f"not a digest: {text!r} (want sha256:<64 lowercase hex> or sha512:<128 lowercase hex>)")
        return super().__new__(cls, text)

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.split(":", 1)[1]

    @property
    def short(self) -> str:
        """``sha256:0123456789ab``: enough for a person to tell digests apart."""
        return self[: len(self.algorithm) + 13]
