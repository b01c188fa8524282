"""The shipped JSON Schemas agree with the validator: the schema may be looser, never stricter.

``reconciler/schemas/*.json`` and the hand-written validator (``reconciler/manifests/config.py``,
``envfile.py``) are two definitions of one format. Editors run the schemas as people type
(yaml-language-server), ``reconciler validate`` runs the validator in CI. A schema that rejects a file the
validator accepts teaches people to ignore their editor; a schema that misses a wrong field name is no aid.

Each side reads the file its own way, as in real life:

- the validator reads the text as written, through its own node tree (``tag: 20261127_01`` is text);
- the schema sees the file as data: ruamel.yaml (safe, YAML 1.2, pure Python, the reference resolver)
  builds it, then mapping keys become strings and dates ISO strings, as a JSON-based editor sees them. So
  the schema sees values, never their text: ``tag: 20261127_01`` reaches it as the number 2026112701.

Asserted on every corpus case, on ``examples/manifests`` and on generated valid repositories:

1. never stricter: every YAML file in which the validator reports no problem is accepted by the schema;
2. useful: every SHAPE problem is also a schema error, at the node the validator names or at its parent;
3. every problem code is classified (SHAPE, CONTEXT or YAML_LAYER); a file the schema accepts although the
   validator rejects it may only hold CONTEXT and YAML_LAYER problems. Those files are printed
   (``pytest -rP``): they are what an editor cannot show.

Files the YAML layer refuses (over 5 MiB, binary, not UTF-8, syntax errors including a second document,
anchors and aliases) never reach either validator: they are skipped. The schemas' regular expressions are
evaluated by Python's ``re`` here, the validator's engine; editors use ECMA-262 regular expressions, which
differ on exotic input (a trailing newline before ``$``, non-ASCII digits for ``\\d``).
"""

from __future__ import annotations

import datetime
import io
import json
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema.protocols import Validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode as YamlScalarNode
from ruamel.yaml.representer import SafeRepresenter
from ruamel.yaml.resolver import VersionedResolver

from reconciler.manifests import validate_directory
from reconciler.manifests.envfile import TagRule
from reconciler.manifests.fields import Checker
from reconciler.manifests.schema import SCHEMA_FILES, load_schema
from reconciler.manifests.yamltree import MappingNode, Node, ScalarNode, SequenceNode, parse_yaml
from reconciler.model.desired import DEFAULT_TAG_PATTERN, NamingRule
from reconciler.model.problems import Problem

from .helpers import EXAMPLE
from .test_corpus import CASES, CORPUS, inflate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "desired-state.md"

SHAPE = frozenset(
    {
        "unknown-field",
        "missing-field",
        "wrong-type",
        "bad-value",
        "bad-name",
        "bad-image-name",
        "bad-digest",
        "duplicate-entry",
        "conflicting-fields",
        "unsupported-version",
        "from-missing",  # a non-source environment without `from`: one mapping's fields
        "no-source",  # no environment with `source: true`: one mapping's values
    }
)
"""Problems of one file's shape: the schema must report each one, where the validator does."""

CONTEXT = frozenset(
    {
        # Need another file, or the file's own name.
        "file-missing",
        "env-file-missing",
        "unknown-environment",
        "file-unreadable",
        "bad-filename",
        "environment-mismatch",
        "tag-digest-conflict",
        "tag-naming",  # naming.tag lives in reconciler.yaml (the schema of an environment file cannot know it)
        "tag-forbidden",  # idem naming.forbidden_tags; `latest`, always forbidden, the schema does refuse
        "promotion-skip",
        # Need reasoning a JSON Schema cannot express: references between sections, the order of
        # environments, uniqueness of one field among list items, the calendar (the schema refuses month 13
        # and 30 February, not 29 February of a common year).
        "unknown-registry",
        "unknown-base-image",
        "archive-missing",  # a retention rule that archives, and no archive section: two sections apart
        "from-cycle",
        "from-forward",
        "duplicate-prefix",
        "duplicate-version",
        "tag-date",
    }
)
"""Problems the schema may miss: the validator's job (see docs/desired-state.md)."""

YAML_LAYER = frozenset(
    {
        "file-too-large",
        "file-binary",
        "file-encoding",
        "file-empty",
        "yaml-syntax",
        "yaml-alias",
        "yaml-tag",
        "yaml-too-deep",
        "duplicate-key",  # a loaded mapping has no duplicate keys: the editor's YAML parser reports them
        "duplicate-image",
    }
)
"""Problems in the YAML itself, before any shape: a schema never sees them."""

