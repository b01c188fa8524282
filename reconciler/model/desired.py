"""The desired state: what ``reconciler.yaml`` and ``environments/<env>.yaml`` declare, as typed values.

These are plain frozen dataclasses rather than pydantic models on purpose: validation has to report
*every* problem with the file, line and column of the YAML node that caused it, which needs the
ruamel.yaml node tree, not a dict. ``reconciler.manifests`` walks that tree once, collects problems, and
only builds these values from a state that is already known to be valid. So nothing here validates
again, and constructing them is cheap (10,000 pinned versions load in milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_TAG_PATTERN = r"^\d{8}_\d{2}$"
DEFAULT_FORBIDDEN_TAGS = ("latest",)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a value was declared: path relative to the desired-state root, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Registry:
    name: str
    url: str
    """``https://host[:port]`` or ``http://host[:port]``; no path."""
    insecure: bool = False
    """Opt-in to plain HTTP or unverified TLS for a non-loopback registry."""
    ca_bundle: str | None = None
    """PEM file of CAs to trust for this registry (relative paths are relative to the desired-state root)."""
    max_concurrency: int | None = None
    """Upper bound of requests in flight to this registry; None means the engine default."""

    @property
    def host(self) -> str:
        """``host[:port]`` as it appears in image references and Docker's config.json."""
        return urlsplit(self.url).netloc

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    """``d``, ``t``, ``s1``, ``s2``, ``p`` (any name matching ``^[a-z][a-z0-9]*$``)."""
    registries: tuple[str, ...]
    """Names of the registries that must all hold this environment's images (several = multi-site)."""
    prefix: str
    """First path component of every repository of this environment: ``<registry>/<prefix>/<image>``."""
    upstream: str | None = None
    """The ``from`` environment, where versions are promoted from. None only for a source environment."""
    source: bool = False
    """CI pushes here; reconciler never copies into a source environment (it only reads and retains)."""
    immutable_tags: bool = False
    """A tag once written is never moved: a CONFLICT is always refused."""
    allow_tag_moves: bool = False
    """Where tags are mutable, whether a CONFLICT may move the tag (else it is refused too)."""

    def repository(self, image: str) -> str:
        """The repository path of ``image`` in this environment: ``<prefix>/<image>``."""
        return f"{self.prefix}/{image}"


@dataclass(frozen=True, slots=True)
class NamingRule:
    tag_pattern: str = DEFAULT_TAG_PATTERN
    forbidden_tags: tuple[str, ...] = DEFAULT_FORBIDDEN_TAGS


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """What of an environment's undeclared versions may stay. A field left None inherits (an image's rule
    from its environment's, an environment's from ``default``); a rule with nothing set retains everything."""

    keep: int | None = None
    """The newest ``keep`` undeclared versions (per repository) always survive, whatever the other rules."""
    max_age_days: int | None = None
    """Undeclared versions whose tag date is older than this are retired (unless among the newest ``keep``)."""
    max_bytes: int | None = None
    """Retire the oldest undeclared versions until the environment's repositories on a registry fit in this
    many bytes (unique blob bytes: shared layers counted once). Environment-wide, never per image."""
    archive: bool | None = None
    """Retired versions go to the archive store first (True, the default when a store is configured) or are
    deleted outright (False: e.g. the dev environment's CI builds)."""
    images: Mapping[str, RetentionRule] = field(default_factory=dict)
    """Per-image overrides of ``keep``, ``max_age_days`` and ``archive`` (image name -> rule)."""

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.keep, self.max_age_days, self.max_bytes))

    def over(self, base: RetentionRule) -> RetentionRule:
        """This rule with every unset field taken from ``base``."""
        return RetentionRule(
            keep=self.keep if self.keep is not None else base.keep,
            max_age_days=self.max_age_days if self.max_age_days is not None else base.max_age_days,
            max_bytes=self.max_bytes if self.max_bytes is not None else base.max_bytes,
            archive=self.archive if self.archive is not None else base.archive,
            images={**base.images, **self.images},
        )


