"""Small shared pieces of talking to Git: URL redaction, error cleaning, author formatting, the cache dir.

gitpython is imported lazily by the callers (it costs ~0.1 s), never here at module level. Nothing here
runs git; it only shapes what git said so that no credential embedded in a URL reaches a person.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

CACHE_DIR_ENV = "RECONCILER_CACHE_DIR"
_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")


def redact_url(url: str) -> str:
    """``url`` without user-info: ``https://user:token@host/x.git`` -> ``https://***@host/x.git``."""
    return _USERINFO.sub(r"\1***@", url)


def default_cache_dir() -> Path:
    """``$RECONCILER_CACHE_DIR``, else ``$XDG_CACHE_HOME/reconciler``, else ``~/.cache/reconciler``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "reconciler"


def clean_git_error(exc: Exception, url: str | None = None) -> str:
    """The last meaningful line of what git printed, with any credentials removed."""
    text = str(getattr(exc, "stderr", "") or exc).strip()
    text = redact_url(text)
    if url:
        text = text.replace(url, redact_url(url))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def author_of(commit: Any) -> str:
    """``Name <email>`` of a gitpython commit's author."""
    return f"{commit.author.name} <{commit.author.email}>"
