"""Write an edited environment file atomically, and the read-edit-write step of a promotion.

``write_atomically`` writes a temporary file in the same directory, flushes it to disk, gives it the
mode of the file it replaces and renames it over that file: a reader (the controller, an editor, Git)
sees the old bytes or the new bytes, never half of them, and a crash leaves the old file intact. The
edit itself (what the bytes become) is ``reconciler.manifests.edit``'s job; this module never decides
content, never follows a symbolic link out of place, and never touches Git.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from reconciler.manifests.edit import EnvFileEdit, EnvFileEditError, add_version

__all__ = ["promote_in_file", "write_atomically"]


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename, keeping its permission bits (0644 less the umask
    for a new file). A symbolic link is refused: replacing it would silently turn it into a file."""
    target = Path(path)
    try:
        if target.is_symlink():
            raise EnvFileEditError(f"{target}: is a symbolic link; promote edits regular files only")
        if target.exists():
            mode = stat.S_IMODE(target.stat().st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise EnvFileEditError(f"{target}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise EnvFileEditError(f"{target}: cannot write: {exc.strerror or exc}") from exc
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the platform allows it
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def promote_in_file(
    path: str | os.PathLike[str], image: str, tag: str, digest: str, *, keep_previous: int | None = None
) -> EnvFileEdit:
    """Pin ``image`` at ``tag``/``digest`` in the environment file at ``path`` (see
    ``reconciler.manifests.edit.add_version``) and write it when it changed."""
    target = Path(path)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise EnvFileEditError(f"{target}: cannot read: {exc.strerror or exc}") from exc
    edit = add_version(data, image, tag, digest, keep_previous=keep_previous, file=str(target))
    if edit.changed:
        write_atomically(target, edit.data)
    return edit
