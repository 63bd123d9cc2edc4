"""Pieces shared by the local stack's components: errors, status, ports, processes, locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A local-stack component could not be resolved, started, stopped or reached."""


@dataclass(frozen=True)
class ComponentStatus:
    """What `status()` says about one component of the local stack."""

    name: str
    running: bool
    pid: int | None
    address: str

    def __str__(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        return f"{self.name}: {state} at {self.address}"


def tail(path: Path, lines: int = 40, start: int = 0) -> str:
    """The last `lines` lines of a text file from byte offset `start` ('' when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def port_owner(port: int) -> str | None:
    """A description of the process listening on TCP `port`, if one can be found."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "an unknown process"
            try:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({' '.join(proc.cmdline()[:4])[:160]})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


def ensure_port_free(port: int, what: str) -> None:
    """Raise StackError when TCP `port` on the loopback address cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            owner = port_owner(port)
            by = f" by {owner}" if owner else ""
            raise StackError(
                f"cannot start {what}: port {LOOPBACK}:{port} is taken{by} ({exc.strerror}). "
                f"Stop that process or choose another port (RISKLAB_* port settings)."
            ) from None


def live_process(pid: int | None, *needles: str) -> psutil.Process | None:
    """The process `pid` when it is alive (not a zombie) and its command line holds every needle."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return None
    if all(n in cmdline for n in needles):
        return proc
    return None


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_gone(pid: int, timeout: float, child: subprocess.Popen[bytes] | None = None) -> bool:
    """Wait until process `pid` has exited (reaping it when it is our child); True when it did."""
    deadline = time.monotonic() + timeout
    while True:
        if child is not None and child.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.05)
                return True
        else:
            with contextlib.suppress(ChildProcessError, OSError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    return True
            if live_process(pid) is None:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def signal_process(pid: int, sig: signal.Signals, *, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            try:
                os.killpg(pid, sig)
                return
            except (ProcessLookupError, PermissionError):
                pass
        os.kill(pid, sig)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on `path` (so two `up()` calls don't start two servers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def mark_ignored(home: Path) -> None:
    """Create `home` with a `.gitignore` of `*` so local state never shows up in git."""
    home.mkdir(parents=True, exist_ok=True)
    ignore = home / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# risklab local state\n*\n")
