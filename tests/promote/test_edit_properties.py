"""Property tests of the environment-file edits: random valid files in every style, random edits.

For each generated file and edit: reconciler's own loader reads exactly the expected pins; the edit
functions read them back too; every line outside the edited image's block is unchanged; the line endings,
the final newline (or its absence) and the byte-order mark are kept; and adding a version then removing
it gives back the original bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifests.edit import add_version, read_pins, remove_versions
from reconciler.manifests.envfile import TagRule, validate_environment_file
from reconciler.manifests.yamltree import parse_yaml
from reconciler.model.desired import NamingRule

Pins = dict[str, list[tuple[str, str]]]

tags = st.builds(
    lambda day, number: f"{day:%Y%m%d}_{number:02d}",
    st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31)),
    st.integers(min_value=1, max_value=99),
)
digests = st.binary(min_size=8, max_size=8).map(lambda raw: "sha256:" + hashlib.sha256(raw).hexdigest())
components = st.from_regex(r"[a-z][a-z0-9]{0,4}", fullmatch=True)
image_names = st.one_of(components, st.builds(lambda a, b: f"{a}/{b}", components, components))
COMMENTS = ["# note", "# é ü 日本 🚀", "#", "# - {tag: old}"]


@dataclass
class Layout:
    style: str
    tag_quote: str
    digest_quote: str
    key_indent: int
    dash_indent: int
    newline: str
    final_newline: bool
    bom: bool
    comments: bool
    empty_images: str


@dataclass
class EnvFile:
    data: bytes
    layout: Layout
    pins: Pins
    images_line: int
    blocks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Image -> (key line, last line of its last entry), 0-based."""


layouts = st.builds(
    Layout,
    style=st.sampled_from(["flow", "block"]),
    tag_quote=st.sampled_from(['"', "'", ""]),
    digest_quote=st.sampled_from(['"', "'", ""]),
    key_indent=st.sampled_from([2, 4]),
    dash_indent=st.sampled_from([0, 2]),
    newline=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
    bom=st.booleans(),
    comments=st.booleans(),
    empty_images=st.sampled_from(["images: {}", "images:", "images: {}  # none yet"]),
)


@st.composite
def env_files(draw: st.DrawFn) -> EnvFile:
    layout = draw(layouts)
    names = draw(st.lists(image_names, unique=True, max_size=5))
    if draw(st.booleans()):
        names.sort()
    pins: Pins = {
        name: draw(st.lists(st.tuples(tags, digests), min_size=1, max_size=4, unique_by=lambda pin: pin[0]))
        for name in names
    }
    comment = st.sampled_from(COMMENTS) if layout.comments else st.just("")
    lines = [draw(comment) or "# environment t", "environment: t"]
    images_line = len(lines)
    lines.append("images:" + (f"  {draw(comment)}" if draw(comment) else "") if names else layout.empty_images)
    blocks: dict[str, tuple[int, int]] = {}
    key = " " * layout.key_indent
    dash = " " * (layout.key_indent + layout.dash_indent)
    for name in names:
        if draw(comment):
            lines.append(key + draw(comment))
        first = len(lines)
        lines.append(f"{key}{name}:")
        for tag, digest in pins[name]:
            tail = f"  {draw(comment)}" if draw(comment) else ""
            tag_text = f"{layout.tag_quote}{tag}{layout.tag_quote}"
            digest_text = f"{layout.digest_quote}{digest}{layout.digest_quote}"
            if layout.style == "flow":
                lines.append(f"{dash}- {{tag: {tag_text}, digest: {digest_text}}}{tail}")
            else:
                lines.append(f"{dash}- tag: {tag_text}{tail}")
                lines.append(f"{dash}  digest: {digest_text}")
        blocks[name] = (first, len(lines) - 1)
    if draw(comment):
        lines.append(draw(comment))
    text = layout.newline.join(lines) + (layout.newline if layout.final_newline else "")
    data = ("\ufeff" if layout.bom else "").encode() + text.encode()
    return EnvFile(data, layout, pins, images_line, blocks)


