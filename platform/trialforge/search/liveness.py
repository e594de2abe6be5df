"""Which process drives a sweep, so a resume never races a driver that is still alive."""

from __future__ import annotations

import os
import socket

import psutil


def this_process() -> str:
    """`host:pid:start` of this process: the pid alone may be reused after a crash."""
    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{int(me.create_time())}"


def process_alive(driver: str | None) -> bool:
    """Whether the process `this_process` named is still running (on this host).

    A driver on another host cannot be checked from here: it counts as gone, since the
    sweep's state says it stopped reporting.
    """
    host, _, rest = (driver or "").partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        return int(psutil.Process(int(pid)).create_time()) == int(started or -1)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
