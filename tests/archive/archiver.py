"""The child process of the kill -9 test: archives images from a registry into layouts, one fork per run.

``python archiver.py REGISTRY_URL REPOSITORY:TAG...`` imports everything once, prints ``zygote``, then
obeys commands on stdin, one per line:

* ``run LAYOUT``: fork a process that archives every image into that layout. It prints, each line ending
  with its pid: ``ready`` once its clients are open, ``step`` before every write it asks of the store
  (``upload_blob``, ``put_manifest``, ``add_entry``), ``end`` when every image is archived;
* ``kill PID``: SIGKILL that run, then reap it; ``reap PID``: reap it. Both print ``reaped PID HOW``
  (``killed``, or ``exited N`` when it had finished first).

Only this process signals its runs, and only before reaping them: an unreaped child's pid cannot be
given to another process, so a kill can never hit anything but the run it names. At end of input it
kills and reaps whatever runs are left. Forking a process that already imported reconciler makes a run
cost its copy, not a Python start-up.

Images at even positions are copied under their tag (the copier names the entry); the others by digest
and then named with ``add_entry`` and provenance annotations (the engine's way).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from reconciler.archive import OciLayout, provenance
from reconciler.registry import Copier, RegistryClient


def say(line: str) -> None:
    """One protocol line in ONE write (atomic on a pipe): ``print`` may write the text and the newline
    separately, and a SIGKILL between the two would glue this run's last line to the next run's first."""
    os.write(1, f"{line}\n".encode())


def announce_steps(layout: OciLayout) -> None:
    for name in ("upload_blob", "put_manifest", "add_entry"):
        original: Callable[..., Awaitable[Any]] = getattr(layout, name)

        async def stepped(*args: Any, _original: Callable[..., Awaitable[Any]] = original, **kwargs: Any) -> Any:
            say(f"step {os.getpid()}")
            return await _original(*args, **kwargs)

        setattr(layout, name, stepped)


async def archive(registry_url: str, root: str, references: list[str]) -> None:
    async with RegistryClient(url=registry_url) as client, OciLayout(root, lock_timeout=30) as layout:
        announce_steps(layout)
        say(f"ready {os.getpid()}")
        copier = Copier()
        for position, reference in enumerate(references):
            repository, tag = reference.rsplit(":", 1)
            if position % 2 == 0:
                await copier.copy(
                    source=client,
                    source_repository=repository,
                    reference=tag,
                    target=layout,
                    target_repository=repository,
                    tag=tag,
                )
                continue
            manifest = await client.get_manifest(repository, tag)
            await copier.copy(
                source=client,
                source_repository=repository,
                reference=manifest.digest,
                source_manifest=manifest,
                target=layout,
                target_repository=repository,
            )
            notes = provenance(source_registry="prod-a", source_repository=repository, commit="c0ffee")
            await layout.add_entry(reference, manifest.digest, annotations=notes)
    say(f"end {os.getpid()}")


def fork_run(registry_url: str, root: str, references: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            asyncio.run(archive(registry_url, root, references))
            code = 0
        except BaseException:
            say(f"failed {os.getpid()} {traceback.format_exc()!r}")
            code = 1
        os._exit(code)
    return pid


def reap(pid: int) -> str:
    _, status = os.waitpid(pid, 0)
    return "killed" if os.WIFSIGNALED(status) else f"exited {os.waitstatus_to_exitcode(status)}"


def main(registry_url: str, references: list[str]) -> None:
    say("zygote")
    runs: set[int] = set()
    for line in sys.stdin:
        command, argument = line.strip().split(" ", 1)
        if command == "run":
            runs.add(fork_run(registry_url, argument, references))
            continue
        pid = int(argument)
        if pid not in runs:
            raise SystemExit(f"not a run of this archiver: {pid}")
        if command == "kill":
            os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid cannot belong to anyone else
        runs.discard(pid)
        say(f"reaped {pid} {reap(pid)}")
    for pid in runs:
        os.kill(pid, signal.SIGKILL)
        reap(pid)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
