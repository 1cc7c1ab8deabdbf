"""The process that keeps one ``redis-server`` as its child.

:class:`helpers.topology.nodes.RedisNode` starts this module through the
course's launcher (``python -m helpers.processes --stop-with-pid PID
.../helpers/topology/keeper.py BINARY ARGS...``: run as a file, it imports
nothing but the standard library), so the server stops with the
kernel that started it: once that kernel is gone, the launcher sends this
process SIGTERM, which it passes on to the server (Redis's graceful
shutdown), and after a grace period SIGKILLs both. It exits when the server
does, with the server's exit code, so a drill that SIGKILLs the server sees
its keeper go too.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``argv`` (a redis-server command line) and wait for it."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m helpers.topology.keeper BINARY [ARGS...]", file=sys.stderr)
        return 2
    server = subprocess.Popen(args, stdin=subprocess.DEVNULL)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            server.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = server.wait()
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


if __name__ == "__main__":
    sys.exit(main())
