"""Asking the operating system about processes: is one alive, what runs below
it, and ending them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path


def pid_running(pid: int) -> bool:
    """Is process ``pid`` running on this machine (a zombie is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is dead, even if not reaped yet
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...), whatever
    process group or session they moved to."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    else:  # macOS and other systems without /proc
        out = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            child, parent = (int(x) for x in line.split())
            children.setdefault(parent, []).append(child)
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def terminate(pids: list[int], timeout_s: float = 10.0) -> None:
    """SIGTERM each of ``pids`` and wait (up to ``timeout_s`` in all) until
    none is running (a zombie counts as gone)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(pid_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_when_gone(pid: int, interval: float = 1.0) -> None:
    """Watch process ``pid`` from a daemon thread; once it is gone (a notebook
    kernel that died, a service killed with SIGKILL), send this process
    SIGTERM, its graceful stop. So what a kernel started in the background
    never outlives it, even when the kernel had no chance to clean up.

    When ``pid`` is this process's parent, being re-parented also counts as
    gone (the dead parent may not be reaped yet)."""
    was_parent = os.getppid() == pid

    def gone() -> bool:
        return (was_parent and os.getppid() != pid) or not pid_running(pid)

    def watch() -> None:
        while not gone():
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name=f"stop-when-{pid}-gone", daemon=True).start()
