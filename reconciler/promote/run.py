"""One promotion, end to end: edit the environment file, commit on a branch, push, open or update the MR.

``prepare`` does everything that can refuse (a dirty work tree, a version that cannot be promoted, a file
that cannot be edited) and computes the new file content without writing anything; ``commit`` writes the
branch (only the branch ref changes, see ``branch``); ``publish`` pushes it and opens or updates the merge
request, whose description the caller renders (the ``diff --output markdown`` of the branch). A refusal is
a ``PromotionError`` (exit 3) raised before any write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import PromotionError
from reconciler.manifests.edit import EnvFileEditError, add_version
from reconciler.model.desired import DesiredState
from reconciler.promote.branch import commit_on_branch, dirty_paths, push, repository_root
from reconciler.promote.resolve import Promotion


@dataclass(frozen=True, slots=True)
class PreparedPromotion:
    promotion: Promotion
    repository: Path
    """The work tree's root."""
    path: str
    """The environment file, relative to the repository root."""
    content: bytes
    """The file as the promotion commit will hold it."""
    removed: tuple[tuple[str, str], ...]
    """(image, tag) of older versions the keep_previous rule unpinned."""
    branch: str

    def message(self) -> str:
        """The commit message: a title, then one structured block per version (what trace reads)."""
        promotion = self.promotion
        lines = [promotion.title, ""]
        for pin in promotion.versions:
            lines += [
                f"Image: {pin.image}",
                f"From: {promotion.upstream.name}",
                f"To: {promotion.environment.name}",
                f"Tag: {pin.tag}",
                f"Digest: {pin.digest}",
                "",
            ]
        if self.removed:
            kept = ", ".join(f"{image}:{tag}" for image, tag in self.removed)
            lines += [f"Unpinned by promotion.keep_previous: {kept}", ""]
        return "\n".join(lines).rstrip() + "\n"


def default_branch(promotion: Promotion) -> str:
    env = promotion.environment.name
    if len(promotion.versions) == 1:
        pin = promotion.versions[0]
        return f"promote/{env}/{pin.image}/{pin.tag}"
    return f"promote/{env}/all-from-{promotion.upstream.name}"


def prepare(
    desired: DesiredState, directory: Path, promotion: Promotion, *, branch: str | None = None
) -> PreparedPromotion:
    """Check the work tree and compute the edited file; nothing is written."""
    repository = repository_root(directory)
    dirty = dirty_paths(repository, directory)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise PromotionError(f"the work tree has changes not committed ({shown}): commit or stash them first")
    env = promotion.environment.name
    file = directory.resolve() / "environments" / f"{env}.yaml"
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise PromotionError(f"cannot read {file}: {exc.strerror or exc}") from None
    keep = desired.config.promotion.keep_previous_for(env)
    removed: list[tuple[str, str]] = []
    for pin in promotion.versions:
        try:
            edit = add_version(
                content, pin.image, pin.tag, pin.digest, keep_previous=keep, file=f"environments/{env}.yaml"
            )
        except EnvFileEditError as exc:
            raise PromotionError(str(exc)) from None
        content = edit.data
        removed += [(pin.image, old.tag) for old in edit.removed]
    return PreparedPromotion(
        promotion=promotion,
        repository=repository,
        path=file.relative_to(repository.resolve()).as_posix(),
        content=content,
        removed=tuple(removed),
        branch=branch or default_branch(promotion),
    )


def commit(prepared: PreparedPromotion, *, sign: bool | None = None) -> str:
    """Write the promotion commit on its branch (HEAD, index and work tree untouched); its SHA."""
    return commit_on_branch(
        prepared.repository,
        {prepared.path: prepared.content},
        branch=prepared.branch,
        message=prepared.message(),
        sign=sign,
    )


def publish(prepared: PreparedPromotion, *, remote: str) -> None:
    """Push the promotion's branch to ``remote``."""
    push(prepared.repository, remote, prepared.branch)