REFUSED_BEFORE_VALIDATION = frozenset({"file-too-large", "file-binary", "file-encoding", "yaml-syntax", "yaml-alias"})
"""The YAML layer refuses the file: neither validator ever sees its content (never loaded: billion laughs)."""

SCHEMA_CANNOT_SEE = (
    # A JSON Schema has no keyword for "a Python regular expression that compiles".
    "is not a valid regular expression",
    # JSON object keys are strings: a null or list key reaches the schema as text.
    "keys of ",
)
"""Message parts of SHAPE problems whose cause the data never shows. Further known blind spots, on purpose
not exempted (no corpus case has them; add one here when a case does): a float such as ``1.0`` where a whole
number belongs (JSON Schema's integer accepts it), an integer size written ``0x10`` or ``1_000`` (the schema
sees 16 and 1000, the validator wants decimal digits), duplicate non-string list entries (``[1, 1.0]``)."""

_RESOLVER = VersionedResolver(version=(1, 2))
_PLAIN_KEY_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "bool", "timestamp"))
_PLAIN_TAGS = _PLAIN_KEY_TAGS | {"tag:yaml.org,2002:float"}

JsonPath = tuple[str | int, ...]


# -- the schema side --------------------------------------------------------------------------------


def _validator(kind: str) -> Validator:
    schema = load_schema(kind)
    cls = jsonschema.validators.validator_for(schema, default=None)
    assert cls is not None, f"{SCHEMA_FILES[kind]} declares no $schema jsonschema knows: {schema.get('$schema')!r}"
    cls.check_schema(schema)
    return cls(schema)


VALIDATORS = {kind: _validator(kind) for kind in SCHEMA_FILES}


class DataRefusedError(Exception):
    """The file is YAML the validator reads, but it cannot be loaded as JSON-like data (``!!binary``,
    an unknown tag, a list as a key): an editor's YAML parser reports it, no schema sees it."""


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)  # null, true, 12, 1.5: what JSON.stringify makes of a non-string key
    if isinstance(key, datetime.date):
        return key.isoformat()
    raise DataRefusedError(f"a {type(key).__name__} key has no JSON form")


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {_json_key(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, datetime.date):  # YAML 1.2's core schema has no timestamps: editors see text
        return value.isoformat()
    if value is None or isinstance(value, str | int | float):
        return value
    raise DataRefusedError(f"a {type(value).__name__} has no JSON form")


def load_as_data(raw: bytes) -> Any:
    """The file as the schema sees it; raises DataRefusedError."""
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = True  # keeps the first, as the validator does; the duplicate is reported there
    try:
        return _json_value(yaml.load(raw.decode("utf-8").removeprefix("\ufeff")))
    except (YAMLError, ValueError) as exc:
        raise DataRefusedError(str(exc).splitlines()[0]) from exc


# -- one repository, both sides ---------------------------------------------------------------------


@dataclass
class FileVerdict:
    path: str
    kind: str
    problems: list[Problem]
    refused: str | None = None
    """Why the YAML layer or the data loader refused the file; None when the schema judged it."""
    errors: list[jsonschema.ValidationError] = field(default_factory=list)
    positions: dict[tuple[int, int], set[JsonPath]] = field(default_factory=dict)

    def describe_errors(self) -> str:
        return "\n".join(f"  {_show(error.absolute_path)}: {error.message}" for error in self.errors)


def _show(path: Any) -> str:
    return "/" + "/".join(str(part) for part in path)


def _yaml_files(root: Path) -> Iterator[tuple[str, str]]:
    """(path, kind) of the files validate reads: reconciler.yaml and environments/*.yaml."""
    if (root / "reconciler.yaml").is_file():
        yield "reconciler.yaml", "config"
    directory = root / "environments"
    if directory.is_dir():
        for entry in sorted(directory.iterdir()):
            inside = entry.resolve().is_relative_to(root.resolve())
            if entry.name.endswith(".yaml") and not entry.name.startswith(".") and entry.is_file() and inside:
                yield f"environments/{entry.name}", "environment"


def _positions(root: Node, *, mappings_only: bool = False) -> dict[tuple[int, int], set[JsonPath]]:
    """(line, column) of every node of the validator's tree -> the data paths found there (a key counts as
    the path of its value: that is where an unknown field or a bad name is reported)."""
    index: dict[tuple[int, int], set[JsonPath]] = defaultdict(set)
    stack: list[tuple[Node, JsonPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, MappingNode) or not mappings_only:
            index[node.line, node.column].add(path)
        if isinstance(node, MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value) if isinstance(key, ScalarNode) else "?")
                if not mappings_only:
                    index[key.line, key.column].add(child)
                stack.append((value, child))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*path, number)) for number, item in enumerate(node.value))
    return dict(index)