@dataclass(frozen=True, slots=True)
class Retention:
    default: RetentionRule = field(default_factory=RetentionRule)
    per_environment: Mapping[str, RetentionRule] = field(default_factory=dict)

    def for_environment(self, name: str) -> RetentionRule:
        """The environment's rule over ``default`` (its unset fields inherited)."""
        rule = self.per_environment.get(name)
        return rule.over(self.default) if rule is not None else self.default

    def for_image(self, environment: str, image: str) -> RetentionRule:
        """The rule for one image of an environment: its override over the environment's rule."""
        rule = self.for_environment(environment)
        override = rule.images.get(image)
        return override.over(rule) if override is not None else rule


@dataclass(frozen=True, slots=True)
class Promotion:
    """``promotion``: how many previous versions of an image a promotion keeps for rollback.

    ``keep_previous: 1`` keeps the promoted version plus the one before it; None (no rule) keeps all."""

    default_keep_previous: int | None = None
    keep_previous: Mapping[str, int] = field(default_factory=dict)
    """Environment name -> its own ``keep_previous``, overriding the default."""

    def keep_previous_for(self, environment: str) -> int | None:
        return self.keep_previous.get(environment, self.default_keep_previous)


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    store: str
    """Directory of the archive store (OCI layout); relative paths are relative to the desired-state root."""
    destroy_after_days: int | None = None


@dataclass(frozen=True, slots=True)
class Gate:
    """Policy an image must pass before it may enter an environment (checked on the image itself)."""

    base: str | None = None
    """Name of an approved base image (e.g. ``prod-osbase``) whose layers must be a prefix of the image's."""
    non_root: bool = False
    exec_form: bool = False
    max_layers: int | None = None
    max_bytes: int | None = None
    labels: tuple[str, ...] = ()
    require_artifacts: tuple[str, ...] = ()
    """Referrers the image must carry upstream: cosign kinds (``signature``, ``attestation``, ``sbom``)
    or artifact media types (``application/spdx+json``)."""


@dataclass(frozen=True, slots=True)
class TrustRule:
    allowed_signers: str
    """Path (relative to the desired-state root) of an SSH ``allowed_signers`` file: only SSH signatures
    count (``reconciler.source.signatures``); an OpenPGP or X.509 signature is never trusted."""


@dataclass(frozen=True, slots=True)
class BaseImage:
    """An approved base image (``osbase`` / ``runtime`` layer), referenced by gates."""

    name: str
    reference: str
    """``registry-name/repository@digest``: where the base lives, pinned by digest."""


@dataclass(frozen=True, slots=True)
class Config:
    """``reconciler.yaml``."""

    version: int
    registries: Mapping[str, Registry]
    environments: tuple[Environment, ...]
    """In promotion order: every environment's ``upstream`` comes before it."""
    naming: NamingRule = field(default_factory=NamingRule)
    retention: Retention = field(default_factory=Retention)
    archive: ArchiveConfig | None = None
    gates: Mapping[str, Gate] = field(default_factory=dict)
    trust: Mapping[str, TrustRule] = field(default_factory=dict)
    base_images: Mapping[str, BaseImage] = field(default_factory=dict)
    promotion: Promotion = field(default_factory=Promotion)

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    @property
    def environment_names(self) -> tuple[str, ...]:
        return tuple(env.name for env in self.environments)


@dataclass(frozen=True, slots=True)
class PinnedVersion:
    """One version of one image an environment must hold: tag AND digest (tags move, digests don't)."""

    image: str
    """Image name without environment prefix, e.g. ``payments/api``."""
    tag: str
    digest: str
    position: Position | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class EnvironmentState:
    """``environments/<env>.yaml``: image name -> the versions pinned for it, in file order."""

    environment: str
    images: Mapping[str, tuple[PinnedVersion, ...]]
    file: str
    """Path relative to the desired-state root, e.g. ``environments/t.yaml``."""

    def versions(self) -> Iterator[PinnedVersion]:
        for pins in self.images.values():
            yield from pins

    def find(self, image: str, tag: str) -> PinnedVersion | None:
        for pin in self.images.get(image, ()):
            if pin.tag == tag:
                return pin
        return None


@dataclass(frozen=True, slots=True)
class DesiredState:
    """A whole, valid desired-state repository."""

    root: str
    """Directory it was loaded from (a checkout or a plain directory)."""
    config: Config
    environments: Mapping[str, EnvironmentState]
    """Environment name -> its state, for every environment the config defines."""
    commit: str | None = None
    """Git commit SHA the state was read at, when it came from Git."""
    commit_author: str | None = None
