"""Click logs: the public data sets, the synthetic generator and the evaluation protocols.

Every reader yields `LoggedClick`s; every protocol turns them into a `Split` of training
sequences and `Example`s (context -> next item). Both the replay (stream/) and the offline
trainer (models/) consume these types, so they live here, below both.
"""

from streamrec.state.clicklog.formats import FORMATS, MalformedLogError, ReadReport, read_log, read_log_with_report
from streamrec.state.clicklog.protocols import (
    PROTOCOLS,
    diginetica_split,
    leave_one_out,
    recent_split,
    session_split,
    split_for,
)
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.state.clicklog.types import Example, LoggedClick, Split, TrainSequence

__all__ = [
    "FORMATS",
    "PROTOCOLS",
    "Example",
    "LoggedClick",
    "MalformedLogError",
    "ReadReport",
    "Split",
    "SyntheticSpec",
    "TrainSequence",
    "diginetica_split",
    "generate",
    "leave_one_out",
    "read_log",
    "read_log_with_report",
    "recent_split",
    "session_split",
    "split_for",
]