def _config_readable(root: Path) -> bool:
    """Whether the validator could read reconciler.yaml as a mapping, and so knows the environment names."""
    config = root / "reconciler.yaml"
    return config.is_file() and isinstance(parse_yaml("reconciler.yaml", config.read_bytes()).root, MappingNode)


def judge(root: Path) -> list[FileVerdict]:
    """Every YAML file of the repository at ``root``, as the validator and as the schema see it."""
    by_file: dict[str, list[Problem]] = defaultdict(list)
    for problem in validate_directory(root):
        by_file[problem.file].append(problem)
    verdicts = []
    for path, kind in _yaml_files(root):
        verdict = FileVerdict(path, kind, by_file.get(path, []))
        verdicts.append(verdict)
        refusal = [problem.code for problem in verdict.problems if problem.code in REFUSED_BEFORE_VALIDATION]
        if refusal:
            verdict.refused = f"the YAML layer refuses it ({refusal[0]})"
            continue
        raw = (root / path).read_bytes()
        try:
            instance = load_as_data(raw)
        except DataRefusedError as exc:
            verdict.refused = f"no JSON data: {exc}"
            continue
        verdict.errors = list(VALIDATORS[kind].iter_errors(instance))
        name_errors = [
            error
            for error in verdict.errors
            if tuple(error.absolute_path) == ("environment",) and error.validator == "pattern"
        ]
        if kind == "environment" and name_errors and not _config_readable(root):
            # Without reconciler.yaml the validator does not know the environment names and checks an
            # environment file on its own; every name reconciler.yaml can declare matches the pattern.
            verdict.errors = [error for error in verdict.errors if error not in name_errors]
        if any(problem.code in SHAPE for problem in verdict.problems):
            parsed = parse_yaml(path, raw)
            assert parsed.root is not None, f"{path}: a shape problem in a file without a document"
            verdict.positions = _positions(parsed.root)
    return verdicts


def _seen_by_schema(problem: Problem, verdict: FileVerdict) -> bool:
    error_paths = {tuple(error.absolute_path) for error in verdict.errors}
    for path in verdict.positions.get((problem.line, problem.column), ()):
        if path in error_paths or (path and path[:-1] in error_paths):
            return True
    return False


def disagreements(verdicts: list[FileVerdict]) -> list[str]:
    """What breaks the agreement, one line (or block) per finding; empty when the two agree."""
    found = []
    for verdict in verdicts:
        if verdict.refused is not None:
            if not any(problem.code in YAML_LAYER for problem in verdict.problems):
                found.append(f"{verdict.path}: refused ({verdict.refused}) but the validator reads it")
            continue
        if not verdict.problems and verdict.errors:
            found.append(
                f"{verdict.path}: the validator accepts it, the schema rejects it:\n{verdict.describe_errors()}"
            )
        for problem in verdict.problems:
            if problem.code not in SHAPE or any(part in problem.message for part in SCHEMA_CANNOT_SEE):
                continue
            if not _seen_by_schema(problem, verdict):
                found.append(
                    f"{verdict.path}:{problem.line}:{problem.column}: the schema misses [{problem.code}] "
                    f"{problem.message}\n  schema errors:\n{verdict.describe_errors() or '  none'}"
                )
        unclassified = {problem.code for problem in verdict.problems} - SHAPE - CONTEXT - YAML_LAYER
        if unclassified:
            found.append(f"{verdict.path}: unclassified problem codes {sorted(unclassified)}")
    return found


def validator_only(verdicts: list[FileVerdict]) -> list[str]:
    """Files the validator rejects and the schema accepts, with the codes: what an editor cannot show."""
    return [
        f"{verdict.path}: {', '.join(sorted({problem.code for problem in verdict.problems}))}"
        for verdict in verdicts
        if verdict.refused is None and verdict.problems and not verdict.errors
    ]


