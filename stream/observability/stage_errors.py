"""Stage failures a person can act on, turned into one line instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from streamrec.config import Settings


class ConfigurationError(ValueError):
    """A setting names something that does not exist (a scorer, a checkpoint file)."""


def check_scorer(settings: Settings) -> None:
    """Raise ConfigurationError, listing the valid choices, unless `scoring` names a scorer or an existing
    checkpoint."""
    from streamrec.models.registry import list_scorers

    scoring = settings.scoring
    if scoring.checkpoint_path is not None:
        if not Path(scoring.checkpoint_path).is_file():
            raise ConfigurationError(f"STREAMREC_SCORING__CHECKPOINT_PATH={scoring.checkpoint_path}: no such file "
                                     "(write one with `streamrec train`)")
        return
    if scoring.scorer not in list_scorers() and not Path(scoring.scorer).is_file():
        raise ConfigurationError(f"STREAMREC_SCORING__SCORER={scoring.scorer!r} is neither a scorer "
                                 f"({', '.join(list_scorers())}; see `streamrec scorers`) nor a checkpoint file")


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
