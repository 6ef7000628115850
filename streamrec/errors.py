"""Mistakes a person makes at the command line, each reported as one line instead of a traceback.

`UserError` carries the line and the exit status: 2 for bad input (a setting, an option, a
file), 1 for the environment (no broker). `report_user_error` turns the exceptions user input
can raise deep inside (a settings ValidationError, a malformed log, a missing file) into one.
"""

from __future__ import annotations

from pydantic import ValidationError

EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 1


class UserError(Exception):
    """Something the user can fix; `str(error)` says what is wrong and what to do."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.status = status


def settings_error_line(exc: ValidationError) -> str:
    """Name the STREAMREC_* variable (or $STREAMREC_CONFIG key) behind each invalid setting."""
    parts = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        variable = "STREAMREC_" + "__".join(part.upper() for part in loc)
        given = error.get("input")
        # a rejected key (api.write_api_key) may be a real one, mistyped: never echoed
        secret = loc[-1].endswith("_key")
        shown = f" (got {given!r})" if given is not None and not isinstance(given, dict) and not secret else ""
        parts.append(f"{variable}{shown}: {error['msg']}")
    return ("invalid setting " + "; ".join(parts)
            + " (set in the environment or in $STREAMREC_CONFIG; `streamrec settings --markdown` lists them all)")


def as_user_error(exc: BaseException) -> UserError | None:
    """The UserError an exception from user input amounts to; None for a genuine bug (let it raise)."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return UserError(settings_error_line(exc))
    from streamrec.state.clicklog.formats import MalformedLogError

    if isinstance(exc, MalformedLogError):
        return UserError(f"cannot read the log: {exc}")
    from streamrec.stream.observability.health import NoBroker
    from streamrec.stream.observability.stage_errors import ConfigurationError

    if isinstance(exc, ConfigurationError):
        return UserError(str(exc))
    if isinstance(exc, NoBroker):
        return UserError(str(exc), EXIT_ENVIRONMENT)
    if isinstance(exc, FileNotFoundError):
        return UserError(f"file not found: {exc.filename or exc}")
    return None