# -- the schemas themselves -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_schema_is_valid_and_self_describing(kind: str) -> None:
    schema = load_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert type(VALIDATORS[kind]) is jsonschema.Draft202012Validator
    assert schema["title"]
    assert schema["description"]

    def undescribed(node: Any, path: str) -> Iterator[str]:
        """Fields without a description, walking the structure (not if/then/not: they only constrain)."""
        if not isinstance(node, dict):
            return
        for name, item in node.get("properties", {}).items():
            if "description" not in item and "$ref" not in item:
                yield f"{path}/properties/{name}"
            yield from undescribed(item, f"{path}/properties/{name}")
        for name, item in node.get("$defs", {}).items():
            yield from undescribed(item, f"{path}/$defs/{name}")
        for key in ("additionalProperties", "items"):
            yield from undescribed(node.get(key), f"{path}/{key}")

    # An editor shows the description on hover and in completions: every field says what it is.
    assert list(undescribed(schema, "#")) == []


def test_every_problem_code_is_classified_once() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("### Every problem code", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE))
    assert len(documented) > 30
    assert len(SHAPE) + len(CONTEXT) + len(YAML_LAYER) == len(SHAPE | CONTEXT | YAML_LAYER), "classified twice"
    assert documented == SHAPE | CONTEXT | YAML_LAYER


def _schema_at(schema: dict[str, Any], path: JsonPath) -> dict[str, Any]:
    """The subschema that describes the value at ``path`` (through properties, additionalProperties, items)."""
    node = schema
    for part in (*path, None):
        while "$ref" in node:
            node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
        if part is None:
            break
        if isinstance(part, int):
            node = node["items"]
        else:
            node = node.get("properties", {}).get(part) or node["additionalProperties"]
    return node


def test_schema_has_exactly_the_fields_the_validator_knows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every fixed-field mapping the validator reads (``Checker.fields``) has the same fields, and the same
    required ones, in the schema: a field added to one definition fails here, not in a user's editor. The
    repository is the example plus the mappings it does not have (each kind of mapping must be present once)."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    config = root / "reconciler.yaml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("  d: {keep: 10, max_age_days: 30}", "  d: {keep: 10, images: {payments/api: {keep: 2}}}")
    config.write_text(text + "promotion:\n  default: {keep_previous: 1}\n", encoding="utf-8")
    seen: list[tuple[str, int, int, tuple[str, ...], tuple[str, ...]]] = []
    read_fields = Checker.fields

    def recording(checker: Checker, node: Node, what: str, **known: tuple[str, ...]) -> dict[str, Node] | None:
        if isinstance(node, MappingNode):
            seen.append((checker.file, node.line, node.column, known.get("required", ()), known.get("optional", ())))
        return read_fields(checker, node, what, **known)

    monkeypatch.setattr(Checker, "fields", recording)
    assert validate_directory(root) == []

    mappings: dict[tuple[str, int, int], JsonPath] = {}
    for file, _kind in _yaml_files(root):
        parsed = parse_yaml(file, (root / file).read_bytes())
        assert parsed.root is not None
        for (line, column), paths in _positions(parsed.root, mappings_only=True).items():
            mappings[file, line, column] = min(paths)
    checked: set[JsonPath] = set()
    for file, line, column, required, optional in seen:
        kind = "config" if file == "reconciler.yaml" else "environment"
        path = mappings[file, line, column]
        subschema = _schema_at(load_schema(kind), path)
        where = f"{SCHEMA_FILES[kind]} at {_show(path)}"
        assert set(subschema.get("properties", {})) == {*required, *optional}, where
        assert set(subschema.get("required", [])) == set(required), where
        assert subschema.get("additionalProperties") is False, where
        checked.add(path)
    sections = {path[0] for path in checked if path}
    assert sections >= {"registries", "environments", "retention", "promotion", "base_images", "gates", "images"}
    assert ("retention", "d", "images", "payments/api") in checked


# -- the corpus and the example ---------------------------------------------------------------------


@pytest.mark.parametrize("case", [*CASES, "examples/manifests"])
def test_schema_agrees_with_validator(case: str, tmp_path: Path) -> None:
    if case == "examples/manifests":
        root = EXAMPLE
    else:
        root = tmp_path / case
        shutil.copytree(CORPUS / case, root)
        inflate(root)
    verdicts = judge(root)
    assert verdicts, f"{case} has no YAML file"
    assert disagreements(verdicts) == []
    for line in validator_only(verdicts):
        print(f"{case}/{line}")  # informative: pytest -rP lists what only the validator reports


