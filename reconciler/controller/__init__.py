"""The in-cluster controller: the reconcile loop (watch, skip-unchanged, shards, backoff) and its HTTP side
(health, metrics, the status board). It runs the engine; it never edits desired state.

``reconciler controller`` (the CLI) parses the command line and becomes ``python -m reconciler.controller``
(``__main__``), which checks the options (``options``) and runs ``main.serve``: bind the port, open the
audit log, serve HTTP (``http``: Starlette on uvicorn, in the same asyncio loop, uvicorn's signal handling
off), run the loop (``loop``), drain on SIGTERM.

The loop follows Flux's observe -> diff -> act -> record status:

* ``source``: where the desired state comes from (a Git URL fetched each interval, a directory re-read
  or watched) and its revision key; a new key is loaded and judged (validation, trust) once;
* ``loop``: skip when the key is unchanged (no registry request between resyncs), a full re-observation
  every ``--resync``, stall on an invalid or untrusted state until the key changes, per-image backoff,
  shards, passes over disjoint images at once, graceful shutdown;
* ``runner``: one pass, the engine's ``reconcile_pass`` on a fresh ``RegistryPool`` (``access``: refuses
  new writes once shutting down);
* ``recorder``, ``book``, ``backoff``: what a finished pass changes (cells of the status grid, retries,
  metrics in ``metrics``, events in ``events``); ``audittail``: the recent audit records for the board.

Renderings (the JSON status, the HTML board) live in ``reconciler.report.status`` and
``reconciler.report.board``; this package never formats HTML itself. docs/controller.md is the manual.
"""
