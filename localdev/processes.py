"""Background processes tracked by PID file, each in its own session so its children stop with it."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class StartupError(RuntimeError):
    """The local platform could not start; the message says what failed and what to do."""


class ProcessTable:
    """Processes started by the local platform, one PID file each under ``run_dir``."""

    def __init__(self, run_dir: Path, log_dir: Path):
        self.run_dir = run_dir
        self.log_dir = log_dir

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """PID of ``name`` if it is running, else None (a stale PID file is removed)."""
        try:
            pid = int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        if _alive(pid):
            return pid
        self._pid_file(name).unlink(missing_ok=True)
        return None

    def names(self) -> list[str]:
        """Names with a PID file, in start order."""
        files = sorted(self.run_dir.glob("*.pid"), key=lambda p: p.stat().st_mtime_ns)
        return [p.stem for p in files]

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
        """Start ``argv`` in a new session, output to ``<log_dir>/<name>.log``; return its PID."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file(name), "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_file(name).write_text(str(proc.pid))
        return proc.pid

    def stop(self, name: str, timeout: float = 20.0) -> bool:
        """Stop ``name`` and every process in its session; return whether it was running."""
        return bool(self.stop_many([name], timeout))

    def stop_many(self, names: list[str], timeout: float = 20.0) -> list[str]:
        """SIGTERM each process group at once, SIGKILL what is left after ``timeout``; return those stopped."""
        pids = {name: self.pid(name) for name in names}
        for name in names:
            self._pid_file(name).unlink(missing_ok=True)
        running = {name: pid for name, pid in pids.items() if pid is not None}
        for pid in running.values():
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_group_alive(pid) for pid in running.values()):
            time.sleep(0.2)
        for pid in running.values():
            if _group_alive(pid):
                _signal_group(pid, signal.SIGKILL)
        for pid in running.values():
            _reap(pid)
        return list(running)

    def stop_all(self) -> list[str]:
        """Stop every tracked process; return the names stopped."""
        return self.stop_many(list(reversed(self.names())))

    def wait_until(self, names: list[str], ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; fail with the log's tail as soon as one of ``names`` dies, or at ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name in names if self.pid(name) is None]
            if dead:
                raise StartupError(f"{what}: {dead[0]} exited during start-up.\n{self.log_tail(dead[0])}")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001, S110 - not ready yet, whatever the reason
                pass
            time.sleep(0.25)
        raise StartupError(f"{what} did not become ready within {timeout:g} s.\n{self.log_tail(names[0])}")

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_file(name)
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"(no log at {path})"
        return f"Last lines of {path}:\n" + "\n".join("    " + line for line in tail)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` runs (zombies, which wait for a parent to reap them, do not)."""
    import psutil

    _reap(pgid)
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_owner(port: int) -> str | None:
    """Describe what listens on 127.0.0.1:``port``, or None if the port is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return None
        except OSError:
            pass
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"PID {conn.pid} ({' '.join(proc.cmdline()[:3])})"
    except Exception:  # noqa: BLE001, S110 - the owner is a nicety; the port is taken either way
        pass
    return "another process"


def ensure_ports_free(wanted: dict[str, int], hint: str) -> None:
    """Raise ``StartupError`` naming every port of ``wanted`` (purpose -> port) that is already taken."""
    busy = [
        f"port {port} (for {name}) is already in use by {owner}"
        for name, port in wanted.items()
        if (owner := port_owner(port))
    ]
    if busy:
        raise StartupError("; ".join(busy) + f". Stop that process, or {hint}.")


def port_from_env(variable: str, default: int) -> int:
    """The TCP port in environment variable ``variable`` (``default`` if unset), checked to be a port number."""
    value = os.environ.get(variable)
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise StartupError(f"{variable} must be a TCP port number from 1 to 65535, not {value!r}.")
    return int(value)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
