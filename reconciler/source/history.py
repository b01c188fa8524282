"""Walks of a repository's history and the content of files at any commit, with one git process each.

``commits_between(repo, base, head)`` lists the commits a range brought, oldest first, with their
parents, author, committer, subject and the paths each changed (relative to the desired-state directory
when it is a subdirectory of the repository), from ONE ``git log`` process however long the range. A
merge's paths are what it changed relative to its first parent (what the branch it landed on saw).
``BlobReader`` reads files at commits through one long-lived ``git cat-file --batch`` process.
Trust checks, ``diff`` and ``history`` build on these.

``repo`` is a work tree (its root) or a bare repository such as the clone cache of
``reconciler.source.remote.fetch``; ``locate`` turns any directory inside a work tree into (root,
subdirectory). The git configuration that would change what these commands print (renames, relative
paths, quoting, signatures shown by ``log``) is overridden on the command line, so the output parsed here
is the same on every machine. This module only reads: it never fetches, writes or checks anything out.
Every git failure is a ``SourceError`` with git's last line and no credential in it.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from reconciler.errors import SourceError
from reconciler.source.gitutil import clean_git_error
from reconciler.source.tree import MAX_FILE_BYTES

_RECORD = "\x1e"
_LOG_FORMAT = "%x1e%H%x00%P%x00%an <%ae>%x00%at%x00%cn <%ce>%x00%ct%x00%s"
_FIXED_CONFIG = (
    "core.quotePath=true",  # control characters in paths arrive C-quoted, so a path never forges a record
    "diff.relative=false",
    "diff.noprefix=false",
    "log.showSignature=false",
    "log.showRoot=true",
    "i18n.logOutputEncoding=UTF-8",
)
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """One commit as a history walk saw it."""

    sha: str
    parents: tuple[str, ...]
    author: str
    """``Name <email>`` as written in the commit (what anyone can type: a signature decides who it was)."""
    author_time: int
    committer: str
    committer_time: int
    subject: str
    paths: tuple[str, ...] = field(default=())
    """Paths changed relative to the first parent (everything, for a root commit), relative to the
    directory the walk was asked about, sorted."""

    @property
    def short(self) -> str:
        return self.sha[:12]

    @property
    def first_parent(self) -> str | None:
        return self.parents[0] if self.parents else None

    def __str__(self) -> str:
        return f"{self.short} {self.subject!r} by {self.author}"


def git_command(repo: str | os.PathLike[str], *args: str) -> list[str]:
    """The argv of ``git -C repo args`` with the output-shaping configuration pinned."""
    pinned = [part for item in _FIXED_CONFIG for part in ("-c", item)]
    return ["git", "-C", os.fspath(repo), "--literal-pathspecs", *pinned, *args]


def git_environment() -> dict[str, str]:
    """The user's environment (HOME, safe.directory) with messages in English and no prompts."""
    return {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


def run_git(repo: str | os.PathLike[str], *args: str, stdin: bytes | None = None, what: str = "git") -> bytes:
    """Run git in ``repo``; its stdout, or SourceError naming ``what`` failed."""
    try:
        done = subprocess.run(
            git_command(repo, *args), input=stdin, capture_output=True, env=git_environment(), check=False
        )
    except OSError as exc:
        raise SourceError(f"{os.fspath(repo)}: cannot run git ({exc.strerror}); install git") from exc
    if done.returncode != 0:
        message = clean_git_error(Exception(done.stderr.decode(errors="replace")))
        raise SourceError(f"{os.fspath(repo)}: {what} failed: {message}")
    return done.stdout


def locate(directory: str | os.PathLike[str]) -> tuple[Path, str]:
    """(repository, subdirectory): the work tree root and ``directory`` relative to it (``""`` at the
    root), or a bare repository and ``""``. SourceError when ``directory`` is not in a repository."""
    path = Path(directory)
    if not path.is_dir():
        raise SourceError(f"{os.fspath(directory)}: not a directory")
    out = run_git(path, "rev-parse", "--is-bare-repository", "--show-prefix", what="finding the repository")
    lines = out.decode(errors="surrogateescape").splitlines()
    if lines and lines[0] == "true":
        return path.resolve(), ""
    top = run_git(path, "rev-parse", "--show-toplevel", what="finding the repository")
    prefix = lines[1].strip("/") if len(lines) > 1 else ""
    return Path(top.decode(errors="surrogateescape").strip()), prefix


def resolve(repo: str | os.PathLike[str], ref: str) -> str | None:
    """The full SHA of the commit ``ref`` names (branch, tag, SHA, ``HEAD~2``), None when it names none."""
    done = subprocess.run(
        git_command(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"),
        capture_output=True,
        env=git_environment(),
        check=False,
    )
    sha = done.stdout.decode().strip()
    return sha if done.returncode == 0 and sha else None


def is_ancestor(repo: str | os.PathLike[str], ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is ``descendant`` or one of its ancestors (both full SHAs)."""
    done = subprocess.run(
        git_command(repo, "merge-base", "--is-ancestor", ancestor, descendant),
        capture_output=True,
        env=git_environment(),
        check=False,
    )
    if done.returncode not in (0, 1):
        raise SourceError(f"{os.fspath(repo)}: git merge-base failed: {done.stderr.decode(errors='replace')[-300:]}")
    return done.returncode == 0


def unquote_path(text: str) -> str:
    """A path as git prints it, C-quoted (``"a\\tb"``, ``"\\303\\251"``) when it holds special bytes."""
    if not (text.startswith('"') and text.endswith('"') and len(text) >= 2):
        return text
    raw = text[1:-1].encode("utf-8", errors="surrogateescape")
    out = bytearray()
    index = 0
    while index < len(raw):
        byte = raw[index]
        if byte != 0x5C or index + 1 >= len(raw):
            out.append(byte)
            index += 1
            continue
        escape = chr(raw[index + 1])
        if escape in "01234567" and index + 3 < len(raw):
            out.append(int(raw[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            out.append(_ESCAPES.get(escape, raw[index + 1]))
            index += 2
    return out.decode("utf-8", errors="surrogateescape")


def _relative(path: str, prefix: str) -> str | None:
    if not prefix:
        return path
    return path[len(prefix) + 1 :] if path.startswith(f"{prefix}/") else None


def _parse_log(output: str, prefix: str) -> list[CommitRecord]:
    records: list[CommitRecord] = []
    header: list[str] | None = None
    paths: list[str] = []

    def flush() -> None:
        if header is not None:
            sha, parents, author, author_time, committer, committer_time, subject = header
            records.append(
                CommitRecord(
                    sha=sha,
                    parents=tuple(parents.split()),
                    author=author,
                    author_time=int(author_time or 0),
                    committer=committer,
                    committer_time=int(committer_time or 0),
                    subject=subject,
                    paths=tuple(sorted(set(paths))),
                )
            )

    for line in output.split("\n"):
        if line.startswith(_RECORD):
            flush()
            fields = line[1:].split("\x00", 6)
            if len(fields) != 7:
                raise SourceError(f"unexpected git log output: {line[:80]!r}")
            header, paths = fields, []
        elif line and header is not None:
            relative = _relative(unquote_path(line), prefix)
            if relative is not None:
                paths.append(relative)
    flush()
    return records


def commits_between(
    repo: str | os.PathLike[str],
    base: str | None,
    head: str,
    *,
    subdir: str = "",
    paths: Sequence[str] = (),
    first_parent: bool = True,
) -> list[CommitRecord]:
    """Commits reachable from ``head`` and not from ``base`` (all of ``head``'s history when ``base`` is
    None) that changed something under ``subdir`` (the whole repository when ``""``), or only one of
    ``paths`` (relative to ``subdir``) when given, oldest first. ``first_parent`` follows only the first
    parent of merges: the states the branch itself went through. Paths are relative to ``subdir``."""
    prefix = subdir.strip("/")
    revisions = [head] if base is None else [f"^{base}", head]
    args = ["log", "--no-color", "--root", "--no-renames", "--name-only", "--diff-merges=first-parent"]
    if first_parent:
        args.append("--first-parent")
    args += ["--reverse", f"--format={_LOG_FORMAT}", "--end-of-options", *revisions, "--"]
    if paths:
        args += [posixpath.join(prefix, path) if prefix else path for path in paths]
    elif prefix:
        args.append(prefix)
    shown = f"{'' if base is None else base[:12] + '..'}{head[:12]}"
    output = run_git(repo, *args, what=f"git log {shown}")
    return _parse_log(output.decode("utf-8", errors="surrogateescape"), prefix)


def commit_record(repo: str | os.PathLike[str], sha: str) -> CommitRecord:
    """One commit's metadata (no paths)."""
    output = run_git(repo, "log", "--no-walk", f"--format={_LOG_FORMAT}", "--end-of-options", sha, "--")
    records = _parse_log(output.decode("utf-8", errors="surrogateescape"), "")
    if not records:
        raise SourceError(f"{os.fspath(repo)}: no commit {sha}")
    return records[0]


def uncommitted_paths(repo: str | os.PathLike[str], subdir: str = "") -> tuple[str, ...]:
    """Paths under ``subdir`` of a work tree that differ from HEAD (staged, unstaged or untracked),
    relative to ``subdir``."""
    prefix = subdir.strip("/")
    output = run_git(
        repo,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--",
        prefix or ".",
        what="git status",
    )
    entries = output.decode("utf-8", errors="surrogateescape").split("\x00")
    found = {_relative(entry[3:], prefix) for entry in entries if len(entry) > 3}
    return tuple(sorted(path for path in found if path is not None))


class BlobReader:
    """Files at commits (and raw objects) through one ``git cat-file --batch`` process. Use ``with``."""

    def __init__(self, repo: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self._repo = os.fspath(repo)
        self._max_bytes = max_bytes
        self._cache: dict[str, bytes | None] = {}
        try:
            self._process = subprocess.Popen(
                git_command(repo, "cat-file", "--batch"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=git_environment(),
            )
        except OSError as exc:
            raise SourceError(f"{self._repo}: cannot run git ({exc.strerror}); install git") from exc

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process.wait()

    def object(self, name: str) -> tuple[str, bytes] | None:
        """(type, content) of the object ``name`` (``<sha>``, ``<sha>:<path>``); None when missing or
        larger than ``max_bytes``."""
        if "\n" in name:
            return None
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(name.encode("utf-8", errors="surrogateescape") + b"\n")
            stdin.flush()
            header = stdout.readline().decode(errors="replace").split()
            if len(header) != 3:  # "<name> missing" or "<name> ambiguous"
                return None
            kind, size = header[1], int(header[2])
            content = _read_exactly(stdout, size, keep=size <= self._max_bytes)
            stdout.read(1)  # the newline after the content
        except (OSError, ValueError) as exc:
            raise SourceError(f"{self._repo}: git cat-file failed reading {name}") from exc
        return None if content is None else (kind, content)

    def file(self, commit: str, path: str) -> bytes | None:
        """Bytes of the file at ``path`` (repository-relative) in ``commit``; None when there is none."""
        key = f"{commit}:{posixpath.normpath(path)}"
        if key not in self._cache:
            found = self.object(key)
            self._cache[key] = found[1] if found is not None and found[0] == "blob" else None
        return self._cache[key]


def _read_exactly(stream: IO[bytes], size: int, *, keep: bool) -> bytes | None:
    """``size`` bytes of ``stream``; with ``keep`` False they are drained, never held (oversized)."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            raise ValueError("truncated object")
        if keep:
            chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks) if keep else None
