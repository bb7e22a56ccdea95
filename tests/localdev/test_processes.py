"""Tests of the local platform's process table with real processes (no mocks): start, stop, wait, ports."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from localdev.processes import ProcessTable, StartupError, free_port, port_owner

ENV = dict(os.environ)


@pytest.fixture
def table(tmp_path):
    """A process table under tmp_path; whatever a test leaves running is stopped, even if the test fails."""
    table = ProcessTable(tmp_path / "run", tmp_path / "logs")
    yield table
    table.stop_all()


def group_members(pgid: int) -> list[int]:
    """Live PIDs whose process group is ``pgid`` (/proc/<pid>/stat; Linux only).

    Zombies are left out: an orphaned child that exited waits there until PID 1 reaps it.
    """
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def assert_group_gone(pgid: int) -> None:
    assert group_members(pgid) == []


def test_start_pid_stop(table):
    """A started process runs in its own session, is found by pid(), and stop() ends it and its PID file."""
    pid = table.start("sleeper", ["sleep", "60"], env=ENV)
    assert table.pid("sleeper") == pid
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid
    assert table.names() == ["sleeper"]
    assert table.stop("sleeper") is True
    assert_group_gone(pid)
    assert not (table.run_dir / "sleeper.pid").exists()
    assert table.pid("sleeper") is None


def test_stop_takes_children_along(table):
    """A shell's background child is in the same process group and is stopped with it."""
    pid = table.start("shell", ["sh", "-c", "sleep 60 & sleep 60"], env=ENV)
    wait_for(lambda: len(group_members(pid)) >= 3)  # sh and its two sleeps
    assert table.stop("shell", timeout=5) is True
    assert_group_gone(pid)
    assert not (table.run_dir / "shell.pid").exists()


def test_stop_of_what_is_not_running(table):
    assert table.stop("never-started") is False


def test_stale_pid_file_is_cleaned_up(table):
    """A PID file naming an exited process reads as not running and is removed."""
    exited = subprocess.Popen(["true"])
    exited.wait()
    table.run_dir.mkdir(parents=True)
    pid_file = table.run_dir / "ghost.pid"
    pid_file.write_text(str(exited.pid))
    assert table.pid("ghost") is None
    assert not pid_file.exists()
    assert table.stop("ghost") is False


def test_garbage_pid_file_reads_as_not_running(table):
    table.run_dir.mkdir(parents=True)
    (table.run_dir / "garbage.pid").write_text("not a pid")
    assert table.pid("garbage") is None


def test_stop_many_stops_several_at_once(table):
    pids = [table.start(name, ["sleep", "60"], env=ENV) for name in ("a", "b", "c")]
    started = time.monotonic()
    assert sorted(table.stop_many(["a", "b", "c", "absent"], timeout=5)) == ["a", "b", "c"]
    assert time.monotonic() - started < 3
    for pid in pids:
        assert_group_gone(pid)
    assert table.names() == []


def test_stop_all_stops_everything_tracked(table):
    pids = [table.start(name, ["sleep", "60"], env=ENV) for name in ("first", "second")]
    assert sorted(table.stop_all()) == ["first", "second"]
    for pid in pids:
        assert_group_gone(pid)


def test_output_goes_to_the_log(table):
    table.start("echo", ["sh", "-c", "echo hello-from-the-log"], env=ENV)
    wait_for(lambda: "hello-from-the-log" in table.log_file("echo").read_text())
    assert "hello-from-the-log" in table.log_tail("echo")


def test_wait_until_returns_when_ready(table):
    table.start("sleeper", ["sleep", "60"], env=ENV)
    calls = []
    table.wait_until(["sleeper"], lambda: calls.append(1) or len(calls) >= 2, timeout=5, what="sleeper")
    assert len(calls) == 2


def test_wait_until_names_the_process_that_exited(table):
    """A process dying during start-up fails at once, with its name and the tail of its log."""
    table.start("crasher", ["sh", "-c", "echo boom; exit 3"], env=ENV)
    started = time.monotonic()
    with pytest.raises(StartupError) as excinfo:
        table.wait_until(["crasher"], lambda: False, timeout=30, what="emulator crasher")
    assert time.monotonic() - started < 5
    message = str(excinfo.value)
    assert message.startswith("emulator crasher: crasher exited during start-up.")
    assert str(table.log_file("crasher")) in message
    assert "    boom" in message


def test_wait_until_times_out(table):
    table.start("slow", ["sh", "-c", "echo still-starting; exec sleep 60"], env=ENV)
    with pytest.raises(StartupError, match=r"^slow server did not become ready within 1 s\.") as excinfo:
        table.wait_until(["slow"], lambda: 1 / 0, timeout=1, what="slow server")
    assert "still-starting" in str(excinfo.value)


def test_port_owner_of_a_free_port():
    assert port_owner(free_port()) is None


def test_port_owner_of_a_listening_port():
    """A port held by a listening socket is reported taken, naming this process when it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        owner = port_owner(sock.getsockname()[1])
    assert owner == "another process" or owner.startswith(f"PID {os.getpid()} (")


def test_free_port_is_bindable():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
