"""Content digests (``sha256:<64 hex>``, ``sha512:<128 hex>``)."""

from __future__ import annotations

import hashlib
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


class DigestVerifier:
    """Hashes content as it passes and says whether it is the content ``digest`` (and ``size``) name.

    The one verifier of the project: blob downloads, uploads, manifests and the archive all check bytes
    through it, so "does this content match its digest" has exactly one answer. It only computes; the
    caller raises its own error (naming registry, repository or archive) when ``mismatch()`` says so.
    """

    __slots__ = ("_hasher", "digest", "received", "size")

    def __init__(self, digest: str, size: int | None = None) -> None:
        self.digest = Digest(digest)
        self.size = size if size is not None and size >= 0 else None
        self._hasher = hashlib.new(self.digest.algorithm)
        self.received = 0

    def update(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.received += len(chunk)

    @property
    def actual(self) -> Digest:
        """The digest of what was received so far."""
        return Digest(f"{self.digest.algorithm}:{self._hasher.hexdigest()}")

    def mismatch(self) -> str | None:
        """None when what was received is exactly the named content; else one line saying how it differs."""
        if self.size is not None and self.received != self.size:
            return f"{self.received} bytes received, the descriptor says {self.size}"
        actual = self.actual
        if actual != self.digest:
            return f"{self.received} bytes hashing to {actual}"
        return None

    @classmethod
    def check(cls, content: bytes, digest: str, size: int | None = None) -> str | None:
        """``mismatch()`` of ``content`` in memory, in one call."""
        verifier = cls(digest, size)
        verifier.update(content)
        return verifier.mismatch()
