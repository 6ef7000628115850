"""Domain state and everything persisted: session graphs, user memory, vocabularies, click logs.

Nothing here imports Kafka or torch: these are plain objects and pure transitions,
shared by every engine, the scorers and the offline trainer.
"""

from streamrec.state.history import UserHistory
from streamrec.state.session import SessionGraph
from streamrec.state.visitor import Click, SessionPolicy, Transition, VisitorState, apply_click

__all__ = ["Click", "SessionGraph", "SessionPolicy", "Transition", "UserHistory", "VisitorState", "apply_click"]