def test_the_agreement_check_can_fail(tmp_path: Path) -> None:
    """A schema error on a valid file, and a missed shape problem, are both reported."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    verdicts = judge(root)
    config = next(verdict for verdict in verdicts if verdict.kind == "config")
    config.errors = [jsonschema.ValidationError("made up", path=["version"])]
    assert any("the schema rejects it" in line for line in disagreements(verdicts))

    environment = root / "environments" / "t.yaml"
    environment.write_text(environment.read_text().replace("environment: t", "environment: t\nowner: x"))
    verdicts = [verdict for verdict in judge(root) if verdict.path == "environments/t.yaml"]
    assert [problem.code for problem in verdicts[0].problems] == ["unknown-field"]
    assert disagreements(verdicts) == []
    verdicts[0].errors = []
    assert any("the schema misses [unknown-field]" in line for line in disagreements(verdicts))


def test_environment_name_pattern_waits_for_a_readable_config(tmp_path: Path) -> None:
    """Without reconciler.yaml the validator checks an environment file on its own and accepts any name; with
    it, a name no environment can have is an unknown environment. The schema's name pattern is held to the
    second, the case that matters: an environment file is only ever valid beside a valid reconciler.yaml."""
    root = tmp_path / "repo"
    (root / "environments").mkdir(parents=True)
    (root / "environments" / "Prod.yaml").write_text("environment: Prod\nimages: {}\n", encoding="utf-8")
    (verdict,) = [verdict for verdict in judge(root) if verdict.kind == "environment"]
    assert (verdict.problems, verdict.errors) == ([], [])

    shutil.copy(EXAMPLE / "reconciler.yaml", root / "reconciler.yaml")
    (root / "trust").mkdir()
    shutil.copy(EXAMPLE / "trust" / "p_allowed_signers", root / "trust")
    (verdict,) = [verdict for verdict in judge(root) if verdict.kind == "environment"]
    assert [problem.code for problem in verdict.problems] == ["unknown-environment"]
    assert [error.validator for error in verdict.errors] == ["pattern"]


def test_values_the_validator_reads_as_text_reach_the_schema_as_numbers(tmp_path: Path) -> None:
    """The cases that made the schema stricter than the validator, now pinned down."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    config = root / "reconciler.yaml"
    config.write_text(
        config.read_text()
        .replace("max_bytes: 500Gi", "max_bytes: ' 500 Gi '")
        .replace("prefix: s1", "prefix: 1.5")
        .replace("naming:\n  tag: '^\\d{8}_\\d{2}$'", "naming:\n  tag: '^(\\d{8}_\\d{2}|\\d+|[a-z]+ [a-z]+)$'")
    )
    environment = root / "environments" / "d.yaml"
    environment.write_text(
        environment.read_text()
        .replace('tag: "20261124_01"', "tag: 20261124_01")  # the number 2026112401 as data
        .replace('tag: "20261126_02"', "tag: 7")
        .replace('tag: "20261127_01"', 'tag: "not semver"')
    )
    verdicts = judge(root)
    assert [problem for verdict in verdicts for problem in verdict.problems] == []
    assert disagreements(verdicts) == []


# -- generated valid repositories -------------------------------------------------------------------


class Plain(str):
    """Text written as a plain (unquoted) scalar whatever it resolves to: ``20261127_01``, ``true``, ``1.5``.
    The validator reads such a value as the text written; a data loader makes it a number or a boolean."""

    __slots__ = ()


class _Representer(SafeRepresenter):
    pass


def _plain_tag(text: str) -> str:
    """What YAML 1.2 makes of ``text`` written plain."""
    return str(_RESOLVER.resolve(YamlScalarNode, text, (True, False)))


def _represent_plain(representer: SafeRepresenter, value: Plain) -> Any:
    return representer.represent_scalar(_plain_tag(value), str(value))


_Representer.add_representer(Plain, _represent_plain)


def _written(text: str, *, keys: bool = False) -> st.SearchStrategy[str]:
    """``text`` quoted as needed, or written plain when YAML reads that as a string, number, boolean or date
    (for keys: not a float, whose JSON key would be Python's spelling of the number, not the text)."""
    plain_as = _PLAIN_KEY_TAGS if keys else _PLAIN_TAGS
    if text != text.strip() or _plain_tag(text) not in plain_as:
        return st.just(text)
    return st.sampled_from([text, Plain(text)])


