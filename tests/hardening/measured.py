"""Run a command and write its peak RSS (bytes) to a file: ``python measured.py REPORT COMMAND...``.

Why a launcher: Linux carries a process's peak RSS across ``fork``/``vfork`` and ``exec`` (the child's
``ru_maxrss`` starts at the parent's resident size), so a command started straight from a pytest process
that has grown to 350 MiB over a long suite "peaks" at 350 MiB however little it uses. Started from this
small process instead, its peak starts near this process's ~10 MiB and ``wait4`` reports its own.
The launcher exits as the command did (same code, or killed by the same signal).
"""

import os
import signal
import sys

report, *command = sys.argv[1:]
child = os.fork()
if child == 0:  # pragma: no cover - replaced by exec
    try:
        os.execv(command[0], command)  # noqa: S606 - the argv the test built, no shell
    finally:
        os._exit(127)
for forwarded in (signal.SIGTERM, signal.SIGINT):
    signal.signal(forwarded, lambda number, _frame: os.kill(child, number))
_pid, status, usage = os.wait4(child, 0)
with open(report, "w", encoding="ascii") as out:
    out.write(str(usage.ru_maxrss * 1024))
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.waitstatus_to_exitcode(status))
