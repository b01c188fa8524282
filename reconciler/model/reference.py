"""Image references: ``host[:port]/repo/path[:tag][@digest]``, parsed and printed without any I/O.

The grammar follows Docker's reference package (``distribution/reference``), which is what users type:
the first path component is a registry host when it contains a ``.`` or a ``:`` or is ``localhost``;
otherwise the reference names Docker Hub (``docker.io``, with ``library/`` added to one-component
names). Repository components are lowercase ``[a-z0-9]+`` joined by ``.``, ``_``, ``__`` or runs of ``-``.
A tag is ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``. A reference may carry a tag, a digest, both (the digest
wins when fetching, as in Docker), or neither.

This module never opens a socket or a file; errors are ``ValueError`` with the offending text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.model.digest import Digest, is_valid_digest

DOCKER_HUB = "docker.io"
"""The host Docker assumes when a reference names none."""
DOCKER_HUB_API = "registry-1.docker.io"
"""Where Docker Hub's registry API actually lives."""

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
    r"(?::[0-9]{1,5})?$"
)
MAX_NAME_LENGTH = 255


def is_valid_tag(text: str) -> bool:
    """True when ``text`` is a syntactically valid tag (OCI distribution spec)."""
    return _TAG.fullmatch(text) is not None


def is_valid_repository(text: str) -> bool:
    """True when ``text`` is a valid repository path (``a/b/c``, lowercase components)."""
    if not text or len(text) > MAX_NAME_LENGTH:
        return False
    return all(_COMPONENT.fullmatch(part) for part in text.split("/"))


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed image reference. ``registry`` is ``host[:port]`` exactly as written (``docker.io`` when
    none was). ``tag`` and ``digest`` are each optional."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse ``host[:port]/repo/path[:tag][@digest]``; raise ValueError saying what is wrong."""
        if not text or text != text.strip():
            raise ValueError(f"not an image reference: {text!r} (empty or surrounded by spaces)")
        remainder = text
        digest: Digest | None = None
        if "@" in remainder:
            remainder, _, digest_text = remainder.partition("@")
            if not is_valid_digest(digest_text):
                raise ValueError(
                    f"bad digest in image reference {text!r}: {digest_text!r} "
                    "(want sha256:<64 lowercase hex> or sha512:<128 lowercase hex>)"
                )
            digest = Digest(digest_text)
        tag: str | None = None
        last_slash = remainder.rfind("/")
        colon = remainder.rfind(":")
        if colon > last_slash:
            remainder, tag = remainder[:colon], remainder[colon + 1 :]
            if not is_valid_tag(tag):
                raise ValueError(f"bad tag in image reference {text!r}: {tag!r}")
        first, sep, rest = remainder.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            if not _HOST.fullmatch(first):
                raise ValueError(f"bad registry host in image reference {text!r}: {first!r}")
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, remainder
            if "/" not in repository:
                repository = f"library/{repository}"
        if not is_valid_repository(repository):
            raise ValueError(
                f"bad repository in image reference {text!r}: {repository!r} "
                "(lowercase letters and digits, separated by '.', '_', '__', '-' or '/')"
            )
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def reference(self) -> str | None:
        """What to ask the registry for: the digest when there is one, else the tag, else None."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag

    @property
    def api_host(self) -> str:
        """The host serving the registry API (Docker Hub's API is not on ``docker.io`` itself)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.registry, self.repository, tag, self.digest)

    def with_digest(self, digest: Digest | None) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def looks_like_registry_address(text: str) -> bool:
    """True for text with no repository path that names a registry rather than an image: ``127.0.0.1:5401``,
    ``localhost:5000``, ``[::1]:5000``, ``registry.example.com:5000``. Docker's grammar reads such text as an
    image on Docker Hub (``docker.io/library/127.0.0.1:5401``), which is never what a person typing it means."""
    if "/" in text or "@" in text:
        return False
    host, colon, port = text.partition(":")
    if text.startswith("["):
        return True
    if host == "localhost" or _IPV4.match(host) is not None:
        return True
    return "." in host and bool(colon) and port.isdigit()  # registry.example.com:5000; not redis:6


def parse_reference(text: str) -> Reference:
    """Shorthand for :meth:`Reference.parse`."""
    return Reference.parse(text)
