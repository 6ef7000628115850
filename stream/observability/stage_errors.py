"""Stage failures a person can act on, turned into one line instead of a traceback."""

from __future__ import annotations

from streamrec.config import Settings


def explain_stage_error(exc: BaseException, settings: Settings) -> str | None:
    """One line saying what happened and what to do, for failures with a known cause; None otherwise.

    Matched by class name so this module needs neither engine installed.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "InvalidStoreChangelogOffset" in names:
        return (f"the local state in {settings.state.dir} was built from another cluster (its changelog offsets are "
                f"ahead of what the broker at {settings.kafka.bootstrap_servers} holds, e.g. a restarted embedded "
                "broker): run `streamrec state clear` to remove it (it is rebuilt from the changelog), then restart")
    return None
