"""The demo behind ``reconciler demo``: the whole product on one machine, against real local registries.

It starts one ``docker-registry`` process per registry of the bundled example (on loopback, free ports,
data under ``--data-dir`` or a temporary directory), copies ``examples/manifests/`` to a work directory,
points that copy's registries at the local ones and replaces the example's placeholder digests with the
digests of small, deterministic generated images (``image_for(image, tag)``: the same tag has the same
digest in every environment), seeds the registries, then runs what a user would: validate, plan, apply,
and plan again, which must report nothing to do.

Seeding follows the example's story: every version is pushed to the source environment (CI's job),
and a version an environment keeps although its upstream has since dropped it (production keeping last
month's release for rollback) is put, untagged, in that upstream's repository: it was promoted through
it before its tag was retired there. Nothing else is pre-populated: every other tag is written by
``apply``.

The demo stops every process it started (also on Ctrl-C and on failure), never talks to anything but
the registries it started, and never writes outside its work directory.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from reconciler.errors import ReconcilerError
from reconciler.model.desired import DesiredState
from testkit.imagegen import GeneratedImage

if TYPE_CHECKING:
    from reconciler.engine.reconcile import PassReport


def bundled_example() -> Path | None:
    """The example desired state the demo runs: inside the installed wheel (``testkit/example``, copied
    there from ``examples/manifests`` at build time), else the checkout's ``examples/manifests`` (an
    editable install). None when neither exists."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "example", here.parent.parent / "examples" / "manifests"):
        if (candidate / "reconciler.yaml").is_file():
            return candidate
    return None


def _say(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")
    out.flush()


@contextmanager
def _work_dir(data_dir: Path | None) -> Iterator[Path]:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        yield data_dir.resolve()
        return
    path = Path(tempfile.mkdtemp(prefix="reconciler-demo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def prepare_manifests(
    example: Path,
    target: Path,
    registry_urls: dict[str, str],
    digests: dict[tuple[str, str], str],
    base_digests: dict[str, str] | None = None,
) -> None:
    """Copy ``example`` to ``target``, with registry URLs and pinned digests replaced.

    ``digests`` maps (image, tag) to the digest that version must have. The example's placeholder
    digests are replaced file by file, entry by entry, so two versions never share a new digest.
    ``base_digests`` maps a base image's name (``prod-osbase``) to the digest of the base the demo built.
    """
    from reconciler.manifests import load_desired_state  # noqa: PLC0415  (ruamel only when used)

    original = load_desired_state(example)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(example, target)

    config_path = target / "reconciler.yaml"
    text = config_path.read_text(encoding="utf-8")
    for name, registry in original.config.registries.items():
        if name not in registry_urls:
            raise ReconcilerError(f"demo: no local registry started for {name!r}")
        text = text.replace(f'"{registry.url}"', f'"{registry_urls[name]}"').replace(registry.url, registry_urls[name])
    for name, base in original.config.base_images.items():
        if base_digests and name in base_digests:
            text = text.replace(base.reference.partition("@")[2], base_digests[name])
    # Keep the demo's archive store inside its work directory, whatever the example says.
    text = re.sub(r"(?m)^(\s*store:\s*).*$", lambda m: f"{m.group(1)}{target.parent / 'archive'}", text)
    config_path.write_text(text, encoding="utf-8")

    for state in original.environments.values():
        path = target / state.file
        text = path.read_text(encoding="utf-8")
        for pin in state.versions():
            new = digests[(pin.image, pin.tag)]
            # The digest sits on the tag's own line (flow style) or within the next lines (block style).
            pattern = re.compile(
                r"(" + re.escape(pin.tag) + r"[\"']?(?:[^\n]*\n){0,3}?[^\n]*?)" + re.escape(pin.digest)
            )
            text, count = pattern.subn(_keep_prefix(new), text, count=1)
            if count != 1:
                raise ReconcilerError(f"demo: cannot find the digest of {pin.image}:{pin.tag} in {state.file}")
        path.write_text(text, encoding="utf-8")


def _keep_prefix(new: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return match.group(1) + new

    return replace


def demo_base(name: str) -> GeneratedImage:
    """The demo's approved base image ``name`` (prod-osbase): two layers every demo image starts with."""
    from testkit.imagegen import ImageSettings, image_for  # noqa: PLC0415

    labels = {
        "maintainer": "platform-team@example.com",
        "org.opencontainers.image.source": f"https://git.example.com/osbase/{name}",
    }
    return image_for(f"osbase/{name}", "20261101_01", settings=ImageSettings(labels=labels))


def demo_image(name: str, tag: str, *, base: GeneratedImage | None) -> GeneratedImage:
    """Version ``tag`` of image ``name`` as CI would build it: FROM the approved base, a non-root user, the
    start command in exec form, the labels production requires; the same (name, tag) gives the same digest."""
    from testkit.imagegen import ImageSettings, image_for  # noqa: PLC0415

    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.version": tag,
        "org.opencontainers.image.source": f"https://git.example.com/{name}",
        "maintainer": "platform-team@example.com",
    }
    layers = base.manifests[0].layers if base is not None else ()
    return image_for(name, tag, settings=ImageSettings(labels=labels, entrypoint=("/run.sh",), cmd=()), base=layers)


def sign_desired_state(root: Path, keys: Path) -> str:
    """Make ``root`` a Git repository whose one commit is signed by a release manager the trust rules
    allow, as a bank's desired-state repository is: a fresh ed25519 key (``ssh-keygen``), listed in every
    allowed_signers file the config names, and ``git commit -S`` with ``gpg.format=ssh``."""
    import subprocess  # noqa: PLC0415

    from reconciler.manifests import load_desired_state  # noqa: PLC0415

    keys.mkdir(parents=True, exist_ok=True)
    key = keys / "release-manager"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "demo", "-f", str(key)], check=True)
    principal = "release-manager@example.com"
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    for rule in load_desired_state(root).config.trust.values():
        (root / rule.allowed_signers).write_text(f'{principal} namespaces="git" {public}\n', encoding="utf-8")
    identity = ["-c", "user.name=Release Manager", "-c", f"user.email={principal}"]
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c", "commit.gpgsign=true"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], [*signing, "commit", "-q", "-m", "desired state"]):
        subprocess.run(["git", *identity, *command], cwd=root, check=True, capture_output=True)
    return principal


