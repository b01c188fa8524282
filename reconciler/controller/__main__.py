"""``python -m reconciler.controller``: the controller process that ``reconciler controller`` becomes.

The CLI and the controller are independent top layers (neither imports the other: DESIGN.md section 7,
checked by import-linter), so ``reconciler controller`` parses its command line with typer and then
replaces itself (``exec``, same process id: Kubernetes' SIGTERM reaches the controller) with this module,
handing over the raw option values as JSON in ``$RECONCILER_CONTROLLER_OPTIONS``. The variable is removed
from the environment at once, so no child process (git) inherits it.

Exit codes: 2 when the options are wrong, 1 when it cannot start or fails, 0 after SIGTERM/SIGINT.
No traceback reaches a user unless ``RECONCILER_DEBUG`` is set.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from reconciler.controller.options import OPTIONS_ENV, OptionsError, options_from_raw
from reconciler.exitcodes import ExitCode
from reconciler.model.redact import redact

DEBUG_ENV = "RECONCILER_DEBUG"


def main() -> None:
    raw_text = os.environ.pop(OPTIONS_ENV, None)
    if raw_text is None:
        print("start the controller with `reconciler controller` (see `reconciler controller --help`)", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))
    try:
        raw = json.loads(raw_text)
        if not isinstance(raw, dict):
            raise OptionsError("internal: the options must be a JSON object")
        options = options_from_raw(raw)
    except OptionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))
    except ValueError as exc:
        print(f"error: unreadable controller options: {exc}", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))

    from reconciler.controller.main import run  # noqa: PLC0415  (after the options are known good)

    try:
        code = run(options)
    except KeyboardInterrupt:
        code = int(ExitCode.OK)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        print(f"internal error: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        code = int(ExitCode.FAILURE)
    sys.exit(code)


if __name__ == "__main__":
    main()
