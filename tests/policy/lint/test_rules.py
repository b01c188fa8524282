"""Each rule on small Dockerfiles: where it fires and, as importantly, where it must not.

Cases are ``(rule, dockerfile, lines the rule fires on)``; an empty list is a "good" case. Line numbers
are the instruction's first line, as every rule reports them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.policy.lint import RULES, lint_text
from reconciler.policy.lint.catalog import HADOLINT_EQUIVALENTS

from .helpers import DIGEST, config, fired, rules

F = f"FROM rockylinux:9.3@{DIGEST}\n"
"""A first line that is pinned, so base-image rules stay quiet in cases about something else."""

CASES: list[tuple[str, str, list[int]]] = [
    # RL101 latest (DL3007; ours also with a digest)
    ("RL101", "FROM ubuntu:latest\n", [1]),
    ("RL101", f"FROM ubuntu:latest@{DIGEST}\n", [1]),
    ("RL101", "FROM ubuntu:22.04\nFROM ubuntu:LATEST\n", []),
    ("RL101", "ARG TAG=latest\nFROM ubuntu:${TAG}\n", [2]),
    # RL102 untagged (DL3006)
    ("RL102", "FROM ubuntu\n", [1]),
    ("RL102", "FROM registry.example.com:5000/team/img\n", [1]),
    ("RL102", f"FROM ubuntu@{DIGEST}\nFROM scratch\n", []),
    ("RL102", "FROM ubuntu:22.04 AS Build\nFROM build\nFROM BUILD AS again\n", []),
    ("RL102", "FROM app AS app\n", [1]),  # a stage cannot name itself: this is the image "app"
    ("RL102", "ARG BASE=ubuntu\nFROM $BASE\n", [2]),
    ("RL102", "ARG BASE\nFROM ${BASE}\n", []),  # unresolvable: RL106 instead
    # RL103 digest recommended
    ("RL103", "FROM ubuntu:22.04\n", [1]),
    ("RL103", f"FROM ubuntu:22.04@{DIGEST}\nFROM scratch\n", []),
    # RL106 unresolved base
    ("RL106", "ARG BASE\nFROM ${BASE}\n", [2]),
    ("RL106", "ARG BASE=ubuntu:22.04\nFROM ${BASE}\nFROM ${OTHER:-ubuntu:22.04}\n", []),
    # RL201 exec form (DL3025), HEALTHCHECK CMD as hadolint does
    ("RL201", F + "CMD java -jar app.jar\nENTRYPOINT /run.sh\n", [2, 3]),
    ("RL201", F + "HEALTHCHECK CMD curl -f http://localhost/\n", [2]),
    ("RL201", F + 'CMD ["java"]\nENTRYPOINT ["/run.sh"]\nHEALTHCHECK CMD ["true"]\nHEALTHCHECK NONE\n', []),
    ("RL201", F + "CMD [ \"a\", 'b' ]\n", [2]),  # not JSON: BuildKit runs it through a shell
    ("RL201", F + "ONBUILD CMD echo\n", []),
    # RL202 / RL203 startup script
    ("RL202", F + 'CMD ["sh", "-c", "/run.sh"]\n', [2]),
    ("RL202", F + 'ENTRYPOINT ["/bin/bash", "/run.sh"]\n', [2]),
    ("RL202", F + 'CMD ["/bin/sh", "-c", "exec /run.sh"]\nENTRYPOINT ["tini", "--", "/run.sh"]\n', []),
    ("RL203", F + 'ENTRYPOINT ["java", "-jar", "/app.jar"]\n', [2]),
    ("RL203", F + 'ENTRYPOINT ["/run.sh"]\nCMD ["--port", "80"]\n', []),
    ("RL203", F + "RUN true\n", []),  # a base image starts nothing
    ("RL203", 'FROM x:1 AS base\nENTRYPOINT ["java"]\nFROM base\nUSER app\n', [2]),  # inherited start
    # RL204 ADD (DL3020)
    ("RL204", F + 'ADD app.jar /app/\nADD ["a.txt", "/b"]\nADD a.zip /z/\n', [2, 3, 4]),
    ("RL204", F + "ADD jdk.tar.gz /opt/\nADD a.tgz b.txz /opt/\n", []),
    ("RL204", F + "ADD a.tgz notes.txt /opt/\n", [2]),
    ("RL204", F + "ADD https://example.com/x.tar.gz /opt/\n", [2]),
    ("RL204", F + "ADD --checksum=sha256:abc https://example.com/x.tar.gz /opt/\n", []),
    ("RL204", F + "COPY a /b\nADD <<EOF /etc/motd\nhello\nEOF\n", []),
    # RL301 consecutive RUN (DL3059)
    ("RL301", F + "RUN a\nRUN b\n# note\nRUN c\n\nRUN d\n", [3, 5, 7]),
    ("RL301", F + "RUN a && b\nRUN c\nRUN d | e\nRUN f\n", []),
    ("RL301", F + "RUN a\nENV X=1\nRUN b\nRUN --mount=type=cache,target=/c d\nRUN e\n", []),
    ("RL301", F + 'RUN ["a"]\nRUN ["sh", "-c", "b"]\nRUN ["sh", "-c", "c && d"]\n', [3]),
    ("RL301", F + "RUN a\nONBUILD RUN b\nRUN c\n", []),
    # RL302 yum (DL3032; ours wants `clean all`)
    ("RL302", F + "RUN yum install -y a\n", [2]),
    ("RL302", F + "RUN yum clean all && yum install -y a\n", [2]),
    ("RL302", F + "RUN yum install -y a && yum clean metadata\n", [2]),
    ("RL302", F + "RUN yum -y install a && yum clean all\nRUN yum install a && rm -rf /var/cache/yum/*\n", []),
    ("RL302", F + "ONBUILD RUN yum install -y a\n", [2]),
    ("RL302", F + "RUN yum -y update && yum clean all\n", []),
    # RL303 dnf / microdnf (DL3040)
    ("RL303", F + "RUN dnf install -y a\nRUN microdnf install a\n", [2, 3]),
    ("RL303", F + "RUN dnf install -y a && dnf clean all\nRUN microdnf install a && microdnf clean all\n", []),
    ("RL303", F + "RUN dnf install -y a && rm -rf /var/cache/dnf\n", []),
    # RL304 apt lists (DL3009; only stages that reach the image)
    ("RL304", F + "RUN apt-get update && apt-get install -y a\n", [2]),
    ("RL304", F + "RUN apt-get update && apt-get install -y a && rm -rf /var/lib/apt/lists/*\n", []),
    ("RL304", F + "RUN rm -rf /var/lib/apt/lists/* && apt-get update\n", [2]),
    ("RL304", "FROM a:1 AS build\nRUN apt-get update\nFROM b:1\nRUN true\n", []),
    ("RL304", "FROM a:1 AS build\nRUN apt-get update\nFROM build\nRUN true\n", [2]),
    ("RL304", F + "RUN --mount=type=cache,target=/var/lib/apt/lists apt-get update\n", []),
    ("RL304", F + "RUN --mount=type=cache,target=/var/lib/apt apt-get update\n", [2]),
    # RL305 apk (DL3019)
    ("RL305", F + "RUN apk add a\nRUN apk add --update a\n", [2, 3]),
    ("RL305", F + "RUN apk add --no-cache a\nRUN apk --no-cache add b\nRUN apk update\n", []),
    # RL306 upgrades
    ("RL306", F + "RUN yum update -y\nRUN apt-get dist-upgrade\nRUN apk upgrade\nRUN dnf upgrade\n", [2, 3, 4, 5]),
    ("RL306", F + "RUN apt-get update\nRUN yum install -y a\n", []),
    # RL307 cd (DL3003)
    ("RL307", F + "RUN cd /a && make\nRUN (cd /b)\nRUN echo $(cd /c)\nRUN exec cd /d\n", [2, 3, 4, 5]),
    ("RL307", F + "RUN echo cd\nRUN sudo cd /x\nRUN pushd /y\nONBUILD RUN cd /z\n", []),
    # RL308 log files
    ("RL308", F + "RUN a > /app/a.log\nRUN b 2>>/var/log/b\nRUN c | tee x.log\n", [2, 3, 4]),
    ("RL308", F + "RUN a > /dev/null 2>&1\nRUN ln -sf /dev/stdout /var/log/app.log\n", []),
    # RL401 / RL402 / RL403 users (DL3002 for the final image only)
    ("RL401", F + "USER root\n", [2]),
    ("RL401", F + "USER app\nUSER 0:0\n", [3]),
    ("RL401", "FROM a:1 AS build\nUSER root\nFROM b:1\nUSER app\n", []),
    ("RL401", "FROM a:1 AS base\nUSER root\nFROM base\nRUN true\n", [2]),
    ("RL401", F + "USER rootless\nUSER 1000:0\n", []),
    ("RL402", F + "RUN true\n", [1]),
    ("RL402", F + "USER app\n", []),
    ("RL403", F + "USER root\nRUN a\nUSER app\nRUN b\nUSER app\n", [4]),
    ("RL403", F + "USER app\n", []),
    # RL404 WORKDIR (DL3000)
    ("RL404", F + 'WORKDIR app\nWORKDIR "rel"\nWORKDIR ./x\n', [2, 3, 4]),
    ("RL404", F + 'WORKDIR /app\nWORKDIR "/srv"\nWORKDIR $HOME\nWORKDIR C:\\app\n', []),
    # RL405 / RL406 EXPOSE (DL3011)
    ("RL405", F + "EXPOSE 8080:8899\n", [2]),
    ("RL406", F + "EXPOSE 70000\nEXPOSE 1-65536/tcp\nEXPOSE http\n", [2, 3, 4]),
    ("RL406", F + "EXPOSE 80 443/tcp 53/udp 9000-9100 $PORT\n", []),
    # RL407 / RL408 service declarations
    ("RL407", F + 'ENTRYPOINT ["/run.sh"]\n', [1]),
    ("RL408", F + 'ENTRYPOINT ["/run.sh"]\n', [1]),
    ("RL407", F + 'EXPOSE 80\nVOLUME /logs\nENTRYPOINT ["/run.sh"]\n', []),
    ("RL408", F + "VOLUME /logs\nRUN true\n", []),
    # RL501 labels
    ("RL501", F + "RUN true\n", [1, 1]),
    ("RL501", F + 'LABEL maintainer="a" org.opencontainers.image.source="b"\n', []),
    ("RL501", "FROM a:1 AS build\nLABEL maintainer=a org.opencontainers.image.source=b\nFROM c:1\n", [3, 3]),
    # RL502 secrets
    ("RL502", F + "ENV DB_PASSWORD=x\nARG API_TOKEN=y\nENV dbSecret z\n", [2, 3, 4]),
    ("RL502", F + 'ENV GPG_KEY=ABC PASSWORD_FILE=/run/secrets/p TOKEN=""\nARG NPM_TOKEN\nENV PWD_X=$P\n', []),
    # RL503 versions in URLs
    ("RL503", F + "RUN curl -O https://example.com/jdk-17.0.2.tar.gz\n", [2]),
    ("RL503", F + "RUN curl -O https://example.com/${V}/jdk-17.0.2.tar.gz\nRUN curl http://10.0.0.1/x\n", []),
    # RL601 layer order
    ("RL601", F + "COPY app.jar /app/\nRUN yum install -y java && yum clean all\n", [3]),
    ("RL601", F + "COPY x.repo /etc/yum.repos.d/\nRUN yum install -y a && yum clean all\nCOPY app /app/\n", []),
    ("RL601", F + "COPY --from=build /a /a\nRUN apk add --no-cache b\n", []),
    # RL002 unknown instruction, RL001 syntax
    ("RL002", F + "COPPY a b\n", [2]),
    ("RL001", F + "ENV X\n", [2]),
    ("RL001", "# nothing\n", [1]),
]


@pytest.mark.parametrize(("rule", "text", "lines"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule(rule: str, text: str, lines: list[int]) -> None:
    assert fired(text, rule) == lines


def test_every_rule_has_a_firing_case() -> None:
    covered = {rule for rule, _, lines in CASES if lines} | {"RL003", "RL104", "RL105"}
    assert covered == set(RULES)


def test_rule_ids_are_stable_and_grouped() -> None:
    assert list(RULES) == sorted(RULES)
    for rule in RULES.values():
        assert rule.id.startswith("RL")
        assert len(rule.id) == 5
        assert rule.name == rule.name.lower()
        assert " " not in rule.name
        assert rule.summary
        assert "\n" not in rule.summary
    assert HADOLINT_EQUIVALENTS == {
        "DL3007": "RL101", "DL3006": "RL102", "DL3025": "RL201", "DL3020": "RL204", "DL3059": "RL301",
        "DL3032": "RL302", "DL3040": "RL303", "DL3009": "RL304", "DL3019": "RL305", "DL3003": "RL307",
        "DL3002": "RL401", "DL3000": "RL404", "DL3011": "RL406",
    }  # fmt: skip


def test_approved_bases() -> None:
    text = f"FROM nginx:1.25@{DIGEST}\nFROM docker.io/library/ubuntu:22.04@{DIGEST} AS u\nFROM u\nFROM scratch\n"
    assert fired(text, "RL104", approved_bases=["ubuntu"]) == [1]
    assert fired(text, "RL104", approved_bases=["*"]) == []
    assert fired(text, "RL104") == []  # no list configured: the check is off
    assert fired("FROM registry.example.com/base/prod-osbase:1\n", "RL104", approved_bases=["*/base/*"]) == []


def test_final_base_must_be_a_production_base() -> None:
    chain = "FROM registry.example.com/base/compile-osbase:1 AS build\nFROM registry.example.com/runtime/java:1\n"
    production = {"final_bases": ["registry.example.com/base/prod-osbase", "registry.example.com/runtime/*"]}
    assert fired(chain, "RL105", **production) == []
    assert fired("FROM ubuntu:22.04 AS x\nFROM x\n", "RL105", **production) == [2]
    assert fired("FROM scratch\n", "RL105", **production) == [1]
    assert fired("FROM ubuntu:22.04\n", "RL105") == []


def test_remote_add_allowed_by_config() -> None:
    assert fired(F + "ADD https://example.com/a.tgz /opt/\n", "RL204", allow_remote_add=True) == []


def test_columns_follow_indentation() -> None:
    findings = lint_text("FROM ubuntu:22.04\n    RUN cd /x\n", path="p")
    assert [(f.line, f.column) for f in findings if f.rule == "RL307"] == [(2, 5)]


def test_instruction_keywords_are_case_insensitive() -> None:
    assert fired("from ubuntu\nrun cd /x\n", "RL102") == [1]
    assert fired("from ubuntu\nrun cd /x\n", "RL307") == [2]


def test_escape_directive_and_continuations_keep_original_lines() -> None:
    text = "# escape=`\nFROM ubuntu:22.04\nRUN apt-get update `\n && apt-get install -y a\nRUN cd /x\n"
    assert fired(text, "RL304") == [3]
    assert fired(text, "RL307") == [5]


def test_heredoc_script_is_linted_and_heredoc_data_is_not() -> None:
    script = F + "RUN <<EOT\nyum install -y a\ncd /x\nEOT\n"
    assert fired(script, "RL302") == [2]
    assert fired(script, "RL307") == [2]
    data = F + "RUN cat <<EOT > /etc/motd\nyum install -y a\nEOT\n"
    assert fired(data, "RL302") == []
    piped = F + "RUN <<EOT bash\nyum install -y a\nEOT\n"
    assert fired(piped, "RL302") == [2]


def test_severity_override_and_disable() -> None:
    text = "FROM ubuntu:22.04\nRUN a\nRUN b\n"
    findings = lint_text(text, path="p", config=config(severity={"RL301": "error"}, disable=["RL103", "RL501"]))
    assert [(f.rule, str(f.severity)) for f in findings] == [("RL402", "info"), ("RL301", "error")]


def test_inline_and_file_suppression() -> None:
    text = (
        "# reconciler-lint ignore-file=RL103, RL501\n"
        "FROM ubuntu:22.04\n"
        "# reconciler-lint ignore=RL307\n"
        "# (the installer needs its own directory)\n"
        "RUN cd /opt && ./install\n"
        "# reconciler-lint ignore=RL307\n"
        "\n"
        "RUN cd /srv\n"
        "# hadolint ignore=DL3003,DL3059,SC2164\n"
        "RUN cd /var\n"
        "USER app\n"
    )
    assert rules(text) == [(8, "RL307")]


def test_bad_pragmas_are_findings() -> None:
    text = (
        "FROM ubuntu:22.04\n# reconciler-lint ignore=RL999\n# reconciler-lint ignore RL301\n"
        "# reconciler-lint ignore=RL001\nUSER a\n"
    )
    assert [(line, rule) for line, rule in rules(text) if rule == "RL003"] == [(2, "RL003"), (3, "RL003"), (4, "RL003")]


def test_pragma_inside_a_heredoc_is_script_text() -> None:
    text = F + "RUN <<EOT\n# reconciler-lint ignore-file=RL307\ncd /x\nEOT\n"
    assert fired(text, "RL307") == [2]


def test_syntax_error_names_the_line() -> None:
    findings = lint_text("FROM a:1\nRUN true\nENV ONLYNAME\nUSER x\n", path="p")
    assert [(f.line, f.rule) for f in findings] == [(3, "RL001")]
    assert "ENV must have two arguments" in findings[0].message


_KEYWORDS = [
    *("FROM", "RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "USER", "WORKDIR", "EXPOSE", "VOLUME", "ENV", "ARG"),
    *("LABEL", "ONBUILD RUN", "HEALTHCHECK CMD", "SHELL", "STOPSIGNAL", "# reconciler-lint ignore=", "#", ""),
]
_PIECES = [*"ab:=/.$@{}[]\"' -&|;<>()`\\\t", "\n", "<<EOT\n", "\nEOT\n", "latest", "yum install", "cd"]
_ARGUMENTS = st.lists(st.sampled_from(_PIECES), max_size=20).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_KEYWORDS), _ARGUMENTS), min_size=1, max_size=12))
def test_any_text_gives_findings_never_an_exception(lines: list[tuple[str, str]]) -> None:
    """Whatever the file holds, linting returns findings (RL001 when BuildKit refuses it) and never raises."""
    text = "".join(f"{keyword} {arguments}\n" for keyword, arguments in lines)
    for finding in lint_text(text, path="fuzz"):
        assert finding.rule in RULES
        assert finding.line >= 1
        assert finding.column >= 1