def seed_plan(desired: DesiredState) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """What to push before the first apply: (environment, image, tag) tagged in a source environment,
    and (environment, image, tag) untagged in an upstream that has dropped a version kept downstream."""
    config = desired.config
    tagged: set[tuple[str, str, str]] = set()
    untagged: set[tuple[str, str, str]] = set()
    for env in config.environments:
        state = desired.environments[env.name]
        for pin in state.versions():
            if env.source:
                tagged.add((env.name, pin.image, pin.tag))
                continue
            upstream = config.environment(env.upstream) if env.upstream else None
            if upstream is None:
                continue
            if desired.environments[upstream.name].find(pin.image, pin.tag) is not None:
                continue
            if upstream.source:
                tagged.add((upstream.name, pin.image, pin.tag))
            else:
                untagged.add((upstream.name, pin.image, pin.tag))
    return tagged, untagged


def run_demo(
    *,
    data_dir: Path | None = None,
    keep_running: bool = False,
    out: TextIO,
    example: Path | None = None,
) -> bool:
    """Run the demo; True when the second plan found nothing to do and nothing failed."""
    from reconciler.engine.audit import AuditLog  # noqa: PLC0415
    from reconciler.engine.reconcile import reconcile_pass  # noqa: PLC0415
    from reconciler.engine.registries import RegistryPool  # noqa: PLC0415
    from reconciler.engine.trusted import verify_trust  # noqa: PLC0415
    from reconciler.manifests import load_desired_state, validate_directory  # noqa: PLC0415
    from reconciler.report.passes import plan_lines, summary_line  # noqa: PLC0415
    from reconciler.source import open_directory  # noqa: PLC0415
    from testkit.imagepush import push_image  # noqa: PLC0415
    from testkit.localregistry import LocalRegistry  # noqa: PLC0415

    if example is None:
        example = bundled_example()
        if example is None:
            raise ReconcilerError("demo: the test kit was installed without its example; pass --example DIR")
    if not (example / "reconciler.yaml").is_file():
        raise ReconcilerError(f"demo: {example} holds no reconciler.yaml; pass --example DIR")
    started = time.monotonic()
    example_state = load_desired_state(example)

    with _work_dir(data_dir) as work, ExitStack() as stack:
        _say(out, f"reconciler demo: work directory {work}")
        urls: dict[str, str] = {}
        registries: dict[str, LocalRegistry] = {}
        for name in example_state.config.registries:
            local = LocalRegistry(name=name, work_dir=work / "registries" / name)  # config, log and storage
            stack.callback(local.stop)
            local.start()
            registries[name] = local
            urls[name] = local.url
            _say(out, f"  started registry {name:<7} {local.url}  (data and log: {work / 'registries' / name})")

        versions = {(pin.image, pin.tag) for state in example_state.environments.values() for pin in state.versions()}
        bases = {name: demo_base(name) for name in example_state.config.base_images}
        images = {key: demo_image(*key, base=next(iter(bases.values()), None)) for key in sorted(versions)}
        digests = {key: str(image.digest) for key, image in images.items()}
        manifests = work / "manifests"
        prepare_manifests(example, manifests, urls, digests, {name: str(b.digest) for name, b in bases.items()})
        for name, base in bases.items():  # the approved base images the gates check layers against
            registry_name, _, repository = (
                example_state.config.base_images[name].reference.partition("@")[0].partition("/")
            )
            push_image(base, urls[registry_name], repository, "20261101_01")
        _say(out, f"  desired state: {manifests} (copy of {example}, pointed at the local registries)")

        _say(out, "\n[1/4] validate")
        problems = validate_directory(manifests)
        if problems:
            for problem in problems:
                _say(out, f"  {problem}")
            return False
        desired = load_desired_state(manifests)
        pinned = sum(1 for state in desired.environments.values() for _ in state.versions())
        _say(out, f"  ok: {len(desired.config.environments)} environments, {pinned} pinned versions")
        if desired.config.trust:
            signer = sign_desired_state(manifests, work / "keys")
            desired = load_desired_state(manifests)
            report = verify_trust(open_directory(manifests), desired)
            if report is None or not report.ok:
                for violation in report.violations if report else ():
                    _say(out, f"  trust: {violation}")
                return False
            _say(out, f"  trust: {report.commits} commit(s) signed by {signer}, an allowed signer of "
                      f"{', '.join(sorted(desired.config.trust))}")  # fmt: skip

        tagged, untagged = seed_plan(desired)
        for env_name, image, tag in sorted(tagged | untagged):
            env = desired.config.environment(env_name)
            for registry in env.registries:
                push_image(
                    images[(image, tag)],
                    urls[registry],
                    env.repository(image),
                    tag if (env_name, image, tag) in tagged else None,
                )
        _say(out, f"  seeded {len(tagged)} build(s) into the source environment (what CI pushes)")
        if untagged:
            history = ", ".join(f"{e}/{i}:{t}" for e, i, t in sorted(untagged))
            _say(out, f"  seeded history, untagged: {history}")

        audit_path = work / "audit.jsonl"

        async def one_pass(dry_run: bool) -> PassReport:
            pool = RegistryPool(desired.config, root=desired.root)
            try:
                with AuditLog(audit_path) as audit:
                    return await reconcile_pass(desired, pool, dry_run=dry_run, audit=None if dry_run else audit)
            finally:
                await pool.aclose()

        _say(out, "\n[2/4] plan")
        first = asyncio.run(one_pass(True))
        for line in plan_lines(first.plan):
            _say(out, line)
        _say(out, "  " + summary_line(first.plan))

        _say(out, "\n[3/4] apply")
        applied = asyncio.run(one_pass(False))
        results = applied.results or ()
        ok = [r for r in results if r.succeeded]
        for result in results:
            a = result.action
            mark = "ok  " if result.succeeded else "FAIL"
            _say(out, f"  {mark} {a.kind.value:<6} {a.registry}/{a.repository}:{a.tag}")
        _say(out, f"  {len(ok)} of {len(results)} action(s) done in {applied.execute_seconds:.2f}s")
        _say(out, f"  audit log: {audit_path}")
        failures = applied.failures
        for failure in failures:
            _say(out, f"  failed: {failure}")

        _say(out, "\n[4/4] plan again")
        second = asyncio.run(one_pass(True))
        _say(out, "  " + summary_line(second.plan))
        converged = second.plan.is_empty and not failures

        _say(out, "")
        if converged:
            _say(
                out,
                f"Demo OK in {time.monotonic() - started:.1f}s: {len(ok)} copies/retags, every environment "
                f"matches its file ({second.plan.in_sync} tags in sync), second plan empty.",
            )
        else:
            _say(out, "Demo FAILED: the registries did not converge (see above).")
        if keep_running and converged:
            _say(out, "Registries keep running; press Ctrl-C to stop them.")
            for name, local in registries.items():
                _say(out, f"  {name}: {local.url}  e.g. curl {local.url}/v2/_catalog")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                _say(out, "stopping registries")
        return converged


