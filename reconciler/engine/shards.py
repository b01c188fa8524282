"""Which images a controller replica owns: ``--shard I/N`` as a stable hash of the image name.

Scale-out is Kubernetes' job (a StatefulSet of N replicas, each its pod ordinal), not a home-made
consensus: every replica hashes each image name the same way and takes the images whose hash falls on
its index, so N replicas split the work with no overlap and no coordination. The hash is SHA-256 of the
name (stable across processes and Python versions, unlike ``hash()``). No I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_ORDINAL = re.compile(r"-(\d+)$")


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: want I/N with 0 <= I < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` (``0/2``); ValueError saying what is wrong."""
        index, slash, count = text.partition("/")
        if not slash or not index.isdigit() or not count.isdigit():
            raise ValueError(f"shard {text!r}: want I/N, e.g. 0/2")
        return cls(int(index), int(count))

    @classmethod
    def from_hostname(cls, hostname: str, count: int) -> Shard:
        """The ordinal of a StatefulSet pod (``reconciler-2`` -> 2) out of ``count`` replicas."""
        match = _ORDINAL.search(hostname)
        if match is None:
            raise ValueError(f"hostname {hostname!r} does not end in a StatefulSet ordinal (-0, -1, ...)")
        return cls(int(match.group(1)), count)

    def owns(self, image: str) -> bool:
        """Whether this shard reconciles ``image`` (``payments/api``)."""
        if self.count == 1:
            return True
        value = int.from_bytes(hashlib.sha256(image.encode()).digest()[:8], "big")
        return value % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