_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def _joined(separators: list[str], *, first: str = _ALNUM, most: int = 2) -> st.SearchStrategy[str]:
    """Lowercase alphanumeric runs joined by ``separators``: ``a0``, ``team.app``, ``x--1``."""
    run = st.text(_ALNUM, min_size=1, max_size=4)
    tail = st.lists(st.tuples(st.sampled_from(separators), run), max_size=most) if separators else st.just([])
    return st.builds(
        lambda head, rest, parts: head + rest + "".join(sep + part for sep, part in parts),
        st.sampled_from(first),
        st.text(_ALNUM, max_size=3),
        tail,
    )


REGISTRY_NAMES = _joined([".", "_", "-"]) | st.sampled_from(["1", "01", "true", "0x1f", "1e999"])
ENVIRONMENT_NAMES = _joined([], first="abcdefghijklmnopqrstuvwxyz") | st.sampled_from(["true", "false", "null", "yes"])
COMPONENTS = _joined([".", "_", "__", "-", "--"], most=1)
PREFIXES = COMPONENTS | st.sampled_from(["123", "1.5", "1e3", "0x1f", "true", "2026-01-01"])
IMAGE_NAMES = st.lists(COMPONENTS, min_size=1, max_size=3).map("/".join)
HOSTS = (
    st.text(_ALNUM + "ABC.-", min_size=1, max_size=12)
    | st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(lambda address: f"[{address}]")
)
LOOPBACK_HOSTS = st.sampled_from(["localhost", "LOCALHOST", "ci.localhost", "127.0.0.1", "127.8.0.255", "[::1]"])
MEDIA_TYPES = st.builds(
    lambda kind, sub: f"{kind}/{sub}",
    _joined(["", "+", "-", "."], most=1),
    st.tuples(st.sampled_from(_ALNUM), st.text(_ALNUM + "!#$&^_.+-", max_size=8)).map("".join),
)
# Any text the validator takes for a value it only reads (paths, labels, base image names, tags under a
# permissive naming rule): printable, and sometimes what YAML reads as a number, a boolean or a date.
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12) | st.sampled_from(
    ["1", "0x1", "01", "1.0", "1.5", "1e3", "True", "true", "2026-01-01", ".inf", "-7", "a b", "@x"]
)


def _hexes(length: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=length, max_size=length)


DIGESTS = _hexes(64).map(lambda hexes: f"sha256:{hexes}") | _hexes(128).map(lambda hexes: f"sha512:{hexes}")


def _whole_numbers(minimum: int) -> st.SearchStrategy[Any]:
    """A whole number as YAML 1.2 may write it: 12, +12, 0xC, 0o14, 0b1100, 1_2."""
    spell = st.sampled_from([str, lambda n: f"+{n}", hex, lambda n: f"0o{n:o}", bin, lambda n: f"{n:_}"])
    numbers = st.integers(minimum, minimum + 2) | st.integers(minimum, 10**7)  # the boundary, often
    return numbers | st.builds(lambda n, how: Plain(how(n)), numbers, spell)


def _sizes() -> st.SearchStrategy[Any]:
    units = st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "Pi", "K", "k", "M", "G", "T", "P"])
    spaces = st.sampled_from(["", " ", "\t"])
    text = st.builds(
        lambda lead, n, mid, unit, b, tail: f"{lead}{n}{mid}{unit}{b}{tail}",
        spaces,
        st.integers(0, 10**6),
        spaces,
        units,
        st.sampled_from(["", "B"]),
        spaces,
    )
    return st.integers(0, 10**12) | text | text.filter(lambda t: t == t.strip()).map(Plain)


def _spelled(flag: bool) -> st.SearchStrategy[Any]:
    """``flag`` as YAML 1.2 may write it: true, True, TRUE."""
    text = str(flag).lower()
    return st.sampled_from([flag, Plain(text.capitalize()), Plain(text.upper())])


def _booleans() -> st.SearchStrategy[Any]:
    return st.booleans().flatmap(_spelled)


def _urls(*, insecure: bool) -> st.SearchStrategy[str]:
    """Registry URLs reconciler accepts: any scheme case, a port with leading zeros or none after ':', trailing
    slashes, white space around; plain http only to loopback unless the registry is insecure."""
    secure = st.tuples(st.sampled_from(["https", "HTTPS"]), HOSTS)
    plain = st.tuples(st.sampled_from(["http", "Http"]), HOSTS if insecure else LOOPBACK_HOSTS)
    return st.builds(
        lambda scheme_host, port, slashes, pad: f"{pad}{scheme_host[0]}://{scheme_host[1]}{port}{slashes}{pad}",
        secure | plain,
        st.sampled_from(["", ":5000", ":0", ":65535", ":080", ":"]),
        st.sampled_from(["", "/", "//"]),
        st.sampled_from(["", " "]),
    )