CHAIN_REGISTRIES = ("dev", "test", "pre", "prod-a", "prod-b")


def write_chain_state(
    root: Path,
    registry_urls: dict[str, str],
    pins: dict[str, list[tuple[str, str, str]]],
    *,
    t_allow_tag_moves: bool = True,
) -> Path:
    """Write a desired-state repository shaped like the example (d -> t -> s1 -> s2 -> p; s1 and s2 on
    ``pre``; p on ``prod-a`` and ``prod-b``, immutable) with the given pins: environment ->
    (image, tag, digest). Used by the tests and the benchmarks to build states of any size."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "environments").mkdir(exist_ok=True)
    registries = "\n".join(f'  {name}: {{url: "{registry_urls[name]}"}}' for name in CHAIN_REGISTRIES)
    (root / "reconciler.yaml").write_text(
        "version: 1\n"
        f"registries:\n{registries}\n"
        "environments:\n"
        "  d: {registry: dev, prefix: d, source: true}\n"
        f"  t: {{registry: test, prefix: t, from: d, allow_tag_moves: {str(t_allow_tag_moves).lower()}}}\n"
        "  s1: {registry: pre, prefix: s1, from: t}\n"
        "  s2: {registry: pre, prefix: s2, from: s1, immutable_tags: true}\n"
        "  p: {registries: [prod-a, prod-b], prefix: p, from: s2, immutable_tags: true}\n",
        encoding="utf-8",
    )
    for env in ("d", "t", "s1", "s2", "p"):
        lines = [f"environment: {env}", "images:" if pins.get(env) else "images: {}"]
        by_image: dict[str, list[tuple[str, str]]] = {}
        for image, tag, digest in pins.get(env, []):
            by_image.setdefault(image, []).append((tag, digest))
        for image in sorted(by_image):
            lines.append(f"  {image}:")
            lines += [f'    - {{tag: "{tag}", digest: "{digest}"}}' for tag, digest in by_image[image]]
        (root / "environments" / f"{env}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
