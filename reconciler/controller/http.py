"""The controller's HTTP side, served on one port inside the controller's own asyncio loop.

Routes (a Starlette app):

* ``/healthz``: 200 while the reconcile loop is alive (it woke recently), else 503 (liveness);
* ``/readyz``: 503 until a pass has observed the registries, 200 after (readiness; a stall does not
  change it: the registries still hold what the last good commit declared);
* ``/metrics``: Prometheus text exposition of the controller's own registry;
* ``/api/status``: the status snapshot as JSON in the versioned envelope;
* ``/``: the status board (HTML, refreshes itself).

uvicorn serves the app as a task of the controller's loop (``EmbeddedServer``), on a socket the controller
bound itself (so "port in use" is reported clearly before anything starts), with uvicorn's own signal
handling switched off: the controller owns SIGTERM and decides when the server stops. Handlers only read
the controller's state; nothing here reconciles anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from typing import Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from reconciler.report.board import render_board
from reconciler.report.status import ControllerStatus, status_document

NO_STORE = {"Cache-Control": "no-store"}


class StatusView(Protocol):
    def alive(self) -> bool: ...

    def ready(self) -> bool: ...

    def status(self) -> ControllerStatus: ...


def build_app(view: StatusView, render_metrics: Callable[[], bytes], metrics_type: str) -> Starlette:
    async def healthz(_: Request) -> Response:
        alive = view.alive()
        return JSONResponse({"alive": alive}, status_code=200 if alive else 503, headers=NO_STORE)

    async def readyz(_: Request) -> Response:
        ready = view.ready()
        body = {"ready": ready} if ready else {"ready": False, "reason": "no pass has observed the registries yet"}
        return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)

    async def metrics(_: Request) -> Response:
        return Response(render_metrics(), media_type=metrics_type, headers=NO_STORE)

    async def api_status(_: Request) -> Response:
        document = status_document(view.status())
        text = json.dumps(document, ensure_ascii=False, indent=1, default=str)
        return Response(text, media_type="application/json", headers=NO_STORE)

    async def board(_: Request) -> Response:
        return HTMLResponse(render_board(view.status()), headers=NO_STORE)

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/status", api_status, methods=["GET"]),
        Route("/", board, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one). Raises OSError (port in use...)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128, reuse_port=False)
    sock.setblocking(False)
    return sock


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers, waking once a second (not ten times) while idle."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the controller owns SIGTERM/SIGINT

    async def main_loop(self) -> None:
        while not self.should_exit:
            await self.on_tick(0)  # refreshes the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)

    def stop(self) -> None:
        self.should_exit = True
        self._stop.set()


def make_server(app: Starlette) -> EmbeddedServer:
    """The server for ``app``; run it with ``await server.serve(sockets=[bind(...)])``, stop it with ``stop()``."""
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    return EmbeddedServer(config)