def loaded(data: bytes) -> Pins:
    state, problems = validate_environment_file(parse_yaml("environments/t.yaml", data), "t", TagRule(NamingRule()))
    assert problems == [], problems
    assert state is not None
    return {image: [(pin.tag, pin.digest) for pin in pins] for image, pins in state.images.items()}


def changed_region(before: list[str], after: list[str]) -> tuple[int, int]:
    """[start, end) of the lines of ``before`` that differ from ``after`` (empty for a pure insertion)."""
    prefix = 0
    while prefix < min(len(before), len(after)) and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(before), len(after)) - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    return prefix, len(before) - suffix


def check_form(original: EnvFile, data: bytes) -> None:
    layout = original.layout
    assert data.startswith("\ufeff".encode()) == layout.bom
    text = data.decode().removeprefix("\ufeff")
    assert text.endswith(("\n", "\r")) == layout.final_newline
    if layout.newline == "\r\n":
        assert "\n" not in text.replace("\r\n", "")
    else:
        assert "\r" not in text


def lines_of(data: bytes) -> list[str]:
    return data.decode().removeprefix("\ufeff").splitlines()


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(env_files(), st.data())
def test_adding_a_version_changes_only_that_image(env: EnvFile, data: st.DataObject) -> None:
    assert loaded(env.data) == env.pins
    new_image = not env.pins or data.draw(st.booleans())
    if new_image:
        image = data.draw(image_names.filter(lambda name: name not in env.pins))
    else:
        image = data.draw(st.sampled_from(sorted(env.pins)))
    taken = {tag for tag, _digest in env.pins.get(image, [])}
    pin = (data.draw(tags.filter(lambda tag: tag not in taken)), data.draw(digests))
    keep_previous = data.draw(st.sampled_from([None, 0, 1, 2]))
    edit = add_version(env.data, image, *pin, keep_previous=keep_previous)

    previous = env.pins.get(image, [])
    dropped = max(0, len(previous) - keep_previous) if keep_previous is not None else 0
    expected = {**env.pins, image: [*previous[dropped:], pin]}
    assert loaded(edit.data) == expected
    assert {name: [(p.tag, p.digest) for p in pins] for name, pins in read_pins(edit.data).items()} == expected
    assert [(p.tag, p.digest) for p in edit.removed] == previous[:dropped]
    check_form(env, edit.data)

    start, end = changed_region(lines_of(env.data), lines_of(edit.data))
    if new_image and env.pins:
        assert start == end, "a new image is a pure insertion"
        order = list(read_pins(edit.data))
        following = [name for name in env.pins if name > image]
        if following:
            assert order.index(image) == order.index(following[0]) - 1
    elif new_image:
        assert env.images_line <= start <= end <= env.images_line + 1
    else:
        first, last = env.blocks[image]
        assert first + 1 <= start <= end <= last + 1, "only the edited image's entries change"
    if keep_previous is None:
        assert remove_versions(edit.data, image, [pin[0]]).data == env.data or (new_image and not env.pins)


@SETTINGS
@given(env_files().filter(lambda env: bool(env.pins)), st.data())
def test_removing_versions_changes_only_that_image(env: EnvFile, data: st.DataObject) -> None:
    image = data.draw(st.sampled_from(sorted(env.pins)))
    all_tags = [tag for tag, _digest in env.pins[image]]
    gone = data.draw(st.lists(st.sampled_from(all_tags), min_size=1, unique=True))
    edit = remove_versions(env.data, image, gone)
    kept = [pin for pin in env.pins[image] if pin[0] not in gone]
    expected = {name: pins for name, pins in env.pins.items() if name != image}
    if kept:
        expected[image] = kept
    assert loaded(edit.data) == expected
    check_form(env, edit.data)
    start, end = changed_region(lines_of(env.data), lines_of(edit.data))
    first, last = env.blocks[image]
    low = env.images_line if not expected else first if not kept else first + 1
    assert low <= start <= end <= last + 1
