"""Start and stop the controller: bind the port, serve HTTP, run the loop, drain on SIGTERM, exit code.

Order matters: the listening socket is bound and the audit log opened FIRST, so a controller that cannot
work (port in use, audit log unwritable) exits 1 with one clear line before doing anything; then the
HTTP server starts (``/healthz`` answers while the first pass runs), then the loop. SIGTERM or SIGINT
stop new work and give passes under way ``--grace`` seconds (a second signal cuts the wait short), then
the server stops and the process exits 0. uvicorn never sees a signal: this module owns them.

Exit codes (``reconciler.exitcodes``): 0 after a signal, 1 when it cannot start or its loop died.
It never prints tracebacks; nothing here reconciles anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import sys

from reconciler import __version__
from reconciler.controller.events import EventLog
from reconciler.controller.http import bind, build_app, make_server
from reconciler.controller.loop import Controller
from reconciler.controller.metrics import ControllerMetrics
from reconciler.controller.options import ControllerOptions
from reconciler.controller.source import make_source
from reconciler.engine.audit import AuditLog
from reconciler.errors import ReconcilerError
from reconciler.exitcodes import ExitCode


def _cannot_start(events: EventLog, message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    events.emit("start_failed", level="error", error=message)
    return int(ExitCode.FAILURE)


async def serve(options: ControllerOptions) -> int:
    events = EventLog(fmt=options.log_format)
    try:
        sock = bind(options.listen_host, options.listen_port)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why += " (another process listens there: stop it or choose another address with --listen)"
        return _cannot_start(events, f"cannot listen on {options.listen}: {why}")
    audit = AuditLog(options.audit_log)
    try:
        audit.ensure_writable()
    except ReconcilerError as exc:
        sock.close()
        return _cannot_start(events, str(exc))

    shard = str(options.shard) if options.shard is not None else None
    metrics = ControllerMetrics(shard=shard)
    controller = Controller(options, make_source(options), events=events, metrics=metrics, audit=audit)
    server = make_server(build_app(controller, metrics.render, metrics.content_type))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(number: signal.Signals) -> None:
        received.append(number.name)
        if stop.is_set():
            controller.hurry()  # a second signal: do not wait out the grace period
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, on_signal, number)

    port = sock.getsockname()[1]
    http_task = asyncio.create_task(server.serve(sockets=[sock]), name="http")
    events.emit(
        "started",
        version=__version__,
        source=controller.source.description,
        listen=f"{options.listen_host}:{port}",
        port=port,
        shard=shard,
        interval_seconds=options.interval,
        resync_seconds=options.resync,
        watch=options.watch,
        environments=list(options.environments) or None,
        audit_log=str(options.audit_log),
    )
    loop_task = asyncio.create_task(controller.run(), name="reconcile-loop")
    stop_task = asyncio.create_task(stop.wait(), name="signals")
    done, _ = await asyncio.wait({loop_task, http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    code = int(ExitCode.OK)
    if stop_task in done:
        events.emit("stopping", signal=received[0] if received else None, grace_seconds=options.grace)
    else:
        ended = loop_task if loop_task in done else http_task
        error = ended.exception() if not ended.cancelled() else None
        events.emit("crashed", level="error", task=ended.get_name(), error=f"{type(error).__name__}: {error}")
        print(f"error: the controller's {ended.get_name()} stopped: {error}", file=sys.stderr, flush=True)
        code = int(ExitCode.FAILURE)
    clean = await controller.drain(options.grace)
    for task in (loop_task, stop_task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    server.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(http_task, 5)
    audit.close()
    events.emit("stopped", clean=clean, exit_code=code)
    return code


def run(options: ControllerOptions) -> int:
    """Run the controller until a signal; the process exit code."""
    return asyncio.run(serve(options))
