"""Click logs: the public data sets, the synthetic generator and the evaluation protocols.

Every reader yields `LoggedClick`s; every protocol turns them into a `Split` of training
sequences and `Example`s (context -> next item). Both the replay (stream/) and the offline
trainer (models/) consume these types, so they live here, below both.
"""

from streamrec.state.clicklog.types import Example, LoggedClick, Split, TrainSequence

__all__ = ["Example", "LoggedClick", "Split", "TrainSequence"]
