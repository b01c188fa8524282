"""A relay in front of a real registry, built on the loopback kit: events tied to exact requests.

``relay(upstream)`` is a ``support.httpserver`` handler that forwards every request to a real registry
(a ``LocalRegistry``) and hands its answer back. ``intercept`` is consulted first, with the request: it may
answer instead (any kit reply: ``Response.error(403, ...)``, ``RESET``, ``echo_headers(request)``), or do
something to the world at that exact moment (kill the registry, fill its disk) and return None to let
the request through. ``after(request, status)`` hears of every forwarded answer (free the disk again
once the registry has failed a write).

Unlike ``support.faultproxy.FaultProxy`` (which streams, for big blobs and byte counts), the relay reads
bodies whole: it is for small generated images and scripted events, not throughput. The client's ``Host``
header is forwarded unchanged, so the registry's upload ``Location`` URLs name the relay. When the
registry cannot be reached (stopped, killed), the relay resets the connection, as a dead host would.

Test-only code, never imported by the product.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from support.httpserver import RESET, Handler, Reply, Request, Response

Intercept = Callable[[Request], Reply | None]
After = Callable[[Request, int], None]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "te", "upgrade"}
)


def relay(upstream: str, *, intercept: Intercept | None = None, after: After | None = None) -> Handler:
    """A handler forwarding to ``upstream`` (``http://127.0.0.1:PORT``); see the module docstring."""
    clients: list[httpx.AsyncClient] = []

    async def handle(request: Request) -> Reply:
        if intercept is not None:
            answer = intercept(request)
            if answer is not None:
                return answer
        if not clients:  # made in the server's own loop, on first use
            clients.append(httpx.AsyncClient(base_url=upstream, timeout=60.0))
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
        try:
            answer_from = await clients[0].request(
                request.method, request.target, headers=headers, content=request.body or None
            )
        except httpx.HTTPError:
            return RESET  # the registry is gone: the client sees a dead connection
        if after is not None:
            after(request, answer_from.status_code)
        kept = [(k, v) for k, v in answer_from.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
        if request.method == "HEAD" and "content-length" in answer_from.headers:
            kept.append(("Content-Length", answer_from.headers["content-length"]))
        return Response(answer_from.status_code, kept, answer_from.content)

    return handle
