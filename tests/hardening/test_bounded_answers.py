"""Answers with no end: every body reconciler reads whole is capped, refused quickly, in bounded memory.

What used to happen: a tags list that never ended (a chunked JSON body streaming forever), a huge tags
page, a 1 GiB 404 page, an endless catalog or a token answer that never ended were read into memory until
the process was killed, and a malformed chunk-size line that never ended escaped the transport as an
``asyncio.LimitOverrunError`` ("internal error"); a chunk size or a Content-Length of -1 made the
transport read until the server closed the connection (``read(-1)``); an error page cut short (10 of
its 1,000 bytes) must still end in a plain error. Now each answer read whole goes through
``reconciler.registry.reply.read_capped`` (8 MiB for documents, 64 KiB of an error page, 4 MiB for a
manifest), a listing stops at ``MAX_LISTED_NAMES`` names across pages, and a broken framing is a
registry error: the command fails in seconds with a message naming the registry and the cap, and its peak
memory stays within 100 MiB of a normal run's.

Each case runs the real console script in a subprocess against a hostile loopback server; the peak RSS
comes from ``os.wait4`` for that process alone.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from support.httpserver import LoopbackServer, Raw, Reply, Request, Response, endless

from reconciler.exitcodes import ExitCode

from .kit import MIB, Run, assert_no_traceback, cli_env, run_all

GROWTH = 100 * MIB
"""Peak memory a hostile answer may add to a normal run of the same command."""
QUICKLY = 60.0
"""Seconds; generous: the machine is slow and shared. Unbounded reads never finished at all."""


async def _endless_json(key: str) -> AsyncIterator[bytes]:
    """``{"KEY": ["n0","n1",...`` and never the end: a listing that streams forever."""
    yield b'{"' + key.encode() + b'":['
    for start in itertools.count(0, 10_000):
        yield ",".join(f'"n{i}"' for i in range(start, start + 10_000)).encode() + b","


def _paged(request: Request) -> Response:
    """Every page holds 1,000 new names and links to a next one: a listing without a last page."""
    last = int((request.param("last") or "n-1")[1:])
    names = [f"n{i}" for i in range(last + 1, last + 1001)]
    link = f'</v2/paged/tags/list?n=1000&last={names[-1]}>; rel="next"'
    return Response.json({"name": "paged", "tags": names}, headers={"Link": link})


def _hostile(request: Request) -> Reply:
    path = request.path
    if path == "/v2/":
        return Response.json({})
    if path == "/v2/endless/tags/list":
        return Response(200, {"Content-Type": "application/json"}, _endless_json("tags"))
    if path == "/v2/_catalog":
        return Response(200, {"Content-Type": "application/json"}, _endless_json("repositories"))
    if path == "/v2/huge/tags/list":
        return endless(length=2 * 1024**3, headers={"Content-Type": "application/json"})
    if path == "/v2/paged/tags/list":
        return _paged(request)
    if path.startswith("/v2/missing/manifests/"):
        return endless(length=1024**3, status=404, headers={"Content-Type": "text/html"})
    if path == "/v2/broken/tags/list":
        # a chunk-size line of a megabyte, never ended by CRLF
        return Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 1024 * 1024, end="stall")
    if path == "/v2/negative-chunk/tags/list":
        # read(-1) would read until the server closes: a chunk size of -1, then more than any cap
        return Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n" + bytes(9 * 1024 * 1024), end="stall")
    if path == "/v2/negative-length/tags/list":
        return Raw(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n" + bytes(9 * 1024 * 1024), end="stall")
    if path == "/v2/truncated/tags/list":
        return Response(403, {"Content-Type": "application/json"}, b'{"errors":', length=1000)
    if path == "/v2/small/tags/list":
        return Response.json({"name": "small", "tags": ["v1"]})
    return Response.error(404, "NAME_UNKNOWN", "repository name not known to registry")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LoopbackServer]]:
    hostile = LoopbackServer(_hostile, name="hostile").start()

    def with_token_service(request: Request) -> Reply:
        if request.path == "/token":
            return Response(200, {"Content-Type": "application/json"}, _endless_json("token"))
        if request.header("authorization"):
            return Response.json({"name": "app", "tags": ["v1"]})
        challenge = f'Bearer realm="{token.url}/token",service="registry"'
        return Response.error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

    token = LoopbackServer(with_token_service, name="endless-token").start()
    try:
        yield {"hostile": hostile, "token": token}
    finally:
        hostile.stop()
        token.stop()


CASES = {
    "endless tags list": (["ls", "{hostile}/endless"], "answer larger than 8388608 bytes"),
    "huge tags page": (["ls", "{hostile}/huge"], "answer larger than 8388608 bytes"),
    "endless catalog": (["ls", "{hostile}"], "answer larger than 8388608 bytes"),
    "endless pagination": (["ls", "{hostile}/paged"], "more than 1000000 names"),
    "1 GiB 404 page": (["inspect", "{hostile}/missing:v1"], "HTTP 404"),
    "endless token answer": (["ls", "{token}/app"], "answer larger than 8388608 bytes"),
    "chunk-size line without end": (["ls", "{hostile}/broken"], "chunk-size or trailer line without end"),
    "negative chunk size": (["ls", "{hostile}/negative-chunk"], "bad chunk size line"),
    "negative Content-Length": (["ls", "{hostile}/negative-length"], "bad Content-Length"),
    "error page shorter than it says": (["ls", "{hostile}/truncated"], "list tags: HTTP 403"),
}


@pytest.fixture(scope="module")
def runs(servers: dict[str, LoopbackServer], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    home = tmp_path_factory.mktemp("bounded")
    hosts = {name: server.host for name, server in servers.items()}
    lines = {"baseline": ["ls", f"{hosts['hostile']}/small"]}
    lines.update({name: [arg.format(**hosts) for arg in args] for name, (args, _) in CASES.items()})
    results = run_all(list(lines.values()), env=cli_env(home), parallel=4, timeout=120)
    return dict(zip(lines, results, strict=True))


def test_the_baseline_run_works(runs: dict[str, Run]) -> None:
    assert runs["baseline"].code == ExitCode.OK, str(runs["baseline"])
    assert runs["baseline"].stdout.split() == ["v1"]


@pytest.mark.parametrize("case", list(CASES))
def test_an_answer_without_end_is_refused_quickly_in_bounded_memory(case: str, runs: dict[str, Run]) -> None:
    result, expected = runs[case], CASES[case][1]
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    assert result.seconds < QUICKLY, str(result)
    assert expected in result.stderr, str(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, str(result)
    growth = result.max_rss - runs["baseline"].max_rss
    assert growth < GROWTH, f"{case}: peak RSS {result.max_rss / MIB:.0f} MiB, {growth / MIB:.0f} MiB over a normal run"


def test_memory_is_measured_per_process(runs: dict[str, Run]) -> None:
    """The bound means something: a normal run's own peak is that of one Python process with httpx."""
    assert 20 * MIB < runs["baseline"].max_rss < 200 * MIB, runs["baseline"].max_rss / MIB
