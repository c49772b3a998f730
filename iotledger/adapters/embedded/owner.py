"""Which process a detached server belongs to, so that one left behind is known as an orphan.

The embedded PostgreSQL outlives a `serve` killed with SIGKILL (pg_ctl detaches it).
The process that starts it, or takes it over, writes its pid and start time into
an owner file; a server whose owner is gone is an orphan that the next `serve`
takes over, and the owner stops it at its own orderly stop. The start time tells
a live owner from a new process that happens to reuse its pid.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


class OwnerFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def claim(self) -> None:
        """Record this process as the owner (atomically: a reader sees the old or the new)."""
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        partial.write_text(f"{process_identity(os.getpid())}\n")
        partial.replace(self.path)

    def mine(self) -> bool:
        return self._recorded() == process_identity(os.getpid())

    def orphaned(self) -> bool:
        """True unless a live process has claimed it (no record at all: an orphan too)."""
        recorded = self._recorded() or ""
        pid = self.recorded_pid()
        return not pid.isdigit() or process_identity(int(pid)) != recorded

    def release(self) -> None:
        if self.mine():
            self.path.unlink(missing_ok=True)

    def recorded_pid(self) -> str:
        return (self._recorded() or "").partition(" ")[0]

    def _recorded(self) -> str | None:
        try:
            return self.path.read_text().strip()
        except OSError:
            return None


def process_identity(pid: int) -> str | None:
    """`pid start-time` of a live process (`pid` alone without /proc), None if it is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return _alive_without_proc(pid)
    # Field 22 (start time, in clock ticks since boot); the name in field 2 may hold spaces.
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def _alive_without_proc(pid: int) -> str | None:
    if (_PROC / "self" / "stat").exists():
        return None  # /proc works here: the process is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return str(pid)