def _each_written(texts: list[str]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*[_written(text) for text in texts]).map(list)


NAMING_RULES: list[tuple[str, st.SearchStrategy[str]]] = [
    (
        DEFAULT_TAG_PATTERN,
        st.builds(
            lambda day, build: f"{day.year:04d}{day.month:02d}{day.day:02d}_{build:02d}",
            st.dates(datetime.date(1, 1, 1)),
            st.integers(0, 99),
        ),
    ),
    (r"^v\d+\.\d+\.\d+$", st.builds(lambda a, b, c: f"v{a}.{b}.{c}", *[st.integers(0, 99)] * 3)),
    (r"^\d+$", st.integers(0, 10**9).map(str)),
    (".", ANY_TEXT),
]


@dataclass
class Generated:
    config: dict[Any, Any]
    environments: dict[str, dict[Any, Any]]
    files: set[str]
    """Relative files ca_bundle and allowed_signers name, which must exist."""
    flow_style: bool | None


@st.composite
def repositories(draw: st.DrawFn) -> Generated:
    """A valid desired state, built as data; values are spelled every way the validator accepts."""
    files: set[str] = set()

    def local_file() -> str:
        path = draw(st.sampled_from(["/etc/ssl/certs/ca.pem", "ca.pem", "certs/site.pem", "1", "true"]))
        if not path.startswith("/"):
            files.add(path)
        return draw(_written(path))

    registry_names = draw(st.lists(REGISTRY_NAMES, min_size=1, max_size=2, unique=True))
    registries: dict[Any, Any] = {}
    for name in registry_names:
        insecure = draw(st.booleans())
        registry: dict[str, Any] = {"url": draw(_urls(insecure=insecure))}
        if insecure or draw(st.booleans()):
            registry["insecure"] = draw(_spelled(insecure))
        if draw(st.booleans()):
            registry["ca_bundle"] = local_file()
        if draw(st.booleans()):
            registry["max_concurrency"] = draw(_whole_numbers(1))
        registries[draw(_written(name, keys=True))] = registry

    env_names = draw(st.lists(ENVIRONMENT_NAMES, min_size=1, max_size=3, unique=True))
    prefixes = draw(st.lists(PREFIXES, min_size=len(env_names), max_size=len(env_names), unique=True))
    environments: dict[Any, Any] = {}
    for index, name in enumerate(env_names):
        environment: dict[str, Any] = {"prefix": draw(_written(prefixes[index]))}
        targets = draw(st.lists(st.sampled_from(registry_names), min_size=1, max_size=3, unique=True))
        if len(targets) == 1 and draw(st.booleans()):
            environment["registry"] = draw(_written(targets[0]))
        else:
            environment["registries"] = draw(_each_written(targets))
        if index == 0 or draw(st.integers(0, 4)) == 0:
            environment["source"] = draw(_spelled(True))
        else:
            environment["from"] = draw(_written(draw(st.sampled_from(env_names[:index]))))
            if draw(st.booleans()):
                environment["source"] = draw(st.sampled_from([False, Plain("False")]))
        immutable = draw(st.booleans())
        if immutable or draw(st.booleans()):
            environment["immutable_tags"] = draw(_spelled(True)) if immutable else False
        if draw(st.booleans()):
            environment["allow_tag_moves"] = False if immutable else draw(_booleans())
        environments[draw(_written(name, keys=True))] = environment

    config: dict[Any, Any] = {"version": draw(st.sampled_from([1, Plain("0x1"), Plain("+1"), Plain("01")]))}
    config["registries"] = registries
    config["environments"] = environments

    pattern, tags = draw(st.sampled_from(NAMING_RULES))
    forbidden = draw(st.lists(ANY_TEXT, max_size=3, unique=True))
    naming: dict[str, Any] = {}
    if draw(st.booleans()) or pattern != DEFAULT_TAG_PATTERN:
        naming["tag"] = draw(_written(pattern))
    if draw(st.booleans()) or forbidden:
        naming["forbidden_tags"] = draw(_each_written(forbidden))
    if naming:
        config["naming"] = naming
    rule = TagRule(NamingRule(pattern, ("latest", *forbidden)))

    archives = draw(st.booleans())  # `archive: true` in a retention rule needs the archive section
    if draw(st.booleans()):
        owners = draw(st.lists(st.sampled_from(["default", *env_names]), max_size=3, unique=True))
        kept = {"keep": _whole_numbers(0), "max_age_days": _whole_numbers(1), "archive": _spelled(archives)}
        per_image = st.dictionaries(IMAGE_NAMES, st.fixed_dictionaries({}, optional=kept), max_size=2)
        config["retention"] = {
            draw(_written(owner, keys=True)): draw(
                st.fixed_dictionaries({}, optional={**kept, "max_bytes": _sizes(), "images": per_image})
            )
            for owner in owners
        }
    if draw(st.booleans()):
        owners = draw(st.lists(st.sampled_from(["default", *env_names]), max_size=3, unique=True))
        config["promotion"] = {
            draw(_written(owner, keys=True)): {"keep_previous": draw(_whole_numbers(0))} for owner in owners
        }
    if archives:
        archive: dict[str, Any] = {"store": draw(ANY_TEXT.flatmap(_written))}
        if draw(st.booleans()):
            archive["destroy_after_days"] = draw(_whole_numbers(1))
        config["archive"] = archive
    base_names = draw(st.lists(ANY_TEXT, max_size=2, unique=True))
    if draw(st.booleans()) or base_names:
        config["base_images"] = {
            draw(_written(name, keys=True)): {
                "reference": f"{draw(st.sampled_from(registry_names))}/{draw(IMAGE_NAMES)}@{draw(DIGESTS)}"
            }
            for name in base_names
        }
    if draw(st.booleans()):
        gates: dict[Any, Any] = {}
        for owner in draw(st.lists(st.sampled_from(env_names), max_size=3, unique=True)):
            gate = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "non_root": _booleans(),
                        "exec_form": _booleans(),
                        "max_layers": _whole_numbers(1),
                        "max_bytes": _sizes(),
                        "labels": st.lists(ANY_TEXT, max_size=3, unique=True).flatmap(_each_written),
                        "require_artifacts": st.lists(
                            st.sampled_from(["signature", "attestation", "sbom"]) | MEDIA_TYPES, max_size=3, unique=True
                        ),
                    },
                )
            )
            if draw(st.booleans()) and base_names:
                gate["base"] = draw(_written(draw(st.sampled_from(base_names))))
            gates[draw(_written(owner, keys=True))] = gate
        config["gates"] = gates
    if draw(st.booleans()):
        owners = draw(st.lists(st.sampled_from(env_names), max_size=3, unique=True))
        config["trust"] = {draw(_written(owner, keys=True)): {"allowed_signers": local_file()} for owner in owners}

    # One digest per image tag across environments; each tag once per image and file.
    digests: dict[tuple[str, str], str] = {}
    files_by_env: dict[str, dict[Any, Any]] = {}
    for name in env_names:
        images: dict[str, list[dict[str, Any]]] = {}
        for image in draw(st.lists(IMAGE_NAMES, max_size=2, unique=True)):
            texts = draw(
                st.lists(tags.filter(lambda tag: rule.problem(tag) is None), min_size=1, max_size=2, unique=True)
            )
            images[image] = [
                {"tag": draw(_written(tag)), "digest": digests.setdefault((image, tag), draw(DIGESTS))} for tag in texts
            ]
        empty: dict[str, Any] | None = draw(st.sampled_from([{}, None]))
        files_by_env[name] = {"environment": draw(_written(name)), "images": images or empty}
    return Generated(config, files_by_env, files, draw(st.sampled_from([False, True, None])))


def _dump(document: Any, flow_style: bool | None) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = _Representer
    yaml.default_flow_style = flow_style
    yaml.sort_base_mapping_type_on_output = False  # environments are listed in promotion order
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def write_repository(root: Path, generated: Generated) -> None:
    (root / "environments").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(_dump(generated.config, generated.flow_style), encoding="utf-8")
    for name, document in generated.environments.items():
        (root / "environments" / f"{name}.yaml").write_text(_dump(document, generated.flow_style), encoding="utf-8")
    for path in generated.files:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("trusted\n", encoding="utf-8")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repositories())
def test_schema_accepts_every_generated_valid_repository(generated: Generated) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_repository(root, generated)
        verdicts = judge(root)
        texts = {verdict.path: (root / verdict.path).read_text(encoding="utf-8") for verdict in verdicts}
    problems = [problem for verdict in verdicts for problem in verdict.problems]
    assert problems == [], f"the generator made an invalid repository: {problems}\n{texts}"
    assert len(verdicts) == 1 + len(generated.environments)
    assert disagreements(verdicts) == [], texts
