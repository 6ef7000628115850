"""stop_on_signals: a stop signal always sets the stop event, even when it lands where a handler calling
`Event.set()` would deadlock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# The window the relay exists for, made certain: the main thread holds the event's internal lock (as
# `Event.wait()` does for a few bytecodes after every timeout) when SIGTERM arrives. A handler that set the
# event itself would wait for that lock forever; `threading.Event` offers no public way to hold it.
_SIGNAL_WHILE_THE_EVENT_IS_LOCKED = textwrap.dedent("""
    import os, signal, sys, threading
    from streamrec.stream.lifecycle import stop_on_signals

    stop = threading.Event()
    {install}
    with stop._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # bytecode boundaries: the handler runs here, in this thread
            pass
    sys.exit(0 if stop.wait(10) else 3)
""")


def _run(install: str, timeout_s: float) -> int | None:
    script = _SIGNAL_WHILE_THE_EVENT_IS_LOCKED.format(install=install)
    try:
        return subprocess.run([sys.executable, "-c", script], timeout=timeout_s).returncode
    except subprocess.TimeoutExpired:
        return None  # hung


def test_a_signal_sets_the_stop_event_even_while_its_lock_is_held() -> None:
    assert _run("stop_on_signals(stop)", timeout_s=60) == 0


def test_the_window_is_real_a_handler_calling_set_hangs_there() -> None:
    """The control: the handler every Python tutorial writes never returns in that window."""
    assert _run("signal.signal(signal.SIGTERM, lambda *_: stop.set())", timeout_s=5) is None
