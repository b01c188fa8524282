"""The RUN-script lexer: commands split as ShellCheck (and so hadolint) splits them, and never a crash."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.policy.lint.shell import Redirect, SimpleCommand, split_commands


def names(script: str) -> list[str]:
    return [command.name for command in split_commands(script)]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("apt-get update && apt-get install -y a || true; echo done", ["apt-get", "apt-get", "true", "echo"]),
        ("a | b |& c & d", ["a", "b", "c", "d"]),
        ("(cd /x && make) && { cd /y; }", ["cd", "make", "cd"]),
        ('echo $(date) `whoami` "$(id -u)"', ["date", "whoami", "id", "echo"]),
        ("echo ${X:-$(cd /p)} $((1 + 2))", ["cd", "echo"]),
        ("diff <(ls /a) <(ls /b)", ["ls", "ls", "diff"]),
        ("if [ -f x ]; then a; elif test -d y; then b; else c; fi", ["a", "test", "b", "c"]),
        ("for i in 1 2; do echo $i; done; while true; do break; done", ["echo", "true", "break"]),
        ("case $x in a) one;; b|c) two;; esac", ["one", "two"]),
        ("f() { body; }", ["body"]),
        ("X=1 Y=2 cmd arg; Z=3", ["cmd"]),
        ("exec cd /a; command cd /b; builtin cd /c; sudo cd /d", ["cd", "cd", "cd", "sudo"]),
        ("time make; ! false", ["time", "make", "false"]),
        ("[[ -f x ]] && echo y", ["echo"]),
        ("echo '#not a comment' # a comment && rm -rf /", ["echo"]),
        ("echo a \\\n  && echo b", ["echo", "echo"]),
        ("line one\nline two\n\n# comment\nline three", ["line", "line", "line"]),
    ],
)
def test_command_names(script: str, expected: list[str]) -> None:
    assert names(script) == expected


def test_words_are_unquoted_and_redirects_kept() -> None:
    [command] = split_commands("""tee -a "/var/log/a b.log" 'x y' z\\ w >> out.log 2>&1 < in""")
    assert command == SimpleCommand(
        name="tee",
        arguments=("-a", "/var/log/a b.log", "x y", "z w"),
        redirects=(Redirect(">>", "out.log"), Redirect("2>&", "1"), Redirect("<", "in")),
    )


def test_flags() -> None:
    [command] = split_commands("apk add -U --no-cache=true --virtual .deps gcc")
    assert command.has_flag("no-cache")
    assert command.has_flag("U")
    assert command.has_flag("virtual")
    assert not command.has_flag("cache")
    assert command.positional() == ("add", ".deps", "gcc")
    assert command.has_argument("add", "del")
    assert not command.has_argument("del")


@pytest.mark.parametrize(
    "script", ["echo 'unterminated", 'echo "open $(cd', "a && ((", "))) ;; |", "`", "${", "<<", "\\"]
)
def test_broken_scripts_do_not_raise(script: str) -> None:
    split_commands(script)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab =$(){}[]`'\"\\;&|<>#\n\t-/.*!")), max_size=60))
def test_never_raises_on_any_text(script: str) -> None:
    for command in split_commands(script):
        assert isinstance(command.name, str)


_WORD = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00\r"), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORD, min_size=1, max_size=6))
def test_quoted_words_round_trip(words: list[str]) -> None:
    """Whatever a word holds, ``shlex.quote`` makes it one argument, read back exactly."""
    script = "cmd " + " ".join(shlex.quote(word) for word in words)
    assert split_commands(script) == [SimpleCommand("cmd", tuple(words))]
