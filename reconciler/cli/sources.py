"""Where a command's desired state comes from: ``DIR`` or ``--repo URL --ref REF``, and ``--base REF``.

Every command that reads desired state takes the same options and opens the trees here, so ``validate``,
``diff``, ``plan`` and ``apply`` read a Git URL the same way (CI need not check anything out) and a base
commit the same way (from the work tree's repository, or from the same cached clone as the head).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.source import CommitTree, DesiredStateTree

if TYPE_CHECKING:
    from reconciler.model.desired import DesiredState

DirArgument = Annotated[
    Path | None,
    typer.Argument(
        exists=True,
        file_okay=False,
        help="Desired-state directory (default: the current directory). Ignored with --repo.",
    ),
]
RepoOption = Annotated[
    str | None, typer.Option("--repo", help="Git URL of the desired state, fetched into a cache.", show_default=False)
]
RefOption = Annotated[str, typer.Option("--ref", help="Branch, tag or commit SHA to use with --repo.")]
BaseOption = Annotated[
    str | None,
    typer.Option(
        "--base",
        metavar="REF",
        help="Git ref to compare with: versions added since REF must be declared by their 'from' environment.",
    ),
]
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="Where --repo clones live (default: $RECONCILER_CACHE_DIR or ~/.cache/reconciler)."
    ),
]


def describe(tree: DesiredStateTree) -> str:
    """``DIR @ sha`` or ``URL REF@sha``: what a person reads in a heading."""
    if tree.url is None and tree.revision is not None:
        return f"{tree.root} @ {tree.revision.commit[:12]}"
    return tree.root


@contextmanager
def open_trees(
    directory: Path | None,
    repo: str | None,
    ref: str,
    base: str | None,
    cache_dir: Path | None,
    *,
    head_ref: str | None = None,
) -> Iterator[tuple[DesiredStateTree, DesiredStateTree | None]]:
    """(head, base or None); trees read from Git are closed on exit. Raises SourceError. The head is the
    directory as it is, or ``head_ref`` of its repository, or ``--ref`` (``head_ref``) of ``--repo``."""
    from reconciler.source import open_commit, open_directory, open_remote  # noqa: PLC0415

    with ExitStack() as stack:
        head: DesiredStateTree
        base_tree: CommitTree | None = None
        if repo is not None and head_ref is not None:
            ref = head_ref
        if repo is None:
            if head_ref is not None:
                head = stack.enter_context(open_commit(directory or Path("."), head_ref))
            else:
                head = open_directory(directory or Path("."))
            if base is not None:
                base_tree = stack.enter_context(open_commit(directory or Path("."), base))
        else:
            head = stack.enter_context(open_remote(repo, ref, cache_dir=cache_dir))
            if base is not None:
                base_tree = stack.enter_context(open_remote(repo, base, cache_dir=cache_dir, refresh=False))
        yield head, base_tree


def load_desired(
    directory: Path | None, repo: str | None, ref: str, cache_dir: Path | None
) -> tuple[DesiredStateTree, DesiredState]:
    """The head tree and its valid desired state; raises ``DesiredStateError`` (every problem) or ``SourceError``."""
    from reconciler.manifests import load_tree  # noqa: PLC0415

    with open_trees(directory, repo, ref, None, cache_dir) as (head, _base):
        return head, load_tree(head)
