"""Helpers for tests that start real server processes on loopback."""

import os
import signal
import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to the process group started with start_new_session=True; SIGKILL after
    `timeout` seconds. Nothing to do if the process already ended."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group (started with start_new_session=True) if it still runs, and
    reap it: the teardown of a server a test or bench started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
