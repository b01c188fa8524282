"""The simple commands of a ``RUN`` script, read the way a POSIX shell splits them.

The lint rules ask questions such as "does this RUN call ``yum install`` and then ``yum clean all``?"
or "is there a ``cd``?". They need the script cut into simple commands (name, arguments, redirections)
with quotes removed, across ``&&``, ``||``, ``;``, pipes, newlines, subshells, ``{ ...; }`` groups,
``if``/``while``/``for`` bodies and ``$(...)``/backtick substitutions, which is how hadolint (through
ShellCheck's parser) sees them too. This is a lexer and a flat command splitter, not a shell: nothing
is expanded, a variable stays ``$NAME`` in the word, and a syntax error never raises (an unterminated
quote ends at the end of the script).

It never runs anything and never reads a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PLAIN = re.compile(r"[^\s;&|()<>'\"\\$`]+")
_SPACE = re.compile(r"[ \t\r]+")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=")
_OPERATOR = re.compile(r"&&|\|\||;;&?|;&|\|&|[;&|()\n]")
_REDIRECT = re.compile(r"[0-9]*(?:&>>|&>|>>|>&|<&|<>|>\||<<<|<<-|<<|>|<)")

_REOPEN = frozenset({"if", "then", "else", "elif", "do", "while", "until", "{", "!"})
"""Reserved words after which a new command starts (the word itself is not a command)."""
_CLOSE = frozenset({"fi", "done", "esac", "}"})
"""Reserved words that close a compound command: not commands either."""
_WRAPPERS = frozenset({"exec", "command", "builtin", "busybox"})
"""Words that run the command named next (``exec cd /x`` runs ``cd``), as ShellCheck reads them."""
_TIMED = "time"
"""``time cmd``: ShellCheck counts ``time`` as a command of its own, then ``cmd``."""
_CONDITIONS = frozenset({"[", "[["})
"""Test brackets: ShellCheck parses ``[ -d x ]`` as a condition, not a command, and so does this lexer."""
_HEADER = frozenset({"for", "select", "case"})
"""Reserved words whose header up to the next separator (``case``: up to ``in``) holds no command."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """``2>>/var/log/x.log`` is ``Redirect(operator="2>>", target="/var/log/x.log")``."""

    operator: str
    target: str


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """One simple command: ``name`` is its first word after any ``VAR=value`` assignments, quotes removed.

    ``arguments`` are the following words (flags included, in order); ``redirects`` its redirections."""

    name: str
    arguments: tuple[str, ...]
    redirects: tuple[Redirect, ...] = ()

    def has_argument(self, *words: str) -> bool:
        """True when any of ``words`` is one of the arguments (hadolint's ``cmdHasArgs``)."""
        return any(word in self.arguments for word in words)

    def has_flag(self, flag: str) -> bool:
        """True for ``--flag``/``--flag=x``, and for a one-letter ``flag`` also inside ``-xyz`` bundles."""
        for argument in self.arguments:
            if argument.startswith("--"):
                if argument[2:].split("=", 1)[0] == flag:
                    return True
            elif argument.startswith("-") and len(flag) == 1 and flag in argument[1:]:
                return True
        return False

    def positional(self) -> tuple[str, ...]:
        """The arguments that are not flags (a word starting with ``-``)."""
        return tuple(argument for argument in self.arguments if not argument.startswith("-") or argument == "-")


class _Lexer:
    """Splits one script into simple commands; ``$(...)`` and backtick bodies are split recursively."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.commands: list[SimpleCommand] = []
        self.words: list[str] = []  # the command being read
        self.redirects: list[Redirect] = []
        self.skip_header: str | None = None  # in a for/case header: "separator" or "in" ends it
        self.subshells = 0  # open ``(`` groups
        self.cases = 0  # open ``case ... esac`` blocks
        self.in_pattern = False  # reading a case pattern (``a|b)``)

    # -- words -----------------------------------------------------------------------------------

    def _matching(self, opening: str, closing: str, start: int) -> int:
        """Index just past the ``closing`` that matches the ``opening`` before ``start`` (quote-aware)."""
        text, depth, index = self.text, 1, start
        while index < len(text):
            char = text[index]
            if char == "\\":
                index += 2
                continue
            if char == "'":
                end = text.find("'", index + 1)
                index = len(text) if end < 0 else end + 1
                continue
            if char == '"':
                index = self._skip_double_quoted(index + 1, collect=False)
                continue
            if char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1
        return len(text)

    def _skip_double_quoted(self, index: int, *, collect: bool, parts: list[str] | None = None) -> int:
        """Read a double-quoted string's body from ``index``; return the index past its closing quote."""
        text = self.text
        start = index
        while index < len(text):
            char = text[index]
            if char == '"':
                if parts is not None:
                    parts.append(text[start:index])
                return index + 1
            if char == "\\" and index + 1 < len(text):
                if parts is not None:
                    parts.append(text[start:index])
                    following = text[index + 1]
                    parts.append(following if following in '"\\$`\n' else "\\" + following)
                index += 2
                start = index
                continue
            if char == "$" and text.startswith("$(", index) and not text.startswith("$((", index):
                end = self._matching("(", ")", index + 2)
                if collect:
                    self._substitution(text[index + 2 : end - 1])
                index = end
                continue
            if char == "`":
                end = text.find("`", index + 1)
                end = len(text) if end < 0 else end + 1
                if collect:
                    self._substitution(text[index + 1 : end - 1])
                index = end
                continue
            index += 1
        if parts is not None:
            parts.append(text[start:])
        return index

    def _substitution(self, body: str) -> None:
        self.commands.extend(split_commands(body))

    def _expansion(self, body: str) -> None:
        """``${NAME:-$(cmd)}``: the commands of substitutions inside a parameter expansion."""
        if "$(" not in body and "`" not in body:
            return
        inner = _Lexer(body)
        while inner.position < len(body):
            start = inner.position
            inner._word()
            if inner.position == start:
                inner.position += 1
        self.commands.extend(inner.commands)

    def _word(self) -> str:
        """Read one word at ``position`` (which is not a space or an operator); quotes are removed."""
        text, parts = self.text, []
        index = self.position
        while index < len(text):
            plain = _PLAIN.match(text, index)
            if plain is not None:
                parts.append(plain.group())
                index = plain.end()
                continue
            char = text[index]
            if char == "'":
                end = text.find("'", index + 1)
                end = len(text) if end < 0 else end
                parts.append(text[index + 1 : end])
                index = end + 1
            elif char == '"':
                index = self._skip_double_quoted(index + 1, collect=True, parts=parts)
            elif char == "\\":
                if text.startswith("\\\n", index):
                    index += 2
                    continue
                parts.append(text[index + 1 : index + 2])
                index += 2
            elif char == "$":
                if text.startswith("$((", index):
                    end = self._matching("(", ")", index + 3)
                    end = self._matching("(", ")", end) if end < len(text) else end
                elif text.startswith("$(", index):
                    end = self._matching("(", ")", index + 2)
                    self._substitution(text[index + 2 : end - 1])
                elif text.startswith("${", index):
                    end = self._matching("{", "}", index + 2)
                    self._expansion(text[index + 2 : end - 1])
                else:
                    end = index + 1
                parts.append(text[index:end])
                index = end
            elif char == "`":
                end = text.find("`", index + 1)
                end = len(text) if end < 0 else end + 1
                self._substitution(text[index + 1 : end - 1])
                parts.append(text[index:end])
                index = end
            else:  # a space or an operator character ends the word
                break
        self.position = index
        return "".join(parts)

    # -- commands --------------------------------------------------------------------------------

    def _finish(self) -> None:
        """End the command being read (at an operator or the end of the script) and record it."""
        words = self.words
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS):
            words.pop(0)
            while words and words[0].startswith("-") and len(words) > 1:  # ``exec -a name cmd``
                words.pop(0)
        if words and words[0] not in _CONDITIONS:
            self.commands.append(SimpleCommand(words[0], tuple(words[1:]), tuple(self.redirects)))
        self.words = []
        self.redirects = []

    def _operator(self, symbol: str) -> None:
        if self.skip_header == "separator":  # the end of a ``for x in ...`` header
            self.skip_header = None
        elif self.in_pattern:  # ``a|b)`` of a case body: only the closing ``)`` matters
            if symbol == ")":
                self.in_pattern = False
                self.words = []
            return
        elif symbol in (";;", ";&", ";;&") and self.cases:
            self._finish()
            self.in_pattern = True
            return
        elif symbol == "(":
            if self.words:  # ``name()``: a function definition, its name is not a command
                self.words = []
                return
            self.subshells += 1
        elif symbol == ")":
            if not self.subshells:  # the ``)`` of a function definition's ``()``
                self.words = []
                return
            self.subshells -= 1
        self._finish()

    def _word_at_command_start(self, word: str) -> bool:
        """Handle a reserved word where a command would start; True when ``word`` was one."""
        if word == _TIMED:
            self.commands.append(SimpleCommand(word, ()))
        elif word == "esac":
            self.cases = max(0, self.cases - 1)
        elif word == "case":
            self.skip_header = "in"
        elif word in _HEADER:
            self.skip_header = "separator"
        else:
            return word in _REOPEN or word in _CLOSE
        return True

    def run(self) -> list[SimpleCommand]:
        text = self.text
        while self.position < len(text):
            space = _SPACE.match(text, self.position)
            if space is not None:
                self.position = space.end()
                continue
            if text.startswith("\\\n", self.position):
                self.position += 2
                continue
            if text[self.position] == "#" and (self.position == 0 or text[self.position - 1] in " \t\n;&|()"):
                end = text.find("\n", self.position)
                self.position = len(text) if end < 0 else end
                continue
            if text.startswith(("<(", ">("), self.position):  # process substitution
                end = self._matching("(", ")", self.position + 2)
                self._substitution(text[self.position + 2 : end - 1])
                self.words.append(text[self.position : end])
                self.position = end
                continue
            redirect = _REDIRECT.match(text, self.position)
            if redirect is not None:
                self.position = redirect.end()
                while self.position < len(text) and text[self.position] in " \t":
                    self.position += 1
                target = self._word() if self.position < len(text) else ""
                if self.skip_header is None:
                    self.redirects.append(Redirect(redirect.group(), target))
                continue
            operator = _OPERATOR.match(text, self.position)
            if operator is not None:
                self.position = operator.end()
                self._operator(operator.group())
                continue
            start = self.position
            word = self._word()
            if self.position == start:  # a character no rule above consumes: step over it
                self.position += 1
            elif self.skip_header is not None:
                if self.skip_header == "in" and word == "in":
                    self.skip_header = None
                    self.cases += 1
                    self.in_pattern = True
            elif self.in_pattern:
                if word == "esac":
                    self.cases -= 1
                    self.in_pattern = False
            elif self.words or not self._word_at_command_start(word):
                self.words.append(word)
        self._finish()
        return self.commands


def split_commands(script: str) -> list[SimpleCommand]:
    """Every simple command of ``script`` in source order, including those in substitutions and bodies.

    ``split_commands("cd /x && make | tee $(date).log")`` is ``cd``, ``make``, ``tee`` and ``date``
    (a substitution's commands come before the command that holds it)."""
    return _Lexer(script).run()
