"""Process lifetime helpers: children (broker, stage processes) must not outlive their parent, and a stop signal
reaches the process's stop event without the handler taking a lock."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Iterable

_PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere).

    Call it in the child; the caller checks `os.getppid()` afterwards for a parent that died first.
    """
    libc_name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and libc_name:
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_on_signals(stop: threading.Event, signals: Iterable[signal.Signals] = STOP_SIGNALS) -> None:
    """Set `stop` when one of `signals` arrives. Call it from the main thread (Python's rule for handlers).

    The handler does not call `stop.set()` itself. Python runs handlers in the main thread between two
    bytecodes, and `threading.Event` guards its flag with a plain, non-reentrant lock that `stop.wait()`
    holds for a few bytecodes after every timeout. A handler that ran in that window would wait forever for
    a lock its own thread holds: a process that sometimes ignores SIGTERM. So the handler only writes a
    byte to a pipe (a system call, no lock) and a daemon thread reads it and sets the event.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # a burst of signals must never block the handler

    def relay() -> None:
        while os.read(read_fd, 1):
            stop.set()

    threading.Thread(target=relay, name="signal-relay", daemon=True).start()

    def handler(_signum: int, _frame: object) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a byte is already waiting to be read
            os.write(write_fd, b"\0")

    for sig in signals:
        signal.signal(sig, handler)
